"""Experiment 3, a larger model: 80 → 20 as the code companion ([KG] cell 27), 100 → 20 as the notebook
([OFF] cells 11–14).

80 → 20 has importance 0.9^i on the density grid of ``linear_vs_relu``;
100 → 20 has importance 100^(-linspace(0, 1, 100)) and density
20^(-linspace(0, 1, I)) over 20 instances.  Dense: about 20 features with
norm ≈ 1 and no superposition; the count of represented features grows with
sparsity and exceeds m = 20 at the sparsest densities.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..config import TrainConfig, check_integer
from ..plots import plot_norm_bars
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, importance_decay, per_instance, register
from .linear_vs_relu import DENSITIES
from .tables import instance_table
from .titles import density_titles, experiment_title

N_HIDDEN = 20


@dataclasses.dataclass(frozen=True)
class Source:
    """One variant as its source runs it."""

    n_features: int
    n_instances: int

    def importance(self, label: str) -> list[list[float]]:
        if label == "80to20":
            return importance_decay(0.9, self.n_features)
        return [list(100.0 ** -np.linspace(0.0, 1.0, self.n_features))]

    def densities(self, label: str, n_instances: int) -> np.ndarray:
        if label == "80to20":
            return np.array(DENSITIES) if n_instances == len(DENSITIES) else np.logspace(0.0, -3.0, n_instances)
        return 20.0 ** -np.linspace(0.0, 1.0, n_instances)


SOURCES = {"80to20": Source(80, len(DENSITIES)), "100to20": Source(100, 20)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LargerSettings(Settings):
    #: None: each variant's source count (7 and 20); a number: that many, its density range respaced
    n_instances: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.n_instances is not None:
            check_integer("n_instances", self.n_instances, 1)


SCALES = {
    "small": LargerSettings(steps=2_000, batch_size=256),
    "paper": LargerSettings(steps=10_000, batch_size=1024),
}


def spec(settings: LargerSettings) -> dict[str, TrainConfig]:
    variants = {}
    for label, source in SOURCES.items():
        n_instances = settings.n_instances or source.n_instances
        variants[label] = settings.config(
            n_features=source.n_features, n_hidden=N_HIDDEN, n_instances=n_instances, model="relu_output",
            importance=source.importance(label), feature_probability=per_instance(source.densities(label, n_instances)),
            **NOTEBOOK_OPTIMIZER,
        )
    return variants


def analysis(outcome: Outcome) -> pd.DataFrame:
    return pd.concat([instance_table(label, outcome.result(label)) for label in SOURCES], ignore_index=True)


def figures(outcome: Outcome, table):
    out = {}
    for label in SOURCES:
        result = outcome.result(label)
        out[f"larger-{label}"] = plot_norm_bars(
            {label: result.encoder}, titles={label: density_titles(result.config)},
            suptitle=experiment_title("larger", {label: outcome.variants[label]}))
    return out


EXPERIMENT = register(Experiment(
    "larger",
    "80 → 20 (importance 0.9^i) and the notebook's 100 → 20: about m features when dense, "
    "more than m, in superposition, when sparse",
    number=3, scales=SCALES, spec=spec, analysis=analysis, figures=figures,
))
