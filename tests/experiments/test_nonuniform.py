"""Experiment 6 (nonuniform) at the small scale, and its rotation of the 2-D plots on constructed weights."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from fastsup.experiments import get_experiment, run_experiment
from fastsup.experiments.nonuniform import OTHER_DENSITY, rotate_upright

from tests.utils import one_thread


def at(angle_degrees: float, length: float = 1.0) -> list[float]:
    a = math.radians(angle_degrees)
    return [length * math.cos(a), length * math.sin(a)]


def test_rotate_upright_turns_feature_0_up_or_feature_1_when_feature_0_is_not_represented():
    W = torch.tensor([[at(30), at(102), at(174), at(246), at(318)],        # a pentagon, feature 0 at 30°
                      [at(0, 0.1), at(200), at(290), at(20), at(110)]],   # feature 0 unlearned: a square
                     dtype=torch.float64)
    rotated = rotate_upright(W)
    torch.testing.assert_close(rotated[0, 0], torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(rotated[1, 1], torch.tensor([0.0, 1.0], dtype=torch.float64))
    # a rotation: lengths and angles between features are kept
    torch.testing.assert_close(rotated @ rotated.transpose(1, 2), W @ W.transpose(1, 2))
    torch.testing.assert_close(torch.linalg.det(torch.linalg.lstsq(W, rotated).solution), torch.ones(2, dtype=torch.float64))


# Calibration (this CPU, Dec 2026; small scale: 1000 steps, batch 256, lr 1e-2, held-out batch 2^15;
# deform: ρ = 1e-3 … 10 at 6 points × 2 restarts, branches: ρ = 0.1 … 10 at 6 points × 4 restarts;
# seeds 0–2):
# * deform, best restart, ρ <= 0.04: feature 0 unlearned (norm <= 0.19) and features 1–4 a square,
#   D_i in [0.481, 0.519] (largest distance from 1/2: 0.019);
# * deform, ρ >= 0.25: a pentagon, all 5 represented, D_i in [0.361, 0.440] (it deforms as ρ grows;
#   largest distance from 2/5: 0.040);
# * branches: at ρ = 0.1 every restart is a square; at ρ = 0.25 … 1.6 the best is a pentagon; every
#   seed had a ρ (3.98 or 10) whose restarts landed on two branches (square and pentagon).
# Tolerances: 0.05 around 1/2 and 0.07 around 2/5, each about 1.75–2.5 times the largest distance seen.
SQUARE_TOLERANCE = 0.05
PENTAGON_TOLERANCE = 0.07


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nonuniform")
    with one_thread():
        run = run_experiment("nonuniform", out, scale="small", progress=False, compile=False)
    return run, pd.read_parquet(out / "nonuniform.parquet")


@pytest.mark.slow
def test_a_sparse_feature_0_is_dropped_and_the_other_four_form_a_square(small_run):
    _, table = small_run
    best = table[(table["variant"] == "deform") & table["best"] & (table["rho"] <= 0.05)]
    assert len(best) == 3
    norms = np.stack(best["feature_norms"].to_numpy())
    dims = np.stack(best["feature_dimensionality"].to_numpy())
    assert (norms[:, 0] < 0.5).all(), norms
    assert (np.abs(dims[:, 1:] - 0.5) <= SQUARE_TOLERANCE).all(), dims
    assert (best["shape"] == "square").all()


@pytest.mark.slow
def test_a_denser_feature_0_joins_a_pentagon(small_run):
    _, table = small_run
    best = table[(table["variant"] == "deform") & table["best"] & (table["rho"] >= 0.2)]
    assert len(best) == 3
    dims = np.stack(best["feature_dimensionality"].to_numpy())
    assert (best["n_represented"] == 5).all()
    assert (np.abs(dims - 0.4) <= PENTAGON_TOLERANCE).all(), dims


@pytest.mark.slow
def test_restarts_land_on_separate_loss_branches(small_run):
    _, table = small_run
    branches = table[table["variant"] == "branches"]
    assert len(branches) == 6 * 4
    shapes = branches.groupby("rho")["shape"].agg(set)
    assert shapes.iloc[0] == {"square"}
    assert (branches[branches["best"] & branches["rho"].between(0.2, 2.0)]["shape"] == "pentagon").all()
    assert shapes.map(len).max() >= 2, shapes
    assert branches["feature_0_density"].to_numpy() == pytest.approx(OTHER_DENSITY * branches["rho"].to_numpy())


@pytest.mark.slow
def test_figures_and_numbers(small_run):
    run, table = small_run
    assert set(run.figure_paths) == {"nonuniform", "nonuniform-branches"}
    numbers = json.loads((run.out_dir / "nonuniform.json").read_text())
    assert numbers["deform"]["best_shape"] == table[(table["variant"] == "deform") & table["best"]]["shape"].tolist()


def test_paper_scale_is_the_code_companions_grids():
    experiment = get_experiment("nonuniform")
    sweeps = experiment.variants(experiment.settings("paper"))
    np.testing.assert_allclose(sweeps["deform"].axes["rho"], np.logspace(-3, 1, 41))  # [KG] cell 57
    np.testing.assert_allclose(sweeps["branches"].axes["rho"], np.logspace(-1, 1, 20))  # [KG] cell 60
    assert (sweeps["deform"].restarts, sweeps["branches"].restarts) == (4, 10)
    first = sweeps["deform"].point_fields(sweeps["deform"].points()[0])
    assert first["feature_probability"] == [[OTHER_DENSITY * 1e-3] + [OTHER_DENSITY] * 4]
    assert (first["n_features"], first["n_hidden"], first["steps"]) == (5, 2, 2_000)


@pytest.mark.parametrize("overrides, match", [
    pytest.param({"deform_points": 1}, "deform_points must be an integer >= 2", id="one-point"),
    pytest.param({"branch_restarts": 0}, "branch_restarts must be a positive integer", id="no-restarts"),
])
def test_bad_settings_name_the_field(overrides, match):
    with pytest.raises((ValueError, TypeError), match=match):
        get_experiment("nonuniform").settings("small", **overrides)
