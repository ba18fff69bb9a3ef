"""Experiment 6, non-uniform superposition: 5 → 2 with one feature's density varied.

As [KG] cells 57–60: features 1–4 have S = 0.95 (density 0.05), feature 0
has density 0.05·ρ.  Two sweeps, restarts at every ρ:

* ``deform``: ρ = logspace(-3, 1, 41), 4 trials.  The best restart per ρ,
  rotated so feature 0 points up (feature 1 when feature 0 is not
  represented): a square of features 1–4 while feature 0 is too sparse to
  learn, then a pentagon that deforms as feature 0 grows denser.
* ``branches``: ρ = logspace(-1, 1, 20), 10 runs.  Every restart's held-out
  loss against ρ, coloured by its number of represented features: the
  triangle, square and pentagon solutions are separate loss branches that
  cross (first-order transitions).

Paper scale: [KG]'s 2k iterations for both sweeps ([KG] runs the branch
sweep 1k iterations), with the notebook's AdamW.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

from .. import metrics
from ..config import check_integer
from ..plots import plot_features_2d, plot_loss_branches
from ..sweep import Sweep
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, register
from .tables import json_values
from .titles import experiment_title

N_FEATURES, N_HIDDEN = 5, 2
#: density of features 1–4 (S = 0.95); feature 0 has OTHER_DENSITY · ρ
OTHER_DENSITY = 0.05
#: shape of a solution by its number of represented features ([KG] cell 60)
#: Held-out batch of the losses that rank the restarts and draw the branches.  A training-sized batch
#: (256 rows × 4 features at density 0.05: ~50 present values) leaves the loss ~1/√50 ≈ 14% noise,
#: which blurs branches closer than that; 2^15 rows (~6,500 values) cut it to ~1%, for one forward pass.
EVAL_BATCH_SIZE = 2**15
SHAPES = {0: "nothing", 1: "one feature", 2: "2 features", 3: "triangle", 4: "square", 5: "pentagon"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class NonuniformSettings(Settings):
    #: ρ values of the deforming-pentagon sweep, log-spaced over [1e-3, 10]
    deform_points: int = 41
    deform_restarts: int = 4
    #: ρ values of the loss-branch sweep, log-spaced over [0.1, 10]
    branch_points: int = 20
    branch_restarts: int = 10

    def __post_init__(self):
        super().__post_init__()
        for name in ("deform_points", "branch_points"):
            check_integer(name, getattr(self, name), 2)
        for name in ("deform_restarts", "branch_restarts"):
            check_integer(name, getattr(self, name), 1)


# small: lr 1e-2 (as [KG]) so 1000 steps of batch 256 settle; see tests/experiments/test_nonuniform.py.
SCALES = {
    "small": NonuniformSettings(steps=1_000, batch_size=256, deform_points=6, deform_restarts=2,
                                branch_points=6, branch_restarts=4, config_overrides={"lr": 1e-2}),
    "paper": NonuniformSettings(steps=2_000, batch_size=1024),
}


def _densities(rho: float) -> list[list[float]]:
    return [[OTHER_DENSITY * rho] + [OTHER_DENSITY] * (N_FEATURES - 1)]


def spec(settings: NonuniformSettings) -> dict[str, Sweep]:
    def sweep(rhos, restarts):
        return settings.sweep(axes={"rho": [float(r) for r in rhos]}, fields=lambda rho: dict(feature_probability=_densities(rho)),
                              restarts=restarts, n_features=N_FEATURES, n_hidden=N_HIDDEN, model="relu_output",
                              importance=1.0, eval_batch_size=EVAL_BATCH_SIZE, **NOTEBOOK_OPTIMIZER)

    return {"deform": sweep(np.logspace(-3, 1, settings.deform_points), settings.deform_restarts),
            "branches": sweep(np.logspace(-1, 1, settings.branch_points), settings.branch_restarts)}


def rotate_upright(W: torch.Tensor, *, threshold: float = metrics.REPRESENTED_THRESHOLD) -> torch.Tensor:
    """``W`` ``[I, n, 2]`` rotated per instance so feature 0 points along +y, or feature 1 where
    ‖W_0‖ <= threshold ([KG]'s view: the pentagon's odd feature, or the square, upright)."""
    norms = metrics.feature_norms(W)
    anchor = torch.where(norms[:, 0] > threshold, 0, 1)
    vector = W[torch.arange(W.shape[0]), anchor]  # [I, 2]
    angle = math.pi / 2 - torch.atan2(vector[:, 1], vector[:, 0])
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # row vectors: x R
    return W @ rotation


def analysis(outcome: Outcome) -> pd.DataFrame:
    """Every restart of both sweeps (the loss branches need them all); ``best`` marks the restart kept per ρ."""
    tables = []
    for label in outcome.variants:
        sweep = outcome.sweep(label)
        table = sweep.table
        W = sweep.params(table)["W"].double()
        best = set(sweep.best().index)
        tables.append(pd.DataFrame({
            "variant": label,
            "rho": table["rho"].to_numpy(),
            "feature_0_density": OTHER_DENSITY * table["rho"].to_numpy(),
            "restart": table["restart"].to_numpy(),
            "best": [row in best for row in table.index],
            "final_loss": table["final_loss"].to_numpy(),
            "diverged": table["diverged"].to_numpy(),
            "n_represented": table["n_represented"].to_numpy(),
            "shape": [SHAPES.get(int(c), f"{int(c)} features") if np.isfinite(c) else "diverged"
                      for c in table["n_represented"]],
            "feature_norms": list(metrics.feature_norms(W).numpy()),
            "feature_dimensionality": list(metrics.feature_dimensionality(W).numpy()),
        }))
    return pd.concat(tables, ignore_index=True)


def numbers(outcome: Outcome, table: pd.DataFrame) -> dict:
    best = table[table["best"]]
    return {label: {
        "rho": rows["rho"].tolist(),
        "best_final_loss": json_values(torch.tensor(rows["final_loss"].to_numpy())),
        "best_shape": rows["shape"].tolist(),
    } for label, rows in best.groupby("variant", sort=False)}


def figures(outcome: Outcome, table: pd.DataFrame):
    sweep = outcome.sweep("deform")
    best = sweep.best()
    W = rotate_upright(sweep.params(best)["W"].double())
    titles = [f"ρ = {rho:.3g} ({shape})" for rho, shape in
              zip(best["rho"], table.loc[(table["variant"] == "deform") & table["best"], "shape"])]
    branches = table[table["variant"] == "branches"]
    return {
        "nonuniform": plot_features_2d(W, titles=titles,
                                       suptitle=experiment_title("nonuniform", {"deform": outcome.variants["deform"]})
                                       + f"; feature 0 at density {OTHER_DENSITY:g}·ρ, the others {OTHER_DENSITY:g}"),
        "nonuniform-branches": plot_loss_branches(
            branches["rho"], branches["final_loss"], branches["n_represented"], names=SHAPES,
            xlabel=f"ρ (feature 0's density / {OTHER_DENSITY:g})",
            title=experiment_title("nonuniform", {"branches": outcome.variants["branches"]})
            + "\nevery restart, coloured by its represented features"),
    }


EXPERIMENT = register(Experiment(
    "nonuniform",
    "5 → 2, four features at S = 0.95 and feature 0's density varied: the pentagon deforms, and the "
    "triangle, square and pentagon solutions are loss branches that cross",
    number=6, scales=SCALES, spec=spec, analysis=analysis, figures=figures, numbers=numbers,
))
