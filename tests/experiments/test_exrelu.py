"""exrelu at the small scale: ExReLU(t = −0.25) puts fewer features into superposition than ReLU when sparse.

Calibration (small scale: 6 densities from 1 to 0.01, 1,500 steps at lr 1e-2, batch 256, torch backend,
seeds 0-4, measured 2026-12-01 on the shared 2-core machine).  At the three sparsest densities
(1-S = 0.063, 0.025, 0.01):

* ReLU: 5 of 5 features in superposition at every density and seed; features per dimension 3.12-3.34;
* ExReLU: 0-4 features in superposition (mean over the three densities 1.3-3.3), features per dimension
  1.00-1.97.

So ReLU minus ExReLU: 1.67-3.67 superposed features on average, 1.15-2.3 features per dimension at each
density.  The bounds below leave 40% or more of the smallest measured gap as margin.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fastsup import evaluate, load, metrics
from fastsup.experiments import get_experiment, run_experiment

SPARSE = 0.1  # the densities below this are "sparse" here (three of the six)
RELU_SUPERPOSED_AT_LEAST = 4  # measured 5 everywhere
SUPERPOSED_GAP = 1.0  # mean over the sparse densities, ReLU minus ExReLU; measured at least 1.67
FEATURES_PER_DIMENSION_GAP = 0.6  # at every sparse density; measured at least 1.15

TINY = dict(steps=30, batch_size=32, n_instances=3, eval_samples=64)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return run_experiment("exrelu", tmp_path_factory.mktemp("exrelu"), scale="small", backend="torch",
                          progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_experiment("exrelu", tmp_path_factory.mktemp("exrelu_tiny"), scale="small", backend="torch",
                          progress=False, **TINY)


@pytest.mark.slow
def test_exrelu_suppresses_superposition_when_sparse(small_run):
    table = small_run.table
    sparse = table[table["density"] < SPARSE]
    relu, exrelu = (sparse[sparse["variant"] == v].sort_values("density") for v in ("relu", "exrelu"))
    assert len(relu) == len(exrelu) == 3
    assert (relu["n_superposed"] >= RELU_SUPERPOSED_AT_LEAST).all(), relu
    assert relu["n_superposed"].mean() - exrelu["n_superposed"].mean() >= SUPERPOSED_GAP, (relu, exrelu)
    gap = relu["features_per_dimension"].to_numpy() - exrelu["features_per_dimension"].to_numpy()
    assert (gap >= FEATURES_PER_DIMENSION_GAP).all(), gap


def test_the_variants_differ_only_in_the_output_activation():
    settings = get_experiment("exrelu").settings("small")
    relu, exrelu = (get_experiment("exrelu").variants(settings)[v].to_dict() for v in ("relu", "exrelu"))
    assert (exrelu.pop("activation"), exrelu.pop("activation_threshold")) == ("exrelu", -0.25)
    assert (relu.pop("activation"), relu.pop("activation_threshold")) == ("relu", 0.0)
    assert relu == exrelu


def test_the_table_holds_the_measures_of_the_saved_weights(tiny_run):
    table = pd.read_parquet(tiny_run.table_path)
    assert list(table["variant"]) == ["relu"] * 3 + ["exrelu"] * 3
    np.testing.assert_allclose(table["density"], np.tile([1.0, 0.1, 0.01], 2))
    for label in ("relu", "exrelu"):
        rows = table[table["variant"] == label]
        result = load(tiny_run.result_dirs[label])
        W = result.W.double()
        superposed = (metrics.feature_phase(W) == metrics.SUPERPOSITION).sum(-1)
        np.testing.assert_array_equal(rows["n_superposed"], superposed.numpy())
        np.testing.assert_allclose(rows["features_per_dimension"], W.square().sum((1, 2)).numpy() / 2)
        np.testing.assert_allclose(rows["loss_at_density_1"],
                                   evaluate(result, n_samples=64, feature_probability=1.0).double().numpy())


def test_figures_and_numbers(tiny_run):
    assert set(tiny_run.figure_paths) == {"exrelu", "exrelu-relu", "exrelu-exrelu"}
    numbers = json.loads(tiny_run.numbers_path.read_text())
    assert numbers["threshold"] == -0.25 and len(numbers["exrelu"]["n_superposed"]) == 3
    assert "ExReLU(t=-0.25) 5→2 × 3 instances" in numbers["title"]


@pytest.mark.parametrize("override, name", [
    pytest.param({"threshold": 0.0}, "threshold", id="threshold-zero"),
    pytest.param({"min_density": 1.0}, "min_density", id="no-density-range"),
    pytest.param({"n_instances": 1}, "n_instances", id="one-instance"),
    pytest.param({"eval_samples": 0}, "eval_samples", id="no-samples"),
])
def test_bad_settings_are_named(override, name):
    with pytest.raises(ValueError, match=name):
        get_experiment("exrelu").settings("small", **override)
