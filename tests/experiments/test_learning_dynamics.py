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
from fastsup.experiments import get_experiment, run_experiment
from fastsup.experiments.learning_dynamics import DIMENSIONAL, checkpoint_steps, largest_jump_share

# for the checks that need a run, not a good one
TINY = dict(steps=30, n_features=7, n_hidden=3, n_checkpoints=9, correlated_steps=40)


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
    table = tiny_run.table[tiny_run.table["variant"] == "learning_dynamics"]
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
    table = run.table[run.table["variant"] == "learning_dynamics"]
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
    assert numbers["learning_dynamics"]["final_n_dimensional"] == last.sort_values("instance")["n_dimensional"].tolist()


def test_the_correlated_variant_is_kgs_two_sets_of_three_in_three_dimensions():
    experiment = get_experiment("learning_dynamics")
    config = experiment.variants(experiment.settings("paper"))["correlated"]
    assert (config.n_features, config.n_hidden, config.correlated_sets) == (6, 3, ((0, 1, 2), (3, 4, 5)))
    assert (config.steps, config.batch_size, config.lr, config.schedule) == (10_000, 256, 5e-3, "constant")
    assert config.probability().unique().tolist() == pytest.approx([0.01])
    # KG's checkpoints unique(int(logspace(0, 4, 100))) - 1: 84 of them, from step 0 to 9,999
    steps = checkpoint_steps(config.steps, 100)
    assert len(steps) == 84 and steps[5] == 5 and steps[-1] == 9_999


def test_trajectories_stop_at_kgs_checkpoints():
    from fastsup.experiments.learning_dynamics import trajectory_cuts

    assert trajectory_cuts(84) == [5, 35, 55, 83]  # [KG]'s, of its own 84 checkpoints
    assert trajectory_cuts(33) == [2, 13, 21, 32]  # the same fractions of a shorter list


def test_the_correlated_rows_hold_the_checkpoints_weights_and_their_cosines(tiny_run):
    from fastsup import metrics

    result = load(tiny_run.result_dirs["correlated"])
    table = tiny_run.table[tiny_run.table["variant"] == "correlated"]
    assert sorted(table["step"].unique()) == result.checkpoint_steps.tolist() == checkpoint_steps(40, 9)
    step = result.checkpoint_steps.tolist()[4]
    row = table[(table["step"] == step) & (table["instance"] == 1)].iloc[0]
    W = result.checkpoints[step]["W"][1].double()
    np.testing.assert_allclose(row["W"], W.flatten().numpy(), rtol=1e-6)
    cosines = metrics.feature_cosines(W)
    within = max(abs(cosines[i, j].item()) for s in ((0, 1, 2), (3, 4, 5)) for i in s for j in s if i < j)
    assert row["within_set_max_abs_cosine"] == pytest.approx(within)
    # feature 4's most opposed feature of the other set (0, 1 or 2)
    assert row["other_set_min_cosine"][4] == pytest.approx(min(cosines[4, j].item() for j in (0, 1, 2)))
    assert set(tiny_run.figure_paths) == {"learning_dynamics", "learning_dynamics-correlated"}
    numbers = json.loads(tiny_run.numbers_path.read_text())["correlated"]
    assert numbers["trajectory_cut_steps"] == [checkpoint_steps(40, 9)[c] for c in (0, 3, 5, 8)]


@pytest.mark.slow
def test_correlated_sets_become_orthogonal_bases_antipodal_to_each_other(tmp_path):
    """Calibration (the correlated variant at the small scale: 6 → 3, 1-S = 0.01, 1,500 steps at lr 1e-2, batch
    256, 2 instances, seeds 0-3, torch backend, 2026-12-01): within a set the largest |cos| was 0.021-0.059 in all
    8 instances; in 7 of 8 every feature had a feature of the other set at cos -0.92 to -0.99 (antipodal) and
    norms 0.99-1.05; in the 8th (seed 3) one feature stayed unlearned (norm 0.16)."""
    run = run_experiment("learning_dynamics", tmp_path, scale="small", backend="torch", device="cpu",
                         progress=False, steps=30, n_features=7, n_hidden=3,  # the 100→10 variant only tiny
                         correlated_steps=get_experiment("learning_dynamics").scales["small"].correlated_steps)
    table = run.table[run.table["variant"] == "correlated"]
    last = table[table["step"] == table["step"].max()]
    assert (last["within_set_max_abs_cosine"] <= 0.12).all(), last["within_set_max_abs_cosine"]  # measured ≤ 0.059
    antipodal = [max(v) <= -0.8 for v in last["other_set_min_cosine"]]  # measured -0.92 or lower in 7 of 8
    assert sum(antipodal) >= len(antipodal) / 2, last["other_set_min_cosine"].tolist()


def test_steps_and_batch_size_overrides_reach_the_correlated_variant_unless_it_has_its_own():
    experiment = get_experiment("learning_dynamics")
    variants = experiment.variants(experiment.settings("small", steps=70, batch_size=33))
    assert {(v.steps, v.batch_size) for v in variants.values()} == {(70, 33)}
    variants = experiment.variants(experiment.settings("small", steps=70, correlated_steps=90))
    assert (variants["learning_dynamics"].steps, variants["correlated"].steps) == (70, 90)
