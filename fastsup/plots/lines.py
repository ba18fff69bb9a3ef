"""Measures against one swept quantity: one panel per measure, one line per group (e.g. per model)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["plot_lines"]

TITLE_CHARS_PER_INCH = 11  # at fontsize 10: a generated title wraps instead of running off the figure


def plot_lines(
    table,
    *,
    x: str,
    panels: Mapping[str, str],
    group: str,
    xlabel: str,
    group_label: str | None = None,
    logx: bool = True,
    logy: Mapping[str, bool] | None = None,
    reference: Mapping[str, float] | None = None,
    title: str | None = None,
    ax_size: float = 3.2,
) -> Figure:
    """Panels side by side: column ``y`` of ``table`` against column ``x``, one line per value of ``group``.

    Args:
        table: a pandas DataFrame with the columns ``x``, ``group`` and each key of ``panels``.
        x: the column on the horizontal axis (log-scaled when ``logx``).
        panels: column → axis label, one panel each, in this order.
        group: the column whose values split the rows into lines (the legend shows them, in sorted order).
        xlabel: label of the horizontal axis.
        group_label: the legend's title (default: ``group``).
        logy: column → whether that panel's vertical axis is log-scaled (default: linear).
        reference: column → a value drawn as a dashed horizontal line (e.g. 1 for a ratio).
        title: title of the whole figure (wrapped to its width).
        ax_size: width of each panel in inches.
    """
    missing = sorted({x, group, *panels} - set(table.columns))
    if missing:
        raise ValueError(f"table lacks the columns {missing}; it has {sorted(table.columns)}")
    if not panels:
        raise ValueError("panels must name at least one column to plot")
    logy, reference = dict(logy or {}), dict(reference or {})
    fig = Figure(figsize=(ax_size * len(panels) + 1.2, ax_size * 0.85 + 0.9), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    groups = sorted(table[group].unique())
    colours = colormaps["viridis"](np.linspace(0.0, 0.9, len(groups)))
    for ax, (column, label) in zip(axes, panels.items()):
        for value, colour in zip(groups, colours):
            rows = table[table[group] == value].sort_values(x)
            ax.plot(rows[x], rows[column], marker="o", ms=3, lw=1.2, color=colour, label=_legend_entry(value))
        if column in reference:
            ax.axhline(reference[column], color="0.5", lw=0.8, ls="--", zorder=0)
        ax.set_xscale("log" if logx else "linear")
        ax.set_yscale("log" if logy.get(column, False) else "linear")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.tick_params(labelsize=8)
    axes[-1].legend(title=group_label or group, fontsize=7, title_fontsize=8, loc="best")
    if title:
        width = int(fig.get_figwidth() * TITLE_CHARS_PER_INCH)
        fig.suptitle(textwrap.fill(title, width), fontsize=10)
    return fig


def _legend_entry(value) -> str:
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)
