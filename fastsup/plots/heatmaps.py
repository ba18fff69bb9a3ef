"""WᵀW heatmaps with the bias column beside them, per instance (the paper's linear-vs-ReLU figure).

Entry (i, j) of the ``[n, n]`` matrix is W_i·W_j: the diagonal is each
feature's norm², off-diagonal entries its interference with another
feature.  A narrow column beside it shows the bias b on the same diverging
colour scale, so a dropped feature reads as a zero row with whatever bias
the model gave it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure, SubFigure

from fastsup.metrics import _as_weights

__all__ = ["plot_gram_heatmaps"]

_CMAP = "RdBu_r"  # red positive, blue negative, white zero


def plot_gram_heatmaps(
    weights: Mapping[str, tuple[object, object]],
    *,
    titles: Mapping[str, Sequence[str]] | None = None,
    suptitle: str | None = None,
    mark_index: int | None = None,
    ax_size: float = 1.6,
    figure: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Rows = runs, columns = instances: WᵀW (``[n, n]``, feature 0 top left) and b beside it.

    Args:
        weights: row label → ``(W [I, n, m], b [I, n])`` (tensors or arrays).
        titles: row label → one title per instance.
        suptitle: title of the figure (or subfigure).
        mark_index: draw lines before this feature index (e.g. m, the number of hidden dimensions).
        ax_size: height of each heatmap in inches (a fresh figure only).
        figure: draw into this figure or subfigure instead of a new one.

    The colour scale is symmetric, ±max(1, the largest |entry|), shared by every panel.
    """
    rows = {}
    for label, (W, b) in weights.items():
        W = _as_weights(W).detach().cpu().double().numpy()
        b = np.asarray(b.detach().cpu() if hasattr(b, "detach") else b, dtype=np.float64)
        if b.shape != W.shape[:2]:
            raise ValueError(f"bias of {label!r} must have shape {list(W.shape[:2])} (instances, features), "
                             f"got {list(b.shape)}")
        rows[label] = (W @ W.transpose(0, 2, 1), b)
    n_cols = max(gram.shape[0] for gram, _ in rows.values())
    if figure is None:
        figure = Figure(figsize=(n_cols * ax_size * 1.15 + 1.0, len(rows) * ax_size * 1.25), layout="constrained")
    finite = [np.abs(a[np.isfinite(a)]).max(initial=0.0) for pair in rows.values() for a in pair]
    limit = max(1.0, *finite)
    norm = Normalize(-limit, limit)
    cmap = colormaps[_CMAP]
    axes = figure.subplots(len(rows), 2 * n_cols, squeeze=False,
                           gridspec_kw={"width_ratios": [8, 1] * n_cols, "wspace": 0.02})
    for row, (label, (gram, bias)) in enumerate(rows.items()):
        n = gram.shape[-1]
        row_titles = None if titles is None else list(titles[label])
        for k in range(n_cols):
            heat_ax, bias_ax = axes[row, 2 * k], axes[row, 2 * k + 1]
            if k >= gram.shape[0]:
                figure.delaxes(heat_ax)
                figure.delaxes(bias_ax)
                continue
            heat_ax.imshow(gram[k], cmap=cmap, norm=norm, interpolation="nearest")
            bias_ax.imshow(bias[k][:, None], cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
            if mark_index is not None and 0 < mark_index < n:
                for ax, vertical in ((heat_ax, True), (bias_ax, False)):
                    ax.axhline(mark_index - 0.5, color="0.3", lw=0.6)
                    if vertical:
                        ax.axvline(mark_index - 0.5, color="0.3", lw=0.6)
            for ax in (heat_ax, bias_ax):
                ax.set_xticks([])
                ax.set_yticks([])
            if row_titles is not None:
                heat_ax.set_title(row_titles[k], fontsize=9)
            if k == 0:
                heat_ax.set_ylabel(f"{label}\nWᵀW | b", fontsize=9)
    figure.colorbar(ScalarMappable(norm, cmap), ax=axes.ravel().tolist(), shrink=0.6, label="W_i·W_j,  b_i")
    if suptitle:
        figure.suptitle(suptitle)
    return figure
