"""Experiment 8, learning dynamics: feature dimensionalities and directions watched through log-spaced checkpoints.

Two variants ([KG] cells 85–97), both from ``train(checkpoint_steps=...)``:

* ``learning_dynamics``: 100 features → 10 dimensions at S = 0.55 from a
  small init (W × 0.1).  Every feature starts with a tiny, shared share of
  the dimensions; during training some take dimensions of their own, and a
  feature's dimensionality D_i tends to rise in a jump rather than steadily,
  while the loss falls in steps.  The loss at each checkpoint is the held-out
  loss of its weights (``fastsup.evaluate``).
* ``correlated``: 2 sets of 3 correlated features (a set's features are
  present together) → 3 dimensions at S = 0.99, lr 5e-3 constant, batch 256;
  the figure follows every feature's direction W_i in 3-D up to [KG]'s
  checkpoints 5, 35 and 55 (of its 84) and the end.  Each set settles into an
  orthogonal basis of the space, and every feature of one set antipodal to
  one of the other: correlated features are never superposed on each other,
  features that are rarely present together are.

KG rebuilds AdamW every step (its moments reset, so each update is close to
sign-SGD); here the optimiser keeps its state, as torch.optim does, and the
``small`` scale uses lr 1e-2 to get through the same stages in fewer steps.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .. import metrics
from ..config import check_integer
from ..evaluate import evaluate
from ..init import init_params
from ..plots import plot_learning_dynamics, plot_trajectories_3d
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, check_density, register
from .titles import variant_title

VARIANTS = ("learning_dynamics", "correlated")
#: A feature counts as having dimensions of its own above this D_i (a tenth of the initial
#: share, ~0.09 for every feature at W × 0.1, and far below an antipodal pair's 0.5).
DIMENSIONAL = 0.3
#: The correlated variant's features: two sets of three, each set present together.
CORRELATED_SETS = ((0, 1, 2), (3, 4, 5))
#: [KG]'s 3-D panels stop at checkpoints 5, 35 and 55 of its 84 (unique(int(logspace(0, 4, 100))) - 1) and at
#: the last; with another number of checkpoints, at the same fractions of the list.
KG_CUTS, KG_CHECKPOINTS = (5, 35, 55), 84
#: Settings fields the correlated variant has of its own (KG trains it shorter, on larger batches).
CORRELATED_OWN = {"steps": "correlated_steps", "batch_size": "correlated_batch_size"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearningDynamicsSettings(Settings):
    n_features: int = 100
    n_hidden: int = 10
    n_instances: int = 4
    density: float = 0.45  # 1 - S
    lr: float = 1e-3
    init_scale: float = 0.1  # W at the start: the contract's init times this
    n_checkpoints: int = 100  # log-spaced from step 0 to the last (fewer where they coincide)
    #: the correlated 3-D variant (6 features → 3 dimensions, its own steps, batch and lr, the contract's init)
    correlated_instances: int = 1
    correlated_density: float = 0.01
    correlated_steps: int = 10_000
    correlated_batch_size: int = 256
    correlated_lr: float = 5e-3

    def __post_init__(self):
        super().__post_init__()
        for name in ("n_features", "n_hidden", "n_instances", "n_checkpoints", "correlated_instances",
                     "correlated_steps", "correlated_batch_size"):
            check_integer(name, getattr(self, name), 1)
        for name in ("density", "correlated_density"):
            check_density(name, getattr(self, name))
        for name in ("init_scale", "lr", "correlated_lr"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def with_overrides(self, experiment: str, overrides) -> "LearningDynamicsSettings":
        """As Settings', and an override of ``steps`` or ``batch_size`` also sets the correlated variant's own
        (unless given too), so that they reach every model as Settings promises."""
        implied = {own: overrides[shared] for shared, own in CORRELATED_OWN.items()
                   if shared in overrides and own not in overrides}
        return super().with_overrides(experiment, {**overrides, **implied})

    def correlated(self) -> "LearningDynamicsSettings":
        """The settings the correlated variant trains with: its own steps and batch size."""
        return dataclasses.replace(self, steps=self.correlated_steps, batch_size=self.correlated_batch_size)


SCALES = {
    "small": LearningDynamicsSettings(steps=1_000, batch_size=128, n_instances=2, lr=1e-2, n_checkpoints=40,
                                      correlated_instances=2, correlated_steps=1_500, correlated_lr=1e-2),
    # KG: one instance, 100k steps, lr 1e-3, batch 128, checkpoints logspace(2, 5, 100) - 1; the correlated
    # example 10k steps, batch 256, lr 5e-3, checkpoints logspace(0, 4, 100) - 1
    "paper": LearningDynamicsSettings(steps=100_000, batch_size=128, n_instances=4, lr=1e-3, n_checkpoints=100),
}


def checkpoint_steps(steps: int, count: int) -> list[int]:
    """``count`` log-spaced steps from 0 to ``steps - 1`` (KG's ``unique(int(logspace)) - 1``, rounded
    instead of truncated so that float error never drops the last step)."""
    return sorted({round(s) - 1 for s in np.logspace(0.0, np.log10(steps), count)})


def spec(settings: LearningDynamicsSettings) -> dict:
    return {
        "learning_dynamics": settings.config(
            n_features=settings.n_features, n_hidden=settings.n_hidden, n_instances=settings.n_instances,
            model="relu_output", feature_probability=settings.density, importance=1.0, log_every=1,
            **{**NOTEBOOK_OPTIMIZER, "lr": settings.lr}),
        "correlated": settings.correlated().config(
            n_features=6, n_hidden=3, n_instances=settings.correlated_instances, model="relu_output",
            feature_probability=settings.correlated_density, importance=1.0, correlated_sets=CORRELATED_SETS,
            log_every=1, **{**NOTEBOOK_OPTIMIZER, "lr": settings.correlated_lr}),
    }


def train_options(settings: LearningDynamicsSettings, variants) -> dict:
    config = variants["learning_dynamics"]
    init = init_params(config, "cpu")
    init["W"] = init["W"] * settings.init_scale
    correlated = variants["correlated"]
    return {"learning_dynamics": dict(init=init, checkpoint_steps=checkpoint_steps(config.steps,
                                                                                   settings.n_checkpoints)),
            "correlated": dict(checkpoint_steps=checkpoint_steps(correlated.steps, settings.n_checkpoints))}


def analysis(outcome: Outcome):
    """One row per variant, instance and checkpoint: held-out loss, D_i of every feature, features with
    dimensions, and (correlated variant) W itself, the cosines within each set and every feature's cosine
    with the nearest feature of the other set."""
    import pandas as pd

    rows = []
    for label in VARIANTS:
        result = outcome.result(label)
        for step, params in result.checkpoints.items():
            loss = evaluate(dataclasses.replace(result, params=params), device="cpu")
            W = params["W"].double()
            D = metrics.feature_dimensionality(W)
            cosines = metrics.feature_cosines(W)
            for k in range(result.config.n_instances):
                row = dict(variant=label, instance=k, step=step, loss=float(loss[k]), dimensionality=D[k].tolist(),
                           n_dimensional=int((D[k] > DIMENSIONAL).sum()), total_dimensionality=float(D[k].sum()))
                if label == "correlated":
                    row.update(W=W[k].flatten().tolist(), **_set_cosines(cosines[k]))
                rows.append(row)
    return pd.DataFrame(rows)


def _set_cosines(cosines: torch.Tensor) -> dict:
    """Of one instance's ``[6, 6]`` feature cosines: the largest |cos| between two features of one set, and
    per feature the cosine with the most opposed feature of the other set (-1: antipodal)."""
    first, second = (list(s) for s in CORRELATED_SETS)
    within = [cosines[s][:, s].abs() - torch.eye(len(s), dtype=cosines.dtype) for s in (first, second)]
    across = cosines[first][:, second]
    return dict(within_set_max_abs_cosine=float(max(w.max() for w in within)),
                other_set_min_cosine=torch.cat([across.min(dim=1).values, across.min(dim=0).values]).tolist())


def _stacked(table, column: str) -> np.ndarray:
    """``[C, I, ...]`` of ``column`` (rows ordered by step, then instance)."""
    ordered = table.sort_values(["step", "instance"])
    n_instances = ordered["instance"].nunique()
    values = np.array(ordered[column].tolist(), dtype=float)
    return values.reshape(-1, n_instances, *values.shape[1:])


def _rows(table, label: str):
    return table[table["variant"] == label]


def largest_jump_share(table) -> np.ndarray:
    """``[I]``: over the features that end with dimensions of their own, the median share of a feature's
    final D_i gained between two consecutive checkpoints at its steepest (1/C when the rise is even)."""
    D = _stacked(table, "dimensionality")  # [C, I, n]
    final = D[-1]
    share = np.diff(D, axis=0).max(axis=0) / np.where(final > 0, final, 1.0)
    return np.array([np.median(share[k][final[k] > DIMENSIONAL]) if (final[k] > DIMENSIONAL).any() else np.nan
                     for k in range(D.shape[1])])


def trajectory_cuts(n_checkpoints: int) -> list[int]:
    """Indices of the checkpoints where the 3-D panels stop: [KG]'s, at the same fractions of the list."""
    return sorted({round(c * (n_checkpoints - 1) / (KG_CHECKPOINTS - 1)) for c in KG_CUTS} | {n_checkpoints - 1})


def figures(outcome: Outcome, table):
    main, correlated = _rows(table, "learning_dynamics"), _rows(table, "correlated")
    steps = sorted(main["step"].unique())
    correlated_steps = sorted(correlated["step"].unique())
    n_instances = outcome.result("correlated").config.n_instances
    return {
        "learning_dynamics": plot_learning_dynamics(
            steps, _stacked(main, "dimensionality"), _stacked(main, "loss"),
            titles=[f"instance {k}" for k in range(outcome.result("learning_dynamics").config.n_instances)],
            suptitle=f"learning_dynamics: {variant_title(outcome.variants['learning_dynamics'])}"),
        "learning_dynamics-correlated": plot_trajectories_3d(
            correlated_steps, _stacked(correlated, "W").reshape(len(correlated_steps), n_instances, 6, 3),
            trajectory_cuts(len(correlated_steps)), feature_sets=CORRELATED_SETS,
            titles=[f"instance {k}" for k in range(n_instances)],
            suptitle=f"learning_dynamics, correlated sets {list(map(list, CORRELATED_SETS))}: "
                     f"{variant_title(outcome.variants['correlated'])}"),
    }


def numbers(outcome: Outcome, table) -> dict:
    def last(label):
        rows = _rows(table, label)
        return rows[rows["step"] == rows["step"].max()].sort_values("instance")

    def checkpoints(label):
        return [int(s) for s in sorted(_rows(table, label)["step"].unique())]

    main, correlated = last("learning_dynamics"), last("correlated")
    return {
        "learning_dynamics": {
            "checkpoint_steps": checkpoints("learning_dynamics"),
            "final_n_dimensional": [int(v) for v in main["n_dimensional"]],
            "final_total_dimensionality": [float(v) for v in main["total_dimensionality"]],
            "final_loss": [float(v) for v in main["loss"]],
            "largest_jump_share": [None if np.isnan(v) else float(v)
                                   for v in largest_jump_share(_rows(table, "learning_dynamics"))],
        },
        "correlated": {
            "checkpoint_steps": checkpoints("correlated"),
            "trajectory_cut_steps": [checkpoints("correlated")[c]
                                     for c in trajectory_cuts(len(checkpoints("correlated")))],
            "final_loss": [float(v) for v in correlated["loss"]],
            "final_within_set_max_abs_cosine": [float(v) for v in correlated["within_set_max_abs_cosine"]],
            "final_other_set_min_cosine": [list(v) for v in correlated["other_set_min_cosine"]],
        },
    }


EXPERIMENT = register(Experiment(
    "learning_dynamics",
    "100→10 at S = 0.55 from a small init: feature dimensionalities and loss against step, from checkpoints; "
    "2 sets of 3 correlated features → 3-D: each set an orthogonal basis, the sets antipodal",
    number=8, scales=SCALES, spec=spec, analysis=analysis, figures=figures, numbers=numbers,
    train_options=train_options))
