"""Feature directions of 2-hidden-dimension models, one subplot per instance.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot
state), so they work under any backend, including Agg on headless machines,
are not shown or duplicated by notebook inline backends, and are freed when
dropped. Jupyter still renders a returned ``Figure``; save with
``fig.savefig(path)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from fastsup.metrics import _as_weights

__all__ = ["plot_features_2d"]

_LIM = 1.5
_MAX_COLS = 10
_AXIS_COLOR = "0.85"


def plot_features_2d(
    W,
    *,
    titles: Sequence[str] | str | None = None,
    suptitle: str | None = None,
    ax_size: float = 2.5,
) -> Figure:
    """Draw each feature's 2-D direction, one subplot per instance.

    Each feature ``i`` is a line from the origin to ``W[..., i, :]`` with a
    dot at its tip, coloured by index with viridis (feature 0, usually the
    most important, darkest), so importance order reads off the colours.
    Axes are equal-aspect with limits ``[-1.5, 1.5]`` (widened, for every
    subplot alike, if some vector is longer than that), with light axis lines
    through the origin and no ticks.

    Args:
        W: ``Float[Tensor, "*inst n 2"]`` (``[I, n, 2]`` or ``[n, 2]``;
            a tensor or numpy array; gradients are detached).
        titles: one title per instance (e.g. ``"1-S = 0.050"``); a bare string
            is accepted when there is a single instance.
        suptitle: title of the whole figure.
        ax_size: width and height of each subplot in inches.

    Returns:
        A :class:`matplotlib.figure.Figure` with exactly ``I`` axes, laid out
        in rows of at most 10; each axes holds ``n`` lines (the vectors) and one
        scatter collection (the dots).

    Raises:
        ValueError: if ``W`` is not ``[..., n, 2]``, if ``len(titles) != I``,
            or if ``ax_size`` is not a positive finite number.
        TypeError: for a non-tensor/array or non-floating ``W``.
    """
    W = _as_weights(W)
    if W.shape[-1] != 2:
        raise ValueError(
            "W must have 2 hidden dimensions (shape [n, 2] or [I, n, 2]) to "
            f"plot features in 2-D, got shape {tuple(W.shape)}"
        )
    if not (isinstance(ax_size, (int, float)) and not isinstance(ax_size, bool)
            and math.isfinite(ax_size) and ax_size > 0):
        raise ValueError(f"ax_size must be a positive finite number, got {ax_size!r}")
    W = W.detach().to("cpu")
    if W.ndim == 2:
        W = W.unsqueeze(0)
    points = W.double().numpy()  # [I, n, 2]
    n_inst, n_feat = points.shape[:2]

    if titles is not None:
        if isinstance(titles, str):
            titles = [titles]
        titles = list(titles)
        if len(titles) != n_inst:
            raise ValueError(
                f"titles must have one entry per instance ({n_inst}), got {len(titles)}"
            )

    finite = points[np.isfinite(points)]
    reach = float(np.abs(finite).max()) if finite.size else 0.0
    lim = max(_LIM, 1.05 * reach)

    ncols = min(n_inst, _MAX_COLS)
    nrows = math.ceil(n_inst / ncols)
    fig = Figure(figsize=(ncols * ax_size, nrows * ax_size), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_inst:]:
        fig.delaxes(ax)

    cmap = colormaps["viridis"]
    colors = cmap(np.linspace(0.0, 1.0, n_feat)) if n_feat > 1 else cmap([0.0])[:n_feat]

    for k, ax in enumerate(axes[:n_inst]):
        pts = points[k]
        for i in range(n_feat):
            ax.plot([0.0, pts[i, 0]], [0.0, pts[i, 1]], color=colors[i], lw=1.5)
        if n_feat:
            ax.scatter(pts[:, 0], pts[:, 1], c=colors, s=18, zorder=3)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_position("zero")
            ax.spines[side].set_color(_AXIS_COLOR)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[k], fontsize=10)

    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig
