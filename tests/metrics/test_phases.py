"""fastsup.metrics.phases: the phase of constructed weights, and the n→n−1 theory against two independent oracles.

The candidate losses are checked against a Monte-Carlo estimate of the loss of the candidate weights themselves
(built here from the solutions' descriptions), and the closed-form boundaries against the argmin of the candidate
losses on a fine grid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastsup.metrics import (
    CANDIDATE_PHASES,
    CANDIDATES,
    DEDICATED,
    NOT_REPRESENTED,
    PHASES,
    SUPERPOSITION,
    analytic_phase,
    best_candidate,
    candidate_losses,
    feature_phase,
    phase_names,
    superposition_boundary,
)

from tests.utils import DTYPE, regular_polygon

NAN = math.nan


@pytest.mark.parametrize(
    "W, expected",
    [
        pytest.param([[1.0], [-1.0]], [SUPERPOSITION] * 2, id="antipodal-2in1"),
        pytest.param([[1.0], [0.0]], [DEDICATED, NOT_REPRESENTED], id="first-kept-2in1"),
        pytest.param([[0.0], [0.9]], [NOT_REPRESENTED, DEDICATED], id="last-kept-2in1"),
        pytest.param([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], [DEDICATED, DEDICATED, NOT_REPRESENTED], id="basis-3in2"),
        pytest.param([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], [SUPERPOSITION, DEDICATED, SUPERPOSITION],
                     id="pair-and-dedicated-3in2"),
        pytest.param(regular_polygon(5).tolist(), [SUPERPOSITION] * 5, id="pentagon-5in2"),
        # The norm threshold is strict: exactly 0.5 is not represented (as metrics.represented).
        pytest.param([[0.5, 0.0], [0.0, 0.51]], [NOT_REPRESENTED, DEDICATED], id="norm-at-threshold-2in2"),
    ],
)
def test_feature_phase_of_constructed_weights(W, expected):
    W = torch.tensor(W, dtype=DTYPE)
    got = feature_phase(W)
    assert got.dtype == DTYPE and got.shape == (W.shape[0],)
    assert got.tolist() == expected


def test_thresholds_move_the_cuts():
    # Unit features at cos = 0.6: each gets S_i = 0.36 from the other.
    W = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 0.4]], dtype=DTYPE)
    assert feature_phase(W).tolist() == [DEDICATED, DEDICATED, NOT_REPRESENTED]
    assert feature_phase(W, superposition_threshold=0.3).tolist() == [SUPERPOSITION, SUPERPOSITION, NOT_REPRESENTED]
    # With the 0.4 feature represented it overlaps feature 1 by 0.8·0.4: S_2 = 0.64, S_1 = 0.36 + 0.32² = 0.4624.
    assert feature_phase(W, norm_threshold=0.3).tolist() == [DEDICATED, DEDICATED, SUPERPOSITION]


def test_batched_phase_and_a_diverged_instance_is_undefined():
    W = torch.tensor([[[1.0], [-1.0]], [[1.0], [0.0]], [[NAN], [1.0]], [[0.2], [math.inf]]])
    codes = feature_phase(W)
    assert codes.shape == (4, 2)
    assert codes[:2].tolist() == [[SUPERPOSITION] * 2, [DEDICATED, NOT_REPRESENTED]]
    assert torch.isnan(codes[2:]).all()
    assert phase_names(codes).tolist() == [
        ["superposition", "superposition"], ["dedicated", "not represented"], ["undefined"] * 2, ["undefined"] * 2,
    ]


def test_phase_names_keeps_the_shape_and_rejects_non_codes():
    names = phase_names(np.array([[0.0, 1.0, 2.0], [2.0, NAN, 0.0]]))
    assert names.shape == (2, 3)
    assert names[0].tolist() == list(PHASES)
    with pytest.raises(ValueError, match="codes"):
        phase_names([0.0, 1.5])
    with pytest.raises(ValueError, match="codes"):
        phase_names([3])


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        pytest.param({"norm_threshold": -0.1}, ValueError, "norm_threshold", id="negative-norm-threshold"),
        pytest.param({"norm_threshold": "0.5"}, TypeError, "norm_threshold", id="string-norm-threshold"),
        pytest.param({"superposition_threshold": math.nan}, ValueError, "superposition_threshold",
                     id="nan-superposition-threshold"),
        pytest.param({"superposition_threshold": True}, TypeError, "superposition_threshold",
                     id="bool-superposition-threshold"),
    ],
)
def test_bad_phase_thresholds(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        feature_phase(torch.eye(2), **kwargs)


def test_bad_weights_are_named():
    with pytest.raises(ValueError, match=r"\bW\b"):
        feature_phase(torch.ones(3))


# --- the theory ----------------------------------------------------------------------------------------------


def candidate_weights(candidate: str, density: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate solution as ReLU-output weights: ``W [n, n−1]``, ``b [n]``, as the solutions are described."""
    m = n - 1
    W, b = torch.zeros(n, m, dtype=DTYPE), torch.zeros(n, dtype=DTYPE)
    if candidate in ("f", "g"):
        dropped = 0 if candidate == "f" else n - 1
        kept = [i for i in range(n) if i != dropped]
        W[kept, range(m)] = 1.0
        b[dropped] = density / 2
    else:
        pair = (0, 1) if candidate == "h_first" else (n - 2, n - 1)
        W[pair[0], 0], W[pair[1], 0] = 1.0, -1.0
        others = [i for i in range(n) if i not in pair]
        W[others, range(1, m)] = 1.0
    return W, b


def monte_carlo_loss(W, b, density, importance, samples=200_000, seed=0):
    """Mean and standard error of Σ_i I_i (x_i − ReLU(x W Wᵀ + b)_i)² over the data distribution."""
    gen = torch.Generator().manual_seed(seed)
    n = W.shape[0]
    x = torch.rand(samples, n, generator=gen, dtype=DTYPE) * (torch.rand(samples, n, generator=gen, dtype=DTYPE) < density)
    I = torch.ones(n, dtype=DTYPE)
    I[-1] = importance
    per_sample = (I * (x - torch.relu(x @ W @ W.T + b)).square()).sum(-1)
    return per_sample.mean().item(), per_sample.std().item() / math.sqrt(samples)


@pytest.mark.parametrize("n", [2, 3], ids=["2to1", "3to2"])
@pytest.mark.parametrize("density, importance", [(0.9, 0.3), (0.3, 2.5), (0.05, 7.0)],
                         ids=["dense-r0.3", "mid-r2.5", "sparse-r7"])
def test_candidate_losses_match_the_loss_of_the_candidate_weights(n, density, importance):
    losses = candidate_losses(density, importance, n)
    assert losses.shape == (len(CANDIDATES),)
    for candidate, loss in zip(CANDIDATES, losses.tolist()):
        if candidate == "h_first" and n == 2:
            assert loss == math.inf  # needs two features of importance 1 besides the last
            continue
        mean, stderr = monte_carlo_loss(*candidate_weights(candidate, density, n), density, importance)
        assert abs(loss - mean) < 5 * stderr, (candidate, loss, mean, stderr)


@pytest.mark.parametrize("n", [2, 3, 5], ids=["2to1", "3to2", "5to4"])
def test_closed_form_phase_equals_the_argmin_of_the_candidates_on_a_fine_grid(n):
    # MW's ranges, 401 × 401 points (r = 1 and s = 4/7 fall on it or next to it).
    s = torch.logspace(-3, 0, 401, dtype=DTYPE)
    r = torch.logspace(-2, 2, 401, dtype=DTYPE)
    S, R = torch.meshgrid(s, r, indexing="ij")
    from_argmin = torch.tensor(CANDIDATE_PHASES, dtype=DTYPE)[best_candidate(S, R, n)]
    closed_form = analytic_phase(S, R, n)
    assert torch.equal(closed_form, from_argmin)
    # Every phase occurs, so the comparison covers all three regions.
    assert set(closed_form.unique().tolist()) == {NOT_REPRESENTED, DEDICATED, SUPERPOSITION}


@pytest.mark.parametrize("importance", [0.1, 10.0], ids=["r0.1", "r10"])
def test_the_stated_example_boundary_is_0_16(importance):
    assert superposition_boundary(importance, 2).item() == pytest.approx(0.16)
    assert analytic_phase([0.159, 0.161], importance, 2).tolist() == [SUPERPOSITION,
                                                                       DEDICATED if importance > 1 else NOT_REPRESENTED]


def test_boundaries_at_r_equal_one_and_for_three_or_more_features():
    assert superposition_boundary(1.0, 2).item() == pytest.approx(4 / 7)
    assert superposition_boundary([0.5, 1.0, 3.0], 3).tolist() == pytest.approx([2 / 4.5, 0.0, 0.0])
    # n ≥ 3, r > 1: the last feature is dedicated at every density, the others superpose below 4/7.
    assert analytic_phase([0.01, 0.5, 1.0], 3.0, 4).tolist() == [DEDICATED] * 3
    assert [CANDIDATES[i] for i in best_candidate([0.5, 0.6], 3.0, 4).tolist()] == ["h_first", "f"]


def test_ties_go_to_the_first_listed_candidate():
    # r = 1: dropping the first or the last feature costs the same; f (last feature dedicated) is taken.
    assert CANDIDATES[best_candidate(0.8, 1.0, 2).item()] == "f"
    # On the boundary itself superposition does not win.
    s_star = superposition_boundary(0.5, 2).item()
    assert analytic_phase(s_star, 0.5, 2).item() == NOT_REPRESENTED


def test_broadcasting_and_dtype():
    losses = candidate_losses(torch.tensor([0.1, 0.5], dtype=torch.float32), torch.tensor([[1.0], [2.0]]), 3)
    assert losses.shape == (2, 2, 4) and losses.dtype == torch.float32
    assert analytic_phase(0.1, 0.5, 2).dtype == torch.float64


@pytest.mark.parametrize(
    "args, exc, name",
    [
        pytest.param((0.0, 1.0, 2), ValueError, "density", id="zero-density"),
        pytest.param((1.5, 1.0, 2), ValueError, "density", id="density-above-one"),
        pytest.param((math.nan, 1.0, 2), ValueError, "density", id="nan-density"),
        pytest.param(("0.1", 1.0, 2), TypeError, "density", id="string-density"),
        pytest.param((0.1, -1.0, 2), ValueError, "importance", id="negative-importance"),
        pytest.param((0.1, math.inf, 2), ValueError, "importance", id="inf-importance"),
        pytest.param((0.1, True, 2), TypeError, "importance", id="bool-importance"),
        pytest.param((0.1, 1.0, 1), ValueError, "n_features", id="one-feature"),
        pytest.param((0.1, 1.0, 2.0), TypeError, "n_features", id="float-n-features"),
    ],
)
def test_bad_theory_inputs(args, exc, name):
    for fn in (candidate_losses, best_candidate, analytic_phase):
        with pytest.raises(exc, match=name):
            fn(*args)
