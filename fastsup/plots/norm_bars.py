"""Bars of the feature norms ‖W_i‖ per instance, coloured by polysemanticity (the paper's bar plots)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from fastsup import metrics

__all__ = ["plot_norm_bars"]


def plot_norm_bars(
    weights: Mapping[str, object],
    *,
    titles: Mapping[str, Sequence[str]] | None = None,
    suptitle: str | None = None,
    ax_size: float = 1.8,
) -> Figure:
    """Rows = runs, columns = instances: horizontal bars of ‖W_i‖ (feature 0 at the top), coloured by
    polysemanticity √superposition clipped to [0, 1] (dark: orthogonal to the other features,
    yellow: in superposition), as the notebook draws them.

    Args:
        weights: row label → ``W`` ``[I, n, m]`` (tensor or array; rows may have different I).
        titles: row label → one title per instance of that row.
        suptitle: title of the whole figure.
        ax_size: size of each subplot in inches.
    """
    rows = {label: metrics._as_weights(W).detach().cpu().double() for label, W in weights.items()}
    n_cols = max(W.shape[0] for W in rows.values())
    fig = Figure(figsize=(n_cols * ax_size + 1.0, len(rows) * ax_size * 1.3), layout="constrained")
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    cmap = colormaps["viridis"]
    for row, (label, W) in enumerate(rows.items()):
        norms = metrics.feature_norms(W).numpy()
        poly = metrics.superposition(W).sqrt().clamp(0.0, 1.0).numpy()
        n = norms.shape[1]
        xmax = max(1.2, 1.05 * float(np.nanmax(norms, initial=0.0)))
        row_titles = None if titles is None else list(titles[label])
        for k in range(n_cols):
            ax = axes[row, k]
            if k >= W.shape[0]:
                fig.delaxes(ax)
                continue
            ax.barh(np.arange(n), norms[k], color=cmap(poly[k]), height=0.8)
            ax.set_ylim(n - 0.5, -0.5)
            ax.set_xlim(0.0, xmax)
            ax.axvline(1.0, color="0.8", lw=0.8, zorder=0)
            ax.set_yticks([])
            ax.set_xticks([0, 1])
            ax.tick_params(labelsize=7)
            if row_titles is not None:
                ax.set_title(row_titles[k], fontsize=9)
            if k == 0:
                ax.set_ylabel(f"{label}\nfeatures (0 at top)", fontsize=9)
    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=axes.ravel().tolist(), shrink=0.6,
                 label="polysemanticity √superposition")
    if suptitle:
        fig.suptitle(suptitle)
    return fig
