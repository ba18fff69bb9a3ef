"""What a user meets: a whole training call in a fresh process, fastsup against the notebook trainer.

Goals of issue 11, on intro (5→2 × 10, batch 1024):

* (a) warm disk cache (inductor's FX graph and AOT autograd caches hold the
  step): ``fastsup.train`` ≥ 5× faster than the notebook trainer at 10 000
  steps, ≥ 3× at 3 000;
* (b) empty caches (a new user's first ``fastsup run intro``): no slower than
  the notebook trainer at 10 000 steps.

Each case starts ``python -m benchmarks.first_call`` in a new process; the
statistic is the child's own time of the call (torch's import excluded, the
same for both sides), kept in ``extra_info`` and in the summary.  An empty
cache is a new ``TORCHINDUCTOR_CACHE_DIR``; a warm one was filled by an
untimed run of the same call with ``compile=True`` (as an earlier long run
would leave it).  Run alone on a quiet machine:

    python -m pytest benchmarks/test_first_call.py --benchmark-enable

With benchmarks disabled (CI) each case runs a 2-step call once, as a smoke test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.conftest import FIRST_CALLS, timed

ROOT = Path(__file__).resolve().parents[1]


def _call(trainer: str, steps: int, cache_dir: Path, *options: str) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache_dir)}
    command = [sys.executable, "-m", "benchmarks.first_call", trainer, str(steps), *options]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("trainer, steps, cache", [
    ("notebook", 3000, "none"),
    ("notebook", 10_000, "none"),
    ("fastsup", 3000, "warm"),
    ("fastsup", 10_000, "warm"),
    ("fastsup", 10_000, "empty"),
], ids=["notebook-3000", "notebook-10000", "fastsup-3000-warm-cache", "fastsup-10000-warm-cache",
        "fastsup-10000-empty-cache"])
def test_first_call(benchmark, tmp_path, trainer, steps, cache):
    benchmark.group = f"first call, intro x {steps}"
    if benchmark.disabled:
        steps = 2
    if cache == "warm" and not benchmark.disabled:  # the smoke test skips the (compiling) warm-up
        _call(trainer, steps, tmp_path, "--compile")  # fills the cache (compiling even where it would not pay), untimed
    calls = []
    run = lambda: calls.append(_call(trainer, steps, tmp_path))  # noqa: E731
    if benchmark.disabled:
        benchmark(run)
    else:
        timed(benchmark, run, rounds=1)
    result = calls[-1]
    assert result["steps"] == steps
    if benchmark.disabled:
        return
    benchmark.extra_info.update(result)
    FIRST_CALLS[f"intro x {steps}: {trainer}, {cache} cache"] = result["call_seconds"]
