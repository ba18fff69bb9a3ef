"""``fastsup.train``: validate, pick a backend and device, train in instance chunks, gather the result."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from typing import Callable

import torch
from tqdm.auto import tqdm

from .backends import default_chunk, resolve_backend, run_backend
from .backends.base import RunOptions, StepInfo
from .backends.torch_backend import compile_pays
from .config import TrainConfig, check_checkpoint_steps, check_integer
from .functional import Params, lr_scales
from .init import param_shapes
from .memory import check_fits
from .result import TrainResult


class DivergenceWarning(RuntimeWarning):
    """Some instances of a run diverged (their loss or weights are not finite)."""


def resolve_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device: {err}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but CUDA is not available on this machine")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    return resolved


def _check_init(init, config: TrainConfig) -> Params:
    params = getattr(init, "params", init)  # a TrainResult or a dict of tensors
    if not isinstance(params, dict):
        raise TypeError(f"init must be a dict of tensors or a TrainResult, got {type(init).__name__}")
    expected = param_shapes(config)
    if set(params) != set(expected):
        raise ValueError(f"init must have exactly the parameters {sorted(expected)} for model {config.model!r}, got {sorted(params)}")
    for name, shape in expected.items():
        value = params[name]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"init[{name!r}] must be a tensor of shape {list(shape)}, got {got}")
        if not torch.isfinite(value).all():
            raise ValueError(f"init[{name!r}] contains NaN or inf")
    return params


@contextlib.contextmanager
def _compiling(bar: tqdm):
    """The bar says a step is compiling; afterwards its elapsed time, rate and ETA leave the compile out."""
    bar.set_postfix_str("compiling the step (once per shape in a process)")
    start = time.perf_counter()
    try:
        yield
    finally:
        bar.unpause()
        bar.set_postfix_str(f"step compiled in {time.perf_counter() - start:.0f} s")


def train(
    config: TrainConfig | None = None,
    *,
    backend: str = "auto",
    device=None,
    progress: bool = True,
    instance_chunk: int | None = None,
    compile: bool | None = None,
    init: Params | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    checkpoint_steps=(),
    lr_schedule=None,
    strategy: str = "auto",
    precision: str = "ieee",
    **config_fields,
) -> TrainResult:
    """Train ``n_instances`` independent toy models and return their weights and losses.

    Pass a ``TrainConfig`` or its fields as keywords (``n_features``,
    ``n_hidden``, ``n_instances``, ``model``, ``feature_probability``,
    ``importance``, ``steps``, ``batch_size``, ``lr``, ``weight_decay``,
    ``optimizer``, ``schedule``, ``seed``, ...).  Run options: ``backend``
    (``auto``, ``torch``, ``reference``), ``device`` (default: CUDA if
    present), ``progress`` (a tqdm bar), ``instance_chunk`` (instances trained
    at once: the data and init do not depend on it; the weights are
    bit-identical at any chunk size with one CPU thread, and equal to fp32
    rounding with several, where BLAS may split reductions differently), ``compile`` (torch backend: None
    decides by the amount of work), ``init`` (starting parameters, e.g. a
    previous result's ``params``; default: the randomness contract's init),
    ``on_step`` (called with a ``StepInfo`` after every step; it costs a
    Python call per step), ``checkpoint_steps`` (increasing step indices in
    ``[0, steps)``: ``result.checkpoints[s]`` holds the parameters after step
    ``s``'s update, recorded on the device without a Python call per step;
    neither option changes the trained weights), ``lr_schedule``
    (any per-step lr multipliers, ``[steps]``: shorthand for
    ``schedule="custom", lr_multipliers=...``), ``strategy`` and
    ``precision`` (triton backend: "persistent"/"step" kernels, ``tl.dot``
    input precision "ieee" or the "tf32" opt-in).
    """
    if lr_schedule is not None:
        config_fields.update(schedule="custom", lr_multipliers=lr_schedule)
    if config is None:
        config = TrainConfig(**config_fields)
    elif not isinstance(config, TrainConfig):
        hint = " (pass its fields as keywords: train(**fields), or TrainConfig.from_dict(d))" if isinstance(config, dict) else ""
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}{hint}")
    elif config_fields:
        config = dataclasses.replace(config, **config_fields)
    torch_device = resolve_device(device)
    backend_name = resolve_backend(backend, torch_device, config, strategy, precision)
    if backend_name != "triton" and (strategy != "auto" or precision != "ieee"):
        raise ValueError(f"strategy and precision choose triton kernels; backend {backend_name!r} has none")
    checkpoint_steps = check_checkpoint_steps(checkpoint_steps, config.steps)
    if instance_chunk is None:
        instance_chunk = default_chunk(backend_name, config, torch_device, strategy, len(checkpoint_steps))
    else:
        instance_chunk = check_integer("instance_chunk", instance_chunk, 1)
    if init is not None:
        init = _check_init(init, config)
    check_fits(config, instance_chunk, torch_device, n_checkpoints=len(checkpoint_steps))

    scales = lr_scales(config.schedule, config.steps, config.warmup_steps, config.lr_multipliers).tolist()
    starts = range(0, config.n_instances, instance_chunk)
    if compile is None and backend_name == "torch" and len(starts) > 1:
        # decided for the whole call, as a sweep does: one compile serves every chunk of a size
        compile = compile_pays(config, compiles=len({min(instance_chunk, config.n_instances - s) for s in starts}))
    chunks = []
    with tqdm(total=config.steps * len(starts), disable=not progress, desc=config.title(), unit="step") as bar:
        for start in starts:
            instances = slice(start, start + instance_chunk)
            options = RunOptions(
                scales=scales,
                progress=bar.update,
                init=None if init is None else {k: v[instances] for k, v in init.items()},
                on_step=on_step,
                instances=instances,
                compile=compile,
                compiling=lambda: _compiling(bar),
                strategy=strategy,
                precision=precision,
                checkpoint_steps=checkpoint_steps,
            )
            chunks.append(run_backend(backend_name, config.select(instances), torch_device, options))
    cpu = lambda tensors, dim: torch.cat([t.detach().cpu() for t in tensors], dim=dim)  # noqa: E731
    result = TrainResult(
        config=config,
        params={name: cpu([c.params[name] for c in chunks], 0) for name in chunks[0].params},
        loss_history=cpu([c.loss_history for c in chunks], 1),
        loss_steps=torch.tensor(chunks[0].loss_steps, dtype=torch.int64),
        final_loss=cpu([c.final_loss for c in chunks], 0),
        backend=backend_name,
        checkpoint_steps=torch.tensor(checkpoint_steps, dtype=torch.int64),
        checkpoint_params={name: cpu([c.checkpoints[name] for c in chunks], 1)
                           for name in chunks[0].params} if checkpoint_steps else {},
    )
    n_diverged = int(result.diverged.sum())
    if n_diverged:
        warnings.warn(DivergenceWarning(
            f"{n_diverged} of {config.n_instances} instances diverged (NaN or inf loss or weights); "
            "result.diverged and result.diverged_at say which and when; try a lower lr"), stacklevel=2)
    return result
