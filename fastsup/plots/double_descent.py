"""Memorisation and double descent: dimensionalities of features and of data points against the dataset size T."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_double_descent"]

# Horizontal jitter of a strip, as a factor on T (the axis is logarithmic): wide enough to show how many
# values sit at one height, narrow enough that neighbouring T values never overlap.
STRIP_JITTER = 0.12


def _strip(ax, dataset_sizes, values, color: str, label: str, rng) -> None:
    for i, (T, v) in enumerate(zip(dataset_sizes, values)):
        v = np.asarray(v, dtype=float)
        x = T * np.exp(rng.uniform(-STRIP_JITTER, STRIP_JITTER, len(v)))
        ax.scatter(x, v, s=4, color=color, alpha=0.4, linewidths=0, label=label if i == 0 else None)


def plot_double_descent(
    dataset_sizes: Sequence[int],
    feature_dimensionality: Sequence,
    data_dimensionality: Sequence,
    train_loss: Sequence[float],
    test_loss: Sequence[float],
    *,
    n_hidden: int,
    title: str | None = None,
    ax_size: float = 3.6,
) -> Figure:
    """Left, a strip per T of every feature's D_i and every data point's D_j, with the curve m/T; right, the
    training and held-out loss against T.

    Args:
        dataset_sizes: the T values ``[K]``.
        feature_dimensionality: per T, the n features' D_i (one array each).
        data_dimensionality: per T, the T data points' D_j (an array of length T each).
        train_loss, test_loss: per T, the loss on the T training points and on fresh points.
        n_hidden: m, so the curve m/T is the share of T points that split the hidden space evenly.
        title: title of the whole figure.
        ax_size: height of the panels in inches.
    """
    T = np.asarray(dataset_sizes, dtype=float)
    rng = np.random.default_rng(0)  # the jitter only: the same figure every time
    fig = Figure(figsize=(3 * ax_size + 0.6, ax_size + 0.5), layout="constrained")
    strips, losses = fig.subplots(1, 2, width_ratios=[2, 1])
    _strip(strips, T, feature_dimensionality, "tab:blue", "features D_i", rng)
    _strip(strips, T, data_dimensionality, "tab:red", "data points D_j", rng)
    curve = np.geomspace(T.min(), T.max(), 200)
    strips.plot(curve, np.minimum(n_hidden / curve, 1.0), color="black", lw=1.0, ls="--",
                label=f"{n_hidden}/T (points sharing the {n_hidden} dimensions evenly)")
    strips.set_xscale("log")
    strips.set_ylim(-0.02, 1.05)
    strips.set_xlabel("dataset size T")
    strips.set_ylabel("dimensionality")
    strips.legend(fontsize=8, markerscale=3, loc="upper right")
    losses.plot(T, train_loss, "o-", color="tab:gray", ms=3, label="training loss (T points)")
    losses.plot(T, test_loss, "o-", color="black", ms=3, label="test loss (fresh points)")
    losses.set_xscale("log")
    losses.set_yscale("log")
    losses.set_xlabel("dataset size T")
    losses.set_ylabel("loss")
    losses.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9, wrap=True)
    return fig
