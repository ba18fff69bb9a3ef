"""Loss branches: the held-out loss of every restart against a swept value, coloured by how many
features the restart represents (each colour one local optimum: triangle, square, pentagon ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["plot_loss_branches"]


def plot_loss_branches(
    x: Sequence[float],
    loss: Sequence[float],
    n_represented: Sequence[float],
    *,
    names: Mapping[int, str] | None = None,
    xlabel: str = "",
    title: str | None = None,
    size: tuple[float, float] = (7.0, 4.5),
) -> Figure:
    """A log-log scatter of ``loss`` against ``x``, one dot per model, one colour per represented-feature
    count (its legend entry ``names[count]``, e.g. ``{4: "square"}``, else "k features").

    Args:
        x, loss, n_represented: one value per model (NaN counts, from diverged models, are left out).
        names: a name per count, for the legend.
        xlabel: the x axis label.
        title: the axes' title.
        size: figure width and height in inches.
    """
    x, loss, counts = (np.asarray(v, dtype=float) for v in (x, loss, n_represented))
    if not (x.shape == loss.shape == counts.shape and x.ndim == 1):
        raise ValueError(f"x, loss and n_represented must be 1-D and of one length, got shapes "
                         f"{x.shape}, {loss.shape}, {counts.shape}")
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    finite = np.isfinite(counts) & np.isfinite(loss) & (loss > 0)
    values = sorted({int(c) for c in counts[finite]})
    cmap = colormaps["viridis"]
    for k, count in enumerate(values):
        chosen = finite & (counts == count)
        name = (names or {}).get(count, f"{count} feature{'s' if count != 1 else ''}")
        ax.scatter(x[chosen], loss[chosen], s=16, color=cmap(k / max(len(values) - 1, 1)), label=name, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("held-out loss")
    if values:
        ax.legend(title="represented", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
