"""The phase of a feature: measured on trained weights, and predicted in closed form for n→n−1 models.

A feature is in one of three phases, coded the same way in every table and
figure (the colours are those of the Code Companion's phase diagrams, [KG]
cell 31):

======  ===================  ==================================================  ======
code    phase                rule on the feature's row of ``W``                  colour
======  ===================  ==================================================  ======
0       ``not represented``  ``‖W_i‖ ≤ norm_threshold``                          white
1       ``dedicated``        represented, ``S_i ≤ superposition_threshold``      blue
2       ``superposition``    represented, ``S_i > superposition_threshold``      red
NaN     ``undefined``        the instance diverged (non-finite weights)
======  ===================  ==================================================  ======

``S_i = Σ_{j≠i} (Ŵ_i·W_j)²`` is :func:`~fastsup.metrics.superposition`. [KG]
colours each point continuously by ``min(‖W_i‖, 1)`` and ``min(S_i, 1)``;
the default thresholds of 0.5 cut that colour square in the middle, so a
point gets the phase whose colour it is closest to.

The theory ([MW] "Exploring Exact Toy Models", PAPER.md §5) compares four
candidate solutions of the ReLU-output model with ``n`` features in ``n − 1``
hidden dimensions, all importances 1 but the last, ``r``. Every coordinate is
nonzero with probability ``s``, the DENSITY (``1 − S``), and then uniform on
[0, 1]. The expected loss is summed over features:

=========  ==================================================  =================  ============
candidate  solution                                            loss               last feature
=========  ==================================================  =================  ============
f          drop the first feature (its bias ``s/2``)           ``s/3 − s²/4``     dedicated
g          drop the last feature (its bias ``s/2``)            ``r(s/3 − s²/4)``  not repr.
h_first    features 1 and 2 antipodal in one dimension         ``s²/3``           dedicated
h_last     the last two features antipodal in one dimension    ``(1+r)s²/6``      superposition
=========  ==================================================  =================  ============

(A dropped feature costs its variance ``s/3 − s²/4``; an antipodal pair
errs only when both are on, by ``min(x_1, x_2)``, whose square has mean 1/6.)
``h_first`` needs two features of importance 1 besides the last, so it does
not exist for 2→1 (its loss is ``+inf`` there). The predicted phase is that of
the candidate with the least loss; ties go to the candidate listed first.
Solving the inequalities gives the boundaries of :func:`superposition_boundary`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..config import check_integer
from .weights import (
    REPRESENTED_THRESHOLD,
    _as_weights,
    _check_threshold,
    _nan_where_diverged,
    _norms_and_overlaps,
)

__all__ = [
    "PHASES",
    "NOT_REPRESENTED",
    "DEDICATED",
    "SUPERPOSITION",
    "UNDEFINED",
    "SUPERPOSITION_THRESHOLD",
    "feature_phase",
    "phase_names",
    "CANDIDATES",
    "CANDIDATE_DESCRIPTIONS",
    "CANDIDATE_PHASES",
    "candidate_losses",
    "best_candidate",
    "superposition_boundary",
    "analytic_phase",
]

PHASES = ("not represented", "dedicated", "superposition")  # PHASES[code] names a phase code
NOT_REPRESENTED, DEDICATED, SUPERPOSITION = range(len(PHASES))
UNDEFINED = "undefined"  # the name of a NaN code (a diverged instance)
SUPERPOSITION_THRESHOLD = 0.5  # the middle of [KG]'s colour scale, as REPRESENTED_THRESHOLD is for the norm

CANDIDATES = ("f", "g", "h_first", "h_last")
CANDIDATE_DESCRIPTIONS = ("drop the first feature", "drop the last feature", "features 1 and 2 antipodal",
                          "the last two antipodal")
CANDIDATE_PHASES = (DEDICATED, NOT_REPRESENTED, DEDICATED, SUPERPOSITION)  # the last feature's phase per candidate


def feature_phase(
    W,
    norm_threshold: float = REPRESENTED_THRESHOLD,
    superposition_threshold: float = SUPERPOSITION_THRESHOLD,
) -> Tensor:
    """Each feature's phase code: 0 not represented, 1 dedicated, 2 in superposition, NaN diverged.

    Args:
        W: ``Float[Tensor, "*inst n m"]``, feature ``i`` is row ``W[..., i, :]``.
        norm_threshold: a feature with ``‖W_i‖`` at or below it is not represented.
        superposition_threshold: a represented feature with ``S_i`` above it is in
            superposition, otherwise it has a dedicated dimension.

    Returns:
        ``Float[Tensor, "*inst n"]`` of codes (float so that a diverged instance
        can be NaN); :func:`phase_names` turns them into words. [KG]'s phase
        diagrams look at the last feature only: ``feature_phase(W)[..., -1]``.
    """
    norm_threshold = _check_threshold(norm_threshold, "norm_threshold")
    superposition_threshold = _check_threshold(superposition_threshold, "superposition_threshold")
    W = _as_weights(W)
    norms, sup = _norms_and_overlaps(W)
    codes = torch.where(
        norms > norm_threshold,
        torch.where(sup > superposition_threshold, SUPERPOSITION, DEDICATED),
        NOT_REPRESENTED,
    ).to(W.dtype)
    return _nan_where_diverged(W, codes)


def phase_names(codes) -> np.ndarray:
    """The phase names of codes from :func:`feature_phase` or :func:`analytic_phase` (same shape, ``"undefined"`` for NaN)."""
    codes = np.asarray(torch.as_tensor(codes).detach().cpu().double())
    valid = np.isnan(codes) | np.isin(codes, range(len(PHASES)))
    if not valid.all():
        raise ValueError(
            f"codes must be phase codes 0..{len(PHASES) - 1} or NaN, got {codes[~valid].ravel()[:5].tolist()}"
        )
    table = np.array((*PHASES, UNDEFINED), dtype=object)
    return table[np.where(np.isnan(codes), len(PHASES), np.nan_to_num(codes)).astype(int)]


def _as_float_tensor(name: str, value, *, upper: float) -> Tensor:
    """``value`` as a floating tensor (float64 unless it already is a floating tensor), each entry in (0, upper]."""
    if isinstance(value, bool) or isinstance(value, str):
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}")
    if isinstance(value, Tensor) and value.is_floating_point():
        tensor = value
    else:
        try:
            tensor = torch.from_numpy(np.array(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if not (torch.isfinite(tensor) & (tensor > 0) & (tensor <= upper)).all():
        bounds = "(0, 1]" if upper == 1 else "positive and finite"
        raise ValueError(f"{name} must be {bounds} everywhere, got {tensor.flatten()[:5].tolist()}")
    return tensor


def _density_importance(density, importance, n_features) -> tuple[Tensor, Tensor, int]:
    s = _as_float_tensor("density", density, upper=1.0)
    r = _as_float_tensor("importance", importance, upper=math.inf)
    n = check_integer("n_features", n_features, 2)
    s, r = torch.broadcast_tensors(*(t.to(torch.promote_types(s.dtype, r.dtype)) for t in (s, r)))
    return s, r, n


def candidate_losses(density, importance, n_features: int) -> Tensor:
    """Expected loss of each candidate solution, ``[..., 4]`` in the order of :data:`CANDIDATES`.

    Args:
        density: probability ``s = 1 − S`` that a feature is on, in (0, 1].
        importance: the last feature's importance ``r`` relative to the others
            (positive); broadcast against ``density``.
        n_features: ``n`` of the n→n−1 model (at least 2; ``h_first`` is
            ``+inf`` for ``n = 2``, where it does not exist).

    Returns:
        ``Float[Tensor, "... 4"]``, summed over features (the mean over
        features that [KG] trains on divides every candidate by ``n``, which
        changes no argmin).
    """
    s, r, n = _density_importance(density, importance, n_features)
    dropped = s / 3 - s.square() / 4  # the variance of one feature
    superposed_pair = s.square() / 6  # per unit importance of each member
    h_first = 2 * superposed_pair if n >= 3 else torch.full_like(s, math.inf)
    return torch.stack([dropped, r * dropped, h_first, (1 + r) * superposed_pair], dim=-1)


def best_candidate(density, importance, n_features: int) -> Tensor:
    """Index into :data:`CANDIDATES` of the least-loss candidate (ties: the one listed first)."""
    losses = candidate_losses(density, importance, n_features)
    # argmin's choice among exact ties is not documented by torch: take the first by hand.
    is_min = losses == losses.min(dim=-1, keepdim=True).values
    return is_min.to(torch.int8).argmax(dim=-1)


def superposition_boundary(importance, n_features: int) -> Tensor:
    """The density below which the last feature is superposed (``h_last`` wins); 0 where it never is.

    * 2→1: ``4r/(2+5r)`` for ``r < 1`` (``h_last`` against ``g``) and
      ``4/(5+2r)`` for ``r ≥ 1`` (against ``f``); both are 4/7 at ``r = 1``,
      and ``r = 0.1`` or ``r = 10`` give 0.16.
    * n ≥ 3: ``4r/(2+5r)`` for ``r < 1``; for ``r ≥ 1`` the last feature keeps
      its own dimension at every density (``h_first`` is cheaper than ``h_last``
      then, and the two others superpose below ``s = 4/7``).

    Above the boundary the last feature is dedicated for ``r ≥ 1`` and not
    represented for ``r < 1`` (:func:`analytic_phase`).
    """
    _, r, n = _density_importance(1.0, importance, n_features)
    below_one = 4 * r / (2 + 5 * r)
    above_one = 4 / (5 + 2 * r) if n == 2 else torch.zeros_like(r)
    return torch.where(r < 1, below_one, above_one)


def analytic_phase(density, importance, n_features: int) -> Tensor:
    """The last feature's phase code predicted by the closed-form boundaries (no argmin).

    Equal to ``CANDIDATE_PHASES[best_candidate(...)]`` everywhere (tests check
    it on a fine grid); on a boundary itself the non-superposed phase is taken,
    as :func:`best_candidate` does with ties.

    Returns:
        ``Float[Tensor, "..."]`` of phase codes (see :data:`PHASES`), in the
        promoted dtype of ``density`` and ``importance``.
    """
    s, r, n = _density_importance(density, importance, n_features)
    outside = torch.where(r >= 1, DEDICATED, NOT_REPRESENTED)
    codes = torch.where(s < superposition_boundary(r, n), SUPERPOSITION, outside)
    return codes.to(s.dtype)
