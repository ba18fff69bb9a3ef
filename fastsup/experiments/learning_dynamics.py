"""Experiment 8, learning dynamics: 100 features → 10 dimensions at S = 0.55, watched through log-spaced checkpoints.

[KG] cells 85–97: from a small init (W × 0.1) every feature starts with a
tiny, shared share of the dimensions; during training some features take
dimensions of their own, and a feature's dimensionality D_i tends to rise
in a jump rather than steadily, while the loss falls in steps.  The
checkpoints come from ``train(checkpoint_steps=...)``; the loss at each is
the held-out loss of its weights (``fastsup.evaluate``).

KG rebuilds AdamW every step (its moments reset, so each update is close to
sign-SGD); here the optimiser keeps its state, as torch.optim does, and the
``small`` scale uses lr 1e-2 to get through the same stages in 1000 steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .. import metrics
from ..config import check_integer
from ..evaluate import evaluate
from ..init import init_params
from ..plots import plot_learning_dynamics
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, register
from .titles import experiment_title

#: A feature counts as having dimensions of its own above this D_i (a tenth of the initial
#: share, ~0.09 for every feature at W × 0.1, and far below an antipodal pair's 0.5).
DIMENSIONAL = 0.3


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearningDynamicsSettings(Settings):
    n_features: int = 100
    n_hidden: int = 10
    n_instances: int = 4
    density: float = 0.45  # 1 - S
    lr: float = 1e-3
    init_scale: float = 0.1  # W at the start: the contract's init times this
    n_checkpoints: int = 100  # log-spaced from step 0 to the last (fewer where they coincide)

    def __post_init__(self):
        super().__post_init__()
        for name in ("n_features", "n_hidden", "n_instances", "n_checkpoints"):
            check_integer(name, getattr(self, name), 1)
        if not 0.0 < self.density <= 1.0:
            raise ValueError(f"density must lie in (0, 1], got {self.density!r}")
        if not self.init_scale > 0.0:
            raise ValueError(f"init_scale must be > 0, got {self.init_scale!r}")


SCALES = {
    "small": LearningDynamicsSettings(steps=1_000, batch_size=128, n_instances=2, lr=1e-2, n_checkpoints=40),
    # KG: one instance, 100k steps, lr 1e-3, batch 128, checkpoints logspace(2, 5, 100) - 1
    "paper": LearningDynamicsSettings(steps=100_000, batch_size=128, n_instances=4, lr=1e-3, n_checkpoints=100),
}


def checkpoint_steps(steps: int, count: int) -> list[int]:
    """``count`` log-spaced steps from 0 to ``steps - 1`` (KG's ``unique(int(logspace)) - 1``, rounded
    instead of truncated so that float error never drops the last step)."""
    return sorted({round(s) - 1 for s in np.logspace(0.0, np.log10(steps), count)})


def spec(settings: LearningDynamicsSettings) -> dict:
    return {"learning_dynamics": settings.config(
        n_features=settings.n_features, n_hidden=settings.n_hidden, n_instances=settings.n_instances,
        model="relu_output", feature_probability=settings.density, importance=1.0, log_every=1,
        **{**NOTEBOOK_OPTIMIZER, "lr": settings.lr},
    )}


def train_options(settings: LearningDynamicsSettings, variants) -> dict:
    config = variants["learning_dynamics"]
    init = init_params(config, "cpu")
    init["W"] = init["W"] * settings.init_scale
    return {"learning_dynamics": dict(init=init, checkpoint_steps=checkpoint_steps(config.steps,
                                                                                   settings.n_checkpoints))}


def analysis(outcome: Outcome):
    """One row per instance and checkpoint: held-out loss, D_i of every feature, features with dimensions."""
    import pandas as pd

    result = outcome.result()
    rows = []
    for step, params in result.checkpoints.items():
        loss = evaluate(dataclasses.replace(result, params=params), device="cpu")
        D = metrics.feature_dimensionality(params["W"])
        for k in range(result.config.n_instances):
            rows.append(dict(instance=k, step=step, loss=float(loss[k]), dimensionality=D[k].tolist(),
                             n_dimensional=int((D[k] > DIMENSIONAL).sum()), total_dimensionality=float(D[k].sum())))
    return pd.DataFrame(rows)


def _stacked(table, column: str) -> np.ndarray:
    """``[C, I, ...]`` of ``column`` (rows ordered by step, then instance)."""
    ordered = table.sort_values(["step", "instance"])
    n_instances = ordered["instance"].nunique()
    values = np.array(ordered[column].tolist(), dtype=float)
    return values.reshape(-1, n_instances, *values.shape[1:])


def largest_jump_share(table) -> np.ndarray:
    """``[I]``: over the features that end with dimensions of their own, the median share of a feature's
    final D_i gained between two consecutive checkpoints at its steepest (1/C when the rise is even)."""
    D = _stacked(table, "dimensionality")  # [C, I, n]
    final = D[-1]
    share = np.diff(D, axis=0).max(axis=0) / np.where(final > 0, final, 1.0)
    return np.array([np.median(share[k][final[k] > DIMENSIONAL]) if (final[k] > DIMENSIONAL).any() else np.nan
                     for k in range(D.shape[1])])


def figures(outcome: Outcome, table):
    steps = sorted(table["step"].unique())
    return {"learning_dynamics": plot_learning_dynamics(
        steps, _stacked(table, "dimensionality"), _stacked(table, "loss"),
        titles=[f"instance {k}" for k in range(outcome.result().config.n_instances)],
        suptitle=experiment_title("learning_dynamics", outcome.variants))}


def numbers(outcome: Outcome, table) -> dict:
    last = table[table["step"] == table["step"].max()].sort_values("instance")
    return {
        "checkpoint_steps": [int(s) for s in sorted(table["step"].unique())],
        "final_n_dimensional": [int(v) for v in last["n_dimensional"]],
        "final_total_dimensionality": [float(v) for v in last["total_dimensionality"]],
        "final_loss": [float(v) for v in last["loss"]],
        "largest_jump_share": [None if np.isnan(v) else float(v) for v in largest_jump_share(table)],
    }


EXPERIMENT = register(Experiment(
    "learning_dynamics",
    "100→10 at S = 0.55 from a small init: feature dimensionalities and loss against step, from checkpoints",
    number=8, scales=SCALES, spec=spec, analysis=analysis, figures=figures, numbers=numbers,
    train_options=train_options))
