"""What every backend provides, and the one step loop that drives step-wise backends."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, ContextManager, Protocol

import torch

from ..config import TrainConfig
from ..data import DataSpec, sample_batch, target_of
from ..functional import ModelSpec, Params, forward, loss_per_instance
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


@dataclasses.dataclass
class RawRun:
    """A backend's output for one chunk of instances (tensors on the training device)."""

    params: Params
    loss_history: torch.Tensor  # [R, I]: training-batch loss at loss_steps
    loss_steps: list[int]  # [R]
    final_loss: torch.Tensor  # [I]: loss of the final weights on the evaluation batch


class StepTrainer(Protocol):
    params: Params

    def step(self, step: int, lr_scale: float) -> torch.Tensor:
        """Train one step; return the per-instance loss ``[I]`` of this step's batch (before the update)."""


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


def eval_chunk(config: TrainConfig, device: torch.device | str) -> int:
    """Instances evaluated at once: their evaluation batch fits the budget of ``device``."""
    budget = min(EVAL_ELEMENTS, EVAL_ELEMENTS_CPU) if torch.device(device).type == "cpu" else EVAL_ELEMENTS
    per_instance = config.eval_batch_size * max(config.n_features, config.n_hidden)
    return max(1, budget // per_instance)


def evaluate(params: Params, config: TrainConfig, spec: DataSpec) -> torch.Tensor:
    """Per-instance loss ``[I]`` on the evaluation batch (``philox.EVAL_STEP``), never seen in training.

    Computed ``eval_chunk(config, device)`` instances at a time; an instance's batch
    and loss do not depend on which others share its sub-chunk.
    """
    importance = config.importance_tensor().to(spec.p.device)
    model = model_spec(config)
    step = eval_chunk(config, spec.p.device)
    losses = []
    with torch.no_grad():
        for start in range(0, spec.p.shape[0], step):
            part = slice(start, start + step)
            sub = dataclasses.replace(spec, instance_ids=spec.instance_ids[part], p=spec.p[part],
                                      inv_p=spec.inv_p[part])
            x = sample_batch(sub, EVAL_STEP, config.eval_batch_size)
            y = forward({name: value[part] for name, value in params.items()}, x, model)
            losses.append(loss_per_instance(y, target_of(x, config.model), importance[part]))
    return torch.cat(losses)


def initial_params(config: TrainConfig, device, options: RunOptions) -> Params:
    """The chunk's starting parameters: given ones (copied, fp32, on device) or the contract's init."""
    if options.init is None:
        return init_params(config, device)
    return {name: value.detach().to(device=device, dtype=torch.float32).clone() for name, value in options.init.items()}


def run_steps(trainer: StepTrainer, config: TrainConfig, spec: DataSpec, options: RunOptions) -> RawRun:
    """Drive a step-wise trainer through the run; losses stay on the device until the end."""
    logged = logged_steps(config)
    is_logged = set(logged)
    history = []
    device = next(iter(trainer.params.values())).device
    base_lr = config.lr_tensor().to(device) if options.on_step else None
    report_every, reported = 100, 0
    for step in range(config.steps):
        loss = trainer.step(step, options.scales[step])
        if step in is_logged:
            history.append(loss.detach().clone())
        if options.on_step is not None:
            options.on_step(StepInfo(step, trainer.params, loss, base_lr * options.scales[step], options.instances))
        if step + 1 - reported == report_every or step + 1 == config.steps:
            options.progress(step + 1 - reported)
            reported = step + 1
    return RawRun(
        params=trainer.params,
        loss_history=torch.stack(history),
        loss_steps=logged,
        final_loss=evaluate(trainer.params, config, spec),
    )
