"""Neuron monosemanticity on constructed weights: one-feature, evenly shared, dead and diverged neurons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastsup import metrics


def test_a_neuron_reading_one_feature_is_monosemantic_and_an_even_mix_is_one_over_root_j():
    # 4 features, 3 neurons: neuron 0 reads feature 2 only (negative weight: the sign does not matter),
    # neuron 1 reads features 0 and 1 equally, neuron 2 reads all four equally.
    W = torch.tensor([[0.0, 0.7, 0.5], [0.0, -0.7, 0.5], [-1.3, 0.0, 0.5], [0.0, 0.0, -0.5]], dtype=torch.float64)
    torch.testing.assert_close(metrics.neuron_monosemanticity(W),
                               torch.tensor([1.0, 1 / math.sqrt(2), 0.5], dtype=torch.float64))
    assert metrics.monosemantic_neurons(W).tolist() == [True, False, False]
    assert metrics.n_monosemantic(W).item() == 1
    assert metrics.n_monosemantic(W, threshold=0.7).item() == 2


def test_a_rotated_basis_is_polysemantic():
    """Dedicated directions rotated by 45° off the neuron axes: every neuron reads two features equally."""
    c = math.cos(math.pi / 4)
    W = torch.tensor([[[c, c], [-c, c], [0.0, 0.0]]])  # [1, 3, 2]: features 0, 1 orthogonal, feature 2 absent
    torch.testing.assert_close(metrics.neuron_monosemanticity(W), torch.full((1, 2), c))
    assert metrics.n_monosemantic(W).tolist() == [0.0]


def test_dead_neurons_and_diverged_instances():
    W = torch.zeros(2, 5, 3)
    W[0, 1, 0] = 2.0
    W[1, 0, 0] = math.nan
    mono = metrics.neuron_monosemanticity(W)
    assert mono[0].tolist() == [1.0, 0.0, 0.0]  # one neuron reading feature 1, two dead ones
    assert torch.isnan(mono[1]).all()
    assert metrics.n_monosemantic(W)[0].item() == 1 and math.isnan(metrics.n_monosemantic(W)[1].item())


def test_numpy_input_and_shapes():
    W = np.random.default_rng(0).normal(size=(7, 9, 4))
    mono = metrics.neuron_monosemanticity(W)
    assert mono.shape == (7, 4)
    assert ((mono >= 1 / 3 - 1e-12) & (mono <= 1)).all()  # between 1/√n (n = 9) and 1


@pytest.mark.parametrize("threshold, error", [
    pytest.param(1.5, ValueError, id="above-one"),
    pytest.param(-0.1, ValueError, id="negative"),
    pytest.param("high", TypeError, id="not-a-number"),
])
def test_bad_threshold_is_named(threshold, error):
    with pytest.raises(error, match="threshold"):
        metrics.monosemantic_neurons(torch.eye(3), threshold)


def test_polysemantic_neurons_are_the_live_ones_that_are_not_monosemantic():
    # neuron 0 reads feature 2 only, neurons 1 and 2 read several features, neuron 3 is dead
    W = torch.tensor([[0.0, 0.7, 0.5, 0.0], [0.0, -0.7, 0.5, 0.0], [-1.3, 0.0, 0.5, 0.0]], dtype=torch.float64)
    assert metrics.n_polysemantic(W).item() == 2
    assert metrics.n_polysemantic(W, threshold=0.7).item() == 1  # 1/√2 > 0.7: neuron 1 now counts as monosemantic
    diverged = torch.stack([W, torch.full_like(W, math.nan)])
    counts = metrics.n_polysemantic(diverged)
    assert counts[0].item() == 2 and math.isnan(counts[1].item())
