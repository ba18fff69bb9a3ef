"""Compiled kernels on a CUDA GPU: ``TRITON_INTERPRET=0 python -m pytest -m gpu`` (or ``benchmarks/gpu_check.sh``).

Skipped here (no GPU) and whenever the interpreter is on.  Not yet run on a GPU.
With ``TRITON_INTERPRET=0`` the tests of ``tests/test_kernels.py`` also run
on the GPU (bit-identical batches, 64-bit seeds, chunking, ``on_step``, ΔW).
"""

from __future__ import annotations

import pytest
import torch
from conftest import INTERPRET, requires_triton

import fastsup
from fastsup.config import TrainConfig

pytestmark = [
    pytest.mark.gpu,
    requires_triton,
    pytest.mark.skipif(INTERPRET or not torch.cuda.is_available(), reason="needs a CUDA GPU and TRITON_INTERPRET=0"),
]

RUN = dict(n_features=20, n_hidden=5, n_instances=64, feature_probability=0.05, importance=[0.7**i for i in range(20)],
           steps=20, batch_size=1024, log_every=1, progress=False)

SHAPES = [
    pytest.param(dict(n_features=2, n_hidden=1), id="2to1"),
    pytest.param(dict(n_features=5, n_hidden=2), id="5to2"),
    pytest.param(dict(n_features=3, n_hidden=6, model="abs", magnitude="signed"), id="3to6-abs"),
    pytest.param(dict(n_features=6, n_hidden=3, model="relu_hidden"), id="6to3-relu_hidden"),
    pytest.param(dict(n_features=400, n_hidden=30, n_instances=8), id="400to30"),
]


def _rel_rms(actual, expected):
    return (((actual - expected) ** 2).mean().sqrt() / (expected**2).mean().sqrt().clamp_min(1e-30)).item()


@pytest.mark.parametrize("strategy", ["persistent", "step"])
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_match_the_torch_backend_on_the_gpu(shape, strategy):
    run = {**RUN, "importance": 1.0, "feature_probability": 0.1, **shape}
    if strategy == "persistent" and run["n_features"] * run["n_hidden"] > 256:
        with pytest.raises(ValueError, match="persistent strategy needs"):
            fastsup.train(backend="triton", device="cuda", strategy=strategy, **run)
        return
    expected = fastsup.train(backend="torch", device="cuda", **run)
    actual = fastsup.train(backend="triton", device="cuda", strategy=strategy, **run)
    for name in expected.params:
        assert _rel_rms(actual.params[name], expected.params[name]) < 1e-5, name
    torch.testing.assert_close(actual.loss_history, expected.loss_history, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(actual.final_loss, expected.final_loss, rtol=1e-4, atol=1e-6)


def test_step_windows_replay_from_cuda_graphs(monkeypatch):
    """The step strategy replays each repeated window of steps from a CUDA graph: bit for bit the launches."""
    from fastsup.backends.triton_backend import kernel_inputs
    from fastsup.init import init_params
    from fastsup.kernels.dispatch import plan_for
    from fastsup.kernels.step import FusedStepTrainer

    import fastsup.kernels.step as step_kernels

    run = {**RUN, "steps": 55, "log_every": 10}
    replays = []
    replay = torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", lambda graph: (replays.append(graph), replay(graph))[1])
    monkeypatch.setattr(step_kernels, "GRAPH_STEPS", 4)
    graphed = fastsup.train(backend="triton", device="cuda", strategy="step", **run)
    # windows end at the logged steps 0, 10, ..., 50, 54: lengths 1, 10 (five times) and 4, in pieces of
    # at most 4 steps: 1 | 4 4 2 | 4 4 2 ... | 4.  A length is recorded on its second coming: the 4-step
    # graph replays once in the first 10-step window, both graphs in each later one, 4 once at the end
    assert len(replays) == 1 + 4 * 3 + 1 and len(set(map(id, replays))) == 2

    config = TrainConfig(**{k: v for k, v in run.items() if k != "progress"})
    inputs = kernel_inputs(config, init_params(config, "cuda"), [1.0] * config.steps, "cuda")
    launched = FusedStepTrainer(inputs, plan_for(config.n_features, config.n_hidden, config.batch_size, "step",
                                                            model=config.model))
    losses = [launched.step(step, 1.0) for step in range(config.steps)]
    for name, value in launched.params.items():
        assert torch.equal(graphed.params[name].cpu(), value.cpu()), name
    logged = torch.stack([losses[step] for step in graphed.loss_steps.tolist()])
    assert torch.equal(graphed.loss_history.cpu(), logged.cpu())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_a_run_on_the_second_gpu_equals_the_first():
    """Every launch runs on its tensors' device, whatever the current device is."""
    assert torch.cuda.current_device() == 0
    on_0 = fastsup.train(backend="triton", device="cuda:0", **RUN)
    on_1 = fastsup.train(backend="triton", device="cuda:1", **RUN)
    assert torch.equal(on_0.W, on_1.W) and torch.equal(on_0.loss_history, on_1.loss_history)


def test_history_offsets_past_two_to_the_31():
    """1025 logged steps x 2**21 + 1 instances = 2.15e9 history elements: the last instance's row offsets
    pass 2**31, which 32-bit offsets would wrap.  Its history must equal a run of that instance alone."""
    instances = 2**21 + 1
    run = dict(n_features=2, n_hidden=1, feature_probability=0.5, batch_size=4, steps=1025, log_every=1,
               progress=False)
    big = fastsup.train(backend="triton", device="cuda", n_instances=instances, instance_chunk=instances, **run)
    assert big.loss_history.shape == (1025, instances)
    alone = fastsup.train(backend="triton", device="cuda", n_instances=1, instance_ids=[instances - 1], **run)
    assert torch.equal(big.loss_history[:, -1:], alone.loss_history)
    assert torch.equal(big.W[-1:], alone.W)


@pytest.mark.parametrize("strategy", ["persistent", "step"])
def test_peak_memory_at_two_hundred_thousand_instances(strategy):
    """The default chunk plan and the evaluation sub-chunks bound device memory (it used to grow with I)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    result = fastsup.train(backend="triton", device="cuda", n_features=5, n_hidden=2, n_instances=200_000,
                           feature_probability=0.1, steps=10, log_every=1, strategy=strategy, progress=False)
    peak = torch.cuda.max_memory_allocated() - base
    print(f"peak device memory, 5→2 x 200 000, {strategy}: {peak / 2**20:.0f} MiB")
    assert torch.isfinite(result.final_loss).all()
    assert peak < 2 * 2**30, f"{peak / 2**30:.2f} GiB"
