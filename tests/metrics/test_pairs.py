"""fastsup.metrics.pairs on constructed pairs and sets whose angles are known."""

from __future__ import annotations

import math

import pytest
import torch

from fastsup.metrics import PAIR_RELATIONS, feature_cosines, pair_cosines, pair_relations, sets_side_by_side
from tests.utils import DTYPE, regular_polygon


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


# Sets side by side: 2-D arrangements whose angular order is known by construction.
SIDE_BY_SIDE_CASES = [
    pytest.param([0, 60, 120, 180, 240, 300], [(0, 1), (2, 3), (4, 5)], [True, True, True],
                 id="hexagon-pairs-adjacent"),
    pytest.param([0, 120, 60, 180, 240, 300], [(0, 1), (2, 3), (4, 5)], [False, False, True],
                 id="hexagon-two-pairs-interleaved"),
    pytest.param([30, 30, 150, 150, 270, 270], [(0, 1), (2, 3), (4, 5)], [True, True, True],
                 id="three-collapsed-pairs"),
    pytest.param([10, 100, 200, 290], [(0, 1), (2, 3)], [True, True], id="two-local-bases"),
    pytest.param([0, 180, 90, 270], [(0, 1), (2, 3)], [False, False], id="crossed-antipodal-pairs"),
    pytest.param([170, -170, 0, 90], [(0, 1), (2, 3)], [True, True], id="pair-across-the-negative-x-axis"),
    pytest.param([0, 40, 80, 180, 270], [(0, 1, 2), (3, 4)], [True, True], id="set-of-three-then-a-pair"),
    pytest.param([0, 80, 40, 180, 270], [(0, 1, 3)], [False], id="set-of-three-split-by-one-feature"),
    pytest.param([0, 90, 90, 180], [(0, 1)], [True], id="outside-feature-along-a-member-separates-nothing"),
]


@pytest.mark.parametrize("angles, sets, expected", SIDE_BY_SIDE_CASES)
def test_sets_side_by_side_on_constructed_orders(angles, sets, expected):
    W = torch.tensor([unit(a) for a in angles], dtype=DTYPE)
    assert sets_side_by_side(W, sets).tolist() == expected


@pytest.mark.parametrize("turn, mirror", [(0.0, False), (1.3, False), (2.9, True), (-2.2, True)],
                         ids=["as-built", "turned", "turned-and-mirrored", "turned-back-and-mirrored"])
def test_sets_side_by_side_ignores_rotations_and_reflections(turn, mirror):
    # Adjacency in the circular order survives any orthogonal map of the plane; lengths do not matter.
    W = regular_polygon(6)[[0, 2, 1, 3, 4, 5]] * torch.tensor([[0.7], [1.2], [0.9], [1.0], [0.6], [1.4]], dtype=DTYPE)
    rotation = torch.tensor([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]], dtype=DTYPE)
    reflection = torch.diag(torch.tensor([1.0, -1.0 if mirror else 1.0], dtype=DTYPE))
    moved = W @ (reflection @ rotation).T
    assert sets_side_by_side(moved, [(0, 1), (2, 3), (4, 5)]).tolist() == [False, False, True]


def test_sets_side_by_side_leaves_unrepresented_features_out():
    # Feature 2 (norm 0.3) lies between the members of pair (0, 1) but is not represented, so it does not
    # separate them; pair (2, 3) has only one represented member, so it is not side by side.
    W = torch.tensor([unit(0), unit(90), unit(45, 0.3), unit(200)], dtype=DTYPE)
    assert sets_side_by_side(W, [(0, 1), (2, 3)]).tolist() == [True, False]
    assert sets_side_by_side(W, [(0, 1), (2, 3)], threshold=0.2).tolist() == [False, False]


def test_sets_side_by_side_batched_and_diverged():
    W = torch.tensor([[unit(0), unit(60), unit(180), unit(240)],
                      [unit(0), unit(180), unit(90), unit(270)],
                      [unit(0), [math.nan, 0.0], unit(90), unit(270)]], dtype=DTYPE)
    assert sets_side_by_side(W, [(0, 1), (2, 3)]).tolist() == [[True, True], [False, False], [False, False]]


@pytest.mark.parametrize("sets, error, match", [
    pytest.param([], TypeError, "sets must be a non-empty list", id="empty"),
    pytest.param([(0,)], TypeError, "at least two integer feature indices", id="one-member"),
    pytest.param([(0, 1, 1)], ValueError, "at least two different features", id="repeated-member"),
    pytest.param([(0, 4)], ValueError, r"in \[0, 4\)", id="out-of-range"),
])
def test_sets_side_by_side_bad_sets_name_the_argument(sets, error, match):
    W = torch.tensor([unit(0), unit(90), unit(180), unit(270)], dtype=DTYPE)
    with pytest.raises(error, match=match):
        sets_side_by_side(W, sets)


def test_sets_side_by_side_needs_two_hidden_dimensions():
    with pytest.raises(ValueError, match="W must have 2 hidden dimensions"):
        sets_side_by_side(torch.eye(3, dtype=DTYPE), [(0, 1)])
