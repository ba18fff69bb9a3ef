"""Experiment 2, linear vs ReLU-output: 20 features → 5 hidden, importance 0.7^i ([KG] cells 21–25).

Both models train on the same density grid 1-S ∈ {1, .3, .1, .03, .01,
.003, .001}.  The linear model keeps exactly the top 5 features at every
density (WᵀW ≈ diag(1⁵, 0¹⁵)); the ReLU-output model matches it when dense
and represents more features, in superposition, as sparsity grows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..config import TrainConfig, check_integer
from ..plots import plot_norm_bars
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, importance_decay, per_instance, register
from .tables import instance_table
from .titles import density_titles, experiment_title

MODELS = ("linear", "relu_output")
#: The paper's density grid (1-S per instance).
DENSITIES = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LinearVsReluSettings(Settings):
    n_features: int = 20
    n_hidden: int = 5
    #: 7: the paper's grid; another count respaces it as logspace(0, -3, n_instances)
    n_instances: int = len(DENSITIES)
    importance_rate: float = 0.7

    def __post_init__(self):
        super().__post_init__()
        check_integer("n_instances", self.n_instances, 1)

    def densities(self) -> np.ndarray:
        if self.n_instances == len(DENSITIES):
            return np.array(DENSITIES)
        return np.logspace(0.0, -3.0, self.n_instances)


SCALES = {
    "small": LinearVsReluSettings(steps=2_000, batch_size=256),
    "paper": LinearVsReluSettings(steps=10_000, batch_size=1024),
}


def spec(settings: LinearVsReluSettings) -> dict[str, TrainConfig]:
    return {model: settings.config(
        n_features=settings.n_features, n_hidden=settings.n_hidden, n_instances=settings.n_instances, model=model,
        importance=importance_decay(settings.importance_rate, settings.n_features),
        feature_probability=per_instance(settings.densities()), **NOTEBOOK_OPTIMIZER,
    ) for model in MODELS}


def analysis(outcome: Outcome) -> pd.DataFrame:
    return pd.concat([instance_table(model, outcome.result(model)) for model in MODELS], ignore_index=True)


def figures(outcome: Outcome, table):
    results = {model: outcome.result(model) for model in MODELS}
    return {"linear_vs_relu": plot_norm_bars(
        {model: r.encoder for model, r in results.items()},
        titles={model: density_titles(r.config) for model, r in results.items()},
        suptitle=experiment_title("linear_vs_relu", outcome.variants),
    )}


EXPERIMENT = register(Experiment(
    "linear_vs_relu",
    "20 → 5, importance 0.7^i, 1-S ∈ {1, .3, .1, .03, .01, .003, .001}, linear and ReLU-output models: "
    "linear keeps the top 5 features, ReLU represents more as sparsity grows",
    number=2, scales=SCALES, spec=spec, analysis=analysis, figures=figures,
))
