"""learning_dynamics at the small scale: from a small init, features gain dimensions in jumps, to antipodal pairs.

Calibration (small scale with n_instances=4: 100→10, density 0.45, 1000 steps, batch 128, lr 1e-2, 40
log-spaced checkpoints, torch backend, seed 0; the four instances are four independent draws of init and
data; measured 2026-12-01 on the shared 2-core machine): at step 0 no feature had D_i > 0.3 in any
instance; at the end 18 features did in every instance, with median D_i 0.487-0.493 (antipodal pairs;
extremes 0.35-0.59), the total dimensionality was 9.90-9.94 of the 10 dimensions, and the median share of
a dimensional feature's final D_i gained between two consecutive checkpoints (``largest_jump_share``)
was 0.210-0.242, where an even rise over the last decade (~13 checkpoints) would give ~0.08.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fastsup import load
from fastsup.experiments import run_experiment
from fastsup.experiments.learning_dynamics import DIMENSIONAL, checkpoint_steps, largest_jump_share

TINY = dict(steps=30, n_features=7, n_hidden=3, n_checkpoints=9)  # for the checks that need a run, not a good one


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_experiment("learning_dynamics", tmp_path_factory.mktemp("learning_dynamics"), scale="small",
                          backend="torch", device="cpu", progress=False, **TINY)


def test_checkpoints_are_log_spaced_from_the_first_step_to_the_last():
    steps = checkpoint_steps(100_000, 100)
    assert steps[0] == 0 and steps[-1] == 99_999
    assert all(b > a for a, b in zip(steps, steps[1:]))
    # log spacing: as many checkpoints in each of the five decades' upper halves, give or take rounding
    assert steps[:4] == [0, 1, 2, 3] and 18 <= sum(10_000 <= s for s in steps) <= 21


def test_the_last_checkpoint_is_the_trained_weights_and_the_first_the_scaled_init(tiny_run):
    result = load(tiny_run.result_dirs["learning_dynamics"])
    assert result.checkpoint_steps.tolist() == checkpoint_steps(30, 9)
    for name, value in result.params.items():
        assert torch.equal(result.checkpoints[29][name], value), name
    # after one update from W x 0.1, W is within lr of the scaled init: far from the contract's init size
    first = result.checkpoints[0]["W"]
    assert first.norm(dim=-1).max() < 0.2


def test_the_table_has_a_row_per_instance_and_checkpoint_with_the_weights_dimensionalities(tiny_run):
    from fastsup import metrics

    result = load(tiny_run.result_dirs["learning_dynamics"])
    table = tiny_run.table
    assert len(table) == result.config.n_instances * len(result.checkpoint_steps)
    row = table[(table["step"] == 29) & (table["instance"] == 1)].iloc[0]
    expected = metrics.feature_dimensionality(result.W)[1]
    np.testing.assert_allclose(row["dimensionality"], expected.numpy(), rtol=1e-6)
    assert row["n_dimensional"] == int((expected > DIMENSIONAL).sum())
    assert row["loss"] == pytest.approx(float(result.final_loss[1]), rel=1e-6)  # the same held-out batch


@pytest.mark.slow
def test_features_gain_dimensions_in_jumps_to_antipodal_pairs(tmp_path):
    run = run_experiment("learning_dynamics", tmp_path, scale="small", backend="torch", device="cpu",
                         progress=False, n_instances=4)
    table = run.table
    first, last = table[table["step"] == 0], table[table["step"] == table["step"].max()]
    assert (first["n_dimensional"] == 0).all()  # measured 0 in all four
    assert last["n_dimensional"].between(16, 20).all(), last["n_dimensional"].tolist()  # measured 18 in all four
    for D in last["dimensionality"]:
        D = np.asarray(D)
        assert np.median(D[D > DIMENSIONAL]) == pytest.approx(0.5, abs=0.04)  # measured 0.487-0.493
    assert last["total_dimensionality"].between(9.7, 10.05).all()  # measured 9.90-9.94
    shares = largest_jump_share(table)
    assert (shares > 0.15).all(), shares  # measured 0.210-0.242; an even rise gives ~0.08
    numbers = json.loads(run.numbers_path.read_text())
    assert numbers["final_n_dimensional"] == last.sort_values("instance")["n_dimensional"].tolist()
