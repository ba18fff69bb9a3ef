"""One whole training call in this (fresh) process, timed; prints JSON.  Used by ``test_first_call.py``.

    python -m benchmarks.first_call fastsup|notebook STEPS [--compile]

Trains the intro case (``cases.CASES[0]``) for STEPS steps: ``fastsup.train``
(backend and compile decision left to fastsup, as a user gets them, unless
``--compile`` forces a compile: how the benchmark fills a cache) or the
notebook trainer's ``optimize``.  The inductor cache in use is whatever
``TORCHINDUCTOR_CACHE_DIR`` names.
"""

from __future__ import annotations

import json
import sys
import time

start = time.perf_counter()
import torch  # noqa: E402

import fastsup  # noqa: E402
from benchmarks.cases import CASES  # noqa: E402
from benchmarks.peers import NotebookRunner  # noqa: E402


def main(trainer: str, steps: int, compile: bool | None = None) -> dict:
    imported = time.perf_counter()
    case = CASES[0]
    if trainer == "fastsup":
        call_start = time.perf_counter()
        fastsup.train(case.config(steps), device="cpu", progress=False, compile=compile)
    else:
        runner = NotebookRunner(case)
        call_start = time.perf_counter()
        runner.run(steps)
    done = time.perf_counter()
    return {"trainer": trainer, "steps": steps, "import_seconds": imported - start, "call_seconds": done - call_start,
            "threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), True if sys.argv[3:] == ["--compile"] else None)))
