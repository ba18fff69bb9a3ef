"""fastsup.plots.features_2d: one subplot per instance, one line per feature."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fastsup.plots import plot_features_2d  # noqa: E402
from fastsup.plots.features_2d import GROUP_MARKERS, UNGROUPED_COLOR  # noqa: E402


def pentagons(n_inst: int, n: int = 5) -> torch.Tensor:
    angles = 2 * math.pi * torch.arange(n) / n
    W = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    return W.expand(n_inst, n, 2).clone()


@pytest.mark.parametrize(
    "n_inst, n",
    [pytest.param(1, 5, id="1x5"), pytest.param(4, 5, id="4x5"), pytest.param(12, 3, id="12x3-wraps")],
)
def test_axes_lines_titles(n_inst, n):
    W = pentagons(n_inst, n)
    titles = [f"1-S = {0.05 * (k + 1):.3f}" for k in range(n_inst)]
    fig = plot_features_2d(W, titles=titles, suptitle="intro")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n_inst
    for ax, title in zip(fig.axes, titles):
        assert len(ax.lines) == n
        assert ax.get_title() == title
        assert ax.get_xlim() == pytest.approx((-1.5, 1.5))
        assert ax.get_ylim() == pytest.approx((-1.5, 1.5))
        assert sum(isinstance(c, PathCollection) for c in ax.collections) == 1
    assert fig.get_suptitle() == "intro"


def test_colours_follow_feature_index():
    fig = plot_features_2d(pentagons(1))
    colors = [tuple(line.get_color()) for line in fig.axes[0].lines]
    assert len(set(colors)) == 5
    cmap = matplotlib.colormaps["viridis"]
    assert colors[0] == pytest.approx(tuple(cmap(0.0)))
    assert colors[-1] == pytest.approx(tuple(cmap(1.0)))


def test_groups_share_a_hue_and_members_differ_by_marker():
    # Hexagon; pairs (0, 3) and (4, 1), features 2 and 5 in no group.
    W = pentagons(1, 6)
    fig = plot_features_2d(W, groups=[(0, 3), (4, 1)])
    ax = fig.axes[0]
    tab10 = matplotlib.colormaps["tab10"]
    expected = {0: tab10(0), 3: tab10(0), 4: tab10(1), 1: tab10(1), 2: to_rgba(UNGROUPED_COLOR),
                5: to_rgba(UNGROUPED_COLOR)}
    for i, colour in expected.items():
        assert tuple(ax.lines[i].get_color()) == pytest.approx(colour), i
    # One scatter per marker: first members and ungrouped features share the first marker, second members the second.
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(dots) == 2
    tips = W[0].numpy()
    np.testing.assert_allclose(dots[0].get_offsets(), tips[[0, 2, 4, 5]])  # in index order
    np.testing.assert_allclose(dots[1].get_offsets(), tips[[1, 3]])
    assert np.allclose(dots[1].get_facecolors(), [tab10(1), tab10(0)])


def test_grouped_dots_use_the_member_markers():
    fig = plot_features_2d(pentagons(1, 5), groups=[(0, 1, 2), (3, 4)])
    dots = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    # Ranks 0, 1, 2 → three markers; feature order inside each collection is by index.
    styles = [matplotlib.markers.MarkerStyle(m) for m in GROUP_MARKERS[:3]]
    marker_paths = [style.get_path().transformed(style.get_transform()) for style in styles]
    assert len(dots) == 3
    for collection, path in zip(dots, marker_paths):
        np.testing.assert_allclose(collection.get_paths()[0].vertices, path.vertices)


@pytest.mark.parametrize("group_labels, expected", [
    pytest.param(None, ["features 0, 3", "features 4, 1", "other features"], id="generated"),
    pytest.param(["correlated 0, 3", "anticorrelated 4, 1"], ["correlated 0, 3", "anticorrelated 4, 1", "other features"],
                 id="given"),
])
def test_groups_get_one_legend_entry_each(group_labels, expected):
    fig = plot_features_2d(pentagons(2, 6), groups=[(0, 3), (4, 1)], group_labels=group_labels)
    assert len(fig.legends) == 1
    assert [text.get_text() for text in fig.legends[0].get_texts()] == expected


def test_no_other_features_entry_when_every_feature_is_grouped_and_no_legend_without_groups():
    fig = plot_features_2d(pentagons(1, 4), groups=[(0, 1), (2, 3)])
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["features 0, 1", "features 2, 3"]
    assert plot_features_2d(pentagons(1, 4)).legends == []


@pytest.mark.parametrize("kwargs, exc, match", [
    pytest.param({"groups": [(0, 1), (1, 2)]}, ValueError, "groups must not share a feature", id="shared-feature"),
    pytest.param({"groups": [(0, 5)]}, ValueError, r"in \[0, 5\)", id="out-of-range"),
    pytest.param({"groups": [(0,)]}, TypeError, "at least two integer feature indices", id="one-member"),
    pytest.param({"groups": [(0, 1)], "group_labels": ["a", "b"]}, ValueError, "one label per group",
                 id="labels-mismatch"),
    pytest.param({"group_labels": ["a"]}, ValueError, "group_labels needs groups", id="labels-without-groups"),
])
def test_bad_groups_name_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        plot_features_2d(pentagons(1, 5), **kwargs)


def test_2d_input_and_numpy_and_grad():
    W = pentagons(1)[0].requires_grad_(True)
    fig = plot_features_2d(W, titles="one")
    assert len(fig.axes) == 1
    assert fig.axes[0].get_title() == "one"
    fig = plot_features_2d(pentagons(2).numpy())
    assert len(fig.axes) == 2
    assert all(ax.get_title() == "" for ax in fig.axes)


def test_long_vectors_widen_limits():
    W = torch.tensor([[[2.0, 0.0], [0.0, 0.5]]])
    fig = plot_features_2d(W)
    lo, hi = fig.axes[0].get_xlim()
    assert hi >= 2.0 and lo <= -2.0


def test_save_png(tmp_path):
    fig = plot_features_2d(pentagons(3), titles=["a", "b", "c"], suptitle="s")
    path = tmp_path / "features.png"
    fig.savefig(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000


def test_m3_raises():
    with pytest.raises(ValueError, match=r"\bW\b"):
        plot_features_2d(torch.zeros(2, 4, 3))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        pytest.param({"titles": ["a"]}, ValueError, "titles", id="too-few-titles"),
        pytest.param({"ax_size": 0}, ValueError, "ax_size", id="zero-ax-size"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        plot_features_2d(pentagons(2), **kwargs)


def test_bad_W_type():
    with pytest.raises(TypeError, match=r"\bW\b"):
        plot_features_2d(np.ones((3, 2), dtype=np.int64))
