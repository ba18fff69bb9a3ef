"""plot_loss_branches: one colour per represented-feature count, named, log-log, diverged models left out."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastsup.plots import plot_loss_branches  # noqa: E402


def test_one_group_per_count_with_its_name_and_points():
    x = [0.1, 0.1, 1.0, 1.0, 10.0, 10.0, 10.0]
    loss = [0.02, 0.03, 0.01, 0.015, 0.005, 0.007, 0.009]
    counts = [3, 4, 4, 5, 5, 5, math.nan]  # the last model diverged
    fig = plot_loss_branches(x, loss, counts, names={4: "square", 5: "pentagon"}, xlabel="ρ", title="branches")
    (ax,) = fig.axes
    groups = ax.collections
    assert [g.get_label() for g in groups] == ["3 features", "square", "pentagon"]
    np.testing.assert_allclose(groups[0].get_offsets(), [[0.1, 0.02]])
    np.testing.assert_allclose(groups[1].get_offsets(), [[0.1, 0.03], [1.0, 0.01]])
    np.testing.assert_allclose(groups[2].get_offsets(), [[1.0, 0.015], [10.0, 0.005], [10.0, 0.007]])
    colours = {tuple(g.get_facecolor()[0]) for g in groups}
    assert len(colours) == 3
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == "ρ" and ax.get_title() == "branches"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["3 features", "square", "pentagon"]


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="1-D and of one length"):
        plot_loss_branches([1.0, 2.0], [0.1], [3, 4])
