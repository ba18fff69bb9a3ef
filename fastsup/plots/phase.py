"""Phase diagrams: the last feature's phase over density × relative importance, with the theory on top."""

from __future__ import annotations

import textwrap

import numpy as np
import torch
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fastsup import metrics

__all__ = ["PHASE_COLOURS", "phase_colours", "plot_phase_diagram"]

#: [KG] cell 31's colours: white not represented, blue own dimension, red superposition.
PHASE_COLOURS = {metrics.NOT_REPRESENTED: "white", metrics.DEDICATED: "blue", metrics.SUPERPOSITION: "red"}
CANDIDATE_COLOURS = ("tab:blue", "lightgrey", "tab:cyan", "tab:red")  # f, g, h_first, h_last (as their last-feature phase)
DIVERGED_COLOUR = "0.5"
TITLE_CHARS_PER_INCH = 11  # at fontsize 10, so a generated title wraps instead of running off the figure
THEORY_RESOLUTION = 400  # points per axis of the analytic phase behind the boundary lines


def phase_colours(norm, superposition) -> np.ndarray:
    """[KG]'s colour square, ``[..., 3]`` RGB: the norm (clamped to 1) runs from white to the
    superposition's colour, which (clamped to 1) runs from blue to red; NaN gives grey."""
    x = np.clip(np.asarray(norm, dtype=float), None, 1.0)[..., None]
    y = np.clip(np.asarray(superposition, dtype=float), None, 1.0)[..., None]
    white, blue, red = (np.array(to_rgb(PHASE_COLOURS[code])) for code in
                        (metrics.NOT_REPRESENTED, metrics.DEDICATED, metrics.SUPERPOSITION))
    colours = (1 - x) * white + x * ((1 - y) * blue + y * red)
    return np.where(np.isnan(colours), np.array(to_rgb(DIVERGED_COLOUR)), colours)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges of log-spaced centres: geometric midpoints, extended half a step beyond each end."""
    logs = np.log10(centres)
    mids = (logs[1:] + logs[:-1]) / 2
    return 10 ** np.concatenate([[2 * logs[0] - mids[0]], mids, [2 * logs[-1] - mids[-1]]])


def _theory_grid(density: np.ndarray, importance: np.ndarray):
    """The (density, importance) lattice the theory is drawn on; densities above 1 do not exist."""
    s = torch.logspace(np.log10(density.min()), min(np.log10(density.max()), 0.0), THEORY_RESOLUTION,
                       dtype=torch.float64)
    r = torch.logspace(np.log10(importance.min()), np.log10(importance.max()), THEORY_RESOLUTION,
                       dtype=torch.float64)
    S, R = torch.meshgrid(s, r, indexing="ij")
    return S, R


def _draw_boundaries(ax, S, R, n_features: int) -> None:
    phase = metrics.analytic_phase(S, R, n_features).numpy()
    ax.contour(R.numpy(), S.numpy(), phase, levels=[0.5, 1.5], colors="black", linewidths=1.2)


def plot_phase_diagram(table, *, n_features: int, with_candidates: bool = False, title: str | None = None,
                       ax_size: float = 4.5) -> Figure:
    """The empirical phase diagram of the last feature, coloured as [KG], with the analytic boundaries.

    Args:
        table: one row per grid point with columns ``density``,
            ``relative_importance``, ``last_norm`` and ``last_superposition``
            (the phase-diagram experiments' table).
        n_features: ``n`` of the n→n−1 model, for the theory's boundaries.
        with_candidates: add a panel of the theory's least-loss candidate
            solution at every point (:func:`fastsup.metrics.best_candidate`).
        title: the figure's title.
        ax_size: size of each panel in inches.
    """
    density = np.sort(table["density"].unique())
    importance = np.sort(table["relative_importance"].unique())
    grid = table.pivot(index="density", columns="relative_importance", values=["last_norm", "last_superposition"])
    colours = phase_colours(grid["last_norm"].to_numpy(), grid["last_superposition"].to_numpy())
    x_edges, y_edges = _edges(importance), _edges(density)
    S, R = _theory_grid(y_edges, x_edges)

    panels = 2 if with_candidates else 1
    fig = Figure(figsize=(panels * ax_size + 0.5, ax_size + 1.0), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    ax.pcolormesh(x_edges, y_edges, colours, shading="flat")
    _draw_boundaries(ax, S, R, n_features)
    ax.set_title("best restart per point; lines: analytic boundaries", fontsize=9)
    ax.legend(handles=[Patch(facecolor=PHASE_COLOURS[code], edgecolor="black", label=metrics.PHASES[code])
                       for code in PHASE_COLOURS], loc="lower right", fontsize=8, framealpha=0.9)
    if with_candidates:
        ax = axes[1]
        candidate = metrics.best_candidate(S, R, n_features).numpy()
        ax.pcolormesh(R.numpy(), S.numpy(), candidate, cmap=ListedColormap(CANDIDATE_COLOURS),
                      vmin=-0.5, vmax=len(metrics.CANDIDATES) - 0.5, shading="auto", rasterized=True)
        _draw_boundaries(ax, S, R, n_features)
        ax.set_title("least-loss candidate solution (theory)", fontsize=9)
        present = sorted(set(np.unique(candidate).tolist()))
        ax.legend(handles=[Patch(facecolor=CANDIDATE_COLOURS[i], edgecolor="black",
                                 label=f"{metrics.CANDIDATES[i]}: {metrics.CANDIDATE_DESCRIPTIONS[i]}")
                           for i in present], loc="lower right", fontsize=8, framealpha=0.9)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(x_edges[0], x_edges[-1])
        ax.set_ylim(y_edges[0], y_edges[-1])
        ax.set_xlabel("relative importance of the last feature")
        ax.set_ylabel("density 1-S")
    if title:
        fig.suptitle(textwrap.fill(title, width=int(TITLE_CHARS_PER_INCH * fig.get_figwidth())), fontsize=10)
    return fig
