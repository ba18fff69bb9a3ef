"""adversarial at the small scale: the ReLU model's vulnerability grows with its features per dimension.

Calibration (small scale: 20 → 5, 6 densities 1/(1-S) = linspace(1, 10, 6), best of 2 restarts, 1,000 steps at
lr 1e-2, batch 128, [KG]'s interference target, torch backend, measured 2026-12-01 on the shared
2-core machine, seeds 0-2 only: a small run took 70-134 s there under load):

* vulnerability at 1-S = 1: 1.16, 1.00, 1.06; at the sparsest density (0.1): 3.32, 3.32, 3.11, so
  sparsest ÷ densest 2.86-3.32;
* Spearman correlation of vulnerability with the ReLU model's features per dimension: 0.77, 1.00, 0.94
  (features per dimension rise from 1.0 to 2.64-2.86);
* the linear model's features per dimension: 0.998-1.005 at every density.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fastsup import metrics
from fastsup.experiments import get_experiment, run_experiment
from fastsup.experiments._best import best_result

LINEAR_FEATURES_PER_DIMENSION = 0.02  # |‖W‖²/m − 1| of the linear model at every density; measured at most 0.005
DENSE_VULNERABILITY = (0.8, 1.5)  # at 1-S = 1, where neither model superposes; measured 1.00-1.16
SPARSE_OVER_DENSE = 2.0  # vulnerability at the sparsest density ÷ at the densest; measured at least 2.86
RANK_CORRELATION = 0.5  # Spearman, vulnerability against features per dimension; measured 0.77-1.00

TINY = dict(steps=30, batch_size=32, n_densities=3, restarts=2, held_out_samples=64, test_samples=64)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return run_experiment("adversarial", tmp_path_factory.mktemp("adversarial"), scale="small", backend="torch",
                          progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_experiment("adversarial", tmp_path_factory.mktemp("adversarial_tiny"), scale="small",
                          backend="torch", progress=False, **TINY)


@pytest.mark.slow
def test_vulnerability_grows_with_features_per_dimension(small_run):
    table = small_run.table.sort_values("density", ascending=False)
    assert (abs(table["linear_features_per_dimension"] - 1) < LINEAR_FEATURES_PER_DIMENSION).all()
    dense, sparse = table["vulnerability"].iloc[0], table["vulnerability"].iloc[-1]
    assert DENSE_VULNERABILITY[0] < dense < DENSE_VULNERABILITY[1]
    assert sparse > SPARSE_OVER_DENSE * dense
    numbers = json.loads(small_run.numbers_path.read_text())
    assert numbers["rank_correlation"] > RANK_CORRELATION


def test_the_table_is_the_attack_on_the_best_restarts(tiny_run):
    table = pd.read_parquet(tiny_run.table_path)
    assert len(table) == 3
    np.testing.assert_allclose(table["density"], 1 / np.linspace(1, 10, 3))
    outcome = tiny_run.outcome
    for model in ("linear", "relu_output"):
        result = best_result(outcome, model)
        best = outcome.sweep(model).best().sort_values("point")
        assert result.config.model == model and result.config.n_instances == 3
        np.testing.assert_array_equal(result.config.instance_ids.numpy(), best["instance_id"].to_numpy())
        np.testing.assert_allclose(result.config.probability()[:, 0].double().numpy(), table["density"], rtol=1e-6)
        expected = metrics.adversarial_loss(result, target="interference").double().numpy()
        np.testing.assert_allclose(table[f"{model}_adversarial_loss"], expected)
    gap = {m: table[f"{m}_adversarial_loss"] - table[f"{m}_test_loss"] for m in ("linear", "relu_output")}
    np.testing.assert_allclose(table["vulnerability"], gap["relu_output"] / gap["linear"])


def test_figures_and_numbers(tiny_run):
    assert set(tiny_run.figure_paths) == {"adversarial", "adversarial-density"}
    numbers = json.loads(tiny_run.numbers_path.read_text())
    assert numbers["attack_target"] == "interference" and numbers["radius"] == 0.1
    assert len(numbers["vulnerability"]) == 3
    assert "best of 2 restarts" in numbers["title"] and "linear 20→5" in numbers["title"]


def test_paper_scale_is_the_code_companions():
    settings = get_experiment("adversarial").settings("paper")
    variants = get_experiment("adversarial").variants(settings)
    assert set(variants) == {"linear", "relu_output"}
    for sweep in variants.values():
        points = [sweep.point_fields(point) for point in sweep.points()]
        assert len(points) == 40 and sweep.restarts == 5
        assert {(p["steps"], p["batch_size"], p["lr"], p["eval_batch_size"]) for p in points} == \
            {(10_000, 128, 1e-3, 10_000)}
        np.testing.assert_allclose([1 - p["feature_probability"] for p in points], 1 - 1 / np.linspace(1, 10, 40))


@pytest.mark.parametrize("override, name", [
    pytest.param({"target": "output"}, "target", id="unknown-target"),
    pytest.param({"radius": -0.1}, "radius", id="negative-radius"),
    pytest.param({"max_inverse_density": 1.0}, "max_inverse_density", id="no-density-range"),
    pytest.param({"n_densities": 1}, "n_densities", id="one-density"),
])
def test_bad_settings_are_named(override, name):
    with pytest.raises(ValueError, match=name):
        get_experiment("adversarial").settings("small", **override)
