"""phase_2to1 at the small scale: the best-of-N phase agrees with the analytic phase off the boundaries.

Calibration (small scale: 8 × 8 grid, 6 restarts, 200 steps, batch 128, torch backend, seeds 0-9, measured
2026-12-01 on the shared 2-core machine): 42 of the 64 points are not next to a boundary; their agreement was
1.000 at seeds 0, 1, 4, 5, 9 and 0.976 (41 of 42) at seeds 2, 3, 6, 7, 8; the agreement over all 64 points was
0.922-0.938. With 3 restarts (300 steps) it was 0.857-0.952, so the restarts are what the small scale needs.
The issue's bar of 85% leaves room for five more misclassified points than the worst seed measured.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fastsup import load_sweep, metrics
from fastsup.experiments import get_experiment, run_experiment
from fastsup.experiments._phase_diagram import _next_to_a_boundary

AGREEMENT_OFF_BOUNDARY = 0.85  # the bar; measured 0.976-1.000 over ten seeds (see the module docstring)


TINY = dict(grid=4, restarts=2, steps=40, batch_size=32)  # for the checks that need a run, not a good one


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run_experiment("phase_2to1", tmp_path_factory.mktemp("phase_2to1"), scale="small", backend="torch",
                          progress=False, **TINY)


@pytest.mark.slow
def test_best_of_n_phase_agrees_with_the_theory_off_the_boundaries(tmp_path):
    small_run = run_experiment("phase_2to1", tmp_path, scale="small", backend="torch", progress=False)
    table = small_run.table
    off = table[~table["next_to_boundary"]]
    assert len(off) == 42  # enough points for the fraction to mean something
    assert off["agrees"].mean() >= AGREEMENT_OFF_BOUNDARY
    numbers = json.loads(small_run.numbers_path.read_text())
    assert numbers["agreement_off_boundary"] == pytest.approx(off["agrees"].mean())
    assert numbers["points"] == 64 and numbers["points_off_boundary"] == 42


def test_the_table_holds_per_point_the_empirical_and_the_analytic_phase(tiny_run):
    table = pd.read_parquet(tiny_run.table_path)
    assert len(table) == 4 * 4
    assert set(table["phase_name"]) <= {*metrics.PHASES, metrics.UNDEFINED}
    # The analytic column is the closed form at the point's coordinates, recomputed here.
    expected = metrics.analytic_phase(table["density"].to_numpy(), table["relative_importance"].to_numpy(), 2)
    assert np.array_equal(table["analytic_phase"].to_numpy(), expected.numpy())
    # The empirical column is the phase of the best restart's weights, read back from the store.
    sweep = load_sweep(tiny_run.sweep_dirs["phase_2to1"])
    best = sweep.best()
    assert np.array_equal(table["restart"].to_numpy(), best["restart"].to_numpy())
    W = sweep.params(best)["W"].double()
    assert np.array_equal(table["phase"].to_numpy(), metrics.feature_phase(W)[:, -1].numpy())
    assert (table["agrees"] == (table["phase"] == table["analytic_phase"])).all()


def test_figure_and_title_come_from_the_config(tiny_run):
    assert tiny_run.figure_paths == {"phase_2to1": tiny_run.out_dir / "phase_2to1.png"}
    assert (tiny_run.out_dir / "phase_2to1.svg").stat().st_size > 0
    title = json.loads(tiny_run.numbers_path.read_text())["title"]
    assert "2→1" in title and "4 × 4 grid" in title and "best of 2 restarts" in title and "40 steps" in title


def test_the_small_scale_is_the_calibrated_one():
    settings = get_experiment("phase_2to1").settings("small")
    assert (settings.grid, settings.restarts, settings.steps, settings.batch_size) == (8, 6, 200, 128)


def test_paper_scale_is_the_code_companions():
    settings = get_experiment("phase_2to1").settings("paper")
    (sweep,) = get_experiment("phase_2to1").variants(settings).values()
    points = [sweep.point_fields(point) for point in sweep.points()]
    assert len(points) == 400 and sweep.restarts == 10
    assert {(p["steps"], p["batch_size"], p["lr"], p["weight_decay"], p["optimizer"], p["eval_batch_size"])
            for p in points} == {(2000, 128, 1e-2, 1e-2, "adamw", 10_000)}
    densities = sorted({p["feature_probability"] for p in points})
    np.testing.assert_allclose(densities, np.logspace(-2, 0, 20))
    np.testing.assert_allclose(sorted({p["importance"][1] for p in points}), np.logspace(-1, 1, 20))
    assert {p["importance"][0] for p in points} == {1.0}


def test_next_to_a_boundary_marks_the_eight_neighbours():
    # A 4 × 4 grid whose analytic phase changes between the second and third density column.
    density, importance = np.meshgrid([0.1, 0.2, 0.4, 0.8], [0.5, 1.0, 2.0, 4.0], indexing="ij")
    phase = np.where(density < 0.3, metrics.SUPERPOSITION, metrics.DEDICATED).astype(float)
    phase[0, 0] = metrics.NOT_REPRESENTED  # a corner of its own
    table = pd.DataFrame({"density": density.ravel(), "relative_importance": importance.ravel(),
                          "analytic_phase": phase.ravel()}).sample(frac=1.0, random_state=0)  # any row order
    flagged = _next_to_a_boundary(table)
    expected = (np.abs(density - 0.3) < 0.15) | ((density < 0.3) & (importance < 1.5))
    lookup = {(d, r): e for d, r, e in zip(density.ravel(), importance.ravel(), expected.ravel())}
    assert flagged.tolist() == [lookup[d, r] for d, r in zip(table["density"], table["relative_importance"])]


@pytest.mark.parametrize(
    "override, name",
    [
        pytest.param({"grid": 1}, "grid", id="grid-of-one"),
        pytest.param({"restarts": 0}, "restarts", id="no-restarts"),
        pytest.param({"norm_threshold": -0.5}, "norm_threshold", id="negative-norm-threshold"),
        pytest.param({"superposition_threshold": float("nan")}, "superposition_threshold", id="nan-threshold"),
    ],
)
def test_bad_settings_are_named(override, name):
    with pytest.raises(ValueError, match=name):
        get_experiment("phase_2to1").settings("small", **override)


def test_thresholds_reach_the_classification(tmp_path):
    """A norm threshold above every trained norm makes every point 'not represented'."""
    run = run_experiment("phase_2to1", tmp_path, scale="small", grid=2, restarts=1, steps=5, batch_size=8,
                         norm_threshold=100.0, backend="torch", progress=False)
    assert set(run.table["phase_name"]) == {"not represented"}
    assert torch.isfinite(torch.tensor(run.table["last_norm"].to_numpy())).all()
