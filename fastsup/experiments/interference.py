"""Experiment 13, interference under distribution shift (seed 002, §2): train sparse, evaluate denser.

5 features → 2 hidden, importance 0.9^i (PAPER.md §4 row 13; the intro's
model). One instance per training density; each trained model is then
evaluated (:func:`fastsup.evaluate`) at every density of a log grid from the
sparsest training density to 1.  A model trained sparse puts features in
superposition, which costs little while they rarely co-occur; evaluated where
they co-occur more than in training, the interference shows as error.  The
reference is the model trained at the highest density (dense: no
superposition): the sparse models beat it at their own density and lose to it
when the evaluation is dense enough.  ``crossover_density`` is the lowest
evaluation density at which a model loses to the reference.

Seed 002 trains a small convolutional classifier on affixes; this is the
same question asked of the paper's own toy model.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from ..config import TrainConfig, check_integer
from ..evaluate import evaluate
from ..plots import plot_lines
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, importance_decay, per_instance, register
from .tables import json_values
from .titles import experiment_title

LABEL = "interference"


@dataclasses.dataclass(frozen=True, kw_only=True)
class InterferenceSettings(Settings):
    n_features: int = 5
    n_hidden: int = 2
    importance_rate: float = 0.9
    #: one trained instance per density 1-S; the highest is the dense reference
    training_densities: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    #: evaluation densities: this many log-spaced from the lowest training density to 1, plus the training ones
    evaluation_points: int = 13
    #: samples per instance and evaluation density (the evaluation stream of the randomness contract)
    eval_samples: int = 100_000

    def __post_init__(self):
        super().__post_init__()
        check_integer("evaluation_points", self.evaluation_points, 2)
        check_integer("eval_samples", self.eval_samples, 1)
        densities = tuple(float(p) for p in self.training_densities)
        if len(densities) < 2 or len(set(densities)) != len(densities) or not all(0 < p <= 1 for p in densities):
            raise ValueError("training_densities must be at least two distinct densities in (0, 1] (the highest "
                             f"is the dense reference), got {self.training_densities!r}")
        object.__setattr__(self, "training_densities", tuple(sorted(densities)))

    def evaluation_densities(self) -> np.ndarray:
        grid = np.logspace(np.log10(self.training_densities[0]), 0.0, self.evaluation_points)
        grid[0] = self.training_densities[0]  # exactly: 10**log10(p) need not give p back
        return np.unique(np.concatenate([grid, self.training_densities]))


SCALES = {
    # small: lr 1e-2 lets 1,500 steps reach the sparse solutions that 10k steps at 1e-3 reach; the
    # seed-to-seed spread it gives is in tests/experiments/test_interference.py.
    "small": InterferenceSettings(steps=1_500, batch_size=256, evaluation_points=5, eval_samples=10_000,
                                  config_overrides={"lr": 1e-2}),
    # paper: the notebook's intro training ([OFF] cells 7-9: 10k steps, batch 1024, AdamW lr 1e-3); seed 002
    # gives no sizes for its toy-model runs.
    "paper": InterferenceSettings(steps=10_000, batch_size=1024),
}


def spec(settings: InterferenceSettings) -> dict[str, TrainConfig]:
    return {LABEL: settings.config(
        n_features=settings.n_features, n_hidden=settings.n_hidden, n_instances=len(settings.training_densities),
        model="relu_output", importance=importance_decay(settings.importance_rate, settings.n_features),
        feature_probability=per_instance(settings.training_densities), **NOTEBOOK_OPTIMIZER,
    )}


def analysis(outcome: Outcome) -> pd.DataFrame:
    """One row per (trained instance, evaluation density): the loss, and the dense reference's loss there."""
    result, settings = outcome.result(), outcome.settings
    trained_at = np.array(settings.training_densities)  # the spec's instance order (the config holds fp32)
    reference = int(np.argmax(trained_at))
    rows = []
    for q in settings.evaluation_densities():
        loss = evaluate(result, n_samples=settings.eval_samples, feature_probability=float(q),
                        device=settings.device).double().numpy()
        rows.append(pd.DataFrame({
            "instance": np.arange(len(loss)), "training_density": trained_at, "evaluation_density": q,
            "loss": loss, "reference_loss": loss[reference],
        }))
    table = pd.concat(rows, ignore_index=True)
    return table.assign(
        loss_ratio=table["loss"] / table["reference_loss"],
        at_training_density=table["evaluation_density"] == table["training_density"],
        denser_than_training=table["evaluation_density"] > table["training_density"],
    )


def crossover_densities(table: pd.DataFrame) -> dict[float, float | None]:
    """Per training density below the reference's: the evaluation density at which the model's loss first
    reaches the dense reference's, interpolated linearly in log(density) and log(loss ratio) between the
    grid points around it (None if the model never loses to the reference on the grid)."""
    out = {}
    for density, rows in table.groupby("training_density"):
        if density == table["training_density"].max():
            continue
        rows = rows.sort_values("evaluation_density")
        q, log_ratio = np.log(rows["evaluation_density"].to_numpy()), np.log(rows["loss_ratio"].to_numpy())
        above = np.flatnonzero(log_ratio >= 0)
        if not len(above):
            out[float(density)] = None
        elif above[0] == 0:
            out[float(density)] = float(np.exp(q[0]))
        else:
            i = above[0]
            fraction = -log_ratio[i - 1] / (log_ratio[i] - log_ratio[i - 1])
            out[float(density)] = float(np.exp(q[i - 1] + fraction * (q[i] - q[i - 1])))
    return out


def figures(outcome: Outcome, table: pd.DataFrame):
    return {LABEL: plot_lines(
        table, x="evaluation_density", group="training_density", group_label="trained at 1-S",
        panels={"loss": "loss", "loss_ratio": "loss ÷ loss of the model trained densest"},
        logy={"loss": True, "loss_ratio": True}, reference={"loss_ratio": 1.0},
        xlabel="evaluation density 1-S", title=experiment_title(LABEL, outcome.variants))}


def numbers(outcome: Outcome, table: pd.DataFrame) -> dict:
    own = table[table["at_training_density"]].set_index("training_density")
    dense = table[table["evaluation_density"] == table["evaluation_density"].max()].set_index("training_density")
    def values(column):  # NaN (a diverged instance) as null: strict JSON
        return json_values(torch.tensor(column.to_numpy(dtype=float)))

    return {
        "training_densities": [float(p) for p in own.index],
        "loss_at_training_density": values(own["loss"]),
        "loss_ratio_at_training_density": values(own["loss_ratio"]),
        "loss_ratio_at_density_1": values(dense["loss_ratio"]),
        "crossover_density": {str(p): q for p, q in crossover_densities(table).items()},
        "eval_samples": outcome.settings.eval_samples,
    }


EXPERIMENT = register(Experiment(
    LABEL,
    "5 → 2 trained at several densities, each evaluated at rising density: models trained sparse beat the "
    "dense-trained one on their own data and lose to it when features co-occur more than in training",
    number=13, scales=SCALES, spec=spec, analysis=analysis, figures=figures, numbers=numbers,
))
