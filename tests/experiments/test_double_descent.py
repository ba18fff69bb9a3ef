"""double_descent at the small scale: a model memorises T points while T is small, and learns features once T is large.

Calibration (small scale: 100 features at 1-S = 0.1, 5 restarts per T, T ∈ {3, 5, 10, 30, 100, 300}, 1,200
full-batch steps at lr 1e-2 with 200 warmup steps, torch backend, seeds 0-3, measured 2026-12-01 on the shared
2-core machine), of the best restart per T (lowest training loss):

* T ≤ 30 (memorising): ``data_share`` (median D_j over the points ÷ 2/T) 0.79-1.16, ``feature_dimensionality_top``
  (mean D_i of the 5 largest) 0.083-0.166;
* T = 300 (features): ``data_share`` 0.199-0.313, ``feature_dimensionality_top`` 0.319-0.352;
* T = 100 lies in between (0.41-0.60 and 0.21-0.28); the test loss peaks at T = 30 (0.0118-0.0151), above both
  its value at T = 3 (0.0100-0.0108) and at T = 300 (0.00896-0.00898): peak ÷ the larger end 1.09-1.48.
* A whole small run took 20-46 s on that machine (under load from other jobs).

The bounds below leave a third or more of each measured gap as margin.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fastsup import evaluate, load, metrics
from fastsup.data import dataset
from fastsup.experiments import get_experiment, run_experiment

MEMORISING_T = 30  # T up to this memorise at the small scale
MEMORISING_DATA_SHARE_AT_LEAST = 0.6  # measured 0.79 and up
MEMORISING_FEATURE_TOP_AT_MOST = 0.22  # measured 0.166 at most
FEATURES_DATA_SHARE_AT_MOST = 0.45  # at T = 300; measured 0.31 at most
FEATURES_FEATURE_TOP_AT_LEAST = 0.26  # at T = 300; measured 0.32 and up
TEST_LOSS_PEAK_RATIO = 1.03  # the largest test loss inside the T range ÷ the larger of its two ends; measured 1.09+

TINY = dict(steps=40, n_features=20, dataset_sizes=(3, 7, 12), n_instances=3, warmup_steps=5, eval_samples=64)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_experiment("double_descent", tmp_path_factory.mktemp("double_descent"), scale="small",
                          backend="torch", device="cpu", progress=False, **TINY)


@pytest.mark.slow
def test_points_take_the_dimensions_when_few_and_features_when_many(tmp_path):
    run = run_experiment("double_descent", tmp_path, scale="small", backend="torch", device="cpu", progress=False)
    best = run.table[run.table["best"]].set_index("dataset_size")
    memorising, largest = best[best.index <= MEMORISING_T], best.loc[best.index.max()]
    assert (memorising["data_share"] >= MEMORISING_DATA_SHARE_AT_LEAST).all(), memorising["data_share"]
    assert (memorising["feature_dimensionality_top"] <= MEMORISING_FEATURE_TOP_AT_MOST).all(), memorising
    assert largest["data_share"] <= FEATURES_DATA_SHARE_AT_MOST
    assert largest["feature_dimensionality_top"] >= FEATURES_FEATURE_TOP_AT_LEAST
    test_loss = best["test_loss"].to_numpy()
    assert test_loss[1:-1].max() >= TEST_LOSS_PEAK_RATIO * max(test_loss[0], test_loss[-1]), test_loss
    assert (best["train_loss"].diff().dropna() > 0).all()  # more points to fit, a higher training loss


def test_one_full_batch_config_per_dataset_size_differing_only_in_T():
    experiment = get_experiment("double_descent")
    variants = experiment.variants(experiment.settings("small", **TINY))
    assert list(variants) == ["T=3", "T=7", "T=12"]
    configs = [v.to_dict() for v in variants.values()]
    for T, config in zip((3, 7, 12), configs):
        assert config.pop("dataset_size") == config.pop("batch_size") == T
        assert config["normalize_points"] and config["schedule"] == "warmup_cosine" and config["warmup_steps"] == 5
        assert (config["optimizer"], config["weight_decay"], config["n_hidden"]) == ("adamw", 1e-2, 2)
    assert configs[0] == configs[1] == configs[2]


def test_the_table_holds_the_measures_of_the_saved_weights_and_points(tiny_run):
    table = tiny_run.table
    assert len(table) == 3 * 3 and table.groupby("dataset_size")["best"].sum().tolist() == [1, 1, 1]
    result = load(tiny_run.result_dirs["T=7"])
    rows = table[table["dataset_size"] == 7].sort_values("instance")
    train_loss = evaluate(result, split="train")
    assert rows[rows["best"]]["instance"].item() == int(train_loss.argmin())
    np.testing.assert_allclose(rows["train_loss"], train_loss.double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(rows["test_loss"], evaluate(result, n_samples=64).double().numpy(), rtol=1e-6)
    W = result.W.double()
    hidden = dataset(result.config).double().transpose(1, 2) @ W  # [I, T, m]: h = x W of every point
    for k, row in zip(range(3), rows.itertuples()):
        np.testing.assert_allclose(row.data_dimensionality, metrics.feature_dimensionality(hidden[k]).numpy(),
                                   rtol=1e-6)
        np.testing.assert_allclose(row.feature_dimensionality, metrics.feature_dimensionality(W[k]).numpy(),
                                   rtol=1e-6)
        assert row.data_share == pytest.approx(float(torch.tensor(row.data_dimensionality).median()) * 7 / 2)
        assert row.feature_dimensionality_top == pytest.approx(np.sort(row.feature_dimensionality)[-5:].mean())


def test_figure_and_numbers(tiny_run):
    assert set(tiny_run.figure_paths) == {"double_descent"}
    numbers = json.loads(tiny_run.numbers_path.read_text())
    assert numbers["dataset_sizes"] == [3, 7, 12]
    best = tiny_run.table[tiny_run.table["best"]].sort_values("dataset_size")
    assert numbers["best_instance"] == best["instance"].tolist()
    assert numbers["test_loss"] == pytest.approx(best["test_loss"].tolist())
    assert numbers["settings"]["batch_size"] is None


@pytest.mark.parametrize("override", [
    pytest.param({"batch_size": 256}, id="batch-size"),
    pytest.param({"batch_size": 1024}, id="batch-size-of-the-default"),
])
def test_a_batch_size_is_refused_because_the_batch_is_the_dataset(override):
    with pytest.raises(ValueError, match=r"batch_size: double_descent trains full-batch .* dataset_sizes"):
        get_experiment("double_descent").settings("small", **override)


def test_the_command_lines_batch_size_is_refused_too(tmp_path, capsys):
    from fastsup.cli import main

    assert main(["run", "double_descent", "--scale", "small", "--batch-size", "64", "--out", str(tmp_path)]) != 0
    assert "batch_size: double_descent trains full-batch" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything trained or was written


@pytest.mark.parametrize("override, name", [
    pytest.param({"dataset_size": 50}, "dataset_size: double_descent trains one model per T", id="dataset-size"),
    pytest.param({"dataset_sizes": (10, 5)}, "dataset_sizes must be a non-empty, strictly increasing", id="unsorted"),
    pytest.param({"dataset_sizes": ()}, "dataset_sizes must be a non-empty", id="empty"),
    pytest.param({"dataset_sizes": (0, 5)}, "dataset_sizes entries", id="zero-points"),
    pytest.param({"density": 0.0}, "density", id="no-density"),
    pytest.param({"n_instances": 0}, "n_instances", id="no-instances"),
    pytest.param({"eval_samples": 0}, "eval_samples", id="no-samples"),
])
def test_bad_settings_are_named(override, name):
    with pytest.raises(ValueError, match=name):
        get_experiment("double_descent").settings("small", **override)


def test_the_warmup_is_cut_to_a_sixth_of_fewer_steps():
    experiment = get_experiment("double_descent")
    assert experiment.variants(experiment.settings("paper"))["T=3"].warmup_steps == 2_500  # [AR]'s, of 50k steps
    assert experiment.variants(experiment.settings("paper", steps=6_000))["T=3"].warmup_steps == 1_000


def test_a_smaller_datasets_points_are_the_first_of_a_larger_ones(tiny_run):
    small, large = (load(tiny_run.result_dirs[label]).config for label in ("T=3", "T=12"))
    assert torch.equal(dataset(small), dataset(large)[..., :3])
