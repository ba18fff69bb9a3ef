"""larger at the small scale (5 instances each, 1000 steps × batch 256, lr 1e-2 cosine): 80 → 20 and 100 → 20.

Measured with seeds 0–2 on 2026-12-01 (2-core shared CPU, 1 thread), represented features per instance
(densest first):
* 80 → 20 (1-S = 1, .18, .032, .0056, .001): [21, 30, 43, 52, 62], [21, 30, 43, 51, 62], [20, 30, 42, 55, 62]
* 100 → 20 (1-S = 1, .47, .22, .11, .05): [20, 26, 36, 44, 54], [20, 25, 36, 45, 53], [20, 25, 36, 43, 53]
and in every run features 0–19 were represented at 1-S = 1.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastsup import metrics  # noqa: E402
from fastsup.experiments import EXPERIMENTS, run_experiment  # noqa: E402

M = 20
DENSE_EXTRA = 2  # represented features beyond m allowed when dense (measured 0–1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_experiment("larger", tmp_path_factory.mktemp("larger"), scale="small", progress=False)


def test_the_sources_sizes_importances_and_densities(run):
    small, large = run.outcome.variants["80to20"], run.outcome.variants["100to20"]
    assert (small.n_features, small.n_hidden, large.n_features, large.n_hidden) == (80, M, 100, M)
    assert small.importance_tensor()[0].numpy() == pytest.approx(0.9 ** np.arange(80), rel=1e-6)
    assert large.importance_tensor()[0].numpy() == pytest.approx(100.0 ** -np.linspace(0, 1, 100), rel=1e-6)
    assert large.probability()[:, 0].numpy() == pytest.approx(20.0 ** -np.linspace(0, 1, 5), rel=1e-6)
    paper = EXPERIMENTS["larger"].variants(EXPERIMENTS["larger"].settings("paper"))
    assert (paper["80to20"].n_instances, paper["100to20"].n_instances, paper["100to20"].steps) == (7, 20, 10_000)


@pytest.mark.parametrize("label", ["80to20", "100to20"])
def test_about_m_features_when_dense_and_more_than_m_growing_with_sparsity(run, label):
    W = run.results[label].W.double()
    represented = metrics.represented(W)
    assert bool(represented[0, :M].all()), metrics.feature_norms(W)[0, :M]
    counts = represented.sum(dim=1).tolist()
    assert counts[0] <= M + DENSE_EXTRA
    assert all(a < b for a, b in zip(counts, counts[1:])), counts
    assert counts[-1] > M


def test_one_figure_per_variant_with_every_second_instance_of_100_to_20(run):
    figures = EXPERIMENTS["larger"].figures(run.outcome, run.table)
    assert set(figures) == {"larger-80to20", "larger-100to20"}
    for stem, shown in (("larger-80to20", 5), ("larger-100to20", 3)):
        bars = [ax for ax in figures[stem].axes if ax.patches]
        assert len(bars) == shown
    assert (run.out_dir / "larger-100to20.svg").exists() and len(run.table) == 10
