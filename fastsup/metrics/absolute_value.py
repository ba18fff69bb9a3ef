"""How the untied ``abs`` model computes |x|: which neurons each feature uses, and whether they form a pair.

The ``abs`` model (``h = ReLU(x W1)``, ``y = ReLU(h W2 + b)``, target
``|x|``) has ``W1`` ``[*inst, n, m]`` (feature i's input weight on neuron k
is ``W1[..., i, k]``) and ``W2`` ``[*inst, m, n]`` (neuron k's output weight
on feature i is ``W2[..., k, i]``).  For one feature alone, neuron k adds
``W2_ki · ReLU(W1_ik · x_i)`` to output i, so its **path gain**
``g_ik = W1_ik · W2_ki`` says how much of feature i it carries back to i.

The dense solution ([KG] cells 124–126, the paper's "computation" section)
is the identity ``|x| = ReLU(x) + ReLU(−x)``: each feature uses two neurons,
one with ``W1 > 0`` and one with ``W1 < 0``, both writing back with
``W2 > 0``.  We call that an **abs pair**:

* the neurons feature i **uses** are those whose ``|g_ik|`` is at least
  ``share`` of the feature's largest ``|g_ik'|`` (a relative cut, so it does
  not depend on how the model splits the gain between W1 and W2, which
  weight decay and the ReLU's scale symmetry leave free); a feature whose
  gains are all zero uses none;
* feature i is an abs pair when it uses exactly two neurons, their ``W1_ik``
  have opposite signs and both ``W2_ki`` are positive.

A feature carried by one neuron and the output bias, by three neurons, or
by two neurons reading it with the same sign is not an abs pair.  An
instance whose W1 or W2 is not finite has no abs pair (and NaN counts), as
the other measures treat diverged instances.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .weights import _as_weights, _nan_where_diverged

__all__ = ["USED_SHARE", "abs_pairs", "n_abs_pairs", "path_gains", "used_neurons"]

#: A neuron carrying at least this fraction of a feature's largest path gain is one the feature uses.  On
#: trained dense 3→6 models the pair's two gains are within a factor 1.6 of each other and every other
#: gain is below 1% of the largest (see tests/experiments/test_computation.py), so any cut in about
#: [0.05, 0.6] gives the same answer there; 0.25 sits in the middle on a log scale.
USED_SHARE = 0.25


def _as_pair(W1, W2) -> tuple[Tensor, Tensor]:
    """Validate ``W1 [*inst, n, m]`` and ``W2 [*inst, m, n]`` (the abs model's layout) as one dtype."""
    try:
        W1 = _as_weights(W1)
    except (TypeError, ValueError) as error:
        raise type(error)(f"W1: {error}") from None
    try:
        W2 = _as_weights(W2)
    except (TypeError, ValueError) as error:
        raise type(error)(f"W2: {error}") from None
    if W2.shape != W1.shape[:-2] + (W1.shape[-1], W1.shape[-2]):
        raise ValueError(f"W2 must have shape [*inst, m, n] = {list(W1.shape[:-2]) + [W1.shape[-1], W1.shape[-2]]} "
                         f"to match W1 {list(W1.shape)} ([*inst, n, m]); got {list(W2.shape)}")
    dtype = torch.promote_types(W1.dtype, W2.dtype)
    return W1.to(dtype), W2.to(device=W1.device, dtype=dtype)


def _check_share(share) -> float:
    if isinstance(share, bool) or not isinstance(share, (int, float)):
        raise TypeError(f"share must be a number in (0, 1], got {share!r}")
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must lie in (0, 1] (a fraction of the feature's largest path gain), got {share}")
    return float(share)


def path_gains(W1, W2) -> Tensor:
    """``g_ik = W1_ik · W2_ki``: how much of feature i neuron k carries back to output i, ``[*inst, n, m]``.

    Args:
        W1: ``Float[Tensor, "*inst n m"]``, the input weights.
        W2: ``Float[Tensor, "*inst m n"]``, the output weights.
    """
    W1, W2 = _as_pair(W1, W2)
    return W1 * W2.transpose(-1, -2)


def used_neurons(W1, W2, share: float = USED_SHARE) -> Tensor:
    """``Bool[Tensor, "*inst n m"]``: the neurons each feature uses, ``|g_ik| ≥ share · max_k' |g_ik'| > 0``."""
    share = _check_share(share)
    gains = path_gains(W1, W2).abs()
    largest = gains.amax(dim=-1, keepdim=True)
    return (gains >= share * largest) & (largest > 0)


def abs_pairs(W1, W2, share: float = USED_SHARE) -> Tensor:
    """``Bool[Tensor, "*inst n"]``: feature i uses exactly two neurons, with opposite-sign W1 and positive W2.

    False for every feature of an instance whose weights are not finite.
    """
    W1, W2 = _as_pair(W1, W2)
    used = used_neurons(W1, W2, share)
    two = used.sum(dim=-1) == 2
    signs = torch.where(used, torch.sign(W1), torch.zeros_like(W1))
    opposite = (signs > 0).any(dim=-1) & (signs < 0).any(dim=-1)
    positive_out = (~used | (W2.transpose(-1, -2) > 0)).all(dim=-1)
    finite = (torch.isfinite(W1).flatten(-2).all(-1) & torch.isfinite(W2).flatten(-2).all(-1)).unsqueeze(-1)
    return two & opposite & positive_out & finite


def n_abs_pairs(W1, W2, share: float = USED_SHARE) -> Tensor:
    """The number of features that are abs pairs, ``Float[Tensor, "*inst"]`` (NaN for a diverged instance)."""
    W1, W2 = _as_pair(W1, W2)
    count = abs_pairs(W1, W2, share).sum(dim=-1).to(W1.dtype)
    return _nan_where_diverged(W2, _nan_where_diverged(W1, count))
