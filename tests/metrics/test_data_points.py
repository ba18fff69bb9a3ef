"""fastsup.metrics.data_points on constructed points whose hidden vectors have known dimensionalities."""

from __future__ import annotations

import math

import pytest
import torch

from fastsup.metrics import data_dimensionality, feature_dimensionality, hidden_vectors

from tests.utils import DTYPE, regular_polygon


def one_hot_points(count: int) -> torch.Tensor:
    """``count`` points, point j = feature j alone: its hidden vector is W's row j."""
    return torch.eye(count, dtype=DTYPE)


@pytest.mark.parametrize("T", [3, 5, 7])
def test_points_memorised_as_a_regular_polygon_get_two_over_T_each(T):
    # W's rows are a regular T-gon in 2-D; point j holds feature j, so the hidden vectors are that T-gon
    D = data_dimensionality(regular_polygon(T), one_hot_points(T))
    torch.testing.assert_close(D, torch.full((T,), 2 / T, dtype=DTYPE))


def test_orthogonal_points_get_a_dimension_each_and_parallel_ones_share_it():
    W = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]], dtype=DTYPE)  # 3 features → 3 dims
    points = torch.tensor([
        [1.0, 0.0, 0.0],  # h = e0
        [0.0, 0.5, 0.0],  # h = e1
        [0.0, 0.0, 0.3],  # h = 0.3 e2, parallel to the next two of the same norm
        [0.0, 0.0, 0.3],
        [0.0, 0.0, 0.3],
    ], dtype=DTYPE)
    D = data_dimensionality(W, points)
    torch.testing.assert_close(D, torch.tensor([1.0, 1.0, 1 / 3, 1 / 3, 1 / 3], dtype=DTYPE))


def test_a_point_that_mixes_features_takes_its_hidden_vectors_direction():
    # two features at right angles; the point (1, 1)/√2 lands on the diagonal, at 45° to the point e0:
    # D_0 = 1 / (1 + cos²45° · ‖h_1‖²) with ‖h_1‖ = 1, so 2/3, and the same for the other
    W = torch.eye(2, dtype=DTYPE)
    points = torch.tensor([[1.0, 0.0], [1 / math.sqrt(2), 1 / math.sqrt(2)]], dtype=DTYPE)
    torch.testing.assert_close(data_dimensionality(W, points), torch.tensor([2 / 3, 2 / 3], dtype=DTYPE))


def test_a_point_mapped_to_zero_gets_zero_and_leaves_the_others_alone():
    W = regular_polygon(4)  # a square: features 0 and 2 antipodal, 1 and 3 antipodal
    points = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]], dtype=DTYPE)
    D = data_dimensionality(W, points)  # the third point's features cancel: h = 0
    torch.testing.assert_close(D, torch.tensor([1.0, 1.0, 0.0], dtype=DTYPE))


def test_batched_over_instances_and_the_hidden_vectors_are_x_times_W():
    gen = torch.Generator().manual_seed(3)
    W, points = torch.randn(4, 11, 2, generator=gen), torch.rand(4, 13, 11, generator=gen)
    h = hidden_vectors(W, points)
    assert h.shape == (4, 13, 2)
    torch.testing.assert_close(h[2], points[2] @ W[2])
    D = data_dimensionality(W, points)
    assert D.shape == (4, 13) and D.dtype == torch.float32
    for k in range(4):  # the same formula as the features' D_i, on the rows of h
        torch.testing.assert_close(D[k], feature_dimensionality(h[k]))
    assert (D.sum(-1) <= 2 + 1e-5).all()


def test_a_diverged_instance_gets_nan():
    W = torch.stack([regular_polygon(3), torch.full((3, 2), math.nan, dtype=DTYPE)])
    D = data_dimensionality(W, one_hot_points(3).expand(2, 3, 3))
    torch.testing.assert_close(D[0], torch.full((3,), 2 / 3, dtype=DTYPE))
    assert torch.isnan(D[1]).all()


def test_accepts_numpy():
    D = data_dimensionality(regular_polygon(5).numpy(), one_hot_points(5).numpy())
    torch.testing.assert_close(D, torch.full((5,), 0.4, dtype=DTYPE))


@pytest.mark.parametrize("points, exc, match", [
    pytest.param(torch.ones(3, 4), ValueError, r"points must have shape \[T, n\] with n = 3", id="wrong-n"),
    pytest.param(torch.ones(2, 3, 3), ValueError, "points must have shape", id="instances-for-one-model"),
    pytest.param(torch.ones(3, 3, dtype=torch.int64), TypeError, "points must be a floating", id="integer"),
    pytest.param([[1.0, 0.0, 0.0]], TypeError, "points must be a floating", id="list"),
])
def test_bad_points_are_named(points, exc, match):
    with pytest.raises(exc, match=match):
        data_dimensionality(regular_polygon(3), points)


def test_instances_must_match():
    with pytest.raises(ValueError, match=r"\[I=2, T, n\]"):
        data_dimensionality(torch.ones(2, 3, 2), torch.ones(3, 5, 3))
