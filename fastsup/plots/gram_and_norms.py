"""The paper's figure of a model family: WᵀW with the bias beside it above, ‖W_i‖ bars below."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from .heatmaps import plot_gram_heatmaps
from .norm_bars import plot_norm_bars

__all__ = ["plot_gram_and_norms"]


def plot_gram_and_norms(
    weights: Mapping[str, tuple[object, object]],
    *,
    titles: Mapping[str, Sequence[str]] | None = None,
    suptitle: str | None = None,
    mark_index: int | None = None,
    ax_size: float = 1.6,
) -> Figure:
    """Two panels for the same rows (runs) and columns (instances): :func:`plot_gram_heatmaps` of
    ``(W, b)`` on top, :func:`plot_norm_bars` of ``W`` below (see those for the arguments)."""
    n_cols = max(len(W) for W, _ in weights.values())
    n_rows = len(weights)
    figure = Figure(figsize=(n_cols * ax_size * 1.15 + 1.5, 2 * n_rows * ax_size * 1.3 + 0.6), layout="constrained")
    if suptitle:
        figure.suptitle(suptitle)
    top, bottom = figure.subfigures(2, 1)
    plot_gram_heatmaps(weights, titles=titles, mark_index=mark_index, figure=top)
    plot_norm_bars({label: W for label, (W, _) in weights.items()}, titles=titles, mark_index=mark_index,
                   figure=bottom)
    return figure
