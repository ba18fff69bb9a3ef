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
