"""What the launchers hand the kernels, and how much device memory a chunk may take: host-side facts
that decide GPU behaviour the interpreter cannot show (the device a launch runs on, fp32 scalar
arguments), and the bounds of the chunk planner and of evaluation, for every backend.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from conftest import HAS_TRITON, KERNEL_DEVICE, requires_triton

import fastsup
from fastsup import backends
from fastsup.backends import base
from fastsup.config import TrainConfig

TINY = dict(n_features=5, n_hidden=2, n_instances=3, feature_probability=[[1.0], [0.3], [0.1]], batch_size=16,
            steps=2, log_every=1, progress=False)


# ---------------------------------------------------------------------------
# the device every launch runs on
# ---------------------------------------------------------------------------


class _FakeCudaTensor:
    device = torch.device("cuda", 1)


def test_on_device_enters_the_tensors_cuda_device(monkeypatch):
    from fastsup.kernels import utils

    entered = []

    @contextlib.contextmanager
    def fake_device(device):
        entered.append(device)
        yield

    monkeypatch.setattr(utils.torch.cuda, "device", fake_device)
    with utils.on_device(_FakeCudaTensor()):
        pass
    assert entered == [torch.device("cuda", 1)]
    with utils.on_device(torch.zeros(1)):  # CPU tensors (the interpreter): nothing to enter
        pass
    assert entered == [torch.device("cuda", 1)]


class _GuardedKernel:
    """Stands in for a kernel: checks that a launch happens inside ``on_device``, then runs the real one."""

    def __init__(self, kernel, state):
        self.kernel, self.state = kernel, state

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            assert self.state["inside"], "kernel launched outside on_device"
            self.state["launches"] += 1
            return self.kernel[grid](*args, **kwargs)

        return launch


@requires_triton
@pytest.mark.parametrize("strategy, on_step, shape", [
    pytest.param("persistent", None, {}, id="persistent-warp"),
    pytest.param("persistent", print, {}, id="persistent-warp-on_step"),
    pytest.param("persistent", None, dict(n_features=20, n_hidden=8, importance=1.0), id="persistent-tile"),
    pytest.param("persistent", print, dict(n_features=20, n_hidden=8, importance=1.0), id="persistent-tile-on_step"),
    pytest.param("step", None, {}, id="step"),
])
def test_every_kernel_launch_runs_under_its_tensors_device(monkeypatch, strategy, on_step, shape):
    from fastsup.kernels import persistent, step

    state = {"inside": False, "launches": 0}

    @contextlib.contextmanager
    def recording_device(tensor):
        assert isinstance(tensor, torch.Tensor)
        state["inside"] = True
        yield
        state["inside"] = False

    for module, names in ((persistent, ["persistent_run_kernel", "warp_run_kernel"]),
                          (step, ["step_hidden_kernel", "step_grads_kernel", "reduce_update_kernel"])):
        monkeypatch.setattr(module, "on_device", recording_device)
        for name in names:
            monkeypatch.setattr(module, name, _GuardedKernel(getattr(module, name), state))
    fastsup.train(backend="triton", device=KERNEL_DEVICE, strategy=strategy, on_step=on_step and (lambda info: None),
                  **{**TINY, **shape})
    expected = {("persistent", None): 1, ("persistent", print): TINY["steps"], ("step", None): 3 * TINY["steps"]}
    assert state["launches"] == expected[strategy, on_step]


# ---------------------------------------------------------------------------
# fp32 scalar arguments: Adam's 1 - β comes from the host
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_TRITON, reason="the argument builders live beside the kernels")
@pytest.mark.parametrize("kernel, n_features, n_hidden", [
    ("warp_run", 5, 2), ("persistent_run", 20, 8), ("step_hidden", 5, 2), ("step_grads", 5, 2),
    ("reduce_update", 5, 2)])
def test_kernels_receive_one_minus_beta_rounded_as_torch_optim(kernel, n_features, n_hidden):
    """A compiled kernel gets float arguments as fp32: 1 - β2 formed inside it would be 1 - fp32(0.999).

    torch.optim computes ``1 - beta2`` in double and rounds it once; the
    builders must hand the kernels exactly that, and no β1 to subtract from.
    """
    from fastsup.kernels import check

    config = TrainConfig(n_features=n_features, n_hidden=n_hidden, n_instances=3, betas=(0.9, 0.999))
    plan = check.plan_of(config, "step" if kernel.startswith(("step", "reduce")) else "auto")
    assert kernel in plan.kernels
    args, _ = check.launch_args(kernel, config, plan)
    if kernel != "reduce_update" and plan.strategy == "step":  # no optimizer in them
        assert not any("beta" in name for name in args)
        return
    assert "beta1" not in args
    assert np.float32(args["one_minus_beta2"]) == np.float32(0.001)
    assert np.float32(args["one_minus_beta2"]) != np.float32(1) - np.float32(0.999)
    assert np.float32(args["one_minus_beta1"]) == np.float32(1 - 0.9)
    assert np.float32(args["beta2"]) == np.float32(0.999)


# ---------------------------------------------------------------------------
# bounded evaluation and the chunk planner, every backend
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "reference", pytest.param("triton", marks=requires_triton)])
def test_evaluation_runs_in_bounded_sub_chunks_and_equals_the_whole(monkeypatch, backend):
    device = KERNEL_DEVICE if backend == "triton" else "cpu"
    kwargs = dict(TINY, n_instances=7, feature_probability=0.3, eval_batch_size=40)
    whole = fastsup.train(backend=backend, device=device, **kwargs)

    sampled = []
    real_sample = base.sample_batch

    def spy(spec, step, batch_size, first_row=0):
        x = real_sample(spec, step, batch_size, first_row)
        sampled.append(x.numel())
        return x

    # two instances' evaluation batch (40 rows x 5 features) per sub-chunk
    monkeypatch.setattr(base, "EVAL_ELEMENTS", 2 * 40 * 5)
    monkeypatch.setattr(base, "sample_batch", spy)
    bounded = fastsup.train(backend=backend, device=device, **kwargs)
    assert sampled == [400, 400, 400, 200]
    torch.testing.assert_close(bounded.final_loss, whole.final_loss, rtol=1e-6, atol=0)
    assert torch.equal(bounded.W, whole.W)


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=pytest.mark.skipif(
    not HAS_TRITON, reason="the triton plan needs the dispatcher"))])
def test_chunk_plan_bounds_the_loss_history(backend):
    """10 000 logged steps of a tiny model: the history, not the batch or the state, limits the chunk."""
    config = TrainConfig(n_features=5, n_hidden=2, n_instances=10**6, batch_size=16, steps=10_000, log_every=1)
    chunk = backends.default_chunk(backend, config, torch.device("cpu"))
    assert 2 * 10_000 * chunk <= backends.HISTORY_ELEMENTS
    assert chunk == backends.HISTORY_ELEMENTS // 20_000


def test_eval_budget_is_cache_sized_on_the_cpu_and_memory_sized_on_gpus():
    assert base.eval_budget("cpu") == base.EVAL_ELEMENTS_CPU < base.eval_budget("cuda") == base.EVAL_ELEMENTS
