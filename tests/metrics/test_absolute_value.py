"""Abs pairs on constructed W1/W2 whose answer is known: the |x| = ReLU(x) + ReLU(−x) solution and its near misses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastsup import metrics

DTYPE = torch.float64


def pair_solution() -> tuple[torch.Tensor, torch.Tensor]:
    """3 features, 7 neurons: feature i reads +a on neuron 2i and −a' on neuron 2i+1 and writes both back with
    the W2 that makes each gain 1 (so the model computes |x_i| exactly); neuron 6 is dead.  Every other weight
    is a 0.01 leak, whose gains (1e-4) are far below any min_gain."""
    W1 = torch.full((3, 7), 0.01, dtype=DTYPE)
    W2 = torch.full((7, 3), 0.01, dtype=DTYPE)
    W1[:, 6] = 0.0
    W2[6, :] = 0.0
    for i, (up, down) in enumerate([(1.3, 0.8), (0.9, 1.1), (0.6, 1.7)]):
        W1[i, 2 * i], W2[2 * i, i] = up, 1 / up
        W1[i, 2 * i + 1], W2[2 * i + 1, i] = -down, 1 / down
    return W1, W2


def test_the_abs_solution_is_three_pairs_and_each_feature_uses_its_two_neurons():
    W1, W2 = pair_solution()
    expected = torch.zeros(3, 7, dtype=torch.bool)
    for i in range(3):
        expected[i, 2 * i: 2 * i + 2] = True
    assert torch.equal(metrics.used_neurons(W1, W2), expected)
    assert metrics.abs_pairs(W1, W2).tolist() == [True, True, True]
    assert metrics.n_abs_pairs(W1, W2).item() == 3
    gains = metrics.path_gains(W1, W2)
    torch.testing.assert_close(gains[0, :2], torch.tensor([1.0, -1.0], dtype=DTYPE))  # ReLU(x) and −(−x)
    torch.testing.assert_close(gains[2, 6], torch.tensor(0.0, dtype=DTYPE))  # the dead neuron carries nothing


@pytest.mark.parametrize("break_feature, expected", [
    pytest.param(lambda W1, W2: W1[0, 1].neg_(), [False, True, True], id="same-sign-w1"),
    pytest.param(lambda W1, W2: W2[3, 1].neg_(), [True, False, True], id="one-negative-w2"),
    pytest.param(lambda W1, W2: W1[2, 5].zero_(), [True, True, False], id="one-neuron-only"),
    pytest.param(lambda W1, W2: (W1[1, 6].fill_(1.0), W2[6, 1].fill_(1.0)), [True, False, True],
                 id="a-third-neuron-as-strong"),
    pytest.param(lambda W1, W2: W1[0].zero_(), [False, True, True], id="absent-feature"),
])
def test_near_misses_are_not_pairs(break_feature, expected):
    W1, W2 = pair_solution()
    break_feature(W1, W2)
    assert metrics.abs_pairs(W1, W2).tolist() == expected
    assert metrics.n_abs_pairs(W1, W2).item() == sum(expected)


def test_an_absent_feature_uses_no_neuron():
    W1, W2 = pair_solution()
    W1[1] = 0.0
    assert not metrics.used_neurons(W1, W2)[1].any()


def test_min_gain_decides_whether_a_weak_third_neuron_counts():
    """Feature 0 gets a third path of gain 0.3 (its pair's gains are 1): used at min_gain 0.25, not at 0.5."""
    W1, W2 = pair_solution()
    W1[0, 6], W2[6, 0] = 0.5, 0.6
    assert metrics.used_neurons(W1, W2, min_gain=0.25)[0].sum().item() == 3
    assert metrics.abs_pairs(W1, W2, min_gain=0.25).tolist() == [False, True, True]
    assert metrics.abs_pairs(W1, W2, min_gain=0.5).tolist() == [True, True, True]


def test_instances_numpy_and_a_diverged_instance():
    W1, W2 = pair_solution()
    W1s, W2s = torch.stack([W1, W1, W1]), torch.stack([W2, W2, W2])
    W1s[1, 0, 0] = 0.02  # instance 1: feature 0 loses its positive neuron
    W2s[2, 3, 1] = math.inf  # instance 2 diverged
    pairs = metrics.abs_pairs(W1s.numpy(), W2s.numpy())
    assert pairs.tolist() == [[True] * 3, [False, True, True], [False] * 3]
    counts = metrics.n_abs_pairs(W1s, W2s)
    assert counts[:2].tolist() == [3.0, 2.0] and math.isnan(counts[2].item())
    assert metrics.used_neurons(np.asarray(W1s), np.asarray(W2s)).shape == (3, 3, 7)


@pytest.mark.parametrize("W1, W2, error, match", [
    pytest.param(torch.ones(3, 6), torch.ones(3, 6), ValueError, r"W2 must have shape \[\*inst, m, n\] = \[6, 3\]",
                 id="w2-not-transposed"),
    pytest.param(torch.ones(2, 3, 6), torch.ones(6, 3), ValueError, "W2 must have shape", id="instances-differ"),
    pytest.param([[1.0]], torch.ones(1, 1), TypeError, "W1: W must be a torch.Tensor", id="w1-a-list"),
    pytest.param(torch.ones(3, 6), torch.ones(6, 3, dtype=torch.int64), TypeError, "W2: W must have a floating",
                 id="w2-integer"),
])
def test_bad_weights_are_named(W1, W2, error, match):
    with pytest.raises(error, match=match):
        metrics.abs_pairs(W1, W2)


@pytest.mark.parametrize("min_gain, error", [
    pytest.param(0.0, ValueError, id="zero"),
    pytest.param(math.inf, ValueError, id="infinite"),
    pytest.param("half", TypeError, id="not-a-number"),
])
def test_bad_min_gain_is_named(min_gain, error):
    W1, W2 = pair_solution()
    with pytest.raises(error, match="min_gain"):
        metrics.used_neurons(W1, W2, min_gain)


def motif(inhibitor_weight: float = -4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """2 features, 4 neurons, [KG]'s asymmetric motif by hand.  Neuron 0 reads a = feature 0 with 2 and b = 1
    with 0.5, and writes a with 0.5 and b with 2 (both gains 1; x_a alone leaks 2 · 2 = 4 into b).  Neuron 1
    fires with it on x_a > 0 (W1 = 1) and writes ``inhibitor_weight`` into b: -4 cancels the leak exactly.
    Neurons 2 and 3 carry the negative sides of a and b (gain 1), so both features are abs pairs."""
    W1 = torch.tensor([[2.0, 1.0, -1.0, 0.0], [0.5, 0.0, 0.0, -1.0]], dtype=DTYPE)
    W2 = torch.tensor([[0.5, 2.0], [0.0, inhibitor_weight], [1.0, 0.0], [0.0, 1.0]], dtype=DTYPE)
    return W1, W2


def test_the_asymmetric_motif_with_inhibition():
    W1, W2 = motif()
    assert metrics.abs_pairs(W1, W2).tolist() == [True, True]
    assert metrics.asymmetric_neurons(W1, W2).tolist() == [True, False, False, False]
    assert metrics.inhibited_neurons(W1, W2).tolist() == [True, False, False, False]
    # at ratio 5 the 4x asymmetry is not enough
    assert not metrics.asymmetric_neurons(W1, W2, ratio=5.0).any()


def test_a_motif_without_its_inhibitor_leaks():
    W1, W2 = motif(inhibitor_weight=-1.0)  # cancels 1 of the leak's 4: x_a still writes 3 x_a into b
    assert metrics.asymmetric_neurons(W1, W2).tolist() == [True, False, False, False]
    assert not metrics.inhibited_neurons(W1, W2).any()


def test_a_neuron_shared_evenly_is_not_asymmetric():
    W1, W2 = motif()
    W1[1, 0], W2[0, 1] = 2.0, 0.5  # neuron 0 now reads and writes both features alike
    assert not metrics.asymmetric_neurons(W1, W2).any()
    assert not metrics.inhibited_neurons(W1, W2).any()


@pytest.mark.parametrize("ratio, error", [
    pytest.param(1.0, ValueError, id="one"),
    pytest.param(None, TypeError, id="none"),
])
def test_bad_ratio_is_named(ratio, error):
    W1, W2 = motif()
    with pytest.raises(error, match="ratio"):
        metrics.asymmetric_neurons(W1, W2, ratio=ratio)
