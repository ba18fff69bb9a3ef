"""fastsup.metrics.pairs on constructed pairs whose angles are known."""

from __future__ import annotations

import math

import pytest
import torch

from fastsup.metrics import PAIR_RELATIONS, feature_cosines, pair_cosines, pair_relations

DTYPE = torch.float64


def regular_polygon(k: int) -> torch.Tensor:
    angles = 2 * math.pi * torch.arange(k, dtype=DTYPE) / k
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)

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
