"""Learning dynamics: each feature's dimensionality and the loss against the training step, on a log axis; the paths
of feature directions in 3-D."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["plot_learning_dynamics", "plot_trajectories_3d"]


def plot_learning_dynamics(
    steps: Sequence[int],
    dimensionality,
    loss,
    *,
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
    ax_size: float = 3.2,
) -> Figure:
    """One column per instance: D_i of every feature against step (top), the held-out loss (bottom).

    Args:
        steps: the checkpoint steps ``[C]`` (0-based; drawn at step + 1, the updates done, so step 0 fits a log axis).
        dimensionality: ``[C, I, n]`` feature dimensionalities at each checkpoint.
        loss: ``[C, I]`` loss at each checkpoint.
        titles: one per instance.
        suptitle: title of the whole figure.
        ax_size: width of each column in inches.
    """
    x = np.asarray(steps) + 1
    D, loss = np.asarray(dimensionality, dtype=float), np.asarray(loss, dtype=float)
    n_instances, n_features = D.shape[1], D.shape[2]
    fig = Figure(figsize=(n_instances * ax_size + 0.8, 2 * ax_size * 0.75 + 0.6), layout="constrained")
    axes = fig.subplots(2, n_instances, squeeze=False, sharex=True)
    # features coloured by their final dimensionality: the ones that jump stand out from the ones that fade
    colors = colormaps["viridis"](np.clip(D[-1], 0.0, 1.0))
    for k in range(n_instances):
        top, bottom = axes[0, k], axes[1, k]
        for i in np.argsort(D[-1, k]):
            top.plot(x, D[:, k, i], color=colors[k, i], lw=0.8, alpha=0.8)
        top.set_xscale("log")
        top.set_ylim(-0.02, 1.05)
        top.set_title(titles[k] if titles else f"instance {k}", fontsize=9)
        bottom.plot(x, loss[:, k], color="black", lw=1.0)
        bottom.set_xscale("log")
        bottom.set_yscale("log")
        bottom.set_xlabel("step")
        if k == 0:
            top.set_ylabel(f"D_i ({n_features} features)")
            bottom.set_ylabel("held-out loss")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9, wrap=True)
    return fig


def plot_trajectories_3d(
    steps: Sequence[int],
    weights,
    cuts: Sequence[int],
    *,
    feature_sets: Sequence[Sequence[int]] = (),
    titles: Sequence[str] | None = None,
    suptitle: str | None = None,
    ax_size: float = 2.8,
) -> Figure:
    """Each feature's direction W_i in 3-D as training moves it: one row per instance, one column per cut, each
    panel drawing the paths from the first checkpoint up to that cut (a dot where it is at the cut).

    Args:
        steps: the checkpoint steps ``[C]``.
        weights: ``[C, I, n, 3]``, W at each checkpoint.
        cuts: indices into ``steps`` at which the panels stop (e.g. [KG]'s 5, 35, 55 and the last).
        feature_sets: groups of features drawn in shades of one colour each (e.g. correlated sets);
            the other features are grey.
        titles: one per instance (the row's first panel).
        suptitle: title of the whole figure.
        ax_size: width and height of each panel in inches.
    """
    W = np.asarray(weights, dtype=float)
    n_checkpoints, n_instances, n_features, n_hidden = W.shape
    if n_hidden != 3:
        raise ValueError(f"weights must be [C, I, n, 3] (3 hidden dimensions), got shape {list(W.shape)}")
    if not cuts or any(not -n_checkpoints <= c < n_checkpoints for c in cuts):
        raise ValueError(f"cuts must be indices into the {n_checkpoints} checkpoints, got {list(cuts)}")
    colors = np.tile(np.array([0.6, 0.6, 0.6, 1.0]), (n_features, 1))
    palettes = ("Blues", "Reds", "Greens", "Purples", "Oranges")
    for s, members in enumerate(feature_sets):
        shades = colormaps[palettes[s % len(palettes)]](np.linspace(0.45, 0.95, len(members)))
        colors[list(members)] = shades
    limit = max(1.0, float(np.abs(W).max()))
    fig = Figure(figsize=(len(cuts) * ax_size, n_instances * ax_size + 0.4), layout="constrained")
    for k in range(n_instances):
        for j, cut in enumerate(cuts):
            end = cut % n_checkpoints
            ax = fig.add_subplot(n_instances, len(cuts), k * len(cuts) + j + 1, projection="3d")
            for i in range(n_features):
                path = W[: end + 1, k, i]
                ax.plot(path[:, 0], path[:, 1], path[:, 2], color=colors[i], lw=0.9)
                ax.plot([0, path[-1, 0]], [0, path[-1, 1]], [0, path[-1, 2]], color=colors[i], lw=0.5, ls=":")
                ax.scatter(*path[-1], color=colors[i], s=10)
            for axis in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
                axis(-limit, limit)
            ax.tick_params(labelsize=6)
            head = f"{titles[k]}, " if titles and j == 0 else ""
            ax.set_title(f"{head}step {steps[end]}", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9, wrap=True)
    return fig
