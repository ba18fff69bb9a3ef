"""Where a sweep's chunks train: ``local`` (in this process, one after another) or ``ray`` (one task each).

An executor takes the pending chunks' configs (with the backend and the
compile decision of their group) and yields ``(chunk, tensors,
backend)`` as each finishes; the caller writes the chunk file.  Chunks are
independent (the randomness contract), so the order they finish in changes
nothing.  A Ray task on the CPU runs with the driver's torch thread count,
so its arithmetic, and with it every bit of the result, is the local
executor's.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..config import TrainConfig
from .plan import Chunk

EXECUTORS = ("local", "ray")


def train_chunk(config: TrainConfig, backend: str, device: str, compile: bool | None, threads: int | None = None,
                checkpoint_steps: tuple[int, ...] = ()):
    """Train one chunk; return its tensors for the store and the backend that ran it."""
    from ..train import train

    if threads is not None:
        torch.set_num_threads(threads)
    result = train(config, backend=backend, device=device, compile=compile, progress=False,
                   checkpoint_steps=checkpoint_steps)
    tensors = {f"params.{k}": v for k, v in result.params.items()}
    tensors.update({f"checkpoints.{k}": v for k, v in result.checkpoint_params.items()})
    tensors.update(final_loss=result.final_loss, loss_history=result.loss_history, loss_steps=result.loss_steps,
                   instance_ids=config.instance_id_tensor())
    return tensors, result.backend


Work = list[tuple[Chunk, TrainConfig, str, bool | None]]  # each pending chunk, its config, backend, compile decision


def run_local(work: Work, device: torch.device, *, checkpoint_steps: tuple[int, ...] = (), **_) -> Iterator:
    for chunk, config, backend, compile in work:
        threads = None  # this process's own
        yield (chunk, *train_chunk(config, backend, str(device), compile, threads, checkpoint_steps))


def run_ray(work: Work, device: torch.device, *,
            address: str | None = None, checkpoint_steps: tuple[int, ...] = ()) -> Iterator:
    try:
        import ray
    except ImportError:
        raise ValueError("executor='ray' needs Ray: pip install 'fastsup[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    threads = torch.get_num_threads()
    resources = {"num_gpus": 1} if device.type == "cuda" else {"num_cpus": threads}
    task = ray.remote(train_chunk).options(**resources)
    device_name = "cuda" if device.type == "cuda" else str(device)
    pending = {task.remote(config, backend, device_name, compile, threads, checkpoint_steps): chunk
               for chunk, config, backend, compile in work}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        chunk = pending.pop(ready[0])
        yield (chunk, *ray.get(ready[0]))


def executor_for(name: str):
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(map(repr, EXECUTORS))}; got {name!r}")
    return run_local if name == "local" else run_ray
