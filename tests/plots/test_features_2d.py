"""fastsup.plots.features_2d: one subplot per instance, one line per feature."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fastsup.plots import plot_features_2d  # noqa: E402


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
