"""Steady-state CPU speed of fastsup's torch backend and every peer (``peers.py``), same run, same threads.

Run alone, on a machine as quiet as you can get (both cores idle):

    python -m pytest benchmarks/test_cpu_speed.py --benchmark-enable --benchmark-save=NAME

Each peer is warmed up (compile, allocator, optimizer state) by one block of
steps, then timed for 3 rounds of a block; the summary prints steps/s of the
fastest round and each peer's speed relative to the notebook trainer, with
the machine and its load average.  With ``--benchmark-disable`` (the default
in CI) each peer runs 2 steps of the intro case once, as a smoke test.
"""

from __future__ import annotations

import pytest

from benchmarks.cases import SPEED_CASES
from benchmarks.conftest import time_block
from benchmarks.peers import PEERS

# Steps per timed round: ~0.3-3 s per round for the notebook trainer on the 2-core machine.
BLOCK = {"a-intro-5to2x10": 300, "b-100to20x20": 20, "c-200to20x20": 10, "d-2to1-grid-1600": 10}


@pytest.mark.parametrize("peer", list(PEERS))
@pytest.mark.parametrize("case", SPEED_CASES, ids=[c.name for c in SPEED_CASES])
def test_steady_state(benchmark, case, peer):
    if benchmark.disabled and case is not SPEED_CASES[0]:
        pytest.skip("smoke mode runs the intro case only (compiling every case would slow CI down)")
    benchmark.group = case.name
    benchmark.extra_info.update(case=case.name, peer=peer, steps=BLOCK[case.name])
    time_block(benchmark, PEERS[peer](case).run, BLOCK[case.name], case.name, peer)
