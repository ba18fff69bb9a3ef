"""What the two phase-diagram experiments share (experiment 4): the sweep, the per-point table, the figure.

A phase diagram trains n features in n − 1 hidden dimensions at every point
of a grid of density × relative importance of the last feature (the other
features have importance 1), with restarts; the best restart by held-out
loss gives the point's empirical phase of the last feature
(:func:`fastsup.metrics.feature_phase`), and the n→n−1 theory its analytic
phase (:func:`fastsup.metrics.analytic_phase`).

Sources for the ``paper`` scale ([KG] cells 6, 7, 34, 37): a 20 × 20 grid,
density logspace(−2, 0), relative importance logspace(−1, 1), 2,000
iterations of AdamW (lr 1e-2, weight decay 1e-2, batch 128) decaying to 0
along a cosine, best trial of 10 (2→1) or 20 (3→2) by the loss on 10,000
fresh samples. Two differences, both deliberate:

* fastsup's ``cosine`` schedule is the notebook's cos(π/2 · s/(S−1)); [KG]
  uses torch's CosineAnnealingLR, (1 + cos(π s/S))/2. Both fall from the
  full lr to 0 over the run; the named schedule keeps the spec small (no
  per-step multipliers stored per point) and overridable (``--set schedule=...``).
* [KG] clips the gradient norm at 2.0 over all instances together, which
  couples them; fastsup trains every instance on its own (DESIGN.md §2), so
  there is no clipping. [KG] also averages the loss over instances, which
  scales every gradient by 1/400; Adam's update does not depend on that scale.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from .. import metrics
from ..config import check_integer
from ..metrics.weights import _check_threshold as check_threshold
from ..plots import plot_phase_diagram
from .base import Outcome, Settings
from .titles import experiment_title

#: [KG] cell 6's optimiser for the phase diagrams (schedule: see the module docstring).
KG_OPTIMIZER = dict(optimizer="adamw", lr=1e-2, weight_decay=1e-2, schedule="cosine")
#: [KG] cell 7 picks the best trial on this many fresh samples.
HELD_OUT_SAMPLES = 10_000
DENSITY_RANGE = (1e-2, 1.0)
IMPORTANCE_RANGE = (1e-1, 1e1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhaseSettings(Settings):
    #: points per axis: density × relative importance on a grid × grid lattice, both log-spaced
    grid: int = 20
    #: trained models per point; the one with the lowest held-out loss counts
    restarts: int = 10
    #: norm above which the last feature is represented, superposition above which it is superposed
    norm_threshold: float = metrics.REPRESENTED_THRESHOLD
    superposition_threshold: float = metrics.SUPERPOSITION_THRESHOLD

    def __post_init__(self):
        super().__post_init__()
        check_integer("grid", self.grid, 2)
        check_integer("restarts", self.restarts, 1)
        for name in ("norm_threshold", "superposition_threshold"):
            check_threshold(getattr(self, name), name)


def grid_axes(settings: PhaseSettings) -> dict[str, list[float]]:
    return {"density": list(np.logspace(*np.log10(DENSITY_RANGE), settings.grid)),
            "relative_importance": list(np.logspace(*np.log10(IMPORTANCE_RANGE), settings.grid))}


def phase_sweep(settings: PhaseSettings, n_features: int):
    """The sweep of one n→n−1 phase diagram."""
    def point_fields(density, relative_importance):
        return dict(feature_probability=density, importance=[1.0] * (n_features - 1) + [relative_importance])

    return settings.sweep(axes=grid_axes(settings), fields=point_fields, restarts=settings.restarts,
                          n_features=n_features, n_hidden=n_features - 1, model="relu_output",
                          eval_batch_size=HELD_OUT_SAMPLES, **KG_OPTIMIZER)


def _next_to_a_boundary(table: pd.DataFrame) -> np.ndarray:
    """Per row: whether a grid neighbour (8-connected) of the point has another analytic phase."""
    phase = table.pivot(index="density", columns="relative_importance", values="analytic_phase").to_numpy()
    padded = np.pad(phase, 1, mode="edge")
    rows, cols = phase.shape
    differs = np.zeros_like(phase, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            differs |= padded[1 + di:1 + di + rows, 1 + dj:1 + dj + cols] != phase
    i = np.searchsorted(np.sort(table["density"].unique()), table["density"])
    j = np.searchsorted(np.sort(table["relative_importance"].unique()), table["relative_importance"])
    return differs[i, j]


def phase_table(outcome: Outcome) -> pd.DataFrame:
    """One row per point: its best restart, the last feature's measures, and its empirical and analytic phase."""
    sweep, settings = outcome.sweep(), outcome.settings
    best = sweep.best()
    W = sweep.params(best)["W"].double()
    n_features = W.shape[-2]
    density = torch.tensor(best["density"].to_numpy())
    importance = torch.tensor(best["relative_importance"].to_numpy())
    phase = metrics.feature_phase(W, settings.norm_threshold, settings.superposition_threshold)[:, -1]
    analytic = metrics.analytic_phase(density, importance, n_features)
    candidate = metrics.best_candidate(density, importance, n_features)
    table = best.drop(columns=["chunk", "row_in_chunk"]).assign(
        last_norm=metrics.feature_norms(W)[:, -1].numpy(),
        last_superposition=metrics.superposition(W)[:, -1].numpy(),
        phase=phase.numpy(), phase_name=metrics.phase_names(phase),
        analytic_phase=analytic.numpy(), analytic_phase_name=metrics.phase_names(analytic),
        candidate=np.array(metrics.CANDIDATES)[candidate.numpy()],
        agrees=(phase == analytic).numpy(),
        feature_norms=list(metrics.feature_norms(W).numpy()),
    )
    return table.assign(next_to_boundary=_next_to_a_boundary(table)).reset_index(drop=True)


def phase_numbers(outcome: Outcome, table: pd.DataFrame) -> dict:
    """Agreement of empirical and analytic phase: everywhere and off the boundaries, and the phase counts."""
    off = table[~table["next_to_boundary"]]
    def counts(column):
        return {name: int((table[column] == name).sum()) for name in (*metrics.PHASES, metrics.UNDEFINED)}

    return {
        "points": len(table),
        "agreement": float(table["agrees"].mean()),
        "points_off_boundary": len(off),
        "agreement_off_boundary": float(off["agrees"].mean()) if len(off) else None,
        "empirical_phases": counts("phase_name"),
        "analytic_phases": counts("analytic_phase_name"),
        "diverged_best": int(table["diverged"].sum()),
    }


def phase_figures(outcome: Outcome, table: pd.DataFrame, *, with_candidates: bool) -> dict:
    name = outcome.experiment.name
    return {name: plot_phase_diagram(
        table, n_features=len(table["feature_norms"].iloc[0]), with_candidates=with_candidates,
        title=experiment_title(name, outcome.variants))}
