"""The paper's experiments, by name, at any scale: spec → training → analysis table → figures.

``run_experiment("intro", "out/intro", scale="small", steps=100)`` trains an
experiment and writes its figures (PNG and SVG), numbers (JSON), analysis
table (Parquet) and trained results or sweep stores (see
:mod:`fastsup.experiments.runner`).  Every experiment has the scales in
:data:`SCALES` (``small``: seconds on a laptop CPU; ``paper``: the sources'
sizes, steps and restarts) and accepts overrides of its Settings fields and
of any TrainConfig field.

One module per experiment (``intro.py``, ``linear_vs_relu.py`` ...) defines
and registers it; every module of this package that is not infrastructure
(:data:`INFRASTRUCTURE`) is imported here, so a new experiment module joins
the registry, ``fastsup list`` and the gallery by existing.  Names follow the
paper: ``feature_probability`` is p = 1 - S (the density, "1-S" in titles);
``sparsity`` is S.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import EXPERIMENTS, SCALES, Experiment, Outcome, Settings, get_experiment, ordered_names, register
from .runner import ExperimentRun, run_experiment
from .tables import instance_table, result_numbers

__all__ = ["EXPERIMENTS", "SCALES", "Experiment", "ExperimentRun", "Outcome", "Settings", "get_experiment",
           "instance_table", "ordered_names", "register", "result_numbers", "run_experiment"]

#: Modules of this package that define no experiment.
INFRASTRUCTURE = frozenset({"base", "gallery", "runner", "tables", "titles"})


def _import_experiment_modules() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module not in INFRASTRUCTURE and not module.startswith("_"):
            importlib.import_module(f"{__name__}.{module}")


_import_experiment_modules()
