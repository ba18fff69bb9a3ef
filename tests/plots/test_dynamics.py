"""fastsup.plots.dynamics: the 3-D trajectories of feature directions, cut at given checkpoints."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastsup.plots import plot_trajectories_3d  # noqa: E402


def _weights(n_checkpoints=5, n_instances=2, n_features=4):
    t = np.linspace(0.0, 1.0, n_checkpoints)
    directions = np.eye(3)[[0, 1, 2, 0]][:n_features]  # feature i moves from the origin out along its axis
    return t[:, None, None, None] * np.broadcast_to(directions, (n_instances, n_features, 3))[None]


def test_one_panel_per_instance_and_cut_each_drawing_the_paths_up_to_its_cut():
    fig = plot_trajectories_3d([0, 1, 3, 7, 15], _weights(), [1, 3, -1], feature_sets=[(0, 1)],
                               titles=["first", "second"], suptitle="a generated title")
    assert len(fig.axes) == 2 * 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["first, step 1", "step 7", "step 15", "second, step 1", "step 7", "step 15"]
    path = fig.axes[1].get_lines()[0]  # instance 0, cut at checkpoint 3: feature 0's path
    x, y, z = path.get_data_3d()
    np.testing.assert_allclose(x, [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(y, 0.0)
    set_colour = fig.axes[0].get_lines()[0].get_color()
    assert tuple(set_colour) != tuple(fig.axes[0].get_lines()[4].get_color())  # a set's shade, not grey
    assert fig._suptitle.get_text() == "a generated title"


@pytest.mark.parametrize("weights, cuts, match", [
    pytest.param(np.zeros((5, 2, 4, 2)), [1], r"\[C, I, n, 3\]", id="two-dimensions"),
    pytest.param(_weights(), [5], "cuts must be indices into the 5 checkpoints", id="cut-past-the-end"),
    pytest.param(_weights(), [], "cuts must be indices", id="no-cuts"),
])
def test_bad_input_is_named(weights, cuts, match):
    with pytest.raises(ValueError, match=match):
        plot_trajectories_3d(range(5), weights, cuts)
