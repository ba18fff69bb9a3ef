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
  ``min_gain`` (the product does not depend on how the model splits it
  between W1 and W2, which the ReLU's scale symmetry leaves free, and the
  task fixes its scale: computing |x| exactly takes a gain of 1 on each
  side); a feature that is not represented uses none;
* feature i is an abs pair when it uses exactly two neurons, their ``W1_ik``
  have opposite signs and both ``W2_ki`` are positive.

A feature carried by one neuron and the output bias, by three neurons, or
by two neurons reading it with the same sign is not an abs pair.

Sparser models share neurons, and the paper's **asymmetric superposition**
motif appears ([KG] cells 130–133): one neuron k is used by two features,
reading feature a strongly and b weakly (``|W1_ak| ≥ ratio · |W1_bk|``) and
writing them back the other way round (``|W2_kb| ≥ ratio · |W2_ka|``), so
both path gains are of order 1 but x_a alone leaks a large false output
``|W1_ak| · W2_kb`` into b.  The model cancels it with **inhibition**: other
neurons that fire with k when x_a is on k's side (same sign of W1 on a)
write negatively into b.  :func:`asymmetric_neurons` finds the motif's
neurons; :func:`inhibited_neurons` those of them whose leak into b is
cancelled: the summed gain from a into b of every neuron firing with k on x_a,
k included, is below ``min_gain`` (no path left, in the sense above).  An
instance whose W1 or W2 is not finite has no abs pair (and NaN counts), as
the other measures treat diverged instances.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .weights import _as_weights, _nan_where_diverged

__all__ = ["ASYMMETRY_RATIO", "MIN_GAIN", "abs_pairs", "asymmetric_neurons", "inhibited_neurons", "n_abs_pairs",
           "path_gains", "used_neurons"]

#: A neuron whose path gain for a feature is at least this is one the feature uses.  On the trained dense
#: 3→6 models that compute |x| (tests/experiments/test_computation.py) a pair's two gains are 1 to 0.1%
#: and every other gain is below 0.002, so any cut in [0.01, 0.9] gives the same answer there; 0.25
#: leaves room on both sides.
MIN_GAIN = 0.25
#: How much larger a motif neuron's weight on one feature must be than on the other, in W1 and (reversed) in
#: W2.  On the neurons two features share in trained 6→10 models (S = 0.8, 12 models at the small scale)
#: the two ratios run from 1.1 to 6 with no gap between motif and not; 2 keeps the clear cases.
ASYMMETRY_RATIO = 2.0


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


def _check_min_gain(min_gain) -> float:
    if isinstance(min_gain, bool) or not isinstance(min_gain, (int, float)):
        raise TypeError(f"min_gain must be a positive number, got {min_gain!r}")
    if not (min_gain > 0.0 and math.isfinite(min_gain)):
        raise ValueError(f"min_gain must be a positive finite number (a path gain; 1 computes |x| exactly), "
                         f"got {min_gain}")
    return float(min_gain)


def path_gains(W1, W2) -> Tensor:
    """``g_ik = W1_ik · W2_ki``: how much of feature i neuron k carries back to output i, ``[*inst, n, m]``.

    Args:
        W1: ``Float[Tensor, "*inst n m"]``, the input weights.
        W2: ``Float[Tensor, "*inst m n"]``, the output weights.
    """
    W1, W2 = _as_pair(W1, W2)
    return W1 * W2.transpose(-1, -2)


def used_neurons(W1, W2, min_gain: float = MIN_GAIN) -> Tensor:
    """``Bool[Tensor, "*inst n m"]``: the neurons each feature uses, ``|g_ik| ≥ min_gain``."""
    min_gain = _check_min_gain(min_gain)
    return path_gains(W1, W2).abs() >= min_gain


def abs_pairs(W1, W2, min_gain: float = MIN_GAIN) -> Tensor:
    """``Bool[Tensor, "*inst n"]``: feature i uses exactly two neurons, with opposite-sign W1 and positive W2.

    False for every feature of an instance whose weights are not finite.
    """
    W1, W2 = _as_pair(W1, W2)
    used = used_neurons(W1, W2, min_gain)
    two = used.sum(dim=-1) == 2
    signs = torch.where(used, torch.sign(W1), torch.zeros_like(W1))
    opposite = (signs > 0).any(dim=-1) & (signs < 0).any(dim=-1)
    positive_out = (~used | (W2.transpose(-1, -2) > 0)).all(dim=-1)
    finite = (torch.isfinite(W1).flatten(-2).all(-1) & torch.isfinite(W2).flatten(-2).all(-1)).unsqueeze(-1)
    return two & opposite & positive_out & finite


def n_abs_pairs(W1, W2, min_gain: float = MIN_GAIN) -> Tensor:
    """The number of features that are abs pairs, ``Float[Tensor, "*inst"]`` (NaN for a diverged instance)."""
    W1, W2 = _as_pair(W1, W2)
    count = abs_pairs(W1, W2, min_gain).sum(dim=-1).to(W1.dtype)
    return _nan_where_diverged(W2, _nan_where_diverged(W1, count))


def _check_ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise TypeError(f"ratio must be a number > 1, got {ratio!r}")
    if not ratio > 1.0:
        raise ValueError(f"ratio must be > 1 (how much larger one feature's weight is than the other's), got {ratio}")
    return float(ratio)


def _motif_candidates(W1: Tensor, W2: Tensor, min_gain: float, ratio: float) -> Tensor:
    """``Bool[*inst, a, b, m]``: neuron k is used by features a ≠ b, reads a ``ratio`` times more strongly than b
    and writes b ``ratio`` times more strongly than a."""
    used = used_neurons(W1, W2, min_gain)
    both = used.unsqueeze(-2) & used.unsqueeze(-3)  # [*inst, a, b, m]
    reads, writes = W1.abs(), W2.transpose(-1, -2).abs()  # both [*inst, n, m]
    reads_a_more = reads.unsqueeze(-2) >= ratio * reads.unsqueeze(-3)
    writes_b_more = writes.unsqueeze(-3) >= ratio * writes.unsqueeze(-2)
    n = W1.shape[-2]
    distinct = ~torch.eye(n, dtype=torch.bool, device=W1.device).unsqueeze(-1)
    return both & reads_a_more & writes_b_more & distinct


def asymmetric_neurons(W1, W2, min_gain: float = MIN_GAIN, ratio: float = ASYMMETRY_RATIO) -> Tensor:
    """``Bool[Tensor, "*inst m"]``: the neurons of an asymmetric superposition motif (see the module docstring).

    Neuron k is one when two features a ≠ b both use it (:func:`used_neurons` with ``min_gain``), with
    ``|W1_ak| ≥ ratio · |W1_bk|`` and ``|W2_kb| ≥ ratio · |W2_ka|``.
    """
    W1, W2 = _as_pair(W1, W2)
    min_gain, ratio = _check_min_gain(min_gain), _check_ratio(ratio)
    return _motif_candidates(W1, W2, min_gain, ratio).flatten(-3, -2).any(dim=-2)


def inhibited_neurons(W1, W2, min_gain: float = MIN_GAIN, ratio: float = ASYMMETRY_RATIO) -> Tensor:
    """``Bool[Tensor, "*inst m"]``: asymmetric neurons (:func:`asymmetric_neurons`) whose leak is cancelled.

    For a motif neuron k reading a and writing b, x_a on k's side (t > 0 along ``sign(W1_ak)``) drives
    every neuron j with ``sign(W1_aj) = sign(W1_ak)``, which adds ``t · |W1_aj| · W2_jb`` to output b.
    k is inhibited when that summed gain over j (k included) is below ``min_gain``, where k's own leak
    ``|W1_ak| · W2_kb`` is at least ``ratio`` times either of its two gains.
    """
    W1, W2 = _as_pair(W1, W2)
    min_gain, ratio = _check_min_gain(min_gain), _check_ratio(ratio)
    candidates = _motif_candidates(W1, W2, min_gain, ratio)  # [*inst, a, b, k]
    side = torch.sign(W1)  # [*inst, a, k]
    same_side = (side.unsqueeze(-1) == side.unsqueeze(-2)) & (side.unsqueeze(-1) != 0)  # [*inst, a, k, j]
    drive = W1.abs().unsqueeze(-2) * same_side  # [*inst, a, k, j]: |W1_aj| for the neurons firing with k
    total = drive @ W2.unsqueeze(-3)  # [*inst, a, k, b]: summed output into b when x_a is on k's side
    cancelled = (total < min_gain).transpose(-1, -2)  # [*inst, a, b, k]
    return (candidates & cancelled).flatten(-3, -2).any(dim=-2)
