"""plot_feature_geometry on constructed weights whose D* and D_i are known in closed form."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fastsup.plots import POLYTOPE_FRACTIONS, plot_feature_geometry  # noqa: E402


def polygon(k: int) -> torch.Tensor:
    angles = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return torch.stack([torch.cos(angles), torch.sin(angles)], -1)


def three_instances() -> torch.Tensor:
    """5 features in 2-D: two dedicated + three unlearned (D* = 1), two antipodal pairs + one unlearned
    (D* = 1/2), a pentagon (D* = 2/5)."""
    basis = torch.zeros(5, 2, dtype=torch.float64)
    basis[0, 0] = basis[1, 1] = 1.0
    pairs = torch.tensor([[1, 0], [-1, 0], [0, 1], [0, -1], [0, 0]], dtype=torch.float64)
    return torch.stack([basis, pairs, polygon(5)])


def test_line_is_dstar_and_dots_are_dimensionalities_against_inverse_density():
    densities = [1.0, 0.25, 0.05]
    fig = plot_feature_geometry({"5to2": three_instances()}, {"5to2": densities}, titles={"5to2": "five in two"},
                                jitter=0.0)
    (ax,) = fig.axes
    (line,) = [l for l in ax.lines if l.get_marker() == "o"]
    np.testing.assert_allclose(line.get_xdata(), [1.0, 4.0, 20.0])
    np.testing.assert_allclose(line.get_ydata(), [1.0, 0.5, 0.4])
    (dots,) = ax.collections
    expected_d = [1, 1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0, 0.4, 0.4, 0.4, 0.4, 0.4]
    np.testing.assert_allclose(dots.get_offsets()[:, 1], expected_d, atol=1e-12)
    np.testing.assert_allclose(dots.get_offsets()[:, 0], np.repeat([1.0, 4.0, 20.0], 5))
    assert ax.get_xscale() == "log" and ax.get_title() == "five in two"


def test_reference_lines_at_the_polytope_fractions_with_their_labels():
    fig = plot_feature_geometry({"a": three_instances()}, {"a": [1.0, 0.5, 0.1]})
    (ax,) = fig.axes
    heights = sorted(l.get_ydata()[0] for l in ax.lines if l.get_linestyle() == ":")
    assert heights == pytest.approx(sorted(POLYTOPE_FRACTIONS))
    assert {t.get_text() for t in ax.texts} == {"1", "3/4", "2/3", "1/2", "2/5", "3/8", "1/3"}


def test_jitter_moves_dots_along_x_only_and_is_reproducible():
    kwargs = dict(weights={"a": three_instances()}, densities={"a": [1.0, 0.5, 0.1]}, jitter=0.1)
    first, second = (plot_feature_geometry(**kwargs).axes[0].collections[0].get_offsets() for _ in range(2))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first[:, 0], np.repeat([1.0, 2.0, 10.0], 5))
    np.testing.assert_allclose(first[:, 1], [1, 1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0, 0.4, 0.4, 0.4, 0.4, 0.4], atol=1e-12)


def test_one_panel_per_run_and_an_unlearned_instance_leaves_a_gap():
    W = three_instances()
    W[2] = 0.0  # nothing learned: D* = inf, not drawn
    fig = plot_feature_geometry({"a": W, "b": three_instances()}, {"a": [1, 0.5, 0.1], "b": [1, 0.5, 0.1]},
                                suptitle="two runs")
    assert len(fig.axes) == 2
    line = [l for l in fig.axes[0].lines if l.get_marker() == "o"][0]
    assert math.isnan(line.get_ydata()[2])


@pytest.mark.parametrize("densities, jitter, match", [
    pytest.param({"b": [1, 1, 1]}, 0.0, "same run labels", id="other-labels"),
    pytest.param({"a": [1, 0.5]}, 0.0, r"one density in \(0, 1\] per instance \(3\)", id="too-few"),
    pytest.param({"a": [1, 0.5, 0.0]}, 0.0, r"one density in \(0, 1\]", id="zero-density"),
    pytest.param({"a": [1, 0.5, 0.1]}, -0.1, r"jitter must be a number in \[0, 1\)", id="negative-jitter"),
])
def test_bad_arguments_say_what_was_expected(densities, jitter, match):
    with pytest.raises(ValueError, match=match):
        plot_feature_geometry({"a": three_instances()}, densities, jitter=jitter)
