"""Fixed datasets (``dataset_size``) and normalized points: full-batch training on T points drawn once.

Oracles: a plain autograd + torch.optim.AdamW loop over the dataset's tensor,
the reference backend, and norms computed here.
"""

from __future__ import annotations

import json

import pytest
import torch

import fastsup
from fastsup.backends.reference import reference_forward
from fastsup.backends.triton_backend import unsupported_reason
from fastsup.config import TrainConfig
from fastsup.data import dataset
from fastsup.init import init_params

FIXED = dict(n_features=30, n_hidden=2, n_instances=3, dataset_size=13, feature_probability=0.1, steps=25, lr=1e-2,
             log_every=1)


def test_every_step_trains_on_the_same_points():
    """fastsup's torch backend against autograd and torch's AdamW on the dataset tensor, full batch."""
    config = TrainConfig(**FIXED)
    x = dataset(config).transpose(1, 2)  # [I, T, n]
    params = {k: torch.nn.Parameter(v.clone()) for k, v in init_params(config, "cpu").items()}
    optimizer = torch.optim.AdamW(params.values(), lr=config.lr, weight_decay=config.weight_decay)
    losses = []
    for _ in range(config.steps):
        loss = ((reference_forward(params, x, config) - x) ** 2).mean(dim=(1, 2))
        losses.append(loss.detach())
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
    result = fastsup.train(config, backend="torch", compile=False, progress=False)
    torch.testing.assert_close(result.W, params["W"].detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.loss_history, torch.stack(losses), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_the_torch_backend_draws_the_dataset_once_not_every_step(monkeypatch, tmp_path, compile):
    from fastsup.backends import compiled, torch_backend

    # an empty cache, so the compiled step is traced here (where the spy sees it), not reused from another test
    monkeypatch.setattr(compiled, "STEPS", compiled.StepCache(record_dir=tmp_path))
    calls = []
    real = torch_backend.sample_batch
    monkeypatch.setattr(torch_backend, "sample_batch", lambda *args, **kw: calls.append(args[1]) or real(*args, **kw))
    fastsup.train(TrainConfig(**FIXED), backend="torch", compile=compile, progress=False)
    assert calls == []  # the step never samples: the points are an input, drawn by data.dataset when it starts
    fastsup.train(TrainConfig(**{**FIXED, "dataset_size": None}), backend="torch", compile=compile, progress=False)
    assert calls  # fresh data is sampled in the step (a spy that can see it)


def test_backends_chunks_and_the_compiled_step_agree():
    config = TrainConfig(**FIXED)
    eager = fastsup.train(config, backend="torch", compile=False, progress=False)
    torch.testing.assert_close(fastsup.train(config, backend="reference", progress=False).W, eager.W,
                               rtol=1e-4, atol=1e-5)
    assert torch.equal(fastsup.train(config, backend="torch", compile=False, instance_chunk=1, progress=False).W,
                       eager.W)  # the dataset does not depend on the chunk
    torch.testing.assert_close(fastsup.train(config, backend="torch", compile=True, progress=False).W, eager.W,
                               rtol=1e-5, atol=1e-6)


def test_the_train_split_is_the_loss_on_the_dataset_and_the_test_split_is_fresh_points():
    result = fastsup.train(TrainConfig(**FIXED), backend="torch", progress=False)
    x = dataset(result.config).transpose(1, 2)
    direct = ((reference_forward(result.params, x, result.config) - x) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(fastsup.evaluate(result, split="train"), direct, rtol=1e-5, atol=1e-7)
    assert result.config.eval_batch_size == 1024  # the test loss: 1024 fresh points, not 13
    torch.testing.assert_close(fastsup.evaluate(result), result.final_loss, rtol=1e-6, atol=0)


def test_normalized_points_have_unit_norm_and_empty_points_stay_empty():
    config = TrainConfig(n_features=4, n_hidden=2, n_instances=2, dataset_size=200, feature_probability=0.2,
                         normalize_points=True)
    norms = torch.linalg.vector_norm(dataset(config), dim=1)
    plain = dataset(TrainConfig(**{**config.to_dict(), "normalize_points": False}))
    empty = (plain == 0).all(dim=1)
    assert empty.any() and (~empty).any()  # 0.8^4 of points have no feature: both kinds occur
    assert (norms[empty] == 0).all()
    torch.testing.assert_close(norms[~empty], torch.ones_like(norms[~empty]))
    torch.testing.assert_close(dataset(config) * torch.linalg.vector_norm(plain, dim=1, keepdim=True).clamp(min=1e-30),
                               plain)  # same points, only scaled


def test_triton_refuses_with_the_reason_and_auto_takes_torch():
    assert "fixed datasets" in unsupported_reason(TrainConfig(**FIXED))
    assert "normalized" in unsupported_reason(TrainConfig(n_features=3, n_hidden=2, normalize_points=True))


def test_results_saved_before_these_fields_existed_still_load(tmp_path):
    result = fastsup.train(n_features=5, n_hidden=2, n_instances=2, steps=5, progress=False)
    result.save(tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "result.json").read_text())
    for name in ("dataset_size", "normalize_points"):
        del meta["config"][name]
    (tmp_path / "r" / "result.json").write_text(json.dumps(meta))
    loaded = fastsup.load(tmp_path / "r")
    assert loaded.config.dataset_size is None and loaded.config.normalize_points is False


@pytest.mark.parametrize("kwargs,error,match", [
    pytest.param(dict(dataset_size=0), ValueError, "dataset_size must be a positive integer", id="empty-dataset"),
    pytest.param(dict(dataset_size=2.5), TypeError, "dataset_size must be a positive integer", id="float-size"),
    pytest.param(dict(dataset_size=10, batch_size=7), ValueError, "batch_size must be left out or equal it",
                 id="mini-batches"),
    pytest.param(dict(normalize_points=1), TypeError, "normalize_points must be True or False", id="not-a-bool"),
])
def test_bad_input_names_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(n_features=5, n_hidden=2, **kwargs)


def test_a_dataset_too_big_for_memory_names_dataset_size():
    with pytest.raises(MemoryError, match=r"largest part: step.*or dataset_size \(now 1000000000: the batch is"):
        fastsup.train(n_features=1000, n_hidden=2, n_instances=10, dataset_size=10**9, steps=2, progress=False)


def test_evaluate_train_split_needs_a_dataset():
    result = fastsup.train(n_features=5, n_hidden=2, n_instances=2, steps=5, progress=False)
    with pytest.raises(ValueError, match="split='train' .* needs a config with dataset_size"):
        fastsup.evaluate(result, split="train")
    with pytest.raises(ValueError, match="split must be one of 'test', 'train'"):
        fastsup.evaluate(result, split="val")
