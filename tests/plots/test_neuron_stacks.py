"""fastsup.plots.neuron_stacks: bars stack each neuron's weights, most monosemantic neuron first, shaded."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from fastsup.plots import plot_neuron_stacks  # noqa: E402


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() == pytest.approx(0.7)]


def test_stacks_are_the_weights_most_monosemantic_first():
    # 3 features, 2 neurons: neuron 0 reads features 0 (+0.6) and 1 (-0.8); neuron 1 reads feature 2 only.
    W = torch.tensor([[[0.6, 0.0], [-0.8, 0.0], [0.0, 1.5]]])
    fig = plot_neuron_stacks(W, titles=["1-S = 0.1"], suptitle="generated")
    (ax,) = [a for a in fig.axes if a.get_title()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "0"]  # neuron 1 is monosemantic: first
    heights = {(round(b.get_x() + 0.35), round(b.get_y(), 6), round(b.get_height(), 6)) for b in _bars(ax)
               if b.get_height() != 0}
    # position 0 (neuron 1): feature 2 up to 1.5; position 1 (neuron 0): 0.6 up from 0, 0.8 down from 0
    assert heights == {(0, 0.0, 1.5), (1, 0.0, 0.6), (1, 0.0, -0.8)}
    shaded = [p for p in ax.patches if not isinstance(p, Rectangle) or p.get_width() != pytest.approx(0.7)]
    assert len(shaded) == 1  # one monosemantic neuron, one shaded span


def test_one_subplot_per_instance_wrapping_rows():
    W = np.random.default_rng(1).normal(size=(9, 4, 3))
    fig = plot_neuron_stacks(W, titles=[f"i{k}" for k in range(9)])
    assert sorted(a.get_title() for a in fig.axes if a.get_title()) == [f"i{k}" for k in range(9)]


def test_titles_must_match_the_instances():
    with pytest.raises(ValueError, match="one entry per instance"):
        plot_neuron_stacks(torch.ones(2, 3, 2), titles=["only one"])


def test_index_order_and_columns_line_panels_up():
    """W1 beside W2ᵀ: with sort_neurons=False both keep neuron order 0, 1, so bar k is neuron k in each panel."""
    W = torch.tensor([[[0.6, 0.0], [-0.8, 0.0], [0.0, 1.5]]]).repeat(4, 1, 1)
    fig = plot_neuron_stacks(W, titles=["a", "b", "c", "d"], sort_neurons=False, columns=2)
    axes = [a for a in fig.axes if a.get_title()]
    assert all([t.get_text() for t in ax.get_xticklabels()] == ["0", "1"] for ax in axes)
    rows_and_columns = [{round(getattr(ax.get_position(), side), 3) for ax in axes} for side in ("y0", "x0")]
    assert [len(positions) for positions in rows_and_columns] == [2, 2]  # four panels, two per row
    # a zero weight draws no segment: neuron 0 has two (0.6 up, 0.8 down), neuron 1 one (1.5 up)
    assert len(_bars(axes[0])) == 3


def test_bad_columns_are_named():
    with pytest.raises(ValueError, match="columns"):
        plot_neuron_stacks(torch.ones(2, 3, 2), columns=0)
