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
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D

from fastsup.metrics import _as_weights
from fastsup.metrics.pairs import _check_sets

__all__ = ["GROUP_MARKERS", "UNGROUPED_COLOR", "plot_features_2d"]

_LIM = 1.5
_MAX_COLS = 10
_AXIS_COLOR = "0.85"
_DOT_SIZE = 18  # scatter area, points²
#: The k-th member of a group is drawn with the k-th marker (cycling past the last).
GROUP_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Features in no group, when ``groups`` is given.
UNGROUPED_COLOR = "0.55"


def plot_features_2d(
    W,
    *,
    titles: Sequence[str] | str | None = None,
    suptitle: str | None = None,
    ax_size: float = 2.5,
    groups: Sequence[Sequence[int]] | None = None,
    group_labels: Sequence[str] | None = None,
) -> Figure:
    """Draw each feature's 2-D direction, one subplot per instance.

    Each feature ``i`` is a line from the origin to ``W[..., i, :]`` with a
    dot at its tip, coloured by index with viridis (feature 0, usually the
    most important, darkest), so importance order reads off the colours.
    With ``groups`` (e.g. a config's ``correlated_sets``), features are
    coloured by group instead: one ``tab10`` hue per group, the k-th member
    of a group marked by the k-th of :data:`GROUP_MARKERS` (circle, square,
    triangle...), features in no group grey, and the figure has a legend
    with one entry per group.  Axes are equal-aspect with limits
    ``[-1.5, 1.5]`` (widened, for every subplot alike, if some vector is
    longer than that), with light axis lines through the origin and no ticks.

    Args:
        W: ``Float[Tensor, "*inst n 2"]`` (``[I, n, 2]`` or ``[n, 2]``;
            a tensor or numpy array; gradients are detached).
        titles: one title per instance (e.g. ``"1-S = 0.050"``); a bare string
            is accepted when there is a single instance.
        suptitle: title of the whole figure.
        ax_size: width and height of each subplot in inches.
        groups: disjoint feature-index groups of two or more, e.g.
            ``[(0, 1), (2, 3)]``; None colours by index.
        group_labels: one legend label per group (default ``"features 0, 1"``).

    Returns:
        A :class:`matplotlib.figure.Figure` with exactly ``I`` axes, laid out
        in rows of at most 10; each axes holds ``n`` lines (the vectors) and
        the dots: one scatter collection, or with ``groups`` one per marker
        used (the first members of every group, the second members, ...).

    Raises:
        ValueError: if ``W`` is not ``[..., n, 2]``, if ``len(titles) != I``,
            if ``ax_size`` is not a positive finite number, if ``groups``
            share a feature or name one outside ``[0, n)``, or if
            ``group_labels`` does not match ``groups``.
        TypeError: for a non-tensor/array or non-floating ``W``, or malformed
            ``groups``.
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

    if groups is None:
        if group_labels is not None:
            raise ValueError("group_labels needs groups: pass the feature-index groups they name")
        cmap = colormaps["viridis"]
        colors = cmap(np.linspace(0.0, 1.0, n_feat)) if n_feat > 1 else cmap([0.0])[:n_feat]
        markers = np.array(["o"] * n_feat)
    else:
        groups, group_labels = _check_groups(groups, group_labels, n_feat)
        colors, markers = _group_styles(groups, n_feat)

    finite = points[np.isfinite(points)]
    reach = float(np.abs(finite).max()) if finite.size else 0.0
    lim = max(_LIM, 1.05 * reach)

    ncols = min(n_inst, _MAX_COLS)
    nrows = math.ceil(n_inst / ncols)
    fig = Figure(figsize=(ncols * ax_size, nrows * ax_size), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_inst:]:
        fig.delaxes(ax)

    for k, ax in enumerate(axes[:n_inst]):
        pts = points[k]
        for i in range(n_feat):
            ax.plot([0.0, pts[i, 0]], [0.0, pts[i, 1]], color=colors[i], lw=1.5)
        for marker in dict.fromkeys(markers):  # the markers in first-use order
            dots = markers == marker
            ax.scatter(pts[dots, 0], pts[dots, 1], c=colors[dots], marker=marker, s=_DOT_SIZE, zorder=3)
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

    if groups is not None:
        _group_legend(fig, groups, group_labels, colors, markers, n_feat)
    if suptitle is not None:
        fig.suptitle(suptitle)
    return fig


def _check_groups(groups, group_labels, n_feat: int) -> tuple[list[tuple[int, ...]], list[str]]:
    """``groups`` as disjoint index tuples and one label per group (generated where not given)."""
    groups = _check_sets(groups, n_feat, name="groups", size=None, example="[(0, 1), (2, 3)]")
    seen: dict[int, tuple[int, ...]] = {}
    for group in groups:
        for i in group:
            if i in seen:
                raise ValueError(f"groups must not share a feature (a feature has one colour): feature {i} is in "
                                 f"{seen[i]} and {group}")
            seen[i] = group
    if group_labels is None:
        return groups, [f"features {', '.join(map(str, group))}" for group in groups]
    if isinstance(group_labels, str) or len(group_labels) != len(groups):
        raise ValueError(f"group_labels must be one label per group ({len(groups)}), got {group_labels!r}")
    return groups, [str(label) for label in group_labels]


def _group_styles(groups, n_feat: int) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: its group's hue (grey outside every group) and its rank's marker, ``[n, 4]`` and ``[n]``."""
    palette = colormaps["tab10"]
    colors = np.tile(to_rgba(UNGROUPED_COLOR), (n_feat, 1))
    markers = np.array([GROUP_MARKERS[0]] * n_feat)
    for g, group in enumerate(groups):
        for rank, i in enumerate(group):
            colors[i] = palette(g % palette.N)
            markers[i] = GROUP_MARKERS[rank % len(GROUP_MARKERS)]
    return colors, markers


def _group_legend(fig: Figure, groups, labels, colors, markers, n_feat: int) -> None:
    """One legend entry per group, showing its members' markers side by side in its hue."""
    def dot(i):
        return Line2D([], [], ls="none", marker=markers[i], color=colors[i], markersize=5)

    handles = [tuple(dot(i) for i in group) for group in groups]
    ungrouped = sorted(set(range(n_feat)) - {i for group in groups for i in group})
    if ungrouped:
        handles.append(dot(ungrouped[0]))
        labels = [*labels, "other features"]
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8,
               frameon=False, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.4)})
