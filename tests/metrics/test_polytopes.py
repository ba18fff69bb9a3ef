"""fastsup.metrics.polytopes: constructed geometries get their known names, look-alikes do not."""

from __future__ import annotations

import math

import pytest
import torch

from fastsup.metrics import feature_dimensionality, polytope_label

from tests.utils import DTYPE, regular_polygon, tetrahedron


def rotation_3d(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=DTYPE))
    return q


def octahedron() -> torch.Tensor:
    return torch.cat([torch.eye(3, dtype=DTYPE), -torch.eye(3, dtype=DTYPE)])


def square_antiprism() -> torch.Tensor:
    """Two squares, the second turned by 45°, at heights ±h with h² = 1/2: the tight frame whose D_i are 3/8."""
    top = torch.cat([regular_polygon(4), torch.full((4, 1), math.sqrt(0.5), dtype=DTYPE)], dim=1)
    turned = regular_polygon(8)[1::2]
    bottom = torch.cat([turned, torch.full((4, 1), -math.sqrt(0.5), dtype=DTYPE)], dim=1)
    v = torch.cat([top, bottom])
    return v / v.norm(dim=-1, keepdim=True)


def degrees(*angles: float) -> torch.Tensor:
    a = torch.tensor(angles, dtype=DTYPE) * math.pi / 180
    return torch.stack([a.cos(), a.sin()], dim=-1)


def in_more_dims(W: torch.Tensor, m: int) -> torch.Tensor:
    return torch.cat([W, torch.zeros(W.shape[0], m - W.shape[1], dtype=DTYPE)], dim=1)


@pytest.mark.parametrize(
    "W, label",
    [
        pytest.param(torch.tensor([[1.0], [-1.0]], dtype=DTYPE), "antipodal pair", id="antipodal-2in1"),
        pytest.param(torch.tensor([[0.6, 0.8, 0.0], [-0.6, -0.8, 0.0]], dtype=DTYPE), "antipodal pair",
                     id="antipodal-2in3"),
        pytest.param(regular_polygon(3), "triangle", id="triangle-3in2"),
        pytest.param(regular_polygon(4), "square", id="square-4in2"),
        pytest.param(regular_polygon(5), "pentagon", id="pentagon-5in2"),
        pytest.param(regular_polygon(6), "hexagon", id="hexagon-6in2"),
        pytest.param(regular_polygon(7), "7-gon", id="heptagon-7in2"),
        pytest.param(in_more_dims(regular_polygon(5), 4), "pentagon", id="pentagon-5in4"),
        pytest.param(tetrahedron() @ rotation_3d(0), "tetrahedron", id="tetrahedron-4in3"),
        pytest.param(octahedron() @ rotation_3d(1), "octahedron", id="octahedron-6in3"),
        pytest.param(square_antiprism(), "square antiprism", id="square-antiprism-8in3"),
        pytest.param(torch.tensor([[0.0, 1.0]], dtype=DTYPE), "dedicated", id="one-feature-1in2"),
        pytest.param(torch.eye(3, dtype=DTYPE) @ rotation_3d(2), "dedicated", id="basis-3in3"),
        pytest.param(torch.zeros(3, 2, dtype=DTYPE), "none", id="nothing-represented-3in2"),
    ],
)
def test_known_geometry_gets_its_name(W, label):
    assert polytope_label(W) == label


def test_the_fractions_are_the_papers():
    # The geometries above carry the dimensionality fractions the rule relies on.
    for W, fraction in [(square_antiprism(), 3 / 8), (octahedron(), 1 / 2), (regular_polygon(4), 1 / 2),
                        (tetrahedron(), 3 / 4), (regular_polygon(5), 2 / 5)]:
        torch.testing.assert_close(feature_dimensionality(W), torch.full((W.shape[0],), fraction, dtype=DTYPE))


def test_unrepresented_features_scale_and_rotation_do_not_change_the_name():
    theta = 0.7
    R = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=DTYPE)
    W = torch.cat([0.9 * regular_polygon(5) @ R, torch.tensor([[0.05, 0.1]], dtype=DTYPE)])
    assert polytope_label(W) == "pentagon"
    # Below the norm threshold the pentagon is not counted at all.
    assert polytope_label(W, norm_threshold=0.95) == "none"


def test_a_slightly_perturbed_pentagon_is_still_one_and_the_tolerance_decides():
    noise = 0.01 * torch.randn(5, 2, generator=torch.Generator().manual_seed(3), dtype=DTYPE)
    W = regular_polygon(5) + noise
    assert polytope_label(W) == "pentagon"
    assert polytope_label(W, tol=1e-4) == "irregular"


@pytest.mark.parametrize(
    "W",
    [
        # D = 1/2 each, like an antipodal pair, but the two point the same way.
        pytest.param(torch.tensor([[1.0], [1.0]], dtype=DTYPE), id="parallel-pair-2in1"),
        # D = 2/3 each, like a triangle, with one vertex flipped (0°, 60°, 120°).
        pytest.param(degrees(0, 60, 120), id="flipped-triangle-3in2"),
        # D = 1/2 each, like a square: two orthogonal pairs turned 30° apart.
        pytest.param(degrees(0, 90, 30, 120), id="tight-not-square-4in2"),
        # An antipodal pair beside a dedicated feature: D = 1/2, 1/2, 1 is not uniform.
        pytest.param(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=DTYPE), id="pair-and-dedicated-3in2"),
        # Two antipodal pairs 45° apart.
        pytest.param(degrees(0, 180, 45, 225), id="pairs-45deg-4in2"),
    ],
)
def test_look_alikes_are_irregular(W):
    assert polytope_label(W) == "irregular"


def test_batched_labels_and_a_diverged_instance():
    W = regular_polygon(5).repeat(3, 1, 1)
    W[1] = 0.0
    W[1, 0, 0], W[1, 3, 0] = 1.0, -1.0  # an antipodal pair and three unlearned features
    W[2, 0, 0] = math.nan
    assert polytope_label(W) == ["pentagon", "antipodal pair", "undefined"]


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        pytest.param({"tol": 0.0}, ValueError, "tol", id="zero-tol"),
        pytest.param({"tol": 1.5}, ValueError, "tol", id="tol-above-one"),
        pytest.param({"tol": "0.1"}, TypeError, "tol", id="string-tol"),
        pytest.param({"norm_threshold": -1.0}, ValueError, "norm_threshold", id="negative-norm-threshold"),
    ],
)
def test_bad_arguments_are_named(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        polytope_label(regular_polygon(3), **kwargs)
