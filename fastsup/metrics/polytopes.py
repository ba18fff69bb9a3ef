"""Name the polytope a small group of features forms, from their dimensionality fractions.

The rule, per instance:

1. The group is the represented features (``‖W_i‖ > norm_threshold``); pass
   ``W[..., rows, :]`` to label a chosen subset. ``k`` is their number.
2. Their dimensionalities ``D_i`` are computed among themselves. A uniform
   polytope of ``k`` features spanning ``d`` dimensions gives every feature
   ``D_i = d/k`` (the features form a tight frame, so ``Σ D_i = d``), so
   ``d = round(Σ D_i)`` and the group is uniform when every ``|D_i − d/k| ≤ tol``.
3. A uniform group is named by ``(k, d)``: :data:`POLYTOPE_NAMES`, ``"{k}-gon"``
   for other polygons, ``"dedicated"`` for ``d = k`` (every feature its own
   dimension), ``"{k} in {d}d"`` for an unnamed uniform polytope.

Why ``(k, d)`` and not ``D_i`` alone: the fraction does not name a polytope.
1/2 is an antipodal pair (2 in 1), a square (4 in 2: two antipodal pairs at
right angles) and an octahedron (6 in 3) alike.

``D_i`` sees squared overlaps only, so it cannot tell an antipodal pair from
two parallel features, or a triangle from one with a vertex flipped. For
groups in one or two dimensions (the phase diagrams, 5→2) the geometry is
checked as well: the pair must point in opposite directions, and a polygon's
vertices must be evenly spaced in angle (each gap within ``tol·2π/k`` of
``2π/k``). A group that fails a check, or is not uniform, is ``"irregular"``.
Three-dimensional groups (tetrahedron, octahedron, square antiprism) are
named from the fractions alone.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from .phases import UNDEFINED
from .weights import REPRESENTED_THRESHOLD, _as_weights, _check_threshold, feature_dimensionality

__all__ = ["POLYTOPE_NAMES", "POLYTOPE_TOLERANCE", "polytope_label"]

POLYTOPE_NAMES = {
    (2, 1): "antipodal pair",
    (3, 2): "triangle",
    (4, 2): "square",
    (5, 2): "pentagon",
    (6, 2): "hexagon",
    (4, 3): "tetrahedron",
    (6, 3): "octahedron",
    (8, 3): "square antiprism",
}
# Trained 5→2 pentagons (3,000 steps, density 0.05 and 0.02; measured 2026-12-01, torch backend on CPU) had
# every D_i within 0.007 of 2/5 with uniform importance and within 0.026 with importance 0.9^i; the
# neighbouring fractions (1/3, 2/5, 1/2, 2/3) are at least 1/15 apart.
POLYTOPE_TOLERANCE = 0.05
NO_FEATURES, IRREGULAR = "none", "irregular"


def _evenly_spaced(directions: Tensor, d: int, tol: float) -> bool:
    """Whether unit ``directions`` ``[k, m]`` spanning ``d ≤ 2`` dimensions are an antipodal pair or a regular polygon."""
    k = directions.shape[0]
    _, _, Vh = torch.linalg.svd(directions, full_matrices=False)
    coords = directions @ Vh[:d].T  # [k, d]: the directions in their own span
    if d == 1:
        return bool(coords[0, 0] * coords[1, 0] < 0)
    angles = torch.atan2(coords[:, 1], coords[:, 0]).sort().values
    gaps = torch.diff(angles, append=angles[:1] + 2 * math.pi)
    step = 2 * math.pi / k
    return bool(((gaps - step).abs() <= tol * step).all())


def _label_group(group: Tensor, tol: float) -> str:
    k = group.shape[0]
    if k == 0:
        return NO_FEATURES
    dims = feature_dimensionality(group)
    d = round(dims.sum().item())
    if d < 1 or ((dims - d / k).abs() > tol).any():
        return IRREGULAR
    if d == k:
        return "dedicated"
    if d <= 2 and not _evenly_spaced(group / group.norm(dim=-1, keepdim=True), d, tol):
        return IRREGULAR
    if (k, d) in POLYTOPE_NAMES:
        return POLYTOPE_NAMES[k, d]
    return f"{k}-gon" if d == 2 else f"{k} in {d}d"


def polytope_label(W, norm_threshold: float = REPRESENTED_THRESHOLD, tol: float = POLYTOPE_TOLERANCE):
    """The polytope formed by each instance's represented features (see the module docstring for the rule).

    Args:
        W: ``Float[Tensor, "*inst n m"]``, feature ``i`` is row ``W[..., i, :]``.
        norm_threshold: features with ``‖W_i‖`` above it form the group.
        tol: how far each ``D_i`` may sit from ``d/k`` (and a polygon's angle
            gaps from even spacing, relative to ``2π/k``); in ``(0, 1)``.

    Returns:
        For ``W`` of shape ``[n, m]`` one label, for ``[I, n, m]`` a list of ``I``:
        a name from :data:`POLYTOPE_NAMES`, ``"{k}-gon"``, ``"{k} in {d}d"``,
        ``"dedicated"``, ``"irregular"``, ``"none"`` (nothing represented) or
        ``"undefined"`` (non-finite weights).
    """
    norm_threshold = _check_threshold(norm_threshold, "norm_threshold")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a real number in (0, 1), got {type(tol).__name__}")
    if not 0 < tol < 1:
        raise ValueError(f"tol must be a real number in (0, 1), got {tol!r}")
    W = _as_weights(W)
    instances = W.detach().to(torch.float64).reshape(-1, *W.shape[-2:])
    labels = [
        UNDEFINED if not torch.isfinite(w).all() else _label_group(w[w.norm(dim=-1) > norm_threshold], tol)
        for w in instances
    ]
    return labels[0] if W.ndim == 2 else labels
