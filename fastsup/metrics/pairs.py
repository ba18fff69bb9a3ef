"""How the features of a pair or set relate: the cosine between them, a name for it, and whether a set sits
side by side.

The correlated-feature experiments (7) ask whether the two features of a pair
are orthogonal (correlated features: a local orthogonal basis), antipodal
(anticorrelated features) or collapsed onto one direction (too many
correlated features for the dimensions: the set is read through its
principal component).  :func:`pair_cosines` measures it,
:func:`pair_relations` names it with explicit tolerances.  When correlated
sets cannot all be orthogonal in 2-D, [AR] sees them "side by side":
:func:`sets_side_by_side` says whether each set's features are neighbours in
the angular order, not interleaved with other features.  Layout and
conventions as :mod:`fastsup.metrics.weights` (``W`` is ``[*inst, n, m]``,
a zero feature's direction is the zero vector, a diverged instance gives NaN).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from .weights import REPRESENTED_THRESHOLD, _as_weights, _check_threshold

__all__ = ["PAIR_COSINE_TOLERANCE", "PAIR_RELATIONS", "feature_cosines", "pair_cosines", "pair_relations",
           "sets_side_by_side"]

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


def _check_sets(sets, n_features: int, *, name: str, size: int | None, example: str) -> list[tuple[int, ...]]:
    """``sets`` as tuples of different feature indices in ``[0, n_features)``: exactly ``size`` each, or at
    least two when ``size`` is None."""
    count = "two" if size == 2 else "at least two"
    if isinstance(sets, (str, bytes)) or not isinstance(sets, (list, tuple)) or not sets:
        raise TypeError(f"{name} must be a non-empty list of feature-index {'pairs' if size == 2 else 'sets'}, "
                        f"e.g. {example}; got {sets!r}")
    checked = []
    for members in sets:
        if not isinstance(members, (list, tuple)) or len(members) < 2 or (size is not None and len(members) != size) \
                or any(isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in members):
            raise TypeError(f"each entry of {name} must be {count} integer feature indices, e.g. {example}; "
                            f"got {members!r}")
        if any(not 0 <= i < n_features for i in members) or len(set(members)) != len(members):
            raise ValueError(f"{name[:-1]} {tuple(members)} must name {count} different features in [0, {n_features})")
        checked.append(tuple(int(i) for i in members))
    return checked


def _check_pairs(pairs, n_features: int) -> Tensor:
    """``pairs`` as an int64 ``[P, 2]`` tensor of feature indices in ``[0, n_features)``."""
    return torch.tensor(_check_sets(pairs, n_features, name="pairs", size=2, example="[(0, 1), (2, 3)]"),
                        dtype=torch.int64)


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


def sets_side_by_side(W, sets, *, threshold: float = REPRESENTED_THRESHOLD) -> Tensor:
    """Whether each set's represented features are neighbours in the angular order of a 2-D model.

    Sort every represented feature's direction by angle around the origin;
    a set sits side by side when its members form one unbroken run of that
    circular order, i.e. all represented features outside the set lie in one
    of the arcs between circularly consecutive members.  A collapsed set
    (its members parallel) and a local orthogonal basis are side by side;
    two antipodal pairs crossed at right angles are not (each pair splits
    the other).  A feature outside the set pointing exactly along a member
    separates nothing.

    Args:
        W: ``Float[Tensor, "*inst n 2"]``.
        sets: feature-index sets ``[(i, j, ...), ...]`` (two or more each),
            e.g. a config's ``correlated_sets``.
        threshold: norm above which a feature counts as represented; features
            at or below it are left out of the order.

    Returns:
        ``Bool[Tensor, "*inst S"]``; False for a set with fewer than two
        represented members (nothing to sit side by side) and for a diverged
        instance.
    """
    W = _as_weights(W)
    if W.shape[-1] != 2:
        raise ValueError(f"W must have 2 hidden dimensions ([n, 2] or [I, n, 2]): side by side is an order of "
                         f"angles in the plane; got shape {tuple(W.shape)}")
    threshold = _check_threshold(threshold)
    sets = _check_sets(sets, W.shape[-2], name="sets", size=None, example="[(0, 1), (2, 3, 4)]")
    angles = torch.atan2(W[..., 1], W[..., 0])  # [*inst, n]
    shown = torch.linalg.vector_norm(W, dim=-1) > threshold
    finite = torch.isfinite(W).flatten(-2).all(-1)
    answers = []
    for members in sets:
        in_set = torch.zeros(W.shape[-2], dtype=torch.bool, device=W.device)
        in_set[list(members)] = True
        member = shown & in_set  # [*inst, n]
        n_members = member.sum(-1)
        # Each outside feature's arc: how many members lie at a smaller angle, modulo the number of members
        # (0 and all members below are the same arc, the one that wraps through ±π).
        below = (angles.unsqueeze(-1) > angles.unsqueeze(-2)) & member.unsqueeze(-2)  # [*inst, outside, member]
        on_member = ((angles.unsqueeze(-1) == angles.unsqueeze(-2)) & member.unsqueeze(-2)).any(-1)
        arc = below.sum(-1) % n_members.clamp(min=1).unsqueeze(-1)
        outside = shown & ~in_set & ~on_member
        lowest = torch.where(outside, arc, torch.full_like(arc, W.shape[-2])).amin(-1)
        highest = torch.where(outside, arc, torch.full_like(arc, -1)).amax(-1)
        answers.append((n_members >= 2) & (highest <= lowest) & finite)  # no outside feature: highest = -1
    return torch.stack(answers, dim=-1)
