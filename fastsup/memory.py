"""Will a run fit?  An estimate of its peak memory, checked before any training starts.

The estimate counts what a run holds at once: the chunk's parameters,
gradients and Adam moments on the training device; the batch and its
temporaries for one step; the evaluation batch of one evaluation sub-chunk (``final_loss``);
the chunk's checkpoint buffers; and on the CPU the gathered result (every
instance's parameters, loss history and checkpoints).  It is an upper bound of the right order, not a prediction to the
byte: a run that needs more than the memory available is refused with the
argument to reduce, instead of being killed for memory (or failing after
training, as a huge ``eval_batch_size`` would).
"""

from __future__ import annotations

import dataclasses
import os

import torch

from .backends.base import eval_budget, logged_steps
from .config import TrainConfig

FP32 = 4
# Bytes of temporaries per element of a [instances, max(n, m), batch] batch, with a
# margin over the peak resident memory measured (torch 2.13 CPU, eager step, which
# samples a few instances at a time; 2-core AMD EPYC, 2026-12-01): a training step
# 11-15 with slices of 2**18 Philox calls (2→1 × 8192 11.2, 200→20 × 20 12.9,
# 20→5 × 200 15.1, batch 1024; 8-10 with the earlier 2**16), the evaluation 33
# (2→1 × 8192, evaluation batch 1024: sampler and forward pass of a whole sub-chunk).
STEP_BYTES_PER_BATCH_ELEMENT = 20
EVAL_BYTES_PER_BATCH_ELEMENT = 48


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at its peak, by part (the largest part names the argument to reduce)."""

    device: torch.device
    state: int  # parameters, gradients and two Adam moments of one chunk
    step: int  # one training step's batch temporaries of one chunk
    evaluation: int  # the final-loss evaluation batch of one chunk
    checkpoints: int  # one chunk's checkpoint buffers (parameters at each checkpoint step)
    result: int  # the gathered result on the CPU: all parameters, loss histories and checkpoints

    @property
    def device_bytes(self) -> int:
        peak = self.state + self.checkpoints + max(self.step, self.evaluation)
        return peak + (self.result if self.device.type == "cpu" else 0)

    @property
    def cpu_bytes(self) -> int:
        return self.device_bytes if self.device.type == "cpu" else self.result


def estimate(config: TrainConfig, chunk: int, device: torch.device, n_checkpoints: int = 0) -> MemoryEstimate:
    I, n, m = config.n_instances, config.n_features, config.n_hidden
    chunk = min(chunk, I)
    per_instance_params = (2 * n * m if config.model == "abs" else n * m) + n
    width = max(n, m)
    return MemoryEstimate(
        device=torch.device(device),
        state=4 * chunk * per_instance_params * FP32,
        step=chunk * width * config.batch_size * STEP_BYTES_PER_BATCH_ELEMENT,
        evaluation=min(chunk * width * config.eval_batch_size, eval_budget(device)) * EVAL_BYTES_PER_BATCH_ELEMENT,
        checkpoints=n_checkpoints * chunk * per_instance_params * FP32,
        # gathered and concatenated: parameters, checkpoints, loss history, final loss
        result=2 * I * ((1 + n_checkpoints) * per_instance_params + len(logged_steps(config)) + 1) * FP32,
    )


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this run on ``device`` (None where it cannot be read)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_fits(config: TrainConfig, chunk: int, device: torch.device, available: int | None = None,
               n_checkpoints: int = 0) -> MemoryEstimate:
    """Raise a MemoryError naming what to reduce when the run cannot fit; return the estimate."""
    need = estimate(config, chunk, device, n_checkpoints)
    on_device = {"state": need.state, "step": need.step, "evaluation": need.evaluation,
                 "checkpoints": need.checkpoints}
    checks = [(device, need.device_bytes, on_device if device.type != "cpu" else {**on_device, "result": need.result})]
    if device.type != "cpu":
        checks.append((torch.device("cpu"), need.cpu_bytes, {"result": need.result}))
    for where, needed, parts in checks:
        free = available if available is not None and where == device else available_bytes(where)
        if free is None or needed <= free:
            continue
        largest = max(parts, key=parts.get)
        batch = (f"dataset_size (now {config.dataset_size}: the batch is the whole dataset)"
                 if config.dataset_size is not None else f"batch_size (now {config.batch_size})")
        advice = {
            "state": f"instance_chunk (now {chunk})",
            "step": f"instance_chunk (now {chunk}) or {batch}",
            "evaluation": f"eval_batch_size (now {config.eval_batch_size}) or instance_chunk (now {chunk})",
            "checkpoints": f"checkpoint_steps (now {n_checkpoints}) or instance_chunk (now {chunk})",
            "result": f"n_instances (now {config.n_instances}; split the sweep with instance_ids), "
                      f"checkpoint_steps (now {n_checkpoints}) "
                      f"or the loss history ({len(logged_steps(config))} rows: raise log_every)",
        }[largest]
        raise MemoryError(
            f"this run needs about {_gib(needed)} on {where} but {_gib(free)} is available "
            f"(largest part: {largest}, {_gib(parts[largest])}); reduce {advice}"
        )
    return need
