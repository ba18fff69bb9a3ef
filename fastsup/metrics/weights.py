"""Measures of superposition for toy-model weight matrices (norms, overlaps, dimensionalities).

Shape conventions
-----------------
Every function takes the weight matrix in the notebook's layout,
``W: Float[Tensor, "*inst n m"]`` with ``*inst`` either empty (one model,
``[n, m]``) or one instance axis (``[I, n, m]``). ``n`` is the number of
features and ``m`` the number of hidden dimensions; feature ``i``'s direction
is its row ``W[..., i, :]``. (ARENA's ``W`` is ``[inst, d_hidden, feats]``:
pass ``W.transpose(-1, -2)``.) Results keep the leading ``*inst`` shape, the
input's dtype and device. NumPy arrays are accepted and converted to tensors.

Formulas
--------
With ``W_i`` the i-th row and ``Ŵ_i = W_i / ‖W_i‖``:

* feature norm            ``‖W_i‖``                       (≈1 represented, ≈0 not)
* superposition           ``S_i = Σ_{j≠i} (Ŵ_i·W_j)²``    (0 = orthogonal to the rest)
* feature dimensionality  ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²`` (sum includes ``j = i``,
  so ``D_i = ‖W_i‖² / (‖W_i‖² + S_i)``): 1 dedicated dimension, 1/2 antipodal
  pair, 2/3 triangle, 2/5 pentagon, 3/4 tetrahedron, 3/8 square antiprism,
  0 not learned
* dimensions per feature  ``D* = m / ‖W‖_F²``
* represented features    ``‖W_i‖ > threshold`` (0.5 is usual)

Zero rows: ``Ŵ_i`` is undefined for ``W_i = 0``; it is taken as the zero
vector, so a zero row has superposition 0 and dimensionality 0 (not NaN).
The divisions are guarded with safe denominators, so gradients stay finite
too. An all-zero matrix has ``D* = +inf`` (see :func:`dimensions_per_feature`).

Diverged instances: an instance whose ``[n, m]`` matrix holds a NaN or inf
gets NaN from every measure (``represented`` is False for it), so it is never
counted as an instance that learned nothing.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

try:  # NumPy is optional for torch; accept its arrays when it is present.
    import numpy as _np
except ImportError:  # pragma: no cover - numpy ships with matplotlib
    _np = None

__all__ = [
    "feature_norms",
    "superposition",
    "feature_dimensionality",
    "dimensions_per_feature",
    "represented",
    "n_represented",
]


REPRESENTED_THRESHOLD = 0.5  # the usual norm above which a feature counts as represented


def _as_weights(W) -> Tensor:
    """Validate ``W`` and return it as a floating tensor of shape ``[*inst, n, m]``."""
    if _np is not None and isinstance(W, _np.ndarray):
        W = torch.as_tensor(_np.ascontiguousarray(W))
    if not isinstance(W, Tensor):
        raise TypeError(
            "W must be a torch.Tensor or numpy.ndarray of shape [n, m] or "
            f"[I, n, m], got {type(W).__name__}"
        )
    if W.ndim not in (2, 3):
        raise ValueError(
            "W must have shape [n, m] or [I, n, m] (ndim 2 or 3), got "
            f"ndim {W.ndim} with shape {tuple(W.shape)}"
        )
    if not W.is_floating_point():
        raise TypeError(
            f"W must have a floating dtype (e.g. torch.float32), got {W.dtype}"
        )
    if W.shape[-1] == 0:
        raise ValueError(
            f"W must have at least one hidden dimension (m >= 1), got shape "
            f"{tuple(W.shape)}"
        )
    return W


def _nan_where_diverged(W: Tensor, value: Tensor) -> Tensor:
    """``value`` (shape ``[*inst]`` or ``[*inst, n]``) with NaN for every instance whose weights are not finite."""
    diverged = ~torch.isfinite(W).flatten(-2).all(-1)  # [*inst]
    if value.ndim > diverged.ndim:
        diverged = diverged.unsqueeze(-1)
    return torch.where(diverged, torch.full_like(value, math.nan), value)


def _check_threshold(threshold, name: str = "threshold") -> float:
    if isinstance(threshold, Tensor) and threshold.numel() == 1:
        threshold = threshold.item()
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(
            f"{name} must be a real number, got {type(threshold).__name__}"
        )
    threshold = float(threshold)
    if not math.isfinite(threshold) or threshold < 0:
        raise ValueError(
            f"{name} must be a finite non-negative number, got {threshold}"
        )
    return threshold


def _norms_and_overlaps(W: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(‖W_i‖ [..., n], Σ_{j≠i} (Ŵ_i·W_j)² [..., n])``."""
    norms = torch.linalg.vector_norm(W, dim=-1)
    nonzero = norms > 0
    safe = torch.where(nonzero, norms, torch.ones_like(norms))
    W_hat = W / safe.unsqueeze(-1)  # zero rows stay zero
    proj = W_hat @ W.transpose(-1, -2)  # [..., n, n]: Ŵ_i·W_j
    n = W.shape[-2]
    off_diag = ~torch.eye(n, dtype=torch.bool, device=W.device)
    # Mask the diagonal rather than subtracting ‖W_i‖² afterwards: no
    # cancellation when the interference is tiny next to the norm.
    sup = (proj.square() * off_diag).sum(dim=-1)
    return norms, sup


def feature_norms(W) -> Tensor:
    """Length of each feature's direction.

    Args:
        W: ``Float[Tensor, "*inst n m"]``, feature ``i`` is row ``W[..., i, :]``.

    Returns:
        ``Float[Tensor, "*inst n"]``: ``‖W_i‖``.
    """
    W = _as_weights(W)
    return _nan_where_diverged(W, torch.linalg.vector_norm(W, dim=-1))


def superposition(W) -> Tensor:
    """How strongly the other features project onto each feature's direction.

    ``S_i = Σ_{j≠i} (Ŵ_i·W_j)²`` with ``Ŵ_i = W_i/‖W_i‖``. 0 means ``W_i`` is
    orthogonal to every other feature; 1 or more means the others activate
    it as strongly as it activates itself. The notebook and ARENA colour
    norm bars by ``sqrt(S_i)`` ("polysemanticity"). A zero row gives 0.

    Args:
        W: ``Float[Tensor, "*inst n m"]``.

    Returns:
        ``Float[Tensor, "*inst n"]``.
    """
    W = _as_weights(W)
    return _nan_where_diverged(W, _norms_and_overlaps(W)[1])


def feature_dimensionality(W) -> Tensor:
    """Fraction of a dimension each feature gets.

    ``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²`` where the sum includes ``j = i``:
    1 for a dedicated dimension, 1/2 antipodal pair, 2/3 triangle, 2/5
    pentagon, 3/4 tetrahedron, 3/8 square antiprism. A zero (unlearned) row
    gives 0, without NaN or warnings.

    Args:
        W: ``Float[Tensor, "*inst n m"]``.

    Returns:
        ``Float[Tensor, "*inst n"]`` with values in ``[0, 1]``.
    """
    W = _as_weights(W)
    return _nan_where_diverged(W, _dimensionality(W))


def _dimensionality(vectors: Tensor) -> Tensor:
    """``‖v_i‖² / Σ_j (v̂_i·v_j)²`` of every row ``v_i`` of ``vectors`` ``[..., k, m]`` (0 for a zero row): the
    share of the ``m`` dimensions each of the ``k`` vectors gets, whether they are features or data points."""
    norms, sup = _norms_and_overlaps(vectors)
    num = norms.square()
    den = num + sup
    ok = den > 0
    safe = torch.where(ok, den, torch.ones_like(den))
    return torch.where(ok, num / safe, torch.zeros_like(den))


def dimensions_per_feature(W) -> Tensor:
    """Hidden dimensions per (effectively) represented feature.

    ``D* = m / ‖W‖_F²``. Since ``‖W‖_F² = Σ_i ‖W_i‖²`` counts represented
    features (a unit-norm feature contributes 1, an unlearned one 0), this is
    1 with no superposition, 1/2 for antipodal pairs, and so on.

    An all-zero matrix (nothing learned) gives ``+inf``: the limit of
    ``m / ‖W‖_F²`` as the weights shrink, i.e. ``m`` dimensions shared by no
    features. It is never NaN. Filter it with ``torch.isfinite`` before
    averaging; matplotlib simply does not draw infinite points.

    Args:
        W: ``Float[Tensor, "*inst n m"]``.

    Returns:
        ``Float[Tensor, "*inst"]`` (a 0-d tensor for a 2-D ``W``).
    """
    W = _as_weights(W)
    m = W.shape[-1]
    fro2 = torch.linalg.matrix_norm(W, ord="fro").square()
    ok = fro2 > 0
    safe = torch.where(ok, fro2, torch.ones_like(fro2))
    return _nan_where_diverged(W, torch.where(ok, m / safe, torch.full_like(fro2, math.inf)))


def represented(W, threshold: float = REPRESENTED_THRESHOLD) -> Tensor:
    """Whether each feature is represented: ``‖W_i‖ > threshold``.

    Args:
        W: ``Float[Tensor, "*inst n m"]``.
        threshold: finite, non-negative norm threshold (0.5 is usual).

    Returns:
        ``Bool[Tensor, "*inst n"]``.
    """
    threshold = _check_threshold(threshold)
    return feature_norms(W) > threshold


def n_represented(W, threshold: float = REPRESENTED_THRESHOLD) -> Tensor:
    """Number of represented features, ``#{i : ‖W_i‖ > threshold}``.

    Args:
        W: ``Float[Tensor, "*inst n m"]``.
        threshold: finite, non-negative norm threshold (0.5 is usual).

    Returns:
        ``Float[Tensor, "*inst"]`` in ``W``'s dtype (whole numbers, NaN for a
        diverged instance; a 0-d tensor for a 2-D ``W``).
    """
    W = _as_weights(W)
    return _nan_where_diverged(W, represented(W, threshold).sum(dim=-1).to(W.dtype))
