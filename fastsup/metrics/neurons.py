"""Neurons of a privileged basis (the ``relu_hidden`` model): how monosemantic each hidden neuron is.

With W ``[*inst, n, m]`` in the notebook's layout, neuron k's weights on the
features are the column ``W[..., :, k]``.  Its monosemanticity is
``max_i |W_ik| / ‖W_:k‖``: 1 when the neuron reads a single feature, 1/√j
when it reads j features equally, down to 1/√n.  [AR]'s
``sort_W_by_monosemanticity`` orders the neurons by it and shades those above
0.99 as monosemantic (its docstring says 90%; the code uses 0.99).

A dead neuron (an all-zero column) reads no feature: its monosemanticity is
0 and it is neither monosemantic nor polysemantic (a live neuron at or below
the threshold).  An instance whose weights are not finite gets
NaN (and no monosemantic neuron), as the weight measures do.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .weights import _as_weights, _check_threshold, _nan_where_diverged

__all__ = ["MONOSEMANTIC_THRESHOLD", "monosemantic_neurons", "n_monosemantic", "n_polysemantic",
           "neuron_monosemanticity"]

MONOSEMANTIC_THRESHOLD = 0.99  # [AR] L487-525's shading threshold


def neuron_monosemanticity(W) -> Tensor:
    """``max_i |W_ik| / ‖W_:k‖`` per neuron: ``Float[Tensor, "*inst m"]`` in ``[0, 1]`` (0 for a dead neuron).

    Args:
        W: ``Float[Tensor, "*inst n m"]``, neuron ``k``'s weights are the column ``W[..., :, k]``.
    """
    W = _as_weights(W)
    norms = torch.linalg.vector_norm(W, dim=-2)
    largest = W.abs().amax(dim=-2)
    alive = norms > 0
    value = torch.where(alive, largest / torch.where(alive, norms, torch.ones_like(norms)), torch.zeros_like(norms))
    return _nan_where_diverged(W, value)


def monosemantic_neurons(W, threshold: float = MONOSEMANTIC_THRESHOLD) -> Tensor:
    """``Bool[Tensor, "*inst m"]``: the neurons whose monosemanticity exceeds ``threshold`` (in [0, 1])."""
    threshold = _check_threshold(threshold)
    if threshold > 1:
        raise ValueError(f"threshold must lie in [0, 1] (monosemanticity is at most 1), got {threshold}")
    return neuron_monosemanticity(W) > threshold


def n_monosemantic(W, threshold: float = MONOSEMANTIC_THRESHOLD) -> Tensor:
    """The number of monosemantic neurons, ``Float[Tensor, "*inst"]`` (NaN for a diverged instance)."""
    W = _as_weights(W)
    return _nan_where_diverged(W, monosemantic_neurons(W, threshold).sum(dim=-1).to(W.dtype))


def n_polysemantic(W, threshold: float = MONOSEMANTIC_THRESHOLD) -> Tensor:
    """The number of live neurons (a nonzero column) that are not monosemantic, ``Float[Tensor, "*inst"]``
    (NaN for a diverged instance)."""
    W = _as_weights(W)
    alive = torch.linalg.vector_norm(W, dim=-2) > 0
    polysemantic = alive & ~monosemantic_neurons(W, threshold)
    return _nan_where_diverged(W, polysemantic.sum(dim=-1).to(W.dtype))
