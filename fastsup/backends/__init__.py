"""The one dispatch point for backends: ``resolve_backend`` names one, ``run_backend`` runs it."""

from __future__ import annotations

import math
import os

import torch

from ..config import BACKENDS, TrainConfig
from ..init import param_shapes
from .base import RawRun, RunOptions, logged_steps


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def resolve_backend(name: str, device: torch.device, config: TrainConfig, strategy: str = "auto",
                    precision: str = "ieee") -> str:
    """Turn ``auto`` into a concrete backend and refuse combinations that cannot run.

    ``auto`` is triton on CUDA when triton is installed, the kernels support
    the config and ``fastsup.kernels.predict`` ranks them no slower than the
    torch backend for the whole config (its instance count included); a
    ``strategy`` or ``precision`` other than the defaults asks for the
    kernels, and gets them where they can run.  Otherwise torch.  ``triton``
    on the CPU runs only under the interpreter.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {name!r}")
    if name == "auto":
        from .triton_backend import unsupported_reason

        usable = device.type == "cuda" and triton_available() and unsupported_reason(config) is None
        if usable and strategy == "auto" and precision == "ieee":
            from fastsup.kernels.predict import kernels_are_faster

            usable = kernels_are_faster(config)[0]
        return "triton" if usable else "torch"
    if name == "triton":
        if not triton_available():
            raise ValueError("backend='triton' needs triton: pip install 'fastsup[triton]'")
        if device.type != "cuda" and not interpreting():
            raise ValueError(
                f"backend='triton' needs a CUDA device (got {device}); on the CPU it runs only under "
                "TRITON_INTERPRET=1, which is for testing"
            )
    return name


# Every device buffer of a chunk is bounded, so the chunk planner takes the
# smallest of these limits:
# * the torch backends keep a chunk's batch [chunk, n, B] under
#   BATCH_ELEMENTS fp32 elements (64 MiB); a step's temporaries are a small
#   multiple of it.  On the CPU under CPU_BATCH_ELEMENTS (16 MiB), half this
#   machine's 32 MiB L3: above the cache the compiled step took 2.5-3x as long
#   per batch element (ns per element, 2->1: 5.4 at 2 025 instances, 15.1 at
#   4 624; 5->2: 7.0 at 800, 17.6 at 3 000; 20->5: 6.5 at 200, 17.0 at 1 000;
#   100->20: 8.4 at 80, 21.8 at 200; batch 1024, 2 threads, quiet 2-core AMD
#   EPYC VM, 2026-12-01).  A constant, not the cache size read at run time, so
#   that a sweep plans the same chunks on every machine;
# * the triton backend keeps its kernel state under
#   ``triton_backend.STATE_ELEMENTS`` (parameters, moments, partial gradients);
# * the loss history of the logged steps, which the step loop holds twice
#   (one [chunk] tensor per logged step, then their stack), under
#   HISTORY_ELEMENTS (256 MiB), and so are the chunk's checkpoint buffers;
# * evaluation does not grow with the chunk: ``base.evaluate`` runs it in
#   sub-chunks whose batch fits ``base.EVAL_ELEMENTS``.
BATCH_ELEMENTS = 1 << 24
CPU_BATCH_ELEMENTS = 1 << 22
HISTORY_ELEMENTS = 1 << 26


def default_chunk(name: str, config: TrainConfig, device: torch.device, strategy: str = "auto",
                  n_checkpoints: int = 0) -> int:
    """Instances trained at once on ``device`` when the caller does not say: bounds device memory (and on the
    CPU keeps the batch in cache), never changes results."""
    history = 2 * len(logged_steps(config))
    checkpoints = n_checkpoints * sum(math.prod(shape[1:]) for shape in param_shapes(config).values())
    if name == "triton":
        from .triton_backend import chunk_limit

        limit = chunk_limit(config, strategy)
    else:
        budget = CPU_BATCH_ELEMENTS if torch.device(device).type == "cpu" else BATCH_ELEMENTS
        limit = budget // (config.batch_size * max(config.n_features, config.n_hidden))
    return max(1, min(config.n_instances, limit, HISTORY_ELEMENTS // max(history, checkpoints)))


def run_backend(name: str, config: TrainConfig, device: torch.device, options: RunOptions) -> RawRun:
    if name == "reference":
        from . import reference as backend
    elif name == "triton":
        from . import triton_backend as backend
    else:
        from . import torch_backend as backend
    return backend.run(config, device, options)
