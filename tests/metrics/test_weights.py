"""Tests for fastsup.metrics.weights on polytopes whose answers are known in closed form."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from fastsup.metrics import (
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    n_represented,
    represented,
    superposition,
)

from tests.utils import DTYPE, regular_polygon, tetrahedron


def pentagon_superposition() -> float:
    return sum(math.cos(2 * math.pi * k / 5) ** 2 for k in range(1, 5))


# (W, expected D_i, expected superposition_i, expected D*)
POLYTOPES = [
    pytest.param(
        torch.tensor([[1.0], [-1.0]], dtype=DTYPE),
        [0.5, 0.5],
        [1.0, 1.0],
        0.5,
        id="antipodal-2in1",
    ),
    pytest.param(
        torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=DTYPE),
        [0.5, 0.5],
        [1.0, 1.0],
        1.0,
        id="antipodal-2in2",
    ),
    pytest.param(regular_polygon(3), [2 / 3] * 3, [0.5] * 3, 2 / 3, id="triangle-3in2"),
    pytest.param(
        regular_polygon(5),
        [2 / 5] * 5,
        [pentagon_superposition()] * 5,
        2 / 5,
        id="pentagon-5in2",
    ),
    pytest.param(tetrahedron(), [3 / 4] * 4, [1 / 3] * 4, 3 / 4, id="tetrahedron-4in3"),
    pytest.param(torch.eye(3, dtype=DTYPE), [1.0] * 3, [0.0] * 3, 1.0, id="basis-3in3"),
    pytest.param(
        torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=DTYPE),
        [1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0],
        1.0,
        id="basis-plus-unlearned-3in2",
    ),
    pytest.param(
        torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=DTYPE),
        [0.5, 0.5, 0.0, 1.0],
        [1.0, 1.0, 0.0, 0.0],
        2 / 3,
        id="antipodal-dedicated-unlearned-4in2",
    ),
]


@pytest.mark.parametrize("W, dims, sup, dstar", POLYTOPES)
def test_feature_dimensionality(W, dims, sup, dstar):
    got = feature_dimensionality(W)
    assert got.shape == (W.shape[0],)
    assert not torch.isnan(got).any()
    torch.testing.assert_close(got, torch.tensor(dims, dtype=DTYPE))


@pytest.mark.parametrize("W, dims, sup, dstar", POLYTOPES)
def test_superposition(W, dims, sup, dstar):
    got = superposition(W)
    assert got.shape == (W.shape[0],)
    torch.testing.assert_close(got, torch.tensor(sup, dtype=DTYPE))


@pytest.mark.parametrize("W, dims, sup, dstar", POLYTOPES)
def test_dimensions_per_feature(W, dims, sup, dstar):
    got = dimensions_per_feature(W)
    assert got.shape == ()
    torch.testing.assert_close(got, torch.tensor(dstar, dtype=DTYPE))


def test_pentagon_superposition_closed_form_is_three_halves():
    # Σ_{k=1..4} cos²(2πk/5) = 3/2, so D = 1 / (1 + 3/2) = 2/5.
    assert pentagon_superposition() == pytest.approx(1.5)
    torch.testing.assert_close(
        superposition(regular_polygon(5)), torch.full((5,), 1.5, dtype=DTYPE)
    )


@pytest.mark.parametrize(
    "W, expected",
    [
        pytest.param(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), [5.0, 0.0], id="3-4-5-and-zero"),
        pytest.param(0.7 * regular_polygon(5), [0.7] * 5, id="scaled-pentagon"),
        pytest.param(tetrahedron(), [1.0] * 4, id="tetrahedron"),
    ],
)
def test_feature_norms(W, expected):
    torch.testing.assert_close(feature_norms(W), torch.tensor(expected, dtype=W.dtype))


def test_dimensionality_is_scale_and_rotation_invariant():
    W = regular_polygon(5)
    theta = 0.3
    R = torch.tensor(
        [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
        dtype=DTYPE,
    )
    torch.testing.assert_close(
        feature_dimensionality(0.37 * W @ R), torch.full((5,), 0.4, dtype=DTYPE)
    )


def test_zero_matrix_no_nan_no_warnings():
    W = torch.zeros(2, 4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norms = feature_norms(W)
        sup = superposition(W)
        dims = feature_dimensionality(W)
        dstar = dimensions_per_feature(W)
    assert torch.equal(norms, torch.zeros(2, 4))
    assert torch.equal(sup, torch.zeros(2, 4))
    assert torch.equal(dims, torch.zeros(2, 4))
    assert torch.equal(dstar, torch.full((2,), math.inf))
    assert torch.equal(n_represented(W), torch.zeros(2, dtype=torch.int64))


def test_gradients_finite_with_unlearned_feature():
    W = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.5]], requires_grad=True)
    (feature_dimensionality(W).sum() + superposition(W).sum()).backward()
    assert torch.isfinite(W.grad).all()


def test_batched_matches_per_instance():
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(4, 6, 3, generator=gen)
    W[1, 2] = 0.0  # an unlearned feature inside the batch
    for fn in (feature_norms, superposition, feature_dimensionality, represented):
        batched = fn(W)
        assert batched.shape == (4, 6), fn.__name__
        for i in range(W.shape[0]):
            torch.testing.assert_close(batched[i], fn(W[i]), msg=fn.__name__)
    for fn in (dimensions_per_feature, n_represented):
        batched = fn(W)
        assert batched.shape == (4,), fn.__name__
        for i in range(W.shape[0]):
            torch.testing.assert_close(batched[i], fn(W[i]), msg=fn.__name__)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_keeps_dtype(dtype):
    W = regular_polygon(3).to(dtype)
    for fn in (feature_norms, superposition, feature_dimensionality, dimensions_per_feature):
        assert fn(W).dtype == dtype, fn.__name__
    torch.testing.assert_close(
        feature_dimensionality(W), torch.full((3,), 2 / 3, dtype=dtype)
    )


def test_float32_tiny_interference_not_lost():
    # Masking the diagonal (not subtracting ‖W_i‖²) keeps tiny overlaps exact.
    W = torch.tensor([[1.0, 0.0], [1e-4, 1.0]], dtype=torch.float32)
    sup = superposition(W)
    assert sup[0].item() == pytest.approx(1e-8, rel=1e-4)


def test_represented_and_count():
    W = torch.tensor([[1.0, 0.0], [0.0, 0.4], [0.3, 0.3], [0.0, 0.0], [0.0, 0.6]])
    assert represented(W).tolist() == [True, False, False, False, True]
    assert n_represented(W).item() == 2
    assert n_represented(W, threshold=0.1).item() == 4
    assert n_represented(W, threshold=0).item() == 4
    assert n_represented(W).dtype == W.dtype  # float, so a diverged instance can be NaN
    batched = torch.stack([W, 2 * W])
    assert n_represented(batched).tolist() == [2, 4]


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_diverged_instance_gets_nan_not_zero(bad):
    """A NaN/inf instance is not an instance that learned nothing: every measure says NaN for it."""
    W = torch.stack([regular_polygon(5), regular_polygon(5)])
    W[1, 2, 0] = bad
    for fn in (feature_norms, superposition, feature_dimensionality):
        out = fn(W)
        assert torch.isnan(out[1]).all() and torch.isfinite(out[0]).all(), fn.__name__
    for fn in (dimensions_per_feature, n_represented):
        out = fn(W)
        assert torch.isnan(out[1]) and out[0].item() == pytest.approx(5 if fn is n_represented else 0.4), fn.__name__
    assert not represented(W)[1].any()


def test_accepts_numpy():
    W = regular_polygon(5).numpy()
    got = feature_dimensionality(W)
    assert isinstance(got, torch.Tensor)
    torch.testing.assert_close(got, torch.full((5,), 0.4, dtype=DTYPE))
    # Non-contiguous (negative-stride) arrays work too.
    torch.testing.assert_close(feature_norms(W[::-1]), torch.ones(5, dtype=DTYPE))


ALL_FUNCS = [
    feature_norms,
    superposition,
    feature_dimensionality,
    dimensions_per_feature,
    represented,
    n_represented,
]


@pytest.mark.parametrize("fn", ALL_FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "W, exc",
    [
        pytest.param(torch.ones(3), ValueError, id="1d-tensor"),
        pytest.param(torch.ones(2, 2, 2, 2), ValueError, id="4d-tensor"),
        pytest.param(torch.ones(3, 2, dtype=torch.int64), TypeError, id="int-tensor"),
        pytest.param(torch.ones(3, 2, dtype=torch.bool), TypeError, id="bool-tensor"),
        pytest.param(np.ones((3, 2), dtype=np.int32), TypeError, id="int-numpy"),
        pytest.param([[1.0, 0.0]], TypeError, id="list"),
        pytest.param(torch.ones(3, 0), ValueError, id="no-hidden-dims"),
    ],
)
def test_bad_W(fn, W, exc):
    with pytest.raises(exc, match=r"\bW\b"):
        fn(W)


@pytest.mark.parametrize("fn", [represented, n_represented], ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "threshold, exc",
    [
        pytest.param(-0.1, ValueError, id="negative"),
        pytest.param(math.nan, ValueError, id="nan"),
        pytest.param(math.inf, ValueError, id="inf"),
        pytest.param("0.5", TypeError, id="string"),
        pytest.param(True, TypeError, id="bool"),
    ],
)
def test_bad_threshold(fn, threshold, exc):
    with pytest.raises(exc, match="threshold"):
        fn(torch.eye(2), threshold=threshold)


# --------------------------------------------------------------------------
# Pairs of features (correlated / anticorrelated experiments)
# --------------------------------------------------------------------------
from fastsup.metrics import PAIR_RELATIONS, feature_cosines, pair_cosines, pair_relations  # noqa: E402


def unit(angle_degrees: float, length: float = 1.0) -> list[float]:
    a = math.radians(angle_degrees)
    return [length * math.cos(a), length * math.sin(a)]


def test_feature_cosines_of_a_pentagon_are_the_cosines_of_multiples_of_72_degrees():
    W = 0.8 * regular_polygon(5)
    expected = torch.tensor([[math.cos(2 * math.pi * (j - i) / 5) for j in range(5)] for i in range(5)], dtype=DTYPE)
    torch.testing.assert_close(feature_cosines(W), expected)


def test_feature_cosines_zero_feature_row_and_column_are_zero():
    W = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-2.0, 0.0]], dtype=DTYPE)
    expected = torch.tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 1.0]], dtype=DTYPE)
    torch.testing.assert_close(feature_cosines(W), expected)


# Two pairs per case: (0, 1) and (2, 3), in 2-D.
PAIR_CASES = [
    pytest.param([unit(10), unit(100), unit(200), unit(290)], [0.0, 0.0], ["orthogonal", "orthogonal"],
                 id="two-local-bases"),
    pytest.param([unit(30), unit(210, 0.9), unit(120, 1.1), unit(300)], [-1.0, -1.0], ["antipodal", "antipodal"],
                 id="two-antipodal-pairs"),
    pytest.param([unit(45, 0.7), unit(45, 0.72), unit(0), unit(60)], [1.0, 0.5], ["collapsed", "other"],
                 id="collapsed-pair-and-60-degrees"),
    pytest.param([unit(0), unit(0, 0.3), unit(0), unit(170)], [1.0, math.cos(math.radians(170))],
                 ["not represented", "antipodal"], id="short-feature-and-170-degrees"),
]


@pytest.mark.parametrize("W, cosines, relations", PAIR_CASES)
def test_pair_cosines_and_relations_on_constructed_pairs(W, cosines, relations):
    W = torch.tensor(W, dtype=DTYPE)
    pairs = [(0, 1), (2, 3)]
    torch.testing.assert_close(pair_cosines(W, pairs), torch.tensor(cosines, dtype=DTYPE))
    assert [PAIR_RELATIONS[c] for c in pair_relations(W, pairs).tolist()] == relations


def test_pair_relations_tolerance_sets_the_boundary():
    # cos(80°) = 0.174 is orthogonal at the default tolerance 0.2, "other" at 0.1.
    W = torch.tensor([unit(0), unit(80)], dtype=DTYPE)
    assert PAIR_RELATIONS[pair_relations(W, [(0, 1)]).item()] == "orthogonal"
    assert PAIR_RELATIONS[pair_relations(W, [(0, 1)], tolerance=0.1).item()] == "other"


def test_pair_measures_batched_and_diverged():
    W = torch.tensor([[unit(0), unit(180), unit(90)],
                      [unit(0), unit(90), unit(90)],
                      [unit(0), [math.nan, 0.0], unit(90)]], dtype=DTYPE)
    pairs = [(0, 1), (1, 2)]
    cos = pair_cosines(W, pairs)
    torch.testing.assert_close(cos[:2], torch.tensor([[-1.0, 0.0], [0.0, 1.0]], dtype=DTYPE))
    assert torch.isnan(cos[2]).all()
    names = [[PAIR_RELATIONS[c] for c in row] for row in pair_relations(W, pairs).tolist()]
    assert names == [["antipodal", "orthogonal"], ["orthogonal", "collapsed"], ["diverged", "diverged"]]


@pytest.mark.parametrize("pairs, error, match", [
    pytest.param([], TypeError, "non-empty list", id="empty"),
    pytest.param([(0,)], TypeError, "two integer feature indices", id="one-index"),
    pytest.param([(0, 1.0)], TypeError, "two integer feature indices", id="float-index"),
    pytest.param([(0, 3)], ValueError, r"in \[0, 3\)", id="out-of-range"),
    pytest.param([(1, 1)], ValueError, "two different features", id="same-feature"),
    pytest.param("01", TypeError, "non-empty list", id="string"),
])
def test_pair_measures_bad_pairs_name_the_argument(pairs, error, match):
    W = torch.tensor([unit(0), unit(90), unit(180)], dtype=DTYPE)
    with pytest.raises(error, match=match):
        pair_cosines(W, pairs)


@pytest.mark.parametrize("tolerance", [0.0, 0.5, -0.1, True], ids=["zero", "half", "negative", "bool"])
def test_pair_relations_bad_tolerance(tolerance):
    W = torch.tensor([unit(0), unit(90)], dtype=DTYPE)
    with pytest.raises(ValueError, match="tolerance must be a number in"):
        pair_relations(W, [(0, 1)], tolerance=tolerance)
