"""privileged_basis at the small scale: neurons are monosemantic when dense and polysemantic when sparse.

Calibration (small scale: 1,000 steps at lr 1e-2, batch 128, best of 3 restarts, run with compile=True, torch
backend, seeds 0-2, measured 2026-12-01 on the shared 2-core machine; 41-138 s a run there under load):

* 10→5, mean neuron monosemanticity from the densest (1-S = 0.75) to the sparsest (0.01):
  seed 0: 1.00 .88 .65 .63 .65 .61 .59; seed 1: .99 .88 .86 .56 .67 .52 .64; seed 2: .86 .84 .67 .65 .58 .58 .59;
  monosemantic neurons (> 0.99) 5 2 1 0 0 0 0 / 3 2 2 0 0 0 0 / 1 2 1 1 0 0 0;
* 6→3, mean monosemanticity at 1-S = 1, .3, .1: .95 .77 .57 / .77 .74 .56 / .94 .74 .57.

So the densest 10→5 model exceeds every model at 1-S <= 0.06 by 0.27-0.35, those have no monosemantic neuron,
and the 6→3 model drops by 0.21-0.38.  The bounds below keep about half of each smallest gap as margin.

compile=True: the sweep's own compile estimate kept the relu_hidden 10→5 step eager here, where it ran about
0.5 s a step (more than seven minutes for the small scale instead of two).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fastsup import metrics
from fastsup.experiments import get_experiment, run_experiment

SPARSE = 0.06  # the three sparsest 10→5 densities
GAP_10TO5 = 0.15  # mean monosemanticity at 1-S = 0.75 minus the largest at 1-S <= 0.06; measured 0.27-0.35
SPARSE_MEAN_10TO5 = 0.8  # at every 1-S <= 0.06; measured 0.52-0.67
DROP_6TO3 = 0.1  # mean monosemanticity, densest minus sparsest; measured 0.21-0.38

TINY = dict(steps=30, batch_size=32, restarts=2, held_out_samples=64)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return run_experiment("privileged_basis", tmp_path_factory.mktemp("privileged_basis"), scale="small",
                          backend="torch", progress=False, compile=True)  # see the module docstring


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_experiment("privileged_basis", tmp_path_factory.mktemp("privileged_basis_tiny"), scale="small",
                          backend="torch", progress=False, **TINY)


@pytest.mark.slow
def test_neurons_turn_polysemantic_as_features_get_sparse(small_run):
    table = small_run.table
    ten = table[table["variant"] == "10to5"].sort_values("density", ascending=False)
    dense, sparse = ten.iloc[0], ten[ten["density"] <= SPARSE]
    assert len(sparse) == 3
    assert dense["mean_monosemanticity"] - sparse["mean_monosemanticity"].max() > GAP_10TO5, ten
    assert dense["n_monosemantic"] >= 1  # measured 1-5
    assert (sparse["mean_monosemanticity"] < SPARSE_MEAN_10TO5).all(), sparse
    assert (sparse["n_monosemantic"] == 0).all(), sparse
    six = table[table["variant"] == "6to3"].sort_values("density", ascending=False)
    drop = six["mean_monosemanticity"].iloc[0] - six["mean_monosemanticity"].iloc[-1]
    assert drop > DROP_6TO3, six


def test_the_table_holds_the_neurons_of_the_best_restarts(tiny_run):
    table = pd.read_parquet(tiny_run.table_path)
    assert list(table["variant"]) == ["10to5"] * 7 + ["6to3"] * 3
    np.testing.assert_allclose(table["density"], [0.75, 0.35, 0.15, 0.1, 0.06, 0.02, 0.01, 1.0, 0.3, 0.1])
    for label, (n, m) in {"10to5": (10, 5), "6to3": (6, 3)}.items():
        sweep = tiny_run.outcome.sweep(label)
        best = sweep.best().sort_values("point")
        rows = table[table["variant"] == label]
        np.testing.assert_array_equal(rows["restart"], best["restart"])
        W = sweep.params(best)["W"].double()
        assert W.shape == (len(rows), n, m)
        np.testing.assert_allclose(np.stack(rows["neuron_monosemanticity"]), metrics.neuron_monosemanticity(W))
        np.testing.assert_array_equal(rows["n_monosemantic"], metrics.n_monosemantic(W).numpy())


def test_figures_and_numbers(tiny_run):
    assert set(tiny_run.figure_paths) == {"privileged_basis", "privileged_basis-10to5", "privileged_basis-6to3"}
    numbers = json.loads(tiny_run.numbers_path.read_text())
    assert len(numbers["10to5"]["n_monosemantic"]) == 7 and len(numbers["6to3"]["n_monosemantic"]) == 3
    assert "relu_hidden 10→5" in numbers["title"] and "best of 2 restarts" in numbers["title"]


def test_paper_scale_is_ar_with_a_thousand_restarts():
    settings = get_experiment("privileged_basis").settings("paper")
    variants = get_experiment("privileged_basis").variants(settings)
    for label, sweep in variants.items():
        points = [sweep.point_fields(point) for point in sweep.points()]
        assert sweep.restarts == 1000
        assert {(p["model"], p["steps"], p["batch_size"], p["lr"], p["optimizer"]) for p in points} == \
            {("relu_hidden", 10_000, 1024, 1e-3, "adam")}
        np.testing.assert_allclose(points[0]["importance"], 0.75 ** np.arange(points[0]["n_features"]))


@pytest.mark.parametrize("override, name", [
    pytest.param({"restarts": 0}, "restarts", id="no-restarts"),
    pytest.param({"monosemantic_threshold": 1.5}, "monosemantic_threshold", id="threshold-above-one"),
    pytest.param({"held_out_samples": 0}, "held_out_samples", id="no-held-out-samples"),
])
def test_bad_settings_are_named(override, name):
    with pytest.raises(ValueError, match=name):
        get_experiment("privileged_basis").settings("small", **override)
