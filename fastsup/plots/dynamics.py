"""Learning dynamics: each feature's dimensionality and the loss against the training step, on a log axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["plot_learning_dynamics"]


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
