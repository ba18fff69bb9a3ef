"""fastsup.plots.lines: one panel per measure, one line per group, the data drawn as given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fastsup.plots import plot_lines  # noqa: E402


def _table():
    x = np.array([0.01, 0.1, 1.0])
    return pd.DataFrame({"x": np.tile(x, 2)[::-1], "group": ["b"] * 3 + ["a"] * 3,
                         "loss": np.arange(6.0) + 1, "ratio": np.linspace(0.5, 2.0, 6)})


def test_panels_lines_and_data():
    fig = plot_lines(_table(), x="x", group="group", panels={"loss": "the loss", "ratio": "a ratio"},
                     xlabel="density", logy={"loss": True}, reference={"ratio": 1.0}, title="a generated title")
    assert isinstance(fig, Figure)
    loss_ax, ratio_ax = fig.axes
    assert (loss_ax.get_ylabel(), ratio_ax.get_ylabel()) == ("the loss", "a ratio")
    assert loss_ax.get_xscale() == "log" and loss_ax.get_yscale() == "log" and ratio_ax.get_yscale() == "linear"
    a, b = loss_ax.get_lines()  # groups in sorted order, each sorted by x
    assert a.get_label() == "a" and b.get_label() == "b"
    np.testing.assert_array_equal(a.get_xdata(), [0.01, 0.1, 1.0])
    np.testing.assert_array_equal(a.get_ydata(), [6.0, 5.0, 4.0])
    assert [line.get_ydata()[0] for line in ratio_ax.get_lines()][-1] == 1.0  # the reference line
    assert fig._suptitle.get_text() == "a generated title"


def test_a_linear_x_axis():
    fig = plot_lines(_table(), x="x", group="group", panels={"loss": "loss"}, xlabel="x", logx=False)
    assert fig.axes[0].get_xscale() == "linear"


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"lacks the columns \['nope'\]"):
        plot_lines(_table(), x="x", group="group", panels={"nope": "?"}, xlabel="x")
    with pytest.raises(ValueError, match="panels must name at least one column"):
        plot_lines(_table(), x="x", group="group", panels={}, xlabel="x")
