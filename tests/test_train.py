"""``fastsup.train`` end to end: backends agree, instances are independent, results save, the science holds."""

from __future__ import annotations

import json
import math

import pytest
import torch

import fastsup
from fastsup import metrics
from fastsup.config import TrainConfig

SMALL = dict(n_features=5, n_hidden=2, n_instances=4, feature_probability=[1.0, 0.3, 0.1, 0.05],
             importance=[0.9**i for i in range(5)], batch_size=64, steps=40, progress=False)

VARIANTS = [
    pytest.param(dict(model="linear"), id="linear"),
    pytest.param(dict(model="relu_output"), id="relu_output"),
    pytest.param(dict(model="relu_output", activation="exrelu", activation_threshold=-0.25), id="exrelu"),
    pytest.param(dict(model="relu_hidden"), id="relu_hidden"),
    pytest.param(dict(model="abs", n_features=3, n_hidden=6, importance=[0.7**i for i in range(3)]), id="abs-3to6"),
    pytest.param(dict(model="relu_output", optimizer="adam", weight_decay=[0.0, 0.1, 0.0, 0.2]), id="adam-wd"),
    pytest.param(dict(model="relu_output", schedule="cosine", lr=[1e-3, 1e-2, 3e-2, 0.1]), id="cosine-per-instance-lr"),
    pytest.param(dict(model="relu_output", correlated_sets=[(0, 1)], anticorrelated_pairs=[(2, 3)],
                      feature_probability=0.2), id="correlated"),
]


def _train(**overrides):
    return fastsup.train(**{**SMALL, **overrides})


def _assert_results_close(a, b, rtol=1e-5, atol=1e-6):
    assert set(a.params) == set(b.params)
    for name in a.params:
        torch.testing.assert_close(a.params[name], b.params[name], rtol=rtol, atol=atol, msg=name)
    torch.testing.assert_close(a.loss_history, b.loss_history, rtol=rtol, atol=atol)
    torch.testing.assert_close(a.final_loss, b.final_loss, rtol=rtol, atol=atol)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_torch_backend_matches_autograd_reference(overrides):
    """Analytic gradients + fused update against autograd + torch.optim, same Philox batches."""
    _assert_results_close(_train(backend="torch", **overrides), _train(backend="reference", **overrides))


def test_compiled_step_matches_eager():
    compiled = _train(backend="torch", compile=True, steps=20)
    eager = _train(backend="torch", compile=False, steps=20)
    _assert_results_close(compiled, eager)


def test_instances_trained_together_equal_instances_trained_alone():
    together = _train(instance_ids=[7, 3, 11, 0])
    for k, iid in enumerate([7, 3, 11, 0]):
        alone = _train(n_instances=1, instance_ids=[iid], feature_probability=SMALL["feature_probability"][k])
        for name in together.params:
            torch.testing.assert_close(together.params[name][k : k + 1], alone.params[name], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(together.final_loss[k : k + 1], alone.final_loss, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("chunk", [1, 3], ids=["chunk1", "chunk3"])
def test_instance_chunking_does_not_change_results(chunk):
    _assert_results_close(_train(instance_chunk=chunk), _train(), rtol=1e-6, atol=1e-7)


def test_same_seed_same_result_other_seed_differs():
    a, b, c = _train(seed=5), _train(seed=5), _train(seed=6)
    assert torch.equal(a.W, b.W) and torch.equal(a.final_loss, b.final_loss)
    assert not torch.allclose(a.W, c.W)


def test_init_is_xavier_per_instance_and_independent_of_instance_count():
    from fastsup.init import init_params

    big = TrainConfig(n_features=400, n_hidden=30, n_instances=8)
    W = init_params(big, "cpu")["W"]
    assert W.std().item() == pytest.approx(math.sqrt(2 / 430), rel=0.02)
    assert W.mean().abs().item() < 0.01
    one = TrainConfig(n_features=400, n_hidden=30, n_instances=1, instance_ids=[5])
    assert torch.equal(init_params(one, "cpu")["W"][0], W[5])


def test_result_shapes_and_history():
    result = _train(steps=25, log_every=10)
    assert result.W.shape == (4, 5, 2) and result.b.shape == (4, 5)
    assert result.final_loss.shape == (4,)
    assert result.loss_steps.tolist() == [0, 10, 20, 24]
    assert result.loss_history.shape == (4, 4)
    assert (result.loss_history > 0).all()
    with pytest.raises(AttributeError, match="W1"):
        _ = result.W1
    abs_result = _train(model="abs", n_features=3, n_hidden=6, importance=1.0, steps=5)
    assert abs_result.W1.shape == (4, 3, 6) and abs_result.W2.shape == (4, 6, 3)
    with pytest.raises(AttributeError, match="has no W "):
        _ = abs_result.W


def test_final_loss_is_the_loss_on_a_fresh_evaluation_batch():
    """final_loss equals the loss of the returned weights on the EVAL_STEP batch, computed independently."""
    from fastsup.backends.reference import reference_forward
    from fastsup.data import DataSpec, sample_batch
    from fastsup.philox import EVAL_STEP

    result = _train(eval_batch_size=128)
    x = sample_batch(DataSpec.from_config(result.config, "cpu"), EVAL_STEP, 128).transpose(1, 2)
    y = reference_forward(result.params, x, result.config)
    expected = (result.config.importance_tensor().unsqueeze(1) * (y - x) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(result.final_loss, expected, rtol=1e-5, atol=1e-8)


def test_training_reduces_the_evaluation_loss():
    untrained, trained = _train(steps=1, lr=1e-2), _train(steps=300, lr=1e-2)
    assert (trained.final_loss < 0.7 * untrained.final_loss).all()


def test_save_load_round_trip(tmp_path):
    result = _train(model="abs", n_features=3, n_hidden=6, importance=1.0, lr=[1e-3, 2e-3, 3e-3, 4e-3])
    path = result.save(tmp_path / "run")
    loaded = fastsup.load(path)
    assert loaded.config == result.config
    assert loaded.backend == result.backend
    for name in result.params:
        assert torch.equal(loaded.params[name], result.params[name])
    assert torch.equal(loaded.loss_history, result.loss_history)
    assert torch.equal(loaded.final_loss, result.final_loss)
    assert json.loads((path / "result.json").read_text())["config"]["model"] == "abs"
    result.save(path)  # overwriting an existing result replaces it whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved fastsup result"):
        fastsup.load(tmp_path / "nothing")
    path = _train(steps=2).save(tmp_path / "run")
    tensors_file = path / json.loads((path / "result.json").read_text())["tensors"]["file"]
    tensors_file.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=f"corrupt {tensors_file.name}: its size or SHA-256 differs"):
        fastsup.load(path)
    path = _train(steps=2).save(tmp_path / "run2")
    (path / "result.json").write_text("{ truncated")
    with pytest.raises(ValueError, match="corrupt result.json"):
        fastsup.load(path)
    path = _train(steps=2).save(tmp_path / "run3")
    (path / "result.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing result.json"):
        fastsup.load(path)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        pytest.param(dict(backend="jax"), ValueError, "backend", id="unknown-backend"),
        pytest.param(dict(device="tpu"), ValueError, "device", id="unknown-device"),
        pytest.param(dict(device="cuda:7"), ValueError, "device", id="missing-device"),
        pytest.param(dict(instance_chunk=0), ValueError, "instance_chunk", id="chunk-zero"),
        pytest.param(dict(steps=0), ValueError, "steps", id="steps-zero"),
        pytest.param(dict(batch_size=-1), ValueError, "batch_size", id="batch-negative"),
        pytest.param(dict(lr=float("nan")), ValueError, "lr", id="lr-nan"),
        pytest.param(dict(lr=0.0), ValueError, "lr", id="lr-zero"),
        pytest.param(dict(model="mlp"), ValueError, "model", id="unknown-model"),
        pytest.param(dict(optimizer="sgd"), ValueError, "optimizer", id="unknown-optimizer"),
        pytest.param(dict(feature_probability=[0.5, 0.5, 0.5]), ValueError, "feature_probability", id="bad-shape"),
    ],
)
def test_train_refuses_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        _train(**kwargs)


def test_triton_backend_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the test suite interprets kernels; a user's process does not
    with pytest.raises(ValueError, match="needs a CUDA device"):
        _train(backend="triton", device="cpu")


DENSITIES = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]
PAPER_20_TO_5 = dict(n_features=20, n_hidden=5, n_instances=7, importance=[0.7**i for i in range(20)],
                     feature_probability=DENSITIES, steps=1000, batch_size=256, lr=3e-2, progress=False)


def test_linear_model_represents_exactly_the_five_most_important_features():
    """Paper §2: a linear model keeps the top m features at every sparsity (it is PCA)."""
    W = fastsup.train(model="linear", **PAPER_20_TO_5).W
    assert metrics.represented(W).tolist() == [[True] * 5 + [False] * 15] * 7


def test_relu_model_represents_more_than_five_features_when_sparse():
    """Paper §2: with ReLU output and density 0.01, features go into superposition."""
    W = fastsup.train(model="relu_output", **PAPER_20_TO_5).W
    counts = metrics.n_represented(W).tolist()
    assert counts[0] == 5  # dense: no superposition
    assert counts[DENSITIES.index(0.01)] > 5
    # down to density 0.01 the five most important features are always kept
    assert metrics.represented(W)[: DENSITIES.index(0.01) + 1, :5].all()


def test_init_equal_to_the_contract_init_changes_nothing():
    from fastsup.init import init_params

    config = TrainConfig(**{k: v for k, v in SMALL.items() if k != "progress"})
    _assert_results_close(_train(init=init_params(config, "cpu")), _train(), rtol=0, atol=0)


def test_init_from_a_result_starts_there():
    first = _train(steps=30)
    resumed = _train(steps=1, lr=1e-9, init=first)  # a negligible step: weights stay where they were
    torch.testing.assert_close(resumed.W, first.W, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "init,match",
    [
        pytest.param({"W": torch.zeros(4, 5, 2)}, "exactly the parameters", id="missing-b"),
        pytest.param({"W": torch.zeros(4, 5, 3), "b": torch.zeros(4, 5)}, r"init\['W'\] must be a tensor of shape \[4, 5, 2\]", id="wrong-shape"),
        pytest.param({"W": torch.full((4, 5, 2), float("nan")), "b": torch.zeros(4, 5)}, "NaN", id="nan"),
    ],
)
def test_bad_init_is_refused(init, match):
    with pytest.raises(ValueError, match=match):
        _train(init=init)


def test_on_step_sees_every_step_of_every_chunk():
    seen = []

    def on_step(info):
        seen.append((info.instances.start, info.step, info.params["W"].shape[0], info.loss.shape[0], info.lr.shape[0]))

    _train(steps=3, instance_chunk=3, on_step=on_step, lr=[1e-3, 2e-3, 3e-3, 4e-3])
    assert seen == [(0, s, 3, 3, 3) for s in range(3)] + [(3, s, 1, 1, 1) for s in range(3)]


def test_custom_lr_schedule_equals_the_named_schedule_it_spells_out():
    from fastsup.functional import lr_scale

    steps = 12
    multipliers = [lr_scale("cosine", s, steps) for s in range(steps)]
    custom = _train(steps=steps, lr_schedule=multipliers)
    assert custom.config.schedule == "custom" and len(custom.config.lr_multipliers) == steps
    _assert_results_close(custom, _train(steps=steps, schedule="cosine"), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="lr_multipliers"):
        _train(steps=steps, lr_schedule=multipliers[:-1])
