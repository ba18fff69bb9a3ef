"""How two features' directions relate: the cosine between them, and a name for it.

The correlated-feature experiments (7) ask whether the two features of a pair
are orthogonal (correlated features: a local orthogonal basis), antipodal
(anticorrelated features) or collapsed onto one direction (too many
correlated features for the dimensions).  :func:`pair_cosines` measures it,
:func:`pair_relations` names it with explicit tolerances.  Layout and
conventions as :mod:`fastsup.metrics.weights` (``W`` is ``[*inst, n, m]``,
a zero feature's direction is the zero vector, a diverged instance gives NaN).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from .weights import REPRESENTED_THRESHOLD, _as_weights, _check_threshold

__all__ = ["PAIR_COSINE_TOLERANCE", "PAIR_RELATIONS", "feature_cosines", "pair_cosines", "pair_relations"]

#: What :func:`pair_relations` calls a pair, by code (the code is the index).
PAIR_RELATIONS = ("not represented", "orthogonal", "antipodal", "collapsed", "other", "diverged")
#: How close the cosine must be to 0, -1 or +1 to name the relation: |cos| <= 0.2 is within 11.5° of a
#: right angle; cos <= -0.8 (>= 0.8) within 37° of antipodal (parallel), a loose default: pass a smaller
#: tolerance, or compare :func:`pair_cosines` with your own bound, for a strict test.
PAIR_COSINE_TOLERANCE = 0.2


def feature_cosines(W) -> Tensor:
    """Cosine of the angle between every two features' directions, ``Ŵ_i·Ŵ_j``.

    1 on the diagonal of a represented feature; 0 in the row and column of a
    zero feature (its direction is undefined, as in :func:`~fastsup.metrics.weights.superposition`).

    Args:
        W: ``Float[Tensor, "*inst n m"]``.

    Returns:
        ``Float[Tensor, "*inst n n"]``, NaN for a diverged instance.
    """
    W = _as_weights(W)
    norms = torch.linalg.vector_norm(W, dim=-1)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    W_hat = W / safe.unsqueeze(-1)
    cosines = (W_hat @ W_hat.transpose(-1, -2)).clamp(-1.0, 1.0)  # rounding may step past ±1
    diverged = ~torch.isfinite(W).flatten(-2).all(-1)
    return torch.where(diverged[..., None, None], torch.full_like(cosines, math.nan), cosines)


def _check_pairs(pairs, n_features: int) -> Tensor:
    """``pairs`` as an int64 ``[P, 2]`` tensor of feature indices in ``[0, n_features)``."""
    example = "[(0, 1), (2, 3)]"
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)) or not pairs:
        raise TypeError(f"pairs must be a non-empty list of (i, j) feature-index pairs, e.g. {example}; got {pairs!r}")
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or \
                any(isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in pair):
            raise TypeError(f"each entry of pairs must be two integer feature indices, e.g. {example}; got {pair!r}")
        if any(not 0 <= i < n_features for i in pair) or pair[0] == pair[1]:
            raise ValueError(f"pair {tuple(pair)} must name two different features in [0, {n_features})")
    return torch.tensor([[int(i), int(j)] for i, j in pairs], dtype=torch.int64)


def pair_cosines(W, pairs) -> Tensor:
    """Cosine between the two features of each pair: 0 orthogonal, -1 antipodal, +1 collapsed (parallel).

    Args:
        W: ``Float[Tensor, "*inst n m"]``.
        pairs: feature-index pairs ``[(i, j), ...]``, e.g. a config's
            ``anticorrelated_pairs`` or the pairs of its ``correlated_sets``.

    Returns:
        ``Float[Tensor, "*inst P"]`` (0 where a feature of the pair is zero,
        NaN for a diverged instance).
    """
    W = _as_weights(W)
    index = _check_pairs(pairs, W.shape[-2]).to(W.device)
    cosines = feature_cosines(W)
    return cosines[..., index[:, 0], index[:, 1]]


def pair_relations(W, pairs, *, tolerance: float = PAIR_COSINE_TOLERANCE,
                   threshold: float = REPRESENTED_THRESHOLD) -> Tensor:
    """Name how the two features of each pair sit: a code into :data:`PAIR_RELATIONS`.

    * ``not represented``: a feature of the pair has ``‖W_i‖ <= threshold``;
    * ``orthogonal``: ``|cos| <= tolerance`` (correlated features, a local basis);
    * ``antipodal``: ``cos <= -1 + tolerance`` (anticorrelated features);
    * ``collapsed``: ``cos >= 1 - tolerance`` (correlated features sharing one direction);
    * ``other``: any angle in between; ``diverged``: the instance's weights are not finite.

    Args:
        W: ``Float[Tensor, "*inst n m"]``.
        pairs: feature-index pairs ``[(i, j), ...]``.
        tolerance: in ``(0, 0.5)``, so the three named ranges of the cosine cannot overlap.
        threshold: norm above which a feature counts as represented.

    Returns:
        ``Int64[Tensor, "*inst P"]``; ``PAIR_RELATIONS[code]`` is the name.
    """
    W = _as_weights(W)
    threshold = _check_threshold(threshold)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 < tolerance < 0.5:
        raise ValueError(f"tolerance must be a number in (0, 0.5), so the orthogonal, antipodal and collapsed "
                         f"ranges of the cosine do not overlap; got {tolerance!r}")
    index = _check_pairs(pairs, W.shape[-2]).to(W.device)
    cosine = pair_cosines(W, pairs)
    norms = torch.linalg.vector_norm(W, dim=-1)
    both = (norms[..., index[:, 0]] > threshold) & (norms[..., index[:, 1]] > threshold)
    code = torch.full(cosine.shape, PAIR_RELATIONS.index("other"), dtype=torch.int64, device=W.device)
    code[cosine.abs() <= tolerance] = PAIR_RELATIONS.index("orthogonal")
    code[cosine <= -1 + tolerance] = PAIR_RELATIONS.index("antipodal")
    code[cosine >= 1 - tolerance] = PAIR_RELATIONS.index("collapsed")
    code[~both] = PAIR_RELATIONS.index("not represented")
    code[torch.isnan(cosine)] = PAIR_RELATIONS.index("diverged")
    return code
