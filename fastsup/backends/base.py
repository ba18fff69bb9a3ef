"""What every backend provides, and the one step loop that drives step-wise backends."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, ContextManager, Protocol, runtime_checkable

import torch

from ..config import TrainConfig
from ..data import DataSpec, sample_batch, target_of
from ..functional import ModelSpec, Params, forward
from ..init import init_params
from ..philox import EVAL_STEP

ProgressCallback = Callable[[int], None]  # called with the number of steps just completed


@dataclasses.dataclass
class StepInfo:
    """What an ``on_step`` callback sees after each optimizer step of one chunk of instances.

    ``params`` are the live training tensors of the chunk (read, or copy to keep);
    ``loss`` ``[chunk]`` is this step's training-batch loss (before the update);
    ``lr`` ``[chunk]`` the scheduled lr used; ``instances`` which instances of
    the run the chunk holds.
    """

    step: int
    params: Params
    loss: torch.Tensor
    lr: torch.Tensor
    instances: slice


@dataclasses.dataclass
class RunOptions:
    """How one chunk is run: the schedule, callbacks, starting parameters and backend choices."""

    scales: list[float]  # lr multiplier per step (the schedule)
    progress: ProgressCallback
    init: Params | None = None  # initial parameters of this chunk; None: init_params
    on_step: Callable[[StepInfo], None] | None = None
    instances: slice = dataclasses.field(default_factory=lambda: slice(None))
    compile: bool | None = None  # torch backend: None compiles when the eager time saved exceeds the compile cost
    compiling: Callable[[], ContextManager] = contextlib.nullcontext  # entered while a step compiles (progress bar)
    strategy: str = "auto"  # triton backend: "auto", "persistent" or "step"
    precision: str = "ieee"  # triton backend: tl.dot input precision ("tf32" is an opt-in)
    checkpoint_steps: tuple[int, ...] = ()  # steps after whose update the parameters are kept (increasing)


@dataclasses.dataclass
class RawRun:
    """A backend's output for one chunk of instances (tensors on the training device)."""

    params: Params
    loss_history: torch.Tensor  # [R, I]: training-batch loss at loss_steps
    loss_steps: list[int]  # [R]
    final_loss: torch.Tensor  # [I]: loss of the final weights on the evaluation batch
    checkpoints: Params  # [C, I, ...] per parameter: its values after the update of each checkpoint step


def checkpoint_buffers(params: Params, n_checkpoints: int) -> Params:
    """Room for ``n_checkpoints`` copies of ``params``: ``[C, *shape]`` per parameter, on their device."""
    return {name: value.new_empty((n_checkpoints, *value.shape)) for name, value in params.items()}


class StepTrainer(Protocol):
    params: Params

    def step(self, step: int, lr_scale: float) -> torch.Tensor:
        """Train one step; return the per-instance loss ``[I]`` of this step's batch (before the update)."""


@runtime_checkable
class ReplaysWindows(Protocol):
    """A step trainer that can also run a whole window of steps from a recording (a CUDA graph)."""

    def replay_window(self, count: int) -> torch.Tensor | None:
        """Train the next ``count`` steps and return the last one's loss ``[I]``; or return None and
        train nothing (no recording can serve them), and the loop steps them one by one."""


def model_spec(config: TrainConfig) -> ModelSpec:
    return ModelSpec(config.model, config.activation, config.activation_threshold)


def logged_steps(config: TrainConfig) -> list[int]:
    """Steps whose loss is recorded: every ``log_every``-th, and the last."""
    steps = list(range(0, config.steps, config.log_every))
    if steps[-1] != config.steps - 1:
        steps.append(config.steps - 1)
    return steps


# The evaluation batch of one sub-chunk of instances stays under this many
# fp32 elements (64 MiB); the forward pass's temporaries are a few times it.
# Evaluation runs after training, beside the chunk's state, so it must not
# grow with the chunk: a 5→2 chunk of 10**6 instances evaluated at once
# would need ~160 GB.
EVAL_ELEMENTS = 1 << 24
# On the CPU, sub-chunks also keep Philox's int64 temporaries in cache, as the
# eager step's slices do: 8192 2→1 instances took 11.0 s at 2**24 elements and
# 1.3 s at 2**18 (1 thread, 2-core AMD EPYC VM, loaded, 2026-12-01).
EVAL_ELEMENTS_CPU = 1 << 18


def eval_budget(device: torch.device | str) -> int:
    """Batch elements evaluated at once on ``device``."""
    return min(EVAL_ELEMENTS, EVAL_ELEMENTS_CPU) if torch.device(device).type == "cpu" else EVAL_ELEMENTS


def piece_sizes(n_rows: int, width: int, device: torch.device | str) -> tuple[int, int]:
    """Rows (a multiple of 4 unless all ``n_rows``) and instances of data drawn at once: a piece of
    ``width``-wide data within ``eval_budget``, whatever ``n_rows`` is."""
    rows = min(n_rows, max(4, eval_budget(device) // width // 4 * 4))
    return rows, max(1, eval_budget(device) // (rows * width))


def squared_error(params: Params, config: TrainConfig, spec: DataSpec, n_samples: int,
                  step: int = EVAL_STEP) -> torch.Tensor:
    """Sum over the first ``n_samples`` rows of data step ``step`` (the evaluation batch by default) of
    (y − target)², float64 ``[I, n]``.

    Drawn in pieces of instances and rows that fit ``eval_budget``; an
    instance's rows do not depend on the pieces, so neither does the sum
    beyond rounding.
    """
    device = spec.p.device
    model = model_spec(config)
    rows, block = piece_sizes(n_samples, max(config.n_features, config.n_hidden), device)
    total = torch.zeros(spec.p.shape, dtype=torch.float64, device=device)
    with torch.no_grad():
        for start in range(0, spec.p.shape[0], block):
            part = slice(start, start + block)
            sub = spec.instances(part)
            weights = {name: value[part].to(device=device, dtype=torch.float32) for name, value in params.items()}
            for first_row in range(0, n_samples, rows):
                x = sample_batch(sub, step, min(rows, n_samples - first_row), first_row)
                error = (forward(weights, x, model) - target_of(x, config.model)) ** 2
                total[part] += error.sum(-1, dtype=torch.float64)
    return total


def loss_from_error(total: torch.Tensor, importance: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Per-instance loss fp32 ``[I]``: the importance-weighted mean over features of the mean squared error."""
    return (importance.double() * total / n_samples).mean(1).float()


def evaluate(params: Params, config: TrainConfig, spec: DataSpec) -> torch.Tensor:
    """Per-instance loss ``[I]`` on the evaluation batch (``philox.EVAL_STEP``), never seen in training."""
    total = squared_error(params, config, spec, config.eval_batch_size)
    return loss_from_error(total, config.importance_tensor().to(total.device), config.eval_batch_size)


def initial_params(config: TrainConfig, device, options: RunOptions) -> Params:
    """The chunk's starting parameters: given ones (copied, fp32, on device) or the contract's init."""
    if options.init is None:
        return init_params(config, device)
    return {name: value.detach().to(device=device, dtype=torch.float32).clone() for name, value in options.init.items()}


def step_windows(config: TrainConfig, options: RunOptions) -> list[tuple[int, int]]:
    """The run cut into ``[start, stop)`` windows, each ending where the loop must look: a logged step, a
    checkpoint step or the last step; with an ``on_step`` hook, every step."""
    if options.on_step is not None:
        return [(step, step + 1) for step in range(config.steps)]
    ends = sorted(set(logged_steps(config)) | set(options.checkpoint_steps))
    return list(zip([0] + [end + 1 for end in ends[:-1]], [end + 1 for end in ends]))


def run_steps(trainer: StepTrainer, config: TrainConfig, spec: DataSpec, options: RunOptions) -> RawRun:
    """Drive a step-wise trainer through the run, a window at a time; losses stay on the device until the end."""
    logged = logged_steps(config)
    is_logged = set(logged)
    replay = trainer.replay_window if isinstance(trainer, ReplaysWindows) else None
    history = []
    device = next(iter(trainer.params.values())).device
    base_lr = config.lr_tensor().to(device) if options.on_step else None
    checkpoints = checkpoint_buffers(trainer.params, len(options.checkpoint_steps))
    checkpoint_row = {step: row for row, step in enumerate(options.checkpoint_steps)}
    reported = 0

    def report(done: int) -> None:  # to the progress bar every 100 steps, and at the end
        nonlocal reported
        if done - reported >= 100 or done == config.steps:
            options.progress(done - reported)
            reported = done

    for start, stop in step_windows(config, options):
        step = stop - 1  # the window's last step: the only one anything below looks at
        loss = replay(stop - start) if replay else None
        if loss is None:
            for each in range(start, stop):
                loss = trainer.step(each, options.scales[each])
                report(each + 1)
        else:
            report(stop)
        if step in is_logged:
            history.append(loss.detach().clone())
        if step in checkpoint_row:
            for name, value in trainer.params.items():
                checkpoints[name][checkpoint_row[step]].copy_(value)
        if options.on_step is not None:
            options.on_step(StepInfo(step, trainer.params, loss, base_lr * options.scales[step], options.instances))
    return RawRun(
        params=trainer.params,
        loss_history=torch.stack(history),
        loss_steps=logged,
        final_loss=evaluate(trainer.params, config, spec),
        checkpoints=checkpoints,
    )
