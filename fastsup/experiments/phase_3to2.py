"""Experiment 4b, the 3→2 phase diagram ([KG] cell 37; theory [MW] for n→n−1).

Three features in two hidden dimensions; the third's importance r and the
density vary. The theory compares four candidate solutions
(:data:`fastsup.metrics.CANDIDATES`): for r < 1 the third feature is
superposed with the second below s* = 4r/(2+5r) and dropped above; for r > 1
it keeps its own dimension while the first two superpose below s = 4/7.
[KG] notes this diagram is especially hard to reproduce; the figure puts the
empirical diagram beside the theory's least-loss candidate at every point.

Where it departs (measured at the ``small`` scale, seeds 0-3): for r > 1 at
sparse densities the best restart often pairs the third feature antipodally
with one of the others instead of pairing the first two (h_first). The two
solutions' losses differ by (r − 1)s²/6, below the held-out noise at s ≲ 0.05,
and two of the three possible pairs include the third feature, so the pair a
restart falls into decides. Above density 0.2 (off the boundaries) the
empirical and analytic phases agree at 92-100% of the points.
"""

from __future__ import annotations

from ._phase_diagram import PhaseSettings, phase_figures, phase_numbers, phase_sweep, phase_table
from .base import Experiment, register

N_FEATURES = 3

SCALES = {
    # small: as phase_2to1's; paper: [KG] cells 6, 7 and 37 (see _phase_diagram).
    "small": PhaseSettings(steps=200, batch_size=128, grid=8, restarts=6),
    "paper": PhaseSettings(steps=2_000, batch_size=128, grid=20, restarts=20),
}


def spec(settings: PhaseSettings):
    return {"phase_3to2": phase_sweep(settings, N_FEATURES)}


def figures(outcome, table):
    return phase_figures(outcome, table, with_candidates=True)


EXPERIMENT = register(Experiment(
    "phase_3to2",
    "3 → 2 phase diagram over density × importance of the third feature, beside the least-loss candidate "
    "solution of the theory",
    number=4, scales=SCALES, spec=spec, analysis=phase_table, figures=figures, numbers=phase_numbers,
))
