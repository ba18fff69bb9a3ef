"""fastsup.evaluate: held-out loss of trained weights under any distribution.

Oracles: the training backend's own final loss (same distribution, same
batch), closed-form expected losses of constructed 2→1 weights, and the
randomness contract (rows drawn in pieces equal one draw).
"""

from __future__ import annotations

import math

import pytest
import torch

import fastsup
from fastsup import philox
from fastsup.backends import base
from fastsup.config import TrainConfig
from fastsup.evaluate import evaluate
from fastsup.result import TrainResult


@pytest.fixture(scope="module")
def trained() -> TrainResult:
    return fastsup.train(n_features=5, n_hidden=2, n_instances=7, steps=150, batch_size=64,
                         feature_probability=[[0.05], [0.1], [0.2], [0.3], [0.5], [0.8], [1.0]],
                         importance=[1.0, 0.9, 0.8, 0.7, 0.6], progress=False)


def test_the_training_distribution_gives_the_held_out_final_loss(trained):
    torch.testing.assert_close(evaluate(trained), trained.final_loss, rtol=1e-6, atol=0)


def test_rows_drawn_in_pieces_are_the_rows_of_one_draw():
    ids = torch.tensor([0, 3, 17])
    whole = philox.uniform(5, ids, philox.EVAL_STEP, 30, 3, philox.Stream.DATA)
    piece = philox.uniform(5, ids, philox.EVAL_STEP, 10, 3, philox.Stream.DATA, first_row=20)
    assert torch.equal(piece, whole[..., 20:30])
    with pytest.raises(ValueError, match="first_row must be a multiple of 4"):
        philox.uniform(5, ids, 0, 10, 3, philox.Stream.DATA, first_row=6)


@pytest.mark.parametrize("magnitude,groups", [
    pytest.param("uniform", {}, id="independent"),
    pytest.param("clipped_normal", {}, id="clipped-normal"),
    pytest.param("uniform", {"correlated_sets": [[0, 1]], "anticorrelated_pairs": [[2, 3]]}, id="grouped"),
])
def test_small_pieces_change_nothing_but_rounding(trained, monkeypatch, magnitude, groups):
    kwargs = dict(n_samples=1000, magnitude=magnitude, feature_probability=0.3, **groups)
    one_piece = evaluate(trained, **kwargs)
    monkeypatch.setattr(base, "EVAL_ELEMENTS_CPU", 5 * 40)  # 40 rows of one instance per piece
    torch.testing.assert_close(evaluate(trained, **kwargs), one_piece, rtol=1e-6, atol=0)


def _two_to_one(weights: list[list[float]], bias: list[list[float]], p: float, importance) -> TrainResult:
    I = len(weights)
    config = TrainConfig(n_features=2, n_hidden=1, n_instances=I, steps=1, feature_probability=p,
                         importance=importance)
    params = {"W": torch.tensor(weights).view(I, 2, 1), "b": torch.tensor(bias)}
    return TrainResult(config, params, torch.zeros(1, I), torch.zeros(1, dtype=torch.int64), torch.zeros(I),
                       backend="torch")


def _mean_and_se(p: float, b: float, n_samples: int) -> tuple[float, float]:
    """E and standard error of (x - b)^2 for x = U[0,1) with probability p, else 0 (closed form)."""
    mean = (1 - p) * b**2 + p * ((1 - b) ** 3 + b**3) / 3
    second = (1 - p) * b**4 + p * ((1 - b) ** 5 + b**5) / 5
    return mean, math.sqrt((second - mean**2) / n_samples)


@pytest.mark.parametrize("p", [0.05, 0.3, 1.0])
def test_constructed_weights_meet_their_closed_form_losses(p):
    """Zero weights lose E[x^2] = p/3 per feature; keeping feature 2 and biasing feature 1 by p/2 loses
    p/3 - p^2/4 on feature 1 and nothing on feature 2 ([MW]'s solution f, per feature)."""
    n_samples = 200_000
    result = _two_to_one([[0.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [p / 2, 0.0]], p, [[1.0, 3.0]])
    loss, error = (t.double().tolist() for t in evaluate(result, n_samples=n_samples, per_feature=True,
                                                        feature_probability=p))
    zero, zero_se = _mean_and_se(p, 0.0, n_samples)
    biased, biased_se = _mean_and_se(p, p / 2, n_samples)
    assert biased == pytest.approx(p / 3 - p**2 / 4)
    assert abs(error[0][0] - zero) < 5 * zero_se and abs(error[0][1] - zero) < 5 * zero_se
    assert abs(error[1][0] - biased) < 5 * biased_se and error[1][1] == 0
    assert loss[1] == pytest.approx(error[1][0] / 2, rel=1e-6)  # importance 1 on feature 1, mean over features
    assert loss[0] == pytest.approx((error[0][0] + 3 * error[0][1]) / 2, rel=1e-6)


def test_denser_evaluation_exposes_interference(trained):
    """Trained sparse, the 5→2 models' loss grows when features co-occur more than in training."""
    sparse = trained.config.probability()[:, 0]
    rising = [evaluate(trained, n_samples=4000, feature_probability=q).double() for q in (0.05, 0.3, 1.0)]
    assert (rising[0] < rising[1]).all() and (rising[1] < rising[2]).all()
    assert sparse.min() < 0.1  # the premise: some instances trained sparse


def test_another_seed_is_another_draw(trained):
    again = evaluate(trained, seed=trained.config.seed + 1)
    assert not torch.equal(again, evaluate(trained))


def test_diverged_instances_evaluate_to_nan():
    result = _two_to_one([[float("nan"), 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], 0.5, 1.0)
    loss = evaluate(result, n_samples=100)
    assert math.isnan(loss[0]) and math.isfinite(loss[1])


@pytest.mark.parametrize("kwargs,error,match", [
    pytest.param(dict(n_samples=0), ValueError, "n_samples must be a positive integer", id="no-samples"),
    pytest.param(dict(n_samples=1.5), TypeError, "n_samples must be a positive integer", id="float-samples"),
    pytest.param(dict(lr=0.1), ValueError, r"unknown fields \['lr'\]", id="not-a-distribution-field"),
    pytest.param(dict(feature_probability=[0.1, 0.2, 0.3]), ValueError, "feature_probability has shape",
                 id="shape-that-does-not-broadcast"),
    pytest.param(dict(feature_probability=1.5), ValueError, r"feature_probability must lie in \[0, 1\]",
                 id="probability-above-one"),
])
def test_bad_input_names_the_argument(trained, kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate(trained, **kwargs)


def test_not_a_result():
    with pytest.raises(TypeError, match="result must be a TrainResult"):
        evaluate({"W": torch.zeros(1, 2, 1)})
