"""Experiment 7 (correlated) at the small scale: correlated pairs come out orthogonal, anticorrelated
pairs antipodal (measured by fastsup.metrics.pair_cosines / pair_relations), and three correlated pairs
in 2-D collapse when dense and sit side by side (fastsup.metrics.sets_side_by_side) otherwise.

Calibration (this CPU, Dec 2026; small scale: 1000 steps, batch 256, lr 1e-2, best of 3 restarts by a
2^15-row held-out loss; seeds 0–5, 5 densities × 2 pairs per variant and seed):

* correlated: 60 of 60 pairs represented and orthogonal; the largest |cos| was 0.070 (typical 0.01).
  Tolerance: |cos| <= 0.15, about twice the largest seen and far from a triangle's 0.5.
* anticorrelated: 27 of 30 instances had both pairs antipodal (cos = -1.000 to three decimals; their
  held-out loss at most 4.8e-8); every seed had at least 4 of 5.  In the other 3 every restart ended
  in a square with each pair's features adjacent (cos ≈ 0) at a loss of 1.6e-3 to 5.1e-3, over 10^4
  times worse: a local optimum that restarts escape, not a preferred arrangement.  So the test asks
  for a majority (3 of 5) of antipodal instances, cos <= -0.99, and that every non-antipodal best
  loses to every antipodal one by at least 100×.

Collapse (same scale, seeds 0–9, 1-S = .75, .25, .15, .1, .01 × 3 pairs; "collapsed" is pair_relations'
name: both features represented, cos >= 0.8):

* collapsed pairs per density, every seed: 3 or 2 (2 in seeds 6 and 7, whose middle pair of the three
  collapsed directions came out at norm 0.38–0.40, below the represented threshold), then 2–3, 1–2, 1,
  and 0 (1 in seed 3) at 1-S = .01: never more at a lower density.  At 1-S = .75 every pair's cosine
  was >= 0.998 (norms >= 0.38).  Test: all three cosines >= 0.95 at the densest point, the count never
  rises as the density falls, and the sparsest point has fewer than the densest (seen: 2 or 3 fewer).
* collapse is all or nothing: collapsed cosines were >= 0.976, the rest of the represented pairs
  <= 0.717 (44°), none in between; the test asks for no represented pair in (0.8, 0.95).
* norms of collapsed pairs below the densest point: 0.686–0.769 (102 features), at most 0.062 from the
  isolated pair's principal-component norm 1/√2; at 1-S = .75 the three collapsed pairs interfere and
  come out at 0.38–0.68.  Tolerance: within 0.1 of 1/√2, 1.6× the largest deviation and far from the
  norm 1 of a pair that does not collapse.
* 147 of 147 pairs with both features represented sat side by side (an arrangement of six features at
  random has its three pairs adjacent with probability 2·2³/5! ≈ 0.13); the test asks for all of them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from fastsup import metrics
from fastsup.experiments import get_experiment, run_experiment
from fastsup.experiments.correlated import ARRANGEMENTS, expected_fraction
from tests.utils import one_thread

ORTHOGONAL_TOLERANCE = 0.15
ANTIPODAL_COSINE = -0.99
LOCAL_OPTIMUM_LOSS_RATIO = 100.0
COLLAPSED_COSINE = 0.95
NOT_COLLAPSED_COSINE = 0.8
PRINCIPAL_COMPONENT_NORM = 1 / math.sqrt(2)
PRINCIPAL_COMPONENT_NORM_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("correlated")
    # compile=False: these 4 → 2 and 6 → 2 models are too small for inductor to pay back its compile on a busy CPU
    with one_thread():
        run = run_experiment("correlated", out, scale="small", progress=False, compile=False)
    return run, pd.read_parquet(out / "correlated.parquet"), json.loads((out / "correlated.json").read_text())


def _variant(table, label):
    rows = table[table["variant"] == label]
    return np.stack(rows["pair_cosines"].to_numpy()), rows


@pytest.mark.slow
def test_correlated_pairs_come_out_orthogonal(small_run):
    _, table, _ = small_run
    cosines, rows = _variant(table, "correlated")
    assert cosines.shape == (5, 2)
    norms = np.stack(rows["feature_norms"].to_numpy())
    assert (norms > 0.5).all(), norms  # every feature represented, so every cosine is meaningful
    assert np.abs(cosines).max() <= ORTHOGONAL_TOLERANCE, cosines


@pytest.mark.slow
def test_anticorrelated_pairs_come_out_antipodal(small_run):
    _, table, _ = small_run
    cosines, rows = _variant(table, "anticorrelated")
    antipodal = (cosines <= ANTIPODAL_COSINE).all(axis=1)
    assert antipodal.sum() >= 3, cosines
    losses = rows["final_loss"].to_numpy()
    if not antipodal.all():
        assert losses[~antipodal].min() >= LOCAL_OPTIMUM_LOSS_RATIO * losses[antipodal].max(), (losses, cosines)


@pytest.mark.slow
def test_the_relations_the_table_names_agree_with_the_cosines(small_run):
    _, table, numbers = small_run
    for label in ("correlated", "anticorrelated"):
        cosines, rows = _variant(table, label)
        names = np.array(rows["pair_relations"].tolist())
        assert ((names == "orthogonal") == (np.abs(cosines) <= metrics.PAIR_COSINE_TOLERANCE)).all()
        assert ((names == "antipodal") == (cosines <= -1 + metrics.PAIR_COSINE_TOLERANCE)).all()
        share = numbers["variants"][label]["fraction_of_represented_pairs_in_expected_relation"]
        assert share == expected_fraction(table, label)
        assert share == pytest.approx(np.mean(names == ARRANGEMENTS[label].expected))


def _collapse_rows(table):
    """The collapse variant's cosines, relations, side-by-side flags and pair norms [density, pair, member],
    densest first (the spec's order)."""
    cosines, rows = _variant(table, "collapse")
    assert rows["density"].is_monotonic_decreasing
    norms = np.stack(rows["feature_norms"].to_numpy())
    pairs = rows["pairs"].iloc[0]
    pair_norms = np.stack([norms[:, list(pair)] for pair in pairs], axis=1)
    return cosines, np.array(rows["pair_relations"].tolist()), np.stack(rows["pairs_side_by_side"].to_numpy()), pair_norms


@pytest.mark.slow
def test_three_correlated_pairs_collapse_when_dense_and_less_as_they_get_sparser(small_run):
    _, table, _ = small_run
    cosines, relations, _, _ = _collapse_rows(table)
    assert (cosines[0] >= COLLAPSED_COSINE).all(), cosines[0]
    collapsed = (relations == "collapsed").sum(axis=1)
    assert (np.diff(collapsed) <= 0).all(), collapsed
    assert collapsed[-1] < collapsed[0], collapsed


@pytest.mark.slow
def test_collapse_is_all_or_nothing_and_reads_the_principal_component(small_run):
    _, table, _ = small_run
    cosines, relations, _, pair_norms = _collapse_rows(table)
    both = (pair_norms > metrics.REPRESENTED_THRESHOLD).all(axis=-1)
    between = both & (cosines > NOT_COLLAPSED_COSINE) & (cosines < COLLAPSED_COSINE)
    assert not between.any(), cosines
    below_densest = relations[1:] == "collapsed"
    assert below_densest.any(), relations  # the density grid keeps a collapsed pair below the densest point
    deviation = np.abs(pair_norms[1:][below_densest] - PRINCIPAL_COMPONENT_NORM)
    assert deviation.max() <= PRINCIPAL_COMPONENT_NORM_TOLERANCE, pair_norms[1:][below_densest]


@pytest.mark.slow
def test_represented_correlated_pairs_sit_side_by_side(small_run):
    _, table, _ = small_run
    _, _, side_by_side, pair_norms = _collapse_rows(table)
    both = (pair_norms > metrics.REPRESENTED_THRESHOLD).all(axis=-1)
    assert both.sum() >= 13, pair_norms  # in the calibration at most 1 of a seed's 15 pairs lost a feature
    assert side_by_side[both].all(), side_by_side


@pytest.mark.slow
def test_figures_one_per_variant_with_generated_titles(small_run):
    run, _, numbers = small_run
    assert set(run.figure_paths) == {"correlated", "correlated-anticorrelated", "correlated-collapse"}
    assert all(path.is_file() and path.with_suffix(".svg").is_file() for path in run.figure_paths.values())
    assert "best of 3 restarts, 1000 steps" in numbers["title"]


@pytest.mark.slow
def test_figures_colour_by_pair_with_a_legend_naming_each_pair(small_run):
    run, table, _ = small_run
    figures = get_experiment("correlated").figures(run.outcome, table)
    legends = {stem: [text.get_text() for text in figure.legends[0].get_texts()] for stem, figure in figures.items()}
    assert legends == {
        "correlated": ["correlated 0, 1", "correlated 2, 3"],
        "correlated-anticorrelated": ["anticorrelated 0, 1", "anticorrelated 2, 3"],
        "correlated-collapse": ["correlated 0, 1", "correlated 2, 3", "correlated 4, 5"],
    }
    for figure in figures.values():  # the pairs are (0, 1), (2, 3)...: both features of one share a hue
        for ax in figure.axes:
            colours = [tuple(line.get_color()) for line in ax.lines]
            assert colours[0::2] == colours[1::2] and len(set(colours)) == len(colours) // 2


def test_paper_scale_is_the_sources_sizes_and_densities():
    experiment = get_experiment("correlated")
    sweeps = experiment.variants(experiment.settings("paper"))
    assert list(sweeps) == ["correlated", "anticorrelated", "collapse"]
    for label, sweep in sweeps.items():
        first = sweep.point_fields(sweep.points()[0])
        assert (first["n_hidden"], first["steps"], sweep.restarts) == (2, 10_000, 3)
        assert first["n_features"] == {"correlated": 4, "anticorrelated": 4, "collapse": 6}[label]
    np.testing.assert_allclose(sweeps["correlated"].axes["density"], 400.0 ** -np.linspace(0.5, 1, 5))  # [AR]
    np.testing.assert_allclose(sweeps["anticorrelated"].axes["density"], 10.0 ** -np.linspace(0.5, 1, 5))  # [AR]
    np.testing.assert_allclose(sweeps["collapse"].axes["density"], [0.75, 0.25, 0.15, 0.1, 0.01])  # [KG]
    assert sweeps["anticorrelated"].point_fields(sweeps["anticorrelated"].points()[0])["anticorrelated_pairs"] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("overrides, match", [
    pytest.param({"variants": ("pairs",)}, "variants must be a non-empty tuple of 'correlated'", id="unknown-variant"),
    pytest.param({"variants": ()}, "variants must be a non-empty tuple", id="no-variant"),
    pytest.param({"restarts": 0}, "restarts must be a positive integer", id="no-restarts"),
])
def test_bad_settings_name_the_field(overrides, match):
    with pytest.raises((ValueError, TypeError), match=match):
        get_experiment("correlated").settings("small", **overrides)
