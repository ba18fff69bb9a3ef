"""Whole ``optimize`` calls as a notebook user meets them: a fresh process, one cell, nothing warmed up.

Times ``fastsup.compat.optimize`` (fast mode) against the notebook-style
trainer (``benchmarks/notebook_baseline.py``) on the issue's two cells:

* the intro cell, 5→2 × 10 instances, 10 000 steps;
* 100→20 × 20 instances, 300 steps.

Each measurement is one child process that imports, builds the model and
times its ``optimize`` call(s), so compilation, caches and first-call costs
are all inside the number.  compat is timed three ways: with an empty
inductor cache (a first run on a new machine), with a warm cache in a new
process (every later notebook session), and the second call in the same
process.  torch's default thread count, as a user has it, unless
``--threads`` says otherwise: on a loaded 2-core machine two OpenMP threads
per process stall on each other (the notebook's intro cell had not finished
after 4 minutes at load 4.5; issue #13 measured 20 s at load 1.2), and one
thread per process gives timings that at least compare the trainers.

    python -m benchmarks.compat_whole_calls [--rounds 3] [--threads N] [--quick]

The machine's load (``os.getloadavg``) is printed next to every number:
timings under load are not quiet timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CELLS = {"intro": ("a-intro-5to2x10", 10_000), "100to20": ("b-100to20x20", 300)}

CHILD = r"""
import json, sys, time
import torch
from benchmarks.cases import CASES
case_name, steps, trainer, calls, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if threads:
    torch.set_num_threads(threads)
case = next(c for c in CASES if c.name == case_name)
if trainer == "notebook":
    from benchmarks import notebook_baseline as nb
    kwargs = {}
else:
    import fastsup.compat as nb
    kwargs = {"device": "cpu"}
torch.manual_seed(0)
model = nb.Model(nb.Config(case.n_features, case.n_hidden, case.n_instances),
                 feature_probability=case.probability(case.n_instances), importance=case.importance(case.n_instances), **kwargs)
seconds = []
for _ in range(calls):
    start = time.perf_counter()
    nb.optimize(model, n_batch=case.batch_size, steps=steps, progress=False)
    seconds.append(time.perf_counter() - start)
print(json.dumps(seconds))
"""


def one_process(case: str, steps: int, trainer: str, calls: int, cache_dir: str, threads: int) -> tuple[list[float], float]:
    """Seconds of each ``optimize`` call in one fresh process, and the 1-minute load average when it ended."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache_dir)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(steps), trainer, str(calls), str(threads)],
        env=env, cwd=root, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1]), os.getloadavg()[0]


def measure(cell: str, steps: int, rounds: int, threads: int) -> list[dict]:
    case, _ = CELLS[cell]
    rows = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache:
            (notebook,), load_nb = one_process(case, steps, "notebook", 1, cache, threads)
            (cold,), load_cold = one_process(case, steps, "compat", 1, cache, threads)  # starts empty, fills the cache
            (warm_first, second), load_warm = one_process(case, steps, "compat", 2, cache, threads)
        rows.append(dict(notebook=notebook, cold=cold, warm=warm_first, second=second,
                         load=max(load_nb, load_cold, load_warm)))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    parser.add_argument("--quick", action="store_true", help="20 steps per cell: checks the script runs, times nothing")
    args = parser.parse_args(argv)
    print(f"cpus: {os.cpu_count()}  threads: {args.threads or 'default'}  load before: {os.getloadavg()}")
    for cell, (_, steps) in CELLS.items():
        steps = 20 if args.quick else steps
        for row in measure(cell, steps, args.rounds, args.threads):
            print(json.dumps({"cell": cell, "steps": steps, **{k: round(v, 2) for k, v in row.items()}}), flush=True)


if __name__ == "__main__":
    main()
