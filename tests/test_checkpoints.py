"""``train(checkpoint_steps=...)`` on every backend, against an independent oracle.

The oracle: with a constant schedule, the parameters after step ``s``'s update
are the final parameters of the same run with ``steps = s + 1`` (the data of
a step and the init depend only on the seed, the instance and the step).  A
checkpoint recorded a step early or late, or a copy of the live tensors that
later steps overwrite, fails it.  Kernel cases run interpreted
(``TRITON_INTERPRET=1``, from conftest) and are tiny, as in test_kernels.py.
"""

from __future__ import annotations

import pytest
import torch
from conftest import KERNEL_DEVICE, requires_triton

import fastsup
from fastsup.memory import estimate
from fastsup.result import load

# 5→2 with a different feature probability per instance; 7 steps, odd sizes
RUN = dict(n_features=5, n_hidden=2, n_instances=3, feature_probability=[[1.0], [0.3], [0.1]],
           importance=[0.9**i for i in range(5)], batch_size=12, steps=7, lr=1e-2, progress=False)
ABS = dict(RUN, model="abs", n_features=3, n_hidden=6, importance=1.0)
STEPS = [0, 2, 3, 6]

BACKENDS = [
    pytest.param(dict(backend="torch", device="cpu", compile=False), id="torch-eager"),
    pytest.param(dict(backend="reference", device="cpu"), id="reference"),
    pytest.param(dict(backend="triton", device=KERNEL_DEVICE, strategy="persistent"), id="triton-persistent",
                 marks=requires_triton),
    pytest.param(dict(backend="triton", device=KERNEL_DEVICE, strategy="step"), id="triton-step",
                 marks=requires_triton),
]
MODELS = [pytest.param(RUN, id="relu_output-5to2"), pytest.param(ABS, id="abs-3to6")]


def _assert_checkpoints_are_shorter_runs(run: dict, backend: dict, steps=STEPS, **options):
    result = fastsup.train(**run, **backend, checkpoint_steps=steps, **options)
    assert result.checkpoint_steps.tolist() == list(steps)
    assert sorted(result.checkpoints) == list(steps)
    for step in steps:
        shorter = fastsup.train(**{**run, "steps": step + 1}, **backend)
        for name, value in shorter.params.items():
            assert torch.equal(result.checkpoints[step][name], value), (step, name)
    return result


@pytest.mark.parametrize("run", MODELS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_checkpoint_holds_the_parameters_after_its_steps_update(run, backend):
    result = _assert_checkpoints_are_shorter_runs(run, backend)
    # the last step's checkpoint is the final parameters
    for name, value in result.params.items():
        assert torch.equal(result.checkpoints[run["steps"] - 1][name], value), name


@pytest.mark.parametrize("backend", BACKENDS[:2])
def test_checkpoints_of_full_batch_training_on_a_fixed_dataset(backend):
    _assert_checkpoints_are_shorter_runs(dict(RUN, dataset_size=9, batch_size=9), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoints_and_on_step_never_change_the_trained_weights(backend):
    plain = fastsup.train(**RUN, **backend)
    seen = []
    both = fastsup.train(**RUN, **backend, checkpoint_steps=STEPS, on_step=lambda info: seen.append(info.step))
    assert seen == list(range(RUN["steps"]))
    for name, value in plain.params.items():
        assert torch.equal(both.params[name], value), name
    assert torch.equal(both.loss_history, plain.loss_history)
    assert torch.equal(both.final_loss, plain.final_loss)


@requires_triton
def test_the_persistent_kernel_with_a_hook_keeps_the_same_checkpoints():
    """With on_step the persistent kernel runs one launch per step and the step loop copies the checkpoints."""
    backend = dict(backend="triton", device=KERNEL_DEVICE, strategy="persistent")
    in_kernel = fastsup.train(**RUN, **backend, checkpoint_steps=STEPS)
    hooked = fastsup.train(**RUN, **backend, checkpoint_steps=STEPS, on_step=lambda info: None)
    for name, value in in_kernel.checkpoint_params.items():
        assert torch.equal(hooked.checkpoint_params[name], value), name


def test_compiled_steps_record_checkpoints():
    _assert_checkpoints_are_shorter_runs(RUN, dict(backend="torch", device="cpu", compile=True), steps=[1, 4])


@pytest.mark.parametrize("chunk", [1, 2])
def test_chunked_training_gathers_every_instances_checkpoints(chunk):
    whole = fastsup.train(**RUN, backend="torch", device="cpu", checkpoint_steps=STEPS)
    chunked = fastsup.train(**RUN, backend="torch", device="cpu", checkpoint_steps=STEPS, instance_chunk=chunk)
    for name, value in whole.checkpoint_params.items():
        assert chunked.checkpoint_params[name].shape == (len(STEPS), *whole.params[name].shape)
        torch.testing.assert_close(chunked.checkpoint_params[name], value, rtol=0, atol=1e-6)


@requires_triton
def test_chunked_persistent_kernel_gathers_every_instances_checkpoints():
    backend = dict(backend="triton", device=KERNEL_DEVICE, strategy="persistent")
    whole = fastsup.train(**RUN, **backend, checkpoint_steps=STEPS)
    chunked = fastsup.train(**RUN, **backend, checkpoint_steps=STEPS, instance_chunk=2)
    for name, value in whole.checkpoint_params.items():
        assert torch.equal(chunked.checkpoint_params[name], value), name


def test_checkpoints_survive_save_and_load(tmp_path):
    result = fastsup.train(**ABS, backend="torch", device="cpu", checkpoint_steps=[1, 5])
    loaded = load(result.save(tmp_path / "run"))
    assert loaded.checkpoint_steps.tolist() == [1, 5]
    for step in (1, 5):
        for name, value in result.checkpoints[step].items():
            assert torch.equal(loaded.checkpoints[step][name], value), (step, name)


def test_a_result_without_checkpoints_saves_and_loads_with_none(tmp_path):
    result = fastsup.train(**RUN, backend="torch", device="cpu")
    loaded = load(result.save(tmp_path / "run"))
    assert result.checkpoints == {} and loaded.checkpoints == {}
    assert loaded.checkpoint_steps.tolist() == []


@pytest.mark.parametrize("steps, message", [
    pytest.param([0, 7], r"checkpoint_steps must lie in \[0, steps\) = \[0, 7\), got \[7\]", id="past-the-end"),
    pytest.param([-1], "checkpoint_steps entries must be a non-negative integer", id="negative"),
    pytest.param([3, 1], "checkpoint_steps must be strictly increasing", id="unsorted"),
    pytest.param([2, 2], "checkpoint_steps must be strictly increasing", id="repeated"),
    pytest.param([1.5], "checkpoint_steps entries must be a non-negative integer", id="float"),
    pytest.param(3, "checkpoint_steps must be a sequence", id="not-a-sequence"),
])
def test_bad_checkpoint_steps_are_refused_by_name(steps, message):
    with pytest.raises((TypeError, ValueError), match=message):
        fastsup.train(**RUN, backend="torch", device="cpu", checkpoint_steps=steps)


def test_checkpoints_count_in_the_memory_estimate():
    """Each checkpoint adds one copy of a chunk's parameters on the device and two of all of them on the CPU."""
    config = fastsup.TrainConfig(**{k: v for k, v in RUN.items() if k != "progress"})
    params_bytes = 4 * (5 * 2 + 5)  # per instance: W [5, 2] and b [5], fp32
    without, with_four = (estimate(config, 2, torch.device("cpu"), n_checkpoints=c) for c in (0, 4))
    assert with_four.checkpoints - without.checkpoints == 4 * 2 * params_bytes
    assert with_four.result - without.result == 2 * 4 * 3 * params_bytes
    assert with_four.device_bytes - without.device_bytes == 4 * 2 * params_bytes + 2 * 4 * 3 * params_bytes


SWEEP = dict(n_features=5, n_hidden=2, steps=7, batch_size=12, lr=1e-2, axes={"feature_probability": [0.1, 0.3, 1.0]},
             restarts=2)


def test_a_sweep_gathers_every_models_checkpoints_across_chunks(tmp_path):
    """Chunks of 4 rows split the 6 models 4 + 2; each row's checkpoint equals the same model trained shorter."""
    sweep = fastsup.run_sweep(fastsup.Sweep(**SWEEP), tmp_path / "store", backend="torch", device="cpu",
                              instance_chunk=4, progress=False, checkpoint_steps=[2, 5])
    shorter = fastsup.run_sweep(fastsup.Sweep(**{**SWEEP, "steps": 6}), tmp_path / "shorter", backend="torch",
                                device="cpu", instance_chunk=3, progress=False)
    rows = sweep.table.sort_values("final_loss")  # any order: the checkpoints follow the rows given
    checkpoints = sweep.checkpoints(rows)
    assert sorted(checkpoints) == [2, 5] and sweep.checkpoint_steps == [2, 5]
    for name, value in shorter.params(rows).items():
        torch.testing.assert_close(checkpoints[5][name], value, rtol=0, atol=1e-6)
    assert checkpoints[2]["W"].shape == (6, 5, 2)


def test_a_sweep_store_refuses_to_resume_with_other_checkpoint_steps(tmp_path):
    sweep = fastsup.Sweep(**SWEEP)
    fastsup.run_sweep(sweep, tmp_path / "store", backend="torch", device="cpu", progress=False, checkpoint_steps=[3])
    with pytest.raises(ValueError, match=r"trained with checkpoint_steps=\[3\], not \[4\]"):
        fastsup.run_sweep(sweep, tmp_path / "store", backend="torch", device="cpu", progress=False,
                          checkpoint_steps=[4])
    with pytest.raises(ValueError, match=r"checkpoint_steps must lie in \[0, steps\) = \[0, 7\)"):
        fastsup.run_sweep(sweep, tmp_path / "other", backend="torch", device="cpu", progress=False,
                          checkpoint_steps=[7])
