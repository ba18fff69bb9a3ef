"""Dimensionality of data points: how the hidden space is shared among the points a model was trained on.

A point ``x`` (``[n]``) goes to the hidden vector ``h = x W`` (``[m]``, W
``[n, m]`` in the notebook's layout).  Over the T points of a dataset, point
j's dimensionality is the feature dimensionality's formula applied to the
hidden vectors instead of the feature directions:

    D_j = ‖h_j‖² / Σ_k (ĥ_j·h_k)²        (the sum includes k = j)

So T points memorised as a regular T-gon in m = 2 dimensions get 2/T each,
orthogonal points 1 each, k points sharing one direction 1/k each, and a
point the model maps to zero 0.  Σ_j D_j ≤ m, as for features.  This is the
measure of the paper's memorisation experiment (ARENA's double descent,
EXPERIMENTS.md §12): while T is small the model keeps its dimensions for the
points (high D_j, feature D_i near 0); once T is large it keeps them for
features instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .weights import _as_weights, _dimensionality, _nan_where_diverged, _np

__all__ = ["data_dimensionality", "hidden_vectors"]


def hidden_vectors(W, points) -> Tensor:
    """The hidden vectors ``h = x W`` of ``points``.

    Args:
        W: ``Float[Tensor, "*inst n m"]`` (feature i is row ``W[..., i, :]``).
        points: ``Float[Tensor, "*inst T n"]``, one data point per row (a fixed
            dataset from ``fastsup.data.dataset(config)`` is feature-major
            ``[I, n, T]``: pass it transposed, ``.transpose(-1, -2)``).

    Returns:
        ``Float[Tensor, "*inst T m"]``.
    """
    W = _as_weights(W)
    if _np is not None and isinstance(points, _np.ndarray):
        points = torch.as_tensor(_np.ascontiguousarray(points))
    if not isinstance(points, Tensor) or not points.is_floating_point():
        raise TypeError(f"points must be a floating torch.Tensor or numpy.ndarray of shape [T, n] or [I, T, n], "
                        f"got {type(points).__name__}{'' if not isinstance(points, Tensor) else f' of {points.dtype}'}")
    if points.ndim != W.ndim or points.shape[-1] != W.shape[-2] or points.shape[:-2] != W.shape[:-2]:
        expected = "[T, n]" if W.ndim == 2 else f"[I={W.shape[0]}, T, n]"
        raise ValueError(f"points must have shape {expected} with n = {W.shape[-2]} (one row per data point, "
                         f"matching W of shape {tuple(W.shape)}), got {tuple(points.shape)}")
    return points.to(W.dtype) @ W


def data_dimensionality(W, points) -> Tensor:
    """Fraction of a hidden dimension each data point gets: ``D_j = ‖h_j‖² / Σ_k (ĥ_j·h_k)²``, ``h = x W``.

    Args:
        W: ``Float[Tensor, "*inst n m"]``.
        points: ``Float[Tensor, "*inst T n"]`` (see :func:`hidden_vectors`).

    Returns:
        ``Float[Tensor, "*inst T"]`` in ``[0, 1]`` (0 for a point mapped to zero;
        NaN for every point of an instance whose weights are not finite).
    """
    W = _as_weights(W)
    return _nan_where_diverged(W, _dimensionality(hidden_vectors(W, points)))
