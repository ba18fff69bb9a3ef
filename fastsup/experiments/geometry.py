"""Experiment 5, feature geometry: how many dimensions each feature gets as features get sparser.

Uniform importance, one density per instance.  Two sources: the notebook's
200 → 20 ([OFF] cells 16–21: 20 instances, 1-S = 20^(-linspace(0, 1, 20)),
so 1/(1-S) log-spaced from 1 to 20) and the code companion's 400 → 30, the
paper's size ([KG] cells 45–49: 50 instances, 1/(1-S) = linspace(1, 10, 50)).
Both train 10k steps at lr 1e-3 (the notebook's AdamW here).  Expected:
D* = m/‖W‖_F² is "sticky" at 1 (dense) and at 1/2 (antipodal pairs), and
the D_i cluster at the fractions of regular polytopes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..config import TrainConfig, check_integer
from ..plots import plot_feature_geometry
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, per_instance, register
from .tables import instance_table
from .titles import densities, experiment_title, variant_title


@dataclasses.dataclass(frozen=True)
class Source:
    """One variant's sizes and density grid as its source runs it."""

    n_features: int
    n_hidden: int
    n_instances: int
    #: 1/(1-S) of the densest and of the sparsest instance
    inverse_density: tuple[float, float]
    #: how 1/(1-S) is spaced between them: "log" ([OFF]) or "linear" ([KG])
    spacing: str

    def densities(self, n_instances: int, inverse_density: tuple[float, float]) -> np.ndarray:
        low, high = inverse_density
        space = np.geomspace if self.spacing == "log" else np.linspace
        return 1.0 / space(low, high, n_instances)


SOURCES = {
    "200to20": Source(200, 20, 20, (1.0, 20.0), "log"),
    "400to30": Source(400, 30, 50, (1.0, 10.0), "linear"),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GeometrySettings(Settings):
    #: which of SOURCES to train
    variants: tuple[str, ...] = tuple(SOURCES)
    #: None: each source's count (20 and 50); a number: that many instances on the same range
    n_instances: int | None = None
    #: None: each source's range of 1/(1-S); a pair (densest, sparsest), both >= 1, for every variant
    inverse_density: tuple[float, float] | None = None

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "variants", tuple(self.variants) if isinstance(self.variants, list) else self.variants)
        if not isinstance(self.variants, tuple) or not self.variants or any(v not in SOURCES for v in self.variants):
            raise ValueError(f"variants must be a non-empty tuple of {', '.join(map(repr, SOURCES))}; got {self.variants!r}")
        if self.n_instances is not None:
            check_integer("n_instances", self.n_instances, 2)
        if self.inverse_density is not None:
            pair = self.inverse_density
            ok = isinstance(pair, (tuple, list)) and len(pair) == 2 and \
                all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair) and 1 <= pair[0] < pair[1]
            if not ok:
                raise ValueError(f"inverse_density must be a pair (densest, sparsest) of 1/(1-S) values with "
                                 f"1 <= densest < sparsest; got {pair!r}")
            object.__setattr__(self, "inverse_density", tuple(float(v) for v in pair))


# small: the notebook's 200 → 20 only, 6 instances over 1/(1-S) in [1, 8] (dense, the 1/2 plateau at
# 3–4, then below it), lr 1e-2 (as [KG]) so 600 steps of batch 128 converge: in calibration D* moved
# by < 0.01 between steps 500 and 2000 at every density (200 → 20, seeds 0–2).
SCALES = {
    "small": GeometrySettings(steps=600, batch_size=128, variants=("200to20",), n_instances=6,
                              inverse_density=(1.0, 8.0), config_overrides={"lr": 1e-2}),
    "paper": GeometrySettings(steps=10_000, batch_size=1024),
}


def spec(settings: GeometrySettings) -> dict[str, TrainConfig]:
    variants = {}
    for label in settings.variants:
        source = SOURCES[label]
        n_instances = settings.n_instances or source.n_instances
        grid = source.densities(n_instances, settings.inverse_density or source.inverse_density)
        variants[label] = settings.config(
            n_features=source.n_features, n_hidden=source.n_hidden, n_instances=n_instances,
            model="relu_output", importance=1.0, feature_probability=per_instance(grid), **NOTEBOOK_OPTIMIZER,
        )
    return variants


def analysis(outcome: Outcome) -> pd.DataFrame:
    tables = [instance_table(label, outcome.result(label)) for label in outcome.variants]
    table = pd.concat(tables, ignore_index=True)
    return table.assign(inverse_density=1.0 / table["feature_probability"])


def figures(outcome: Outcome, table):
    results = {label: outcome.result(label) for label in outcome.variants}
    several = len(results) > 1  # then each panel says its sizes, and the figure what they share
    return {"geometry": plot_feature_geometry(
        {label: result.encoder for label, result in results.items()},
        {label: densities(result.config) for label, result in results.items()},
        titles={label: variant_title(variant) for label, variant in outcome.variants.items()} if several else None,
        suptitle="geometry: dimensions per feature against 1/(1-S)" if several else
        experiment_title("geometry", outcome.variants),
    )}


EXPERIMENT = register(Experiment(
    "geometry",
    "uniform importance, 200 → 20 (notebook) and 400 → 30 (paper): D* = m/‖W‖_F² against 1/(1-S) "
    "sticks at 1 and 1/2; feature dimensionalities cluster at polytope fractions",
    number=5, scales=SCALES, spec=spec, analysis=analysis, figures=figures,
))
