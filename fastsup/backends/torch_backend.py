"""The torch backend: analytic gradients and a fused AdamW/Adam update for all instances at once.

One training step is a pure function of tensors (parameters, optimizer
state, step index, scheduled lr, and the run's per-instance constants) and of
a few static facts (model, data mode, batch size, optimizer).  A fixed
dataset (``dataset_size``) is drawn once, when the trainer is built, and is an
input of every step: sampling it again each step would cost T·n Philox draws
per instance and step for the same points.  For long runs inductor compiles
it, fusing sampling, the small contractions and the update into a few C++
loops (CUDA kernels on a GPU); since every per-run
tensor is an input, one compiled step serves every run with the same static
facts and shapes (``compiled.STEPS``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, ContextManager

import torch

from .. import philox
from ..config import TrainConfig
from ..data import DataSpec, dataset, sample_batch, sampling_step, target_of
from ..functional import ModelSpec, Params, adam_update, loss_and_grads
from ..init import init_params
from . import compiled
from .allocator import keep_freed_memory
from .base import RawRun, RunOptions, initial_params, model_spec, run_steps

# The eager step runs a few instances at a time, so that its temporaries (above
# all Philox's int64 words, ~10 ops per round) stay near the cores: slices of at
# most this many Philox calls.  Medians of 7 rounds against 2**16 and 2**20, 2
# threads, quiet 2-core AMD EPYC VM, 2026-12-01: 200->20 x 20 108 ms (151 and
# 135), 100->20 x 20 53 ms (59, 59), 400->30 x 8 87 ms (110 at 2**16).
EAGER_SLICE_CALLS = 1 << 18


@dataclasses.dataclass(frozen=True)
class StepStatics:
    """What a compiled step bakes in; with the input shapes, the key of the compiled-step cache."""

    names: tuple[str, ...]
    model: ModelSpec
    magnitude: str
    normalize: bool
    batch_size: int
    fixed_dataset: bool  # the batch is an input (the dataset drawn once), not sampled
    betas: tuple[float, float]
    eps: float
    decoupled: bool


def _statics(config: TrainConfig, names: tuple[str, ...]) -> StepStatics:
    return StepStatics(
        names=names, model=model_spec(config), magnitude=config.magnitude, normalize=config.normalize_points,
        batch_size=config.batch_size, fixed_dataset=config.dataset_size is not None,
        betas=tuple(config.betas), eps=config.eps,
        decoupled=config.optimizer == "adamw",
    )


def philox_calls_per_instance(config: TrainConfig) -> int:
    """Philox calls of one instance's batch in one step: one per (feature, four batch rows); none for a fixed
    dataset, which is drawn once."""
    return 0 if config.dataset_size is not None else config.n_features * -(-config.batch_size // 4)


def eager_slice_width(config: TrainConfig) -> int:
    """Instances per slice of the eager step (all of them when no step samples)."""
    return max(1, EAGER_SLICE_CALLS // max(1, philox_calls_per_instance(config)))


def _loss_and_grads(params: Params, spec: DataSpec, step, importance: torch.Tensor, statics: StepStatics,
                    dataset: torch.Tensor | None):
    x = sample_batch(spec, step, statics.batch_size) if dataset is None else dataset
    return loss_and_grads(params, x, target_of(x, statics.model.model), importance, statics.model)


def _sliced_loss_and_grads(params: Params, spec: DataSpec, step, importance: torch.Tensor, statics: StepStatics,
                           dataset: torch.Tensor | None, width: int):
    """Sample, forward and backward ``width`` instances at a time: an instance's numbers never depend on its companions."""
    losses, grads = [], []
    for start in range(0, spec.p.shape[0], width):
        part = slice(start, start + width)
        loss, grad = _loss_and_grads({k: v[part] for k, v in params.items()}, spec.instances(part), step,
                                     importance[part], statics,
                                     None if dataset is None else dataset[part])
        losses.append(loss)
        grads.append(grad)
    return torch.cat(losses), {k: torch.cat([g[k] for g in grads]) for k in grads[0]}


def step_function(statics: StepStatics, slice_width: int | None = None) -> compiled.CompiledStep:
    """The training step on flat tensors, in ``TorchTrainer.inputs`` order; returns ``(loss,)``.

    The seed is an input (a 0-d int64 tensor), so one compiled step serves
    every seed: sweeps over seeds and compat's fresh seed per ``optimize``
    call compile once.

    ``slice_width``: run sampling, forward and backward that many instances at a
    time (the eager step); None: all at once (what inductor compiles).
    """
    k = len(statics.names)

    def step_fn(*tensors: torch.Tensor) -> tuple[torch.Tensor]:
        params, exp_avg, exp_avg_sq = (dict(zip(statics.names, tensors[i * k : (i + 1) * k])) for i in range(3))
        rest, dataset = (tensors[3 * k : -1], tensors[-1]) if statics.fixed_dataset else (tensors[3 * k :], None)
        step, step_count, lr, seed, weight_decay, importance, instance_ids, p, inv_p, *grouping = rest
        if slice_width is not None and seed.device.type == "cpu":
            seed = int(seed) % philox.MAX_SEED  # eager: the key schedule on Python ints, not 20 tiny tensor ops a draw
        spec = DataSpec(seed, instance_ids, p, inv_p, statics.magnitude, *(grouping or (None, None, None)),
                        normalize=statics.normalize)
        if slice_width is None or slice_width >= p.shape[0]:
            loss, grads = _loss_and_grads(params, spec, step, importance, statics, dataset)
        else:
            loss, grads = _sliced_loss_and_grads(params, spec, step, importance, statics, dataset, slice_width)
        adam_update(params, grads, exp_avg, exp_avg_sq, step_count, lr, weight_decay, statics.betas, statics.eps,
                    statics.decoupled)
        return (loss,)

    return step_fn


class TorchTrainer:
    """All instances of a chunk, one step at a time; the step is eager or compiled (once per process and key)."""

    def __init__(
        self,
        config: TrainConfig,
        device,
        compile: bool | None = None,
        params: Params | None = None,
        compiling: Callable[[], ContextManager] = contextlib.nullcontext,
    ):
        self.config = config
        self.device = torch.device(device)
        spec = DataSpec.from_config(config, device)
        self.spec = spec
        self.params = init_params(config, device) if params is None else params
        self.exp_avg = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.base_lr = config.lr_tensor().to(device)
        grouping = [spec.presence_column, spec.flip, spec.grouped] if spec.presence_column is not None else []
        points = [] if config.dataset_size is None else [dataset(config, device)]  # drawn once, here
        self.constants = [philox.seed_tensor(config.seed).to(device),
                          config.weight_decay_tensor().to(device), config.importance_tensor().to(device),
                          spec.instance_ids, spec.p, spec.inv_p, *grouping, *points]
        self.state = [*self.params.values(), *self.exp_avg.values(), *self.exp_avg_sq.values()]
        statics = _statics(config, tuple(self.params))
        example = self.inputs(0, 1.0)
        self.key = (statics, tuple((tuple(t.shape), t.dtype, str(t.device)) for t in example))
        if compile is None:
            compile = compile_pays(config, self.key, device=self.device)
        compiled.STEPS.note_run(self.key)
        if compile:
            self.step_fn = compiled.STEPS.get(self.key, step_function(statics), example, compiling)
        else:
            self.step_fn = step_function(statics, eager_slice_width(config))

    def inputs(self, step: int, lr_scale: float) -> list[torch.Tensor]:
        """The step's inputs: state, step index, 1-based step count (float64, as torch.optim), lr, constants
        (seed, weight decay, importance, instance ids, p, 1/p, feature groups, the fixed dataset)."""
        return [
            *self.state,
            torch.tensor(sampling_step(self.config, step), dtype=torch.int64, device=self.device),
            torch.tensor(step + 1, dtype=torch.float64, device=self.device),
            self.base_lr * lr_scale,
            *self.constants,
        ]

    def step(self, step: int, lr_scale: float) -> torch.Tensor:
        with torch.no_grad():
            return self.step_fn(*self.inputs(step, lr_scale))[0]


# The compile decision's model of a step: a fixed cost per step plus a cost per
# Philox call (the sampler dominates both paths; the contractions cost about the
# same eager and compiled).  Eager: ~200 ops of ~6 us dispatch, and 10 rounds of
# ~10 int64 ops per call; compiled: one C++ call per step and the fused sampler.
# Fitted to the average step of long runs (not the best of a few rounds: eager, the
# intro step averaged 3.3 ms where its best rounds took 2.0; part of it is glibc handing
# the step's temporaries back to the OS and faulting them in again) of the four benchmark cases
# (benchmarks/cases.py: intro, 100->20, 200->20, the 2->1 grid), 2026-12-01, 2-core
# AMD EPYC VM (lscpu: AMD EPYC, KVM), torch's default 2 threads, quiet machine.
EAGER_STEP_SECONDS = 2.0e-3
EAGER_SECONDS_PER_CALL = 90e-9
COMPILED_STEP_SECONDS = 0.15e-3
COMPILED_SECONDS_PER_CALL = 20e-9
# A first compile on the CPU with an empty cache, in a fresh process: importing
# dynamo and inductor (~4 s), exporting the step (~4 s), code generation (~13 s)
# and the C++ compiler (~14 s, most of it the package's wrapper).  Same machine,
# quiet, 2026-12-02: 32.5 and 34.9 s for the intro step, 29 s for 200->20 x 20.
# Later decisions use the process's own last measured compile instead.
FIRST_COMPILE_SECONDS = 33.0
PACKAGE_LOAD_SECONDS = 0.05  # an earlier process left the step's package (loaded in ~10 ms here)
WARM_COMPILE_SECONDS = 7.0  # CUDA: inductor's disk cache holds the step (import, tracing, cache load)


def compile_pays(config: TrainConfig, key=None, compiles: int = 1, device=None) -> bool:
    """Compile when the eager time it saves exceeds what ``compiles`` compiles cost.

    The cost: nothing if this process has the step (``key``); a package load
    or a warm compile if an earlier process left the step on disk (on
    ``device``); else the process's last measured compile, or a first one.
    A first compile of a step that ran before (uncompiled) is weighed against
    the time it saves in this run and one more like it: the package serves
    every later process, and a step run twice is likely to be run again.
    Without a key (a sweep deciding for all its chunks) the disk is not
    consulted.
    """
    if key is not None and key in compiled.STEPS:
        return True
    calls = config.n_instances * philox_calls_per_instance(config)
    saved_per_step = (EAGER_STEP_SECONDS - COMPILED_STEP_SECONDS
                      + (EAGER_SECONDS_PER_CALL - COMPILED_SECONDS_PER_CALL) * calls)
    device = torch.device(device or "cpu")
    on_disk = None if key is None else compiled.STEPS.on_disk(key, device)
    runs = 1
    if on_disk == "package":
        compile_seconds = PACKAGE_LOAD_SECONDS
    elif on_disk == "inductor cache":
        compile_seconds = WARM_COMPILE_SECONDS
    else:
        compile_seconds = compiled.STEPS.last_compile_seconds or FIRST_COMPILE_SECONDS
        runs = 2 if key is not None and compiled.STEPS.ran_before(key) else 1
    return runs * config.steps * saved_per_step > compiles * compile_seconds


def run(config: TrainConfig, device, options: RunOptions) -> RawRun:
    with keep_freed_memory() if torch.device(device).type == "cpu" else contextlib.nullcontext():
        trainer = TorchTrainer(config, device, compile=options.compile, params=initial_params(config, device, options),
                               compiling=options.compiling)
        return run_steps(trainer, config, trainer.spec, options)
