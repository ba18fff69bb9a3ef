"""Feature geometry: dimensions per feature D* = m/‖W‖_F² and each feature's dimensionality D_i
against 1/(1-S), with reference lines at the fractions that regular polytopes give D_i."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from fastsup import metrics

__all__ = ["POLYTOPE_FRACTIONS", "plot_feature_geometry"]

#: D_i of a feature in a dedicated dimension (1), a tetrahedron (3/4), a triangle (2/3), an antipodal
#: pair (1/2), a pentagon (2/5), a square antiprism (3/8), and 1/3.
POLYTOPE_FRACTIONS = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8, 1 / 3)


def _fraction_label(value: float) -> str:
    return str(Fraction(value).limit_denominator(20))


def plot_feature_geometry(
    weights: Mapping[str, object],
    densities: Mapping[str, Sequence[float]],
    *,
    titles: Mapping[str, str] | None = None,
    suptitle: str | None = None,
    fractions: Sequence[float] = POLYTOPE_FRACTIONS,
    jitter: float = 0.04,
    ax_size: float = 5.0,
) -> Figure:
    """One panel per run: D* per instance (a black line) over a scatter of every feature's D_i,
    against 1/(1-S) on a log axis, with dotted lines at ``fractions``.

    The D_i dots are jittered along x by a factor ``exp(N(0, jitter))`` (a fixed generator, so the
    figure is reproducible), since all features of an instance share one density.  Instances whose
    D* is infinite (nothing learned) leave a gap in the line.

    Args:
        weights: run label → ``W`` ``[I, n, m]`` (tensor or array).
        densities: run label → the density 1-S of each of its ``I`` instances.
        titles: run label → the panel's title.
        suptitle: title of the whole figure.
        fractions: heights of the reference lines.
        jitter: spread of the dots along the log x axis (0: no jitter).
        ax_size: width and height of each panel in inches.
    """
    if set(densities) != set(weights):
        raise ValueError(f"densities must have the same run labels as weights ({', '.join(weights)}); "
                         f"got {', '.join(densities)}")
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter < 1:
        raise ValueError(f"jitter must be a number in [0, 1), got {jitter!r}")
    fig = Figure(figsize=(len(weights) * ax_size + 0.5, ax_size), layout="constrained")
    axes = fig.subplots(1, len(weights), squeeze=False)[0]
    generator = np.random.default_rng(0)
    for ax, (label, W) in zip(axes, weights.items()):
        W = metrics._as_weights(W).detach().cpu().double()
        density = np.asarray(densities[label], dtype=float)
        if density.shape != (W.shape[0],) or not ((density > 0) & (density <= 1)).all():
            raise ValueError(f"densities[{label!r}] must hold one density in (0, 1] per instance "
                             f"({W.shape[0]}), got {densities[label]!r}")
        inverse = 1.0 / density
        dims = metrics.feature_dimensionality(W).numpy()  # [I, n]
        dstar = metrics.dimensions_per_feature(W).numpy()  # [I]
        for value in fractions:
            ax.axhline(value, color="0.75", lw=0.8, ls=":", zorder=0)
            ax.annotate(_fraction_label(value), (1.0, value), xycoords=("axes fraction", "data"),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=8, color="0.4")
        x = inverse[:, None] * np.exp(jitter * generator.standard_normal(dims.shape))
        ax.scatter(x.ravel(), dims.ravel(), s=6, color="tab:blue", alpha=0.35, linewidths=0, label="D_i per feature")
        ax.plot(inverse, np.where(np.isfinite(dstar), dstar, np.nan), color="black", marker="o", ms=3, lw=1.5,
                label="D* = m/‖W‖_F²")
        ax.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")  # 3, not 3×10⁰
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_ylim(-0.03, 1.1)
        ax.set_xlabel("1/(1-S)")
        ax.set_ylabel("dimensions per feature")
        if titles is not None:
            ax.set_title(titles[label], fontsize=9)
        ax.legend(loc="upper right", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig
