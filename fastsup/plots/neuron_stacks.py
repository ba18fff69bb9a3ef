"""Neuron stack plots ([KG] cell 13, [AR] L487–525): each hidden neuron's weights on the features, stacked.

One subplot per instance; one bar per neuron, ordered by monosemanticity
(most monosemantic first), or by index when panels must line up neuron for
neuron (the ``abs`` model's W1 beside its W2); the bar stacks the neuron's weight on every
feature, positive weights upwards and negative ones downwards, coloured by
feature index (viridis: feature 0, the most important, darkest).  Neurons
above the monosemantic threshold sit on a shaded background.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fastsup import metrics
from fastsup.config import check_integer

__all__ = ["plot_neuron_stacks"]

_MAX_COLS = 7
_SHADE = "0.92"
_LEGEND_FEATURES = 12


def plot_neuron_stacks(W, *, titles: Sequence[str] | None = None, suptitle: str | None = None,
                       threshold: float = metrics.MONOSEMANTIC_THRESHOLD, sort_neurons: bool = True,
                       columns: int | None = None, ax_size: float = 2.2) -> Figure:
    """Stacked bars of ``W`` ``[I, n, m]`` (neuron k's weights are column ``W[i, :, k]``), one subplot per instance.

    Args:
        W: tensor or array ``[I, n, m]`` (or ``[n, m]`` for one instance).
        titles: one title per instance.
        suptitle: title of the whole figure.
        threshold: monosemanticity above which a neuron is shaded (:func:`fastsup.metrics.monosemantic_neurons`).
        sort_neurons: most monosemantic neuron first (True) or neurons in index order (False).
        columns: subplots per row (default: all instances, at most 7).
        ax_size: size of each subplot in inches.
    """
    W = metrics._as_weights(W).detach().cpu().double()
    if W.ndim == 2:
        W = W.unsqueeze(0)
    I, n, m = W.shape
    if titles is not None and len(titles) != I:
        raise ValueError(f"titles must have one entry per instance ({I}), got {len(titles)}")
    mono = metrics.neuron_monosemanticity(W).numpy()
    shaded = metrics.monosemantic_neurons(W, threshold).numpy()
    weights = W.numpy()
    if columns is not None:
        check_integer("columns", columns, 1)
    cols = min(I, _MAX_COLS if columns is None else columns)
    rows = math.ceil(I / cols)
    fig = Figure(figsize=(cols * ax_size + 0.6, rows * ax_size * 1.1 + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    colours = colormaps["viridis"](np.linspace(0.0, 0.95, n))
    stacked = np.concatenate([np.clip(weights, 0, None).sum(1), -np.clip(weights, None, 0).sum(1)])  # bar heights
    limit = max(1.0, float(np.nanmax(stacked, initial=0.0))) * 1.05  # one scale for every subplot
    for k, ax in enumerate(axes):
        if k >= I:
            fig.delaxes(ax)
            continue
        order = np.argsort(-np.nan_to_num(mono[k], nan=-1.0), kind="stable") if sort_neurons else np.arange(m)
        up, down = np.zeros(m), np.zeros(m)
        for position, neuron in enumerate(order):
            if shaded[k, neuron]:
                ax.axvspan(position - 0.5, position + 0.5, color=_SHADE, zorder=0)
        for feature in range(n):
            values = weights[k, feature, order]
            positive, negative = np.clip(values, 0, None), np.clip(values, None, 0)
            for part, bottom in ((positive, up), (negative, down)):
                drawn = part != 0  # a zero segment draws nothing but still costs a patch (SVGs of 100-feature models)
                ax.bar(np.arange(m)[drawn], part[drawn], bottom=bottom[drawn], color=colours[feature], width=0.7,
                       zorder=2)
            up, down = up + positive, down + negative
        ax.axhline(0.0, color="0.3", lw=0.6, zorder=3)
        ax.set_xlim(-0.5, m - 0.5)
        ax.set_ylim(-limit, limit)
        ax.set_xticks(np.arange(m), [str(int(j)) for j in order], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
        if k % cols == 0:
            ax.set_ylabel("weight on each feature", fontsize=8)
        if k // cols == rows - 1:
            ax.set_xlabel("neuron (most monosemantic first)" if sort_neurons else "neuron", fontsize=8)
    # every feature up to _LEGEND_FEATURES, else the first, middle and last (the colours run dark → light)
    listed = range(n) if n <= _LEGEND_FEATURES else (0, n // 2, n - 1)
    handles = [Patch(color=colours[f], label=f"feature {f}") for f in listed]
    handles.append(Patch(color=_SHADE, label=f"monosemantic (> {threshold:g})"))
    fig.legend(handles=handles, loc="outside right center", fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
