"""fastsup.plots.double_descent: strips of feature and data-point D against T with m/T, and the losses against T."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from fastsup.plots import plot_double_descent  # noqa: E402


def test_strips_hold_every_value_near_its_T_and_the_curve_is_m_over_T():
    sizes = [3, 7, 40]
    features = [np.full(11, 0.05), np.full(11, 0.1), np.linspace(0.0, 0.4, 11)]
    points = [np.full(T, 2 / T) for T in sizes]
    fig = plot_double_descent(sizes, features, points, [1e-4, 1e-3, 5e-3], [1e-2, 2e-2, 8e-3], n_hidden=2,
                              title="a generated title")
    strips, losses = fig.axes
    assert strips.get_xscale() == "log" and losses.get_yscale() == "log"
    offsets = [c.get_offsets() for c in strips.collections]  # features then points, one strip per T
    assert [len(o) for o in offsets] == [11, 11, 11, 3, 7, 40]
    for o, T, values in zip(offsets, sizes * 2, features + points):
        np.testing.assert_array_equal(o[:, 1], values)
        assert (np.abs(np.log(o[:, 0] / T)) <= 0.12 + 1e-12).all()  # jittered around T, never onto a neighbour
    (curve,) = strips.get_lines()
    np.testing.assert_allclose(curve.get_ydata(), np.minimum(2 / curve.get_xdata(), 1.0))
    train, test = losses.get_lines()
    np.testing.assert_array_equal(test.get_ydata(), [1e-2, 2e-2, 8e-3])
    assert fig._suptitle.get_text() == "a generated title"
