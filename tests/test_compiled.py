"""The torch backend's compiled step: one compile per key and process, every per-run tensor an input, a public fallback."""

from __future__ import annotations

import dataclasses
import io
import time

import pytest
import torch
from tqdm import tqdm

import fastsup
from fastsup.backends import compiled, torch_backend
from fastsup.backends.torch_backend import TorchTrainer
from fastsup.config import TrainConfig
from fastsup.train import _compiling

SHAPE = dict(n_features=5, n_hidden=2, n_instances=3, batch_size=32, steps=6, log_every=1)


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    cache = compiled.StepCache(record_dir=tmp_path / "records")
    monkeypatch.setattr(compiled, "STEPS", cache)
    return cache


def _run(config: TrainConfig, compile: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], TorchTrainer]:
    trainer = TorchTrainer(config, "cpu", compile=compile)
    losses = torch.stack([trainer.step(s, 1.0) for s in range(config.steps)])
    return losses, trainer.params, trainer


def _assert_same_run(a, b):
    torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-7)
    for name in a[1]:
        torch.testing.assert_close(a[1][name], b[1][name], rtol=1e-5, atol=1e-7, msg=name)


def test_a_second_run_of_the_same_shape_reuses_the_step_with_its_own_constants(fresh_cache):
    """Other p, importance, lr, weight decay, instance ids: no new compile, and the numbers are the new run's."""
    first = TrainConfig(**SHAPE, feature_probability=[1.0, 0.3, 0.1], importance=[0.9**i for i in range(5)])
    second = TrainConfig(**SHAPE, feature_probability=[0.05, 0.5, 0.02], importance=[1.0, 0.5, 0.2, 0.1, 0.05],
                         lr=[3e-3, 1e-2, 1e-3], weight_decay=[0.0, 0.1, 0.03], instance_ids=[9, 4, 2])
    _, _, trainer_one = _run(first, compile=True)
    seconds = fresh_cache.last_compile_seconds
    compiled_second = _run(second, compile=True)
    assert compiled_second[2].step_fn is trainer_one.step_fn
    assert fresh_cache.last_compile_seconds == seconds  # nothing compiled for the second run
    _assert_same_run(compiled_second, _run(second, compile=False))


def test_another_shape_or_static_fact_is_another_key(fresh_cache):
    base = TrainConfig(**SHAPE)
    keys = {TorchTrainer(config, "cpu", compile=False).key for config in (
        base,
        TrainConfig(**{**SHAPE, "n_instances": 4}),
        TrainConfig(**{**SHAPE, "batch_size": 64}),
        TrainConfig(**SHAPE, seed=1),
        TrainConfig(**SHAPE, model="relu_hidden"),
        TrainConfig(**SHAPE, optimizer="adam"),
    )}
    assert len(keys) == 6
    assert TorchTrainer(TrainConfig(**SHAPE, lr=1e-2, feature_probability=0.1), "cpu", compile=False).key in {
        TorchTrainer(base, "cpu", compile=False).key}


def test_train_calls_share_the_compiled_step_across_calls_and_chunks(fresh_cache, monkeypatch):
    compiles = []
    real = compiled.compile_graph
    monkeypatch.setattr(compiled, "compile_graph", lambda *args: compiles.append(1) or real(*args))
    config = dict(n_features=5, n_hidden=2, n_instances=4, steps=4, batch_size=32, progress=False, compile=True)
    fastsup.train(**config, instance_chunk=2)  # two chunks of 2: one compile
    fastsup.train(**config, instance_chunk=2, feature_probability=0.3)
    assert len(compiles) == 1


def test_without_the_private_compiler_the_step_goes_through_torch_compile(fresh_cache, monkeypatch):
    calls = []
    real_compile = torch.compile
    monkeypatch.setattr(compiled, "_private_compilers", lambda: None)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(kw) or real_compile(fn, **kw))
    config = TrainConfig(**SHAPE, feature_probability=[1.0, 0.3, 0.1])
    _assert_same_run(_run(config, compile=True), _run(config, compile=False))
    assert calls == [dict(fullgraph=True, dynamic=False)]


def test_private_compiler_is_found_on_the_tested_torch():
    """On the torch of constraints.txt the preferred path is the one that runs (the fallback is for later releases)."""
    assert compiled._private_compilers() is not None


def test_the_sliced_eager_step_equals_the_whole_batch_step(monkeypatch):
    """Slices of 5 instances (12 in all, the last slice short) against one step over all of them."""
    config = TrainConfig(n_features=7, n_hidden=3, n_instances=12, batch_size=20, steps=4, correlated_sets=[(0, 1)],
                         feature_probability=torch.linspace(0.05, 1, 12), model="relu_hidden")
    whole = _run(config, compile=False)
    monkeypatch.setattr(torch_backend, "EAGER_SLICE_CALLS", 5 * 7 * 5)
    assert torch_backend.eager_slice_width(config) == 5
    sliced = _run(config, compile=False)
    assert torch.equal(sliced[0], whole[0])
    for name in whole[1]:
        assert torch.equal(sliced[1][name], whole[1][name]), name


def _draw(step, ids):
    from fastsup import philox

    return (philox.uniform(2**63 + 12345, ids, step, 1022, 5, philox.Stream.MAGNITUDE_NORMAL),)


@pytest.fixture(scope="module")
def compiled_draw():
    return compiled.compile_graph(_draw, [torch.tensor(5), torch.tensor([0, 7, 2**32 - 1])])


# Steps whose first-round products overflow int64 (the top of the step range), with a nonzero
# stream (its bits sit at the top of the column word): compiled by inductor, the sampler must
# still draw the eager bits.
@pytest.mark.parametrize("step", [0, 3, 2**31 - 1, 2**31, 3_000_000_000, 2**32 - 3, 2**32 - 1])
def test_the_compiled_sampler_draws_the_eager_bits(compiled_draw, step):
    ids = torch.tensor([0, 7, 2**32 - 1])
    assert torch.equal(compiled_draw(torch.tensor(step), ids)[0], _draw(step, ids)[0])


def test_compile_decision_weighs_the_eager_time_saved_against_the_compile_cost(fresh_cache, monkeypatch):
    def decides(compile_seconds, **fields):
        monkeypatch.setattr(fresh_cache, "last_compile_seconds", compile_seconds)
        config = TrainConfig(**{**SHAPE, **fields})
        return torch_backend.compile_pays(config, TorchTrainer(config, "cpu", compile=False).key)

    intro = dict(n_features=5, n_hidden=2, n_instances=10, batch_size=1024)
    saved = (torch_backend.EAGER_STEP_SECONDS - torch_backend.COMPILED_STEP_SECONDS
             + (torch_backend.EAGER_SECONDS_PER_CALL - torch_backend.COMPILED_SECONDS_PER_CALL) * 10 * 5 * 256)
    break_even = torch_backend.FIRST_COMPILE_SECONDS / saved
    assert not decides(None, **intro, steps=int(break_even * 0.9))
    assert decides(None, **intro, steps=int(break_even * 1.1))
    # a compile measured in this process replaces the first-compile estimate
    assert decides(1.0, **intro, steps=int(break_even * 0.9))
    # more work per step: compiling pays sooner
    assert decides(None, n_features=200, n_hidden=20, n_instances=20, batch_size=1024, steps=int(break_even * 0.1))


def test_a_step_this_process_has_compiled_is_always_used(fresh_cache):
    config = TrainConfig(**SHAPE)
    trainer = TorchTrainer(config, "cpu", compile=True)
    assert TorchTrainer(dataclasses.replace(config, steps=1), "cpu").step_fn is trainer.step_fn


def test_progress_bar_says_while_the_step_compiles(fresh_cache, capsys):
    fastsup.train(**SHAPE, progress=True, compile=True)
    err = capsys.readouterr().err
    assert "compiling the step" in err
    assert "step compiled in" in err


def test_progress_rate_and_elapsed_leave_the_compile_out():
    bar = tqdm(total=100, file=io.StringIO())
    with _compiling(bar):
        time.sleep(0.5)  # stands for the compile
    bar.update(50)
    assert bar.format_dict["elapsed"] < 0.25  # an elapsed time with the compile in it would be >= 0.5 s
    assert "step compiled in" in bar.postfix


def test_a_step_compiled_by_an_earlier_process_is_expected_to_compile_warm(fresh_cache, monkeypatch):
    intro = TrainConfig(n_features=5, n_hidden=2, n_instances=10, batch_size=1024, steps=10)
    key = TorchTrainer(intro, "cpu", compile=False).key
    saved = (torch_backend.EAGER_STEP_SECONDS - torch_backend.COMPILED_STEP_SECONDS
             + (torch_backend.EAGER_SECONDS_PER_CALL - torch_backend.COMPILED_SECONDS_PER_CALL) * 10 * 5 * 256)
    steps = int((torch_backend.WARM_COMPILE_SECONDS + torch_backend.FIRST_COMPILE_SECONDS) / 2 / saved)
    config = dataclasses.replace(intro, steps=steps)
    assert not fresh_cache.compiled_before(key) and not torch_backend.compile_pays(config, key)
    fresh_cache._marker(key).parent.mkdir(parents=True)
    fresh_cache._marker(key).touch()  # what a compile in another process leaves behind
    assert fresh_cache.compiled_before(key) and torch_backend.compile_pays(config, key)


def test_compiling_leaves_the_marker(fresh_cache):
    trainer = TorchTrainer(TrainConfig(**SHAPE), "cpu", compile=True)
    assert fresh_cache.compiled_before(trainer.key)
    assert not fresh_cache.compiled_before(TorchTrainer(TrainConfig(**SHAPE, seed=5), "cpu", compile=False).key)
