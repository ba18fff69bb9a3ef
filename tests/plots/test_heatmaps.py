"""fastsup.plots.heatmaps and gram_and_norms: what is drawn is WᵀW and b of constructed weights."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fastsup.plots import plot_gram_and_norms, plot_gram_heatmaps  # noqa: E402


def weights(n_inst: int = 3, n: int = 7, m: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature i of instance k along hidden axis i % m, scaled by (k + 1)/n_inst; b_i = -i/10."""
    W = torch.zeros(n_inst, n, m)
    for k in range(n_inst):
        for i in range(n):
            W[k, i, i % m] = (k + 1) / n_inst
    b = -torch.arange(n, dtype=torch.float32).expand(n_inst, n) / 10
    return W, b


def test_each_panel_shows_the_gram_matrix_and_the_bias_beside_it():
    W, b = weights()
    titles = [f"instance {k}" for k in range(3)]
    fig = plot_gram_heatmaps({"relu_output": (W, b)}, titles={"relu_output": titles}, suptitle="x")
    assert isinstance(fig, Figure) and fig.get_suptitle() == "x"
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6  # heatmap and bias column per instance
    for k in range(3):
        heat, bias = panels[2 * k], panels[2 * k + 1]
        scale = ((k + 1) / 3) ** 2
        # features i and j share a hidden axis exactly when i ≡ j (mod 3)
        expected = np.array([[scale if i % 3 == j % 3 else 0.0 for j in range(7)] for i in range(7)])
        assert np.asarray(heat.images[0].get_array()) == pytest.approx(expected, abs=1e-6)
        assert np.asarray(bias.images[0].get_array())[:, 0] == pytest.approx(b[k].numpy())
        assert heat.get_title() == titles[k]


def test_colour_scale_is_symmetric_and_shared():
    W, b = weights()
    W[2, 0, 0] = 2.0  # gram entry 4
    fig = plot_gram_heatmaps({"a": (W, b), "b": (W[:2], b[:2])})
    limits = {im.get_clim() for ax in fig.axes for im in ax.images}
    assert limits == {(-4.0, 4.0)}


def test_rows_with_fewer_instances_leave_empty_cells_out_and_mark_index_draws_lines():
    W, b = weights()
    fig = plot_gram_heatmaps({"three": (W, b), "one": (W[:1], b[:1])}, mark_index=3)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * (3 + 1)
    horizontal, vertical = panels[0].lines  # before feature 3 (pixel edges at 2.5)
    assert list(horizontal.get_ydata()) == [2.5, 2.5] and list(vertical.get_xdata()) == [2.5, 2.5]
    (bias_line,) = panels[1].lines
    assert list(bias_line.get_ydata()) == [2.5, 2.5]


def test_bias_of_the_wrong_shape_is_a_clear_error():
    W, b = weights()
    with pytest.raises(ValueError, match=r"bias of 'x' must have shape \[3, 7\]"):
        plot_gram_heatmaps({"x": (W, b[:, :5])})


def test_gram_and_norms_has_both_panels_for_every_instance():
    W, b = weights()
    fig = plot_gram_and_norms({"linear": (W, b), "relu_output": (W, b)}, titles={"linear": list("abc"),
                              "relu_output": list("def")}, suptitle="both", mark_index=3)
    assert fig.get_suptitle() == "both"
    heatmaps = [ax for ax in fig.axes if ax.images]
    bars = [ax for ax in fig.axes if ax.patches]
    assert len(heatmaps) == 2 * 2 * 3 and len(bars) == 2 * 3
    assert all(len(ax.patches) == 7 for ax in bars)
    widths = sorted(p.get_width() for p in bars[2].patches)  # instance 2: every norm is 1
    assert widths == pytest.approx([1.0] * 7)
