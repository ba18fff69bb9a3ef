"""Experiment 1, the intro: 5 features → 2 hidden dimensions, one density per instance.

The notebook's intro cell ([OFF] cells 7–9): importance 0.9^i, density
1-S = 20^(-linspace(0, 1, I)) from 1 down to 0.05.  Dense instances keep the
two most important features, orthogonal; sparse ones put features in
superposition: antipodal pairs, then a pentagon.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import TrainConfig, check_integer
from ..plots import plot_features_2d, plot_norm_bars
from .base import (CODE_COMPANION_OPTIMIZER, NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, check_density,
                   importance_decay, per_instance, register)
from .tables import instance_table
from .titles import density_titles, experiment_title


@dataclasses.dataclass(frozen=True, kw_only=True)
class IntroSettings(Settings):
    n_features: int = 5
    n_hidden: int = 2
    n_instances: int = 10
    #: the sparsest density, 1-S of the last instance (the first is 1)
    min_density: float = 0.05

    def __post_init__(self):
        super().__post_init__()
        check_integer("n_instances", self.n_instances, 1)
        check_density("min_density", self.min_density)


SCALES = {
    "small": IntroSettings(steps=2_000, batch_size=256, config_overrides=CODE_COMPANION_OPTIMIZER),
    "paper": IntroSettings(steps=10_000, batch_size=1024),  # [OFF] cells 7–9
}


def spec(settings: IntroSettings) -> dict[str, TrainConfig]:
    densities = settings.min_density ** np.linspace(0.0, 1.0, settings.n_instances)
    return {"intro": settings.config(
        n_features=settings.n_features, n_hidden=settings.n_hidden, n_instances=settings.n_instances,
        model="relu_output", importance=importance_decay(0.9, settings.n_features),
        feature_probability=per_instance(densities), **NOTEBOOK_OPTIMIZER,
    )}


def analysis(outcome: Outcome):
    return instance_table("intro", outcome.result())


def figures(outcome: Outcome, table):
    result = outcome.result()
    title = experiment_title("intro", outcome.variants)
    titles = density_titles(result.config)
    if result.config.n_hidden != 2:  # a rescaled run has no plane to draw in: norm bars instead
        return {"intro": plot_norm_bars({"relu_output": result.encoder}, titles={"relu_output": titles},
                                        suptitle=title)}
    return {"intro": plot_features_2d(result.encoder, titles=titles, suptitle=title)}


EXPERIMENT = register(Experiment(
    "intro",
    "5 features → 2 hidden, importance 0.9^i, 1-S from 1 to 0.05 over the instances: "
    "2 orthogonal features when dense, antipodal pairs then a pentagon when sparse",
    number=1, scales=SCALES, spec=spec, analysis=analysis, figures=figures,
))
