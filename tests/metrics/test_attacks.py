"""Adversarial loss and vulnerability along a model's interference directions, on constructed weights.

Oracles: hand-computed losses of dedicated and antipodal weights, the closed form of a linear model's error
((WWᵀ − 1)x + b, matrix algebra in NumPy, no forward pass), and the r² scaling of an unbiased linear model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastsup import evaluate, metrics
from fastsup.config import TrainConfig
from fastsup.result import TrainResult


def _result(W, b, *, model="relu_output", importance=1.0) -> TrainResult:
    W, b = torch.as_tensor(W, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    I, n, m = W.shape
    config = TrainConfig(n_features=n, n_hidden=m, n_instances=I, steps=1, model=model, importance=importance,
                         feature_probability=0.3)
    params = {"W": W, "b": b} if model != "abs" else {"W1": W, "W2": W.transpose(1, 2), "b": b}
    return TrainResult(config, params, torch.zeros(1, I), torch.zeros(1, dtype=torch.int64), torch.zeros(I), "torch")


def test_dedicated_dimensions_reconstruct_the_attack():
    """W = identity: attack i is r·e_i, which ReLU(WWᵀx) returns unchanged; [KG]'s target e_i misses by (1 − r)."""
    importance = [[3.0, 2.0, 1.0]]
    result = _result(torch.eye(3).unsqueeze(0), torch.zeros(1, 3), importance=importance)
    assert metrics.adversarial_loss(result).item() == 0.0
    quirk = metrics.adversarial_loss(result, target="interference").item()
    assert quirk == pytest.approx(3.0 * (1 - 0.1) ** 2 / 3)  # the worst attack is on the most important feature


@pytest.mark.parametrize("model", ["relu_output", "linear"])
def test_an_antipodal_pair_errs_by_half_the_squared_radius(model):
    """W = [1, −1]ᵀ (2→1): c_0 = (1, −1), x = r(1, −1)/√2, WWᵀx = r√2 (1, −1). The kept output errs by r/√2
    and the other by r/√2 (ReLU: 0 against −r/√2; linear: −r√2 against −r/√2): mean r²/2."""
    result = _result([[[1.0], [-1.0]]], [[0.0, 0.0]], model=model)
    for radius in (0.1, 0.3):
        assert metrics.adversarial_loss(result, radius=radius).item() == pytest.approx(radius**2 / 2, rel=1e-6)


def test_a_linear_model_meets_the_closed_form():
    gen = torch.Generator().manual_seed(7)
    W, b = torch.randn(4, 7, 3, generator=gen), 0.1 * torch.randn(4, 7, generator=gen)
    importance = np.linspace(1.0, 0.3, 7)
    result = _result(W, b, model="linear", importance=[importance.tolist()])
    radius, expected = 0.25, []
    for Wk, bk in zip(W.double().numpy(), b.double().numpy()):
        gram = Wk @ Wk.T
        worst = 0.0
        for i in range(7):
            x = radius * gram[:, i] / np.linalg.norm(gram[:, i])
            error = (gram - np.eye(7)) @ x + bk
            worst = max(worst, float(np.mean(importance * error**2)))
        expected.append(worst)
    np.testing.assert_allclose(metrics.adversarial_loss(result, radius=radius).numpy(), expected, rtol=1e-5)


def test_an_unbiased_linear_model_scales_with_the_squared_radius():
    W = torch.randn(3, 6, 2, generator=torch.Generator().manual_seed(1))
    result = _result(W, torch.zeros(3, 6), model="linear")
    torch.testing.assert_close(metrics.adversarial_loss(result, radius=0.3),
                               9 * metrics.adversarial_loss(result, radius=0.1), rtol=1e-5, atol=0)


def test_an_unrepresented_feature_gives_the_zero_attack():
    """Feature 1 has a zero row, so c_1 = 0 and its attack is x = 0 (no NaN); the output there is ReLU(b)."""
    W = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    x, c = metrics.adversarial_attacks(W.double(), 0.1)
    assert torch.equal(x[0, :, 1], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(x[0, :, 0], torch.tensor([0.1, 0.0], dtype=torch.float64))
    result = _result(W, [[0.0, 0.4]])
    # Attack 0 reconstructs feature 0 and outputs 0.4 on feature 1; the zero attack also errs by 0.4 there.
    assert metrics.adversarial_loss(result).item() == pytest.approx(0.4**2 / 2)


def test_vulnerability_is_the_adversarial_loss_above_the_test_loss():
    gen = torch.Generator().manual_seed(3)
    result = _result(torch.randn(2, 5, 2, generator=gen), torch.zeros(2, 5))
    gap = metrics.adversarial_vulnerability(result, n_samples=2000)
    expected = metrics.adversarial_loss(result).double() - evaluate(result, n_samples=2000).double()
    torch.testing.assert_close(gap, expected)
    relative = metrics.adversarial_vulnerability(result, n_samples=2000, relative_to=result)
    torch.testing.assert_close(relative, torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("kwargs, error, match", [
    pytest.param(dict(radius=0.0), ValueError, "radius must be a finite positive number", id="zero-radius"),
    pytest.param(dict(radius=math.inf), ValueError, "radius must be a finite positive number", id="infinite-radius"),
    pytest.param(dict(target="x"), ValueError, "target must be one of 'input', 'interference'", id="unknown-target"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    result = _result(torch.eye(2).unsqueeze(0), torch.zeros(1, 2))
    with pytest.raises(error, match=match):
        metrics.adversarial_loss(result, **kwargs)


def test_the_attack_needs_a_tied_model_and_a_result():
    with pytest.raises(ValueError, match="needs a tied model"):
        metrics.adversarial_loss(_result(torch.ones(1, 3, 2), torch.zeros(1, 3), model="abs"))
    with pytest.raises(TypeError, match="result must be a TrainResult"):
        metrics.adversarial_loss(torch.ones(1, 3, 2))


def test_relative_to_needs_as_many_instances():
    one, two = (_result(torch.eye(2).expand(k, 2, 2), torch.zeros(k, 2)) for k in (1, 2))
    with pytest.raises(ValueError, match="relative_to must have as many instances as result"):
        metrics.adversarial_vulnerability(one, n_samples=10, relative_to=two)
