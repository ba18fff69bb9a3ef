"""fastsup.plots.phase: [KG]'s colour square at its corners, and the diagram's panels."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from fastsup.plots import plot_phase_diagram  # noqa: E402
from fastsup.plots.phase import phase_colours  # noqa: E402


@pytest.mark.parametrize(
    "norm, sup, rgb",
    [
        pytest.param(0.0, 0.0, (1, 1, 1), id="unlearned-white"),
        pytest.param(0.0, 1.0, (1, 1, 1), id="unlearned-white-whatever-its-superposition"),
        pytest.param(1.0, 0.0, (0, 0, 1), id="dedicated-blue"),
        pytest.param(1.0, 1.0, (1, 0, 0), id="superposed-red"),
        pytest.param(1.7, 3.0, (1, 0, 0), id="clamped-to-red"),
        pytest.param(0.5, 0.0, (0.5, 0.5, 1.0), id="half-norm-half-way-to-blue"),
        pytest.param(math.nan, 0.0, (0.5, 0.5, 0.5), id="diverged-grey"),
    ],
)
def test_colour_square(norm, sup, rgb):
    np.testing.assert_allclose(phase_colours(norm, sup), rgb)


def _table(grid=3):
    density, importance = np.meshgrid(np.logspace(-2, 0, grid), np.logspace(-1, 1, grid), indexing="ij")
    return pd.DataFrame({"density": density.ravel(), "relative_importance": importance.ravel(),
                         "last_norm": np.linspace(0, 1, grid * grid), "last_superposition": np.zeros(grid * grid)})


@pytest.mark.parametrize("with_candidates, panels", [(False, 1), (True, 2)], ids=["2to1-one-panel", "3to2-two-panels"])
def test_panels_and_title(with_candidates, panels):
    fig = plot_phase_diagram(_table(), n_features=3 if with_candidates else 2, with_candidates=with_candidates,
                             title="a generated title " * 8)
    assert isinstance(fig, Figure) and len(fig.axes) == panels
    assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in fig.axes)
    assert "\n" in fig._suptitle.get_text()  # a long title wraps


def test_the_empirical_cells_carry_the_colours_of_their_points():
    table = _table(grid=2)  # norms 0, 1/3, 2/3, 1 in row order (density slow)
    fig = plot_phase_diagram(table, n_features=2)
    mesh = fig.axes[0].collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(4, 3),
                               phase_colours(table["last_norm"], table["last_superposition"]))
