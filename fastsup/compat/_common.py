"""What the notebook and ARENA drop-ins share: argument checks, schedules, the seed, the peers' loop.

Both peers train the same way: set the lr of every parameter group to
``lr * lr_scale(step, steps)``, zero the gradients, draw a batch, forward,
loss, backward, step.  ``exact_loop`` is that loop, once; each drop-in passes
its own optimizer and loss.  Fast mode goes through ``fastsup.train``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Callable

import numpy as np
import torch

from ..config import check_integer


def positive_int(owner: str, name: str, value) -> int:
    return check_integer(f"{owner}: {name}", value, 1)


def nonnegative_int(owner: str, name: str, value) -> int:
    return check_integer(f"{owner}: {name}", value, 0)


def resolve_device(device, owner: str) -> torch.device:
    """``device`` as a torch.device; CUDA asked for on a machine without it falls back to CPU with a warning."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{owner}: device {device!r} is not a torch device: {err}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"{owner}: device {str(device)!r} was asked for but CUDA is not available; "
            "falling back to the CPU (pass device='cpu' to silence this warning)",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return resolved


def as_tensor(owner: str, name: str, value) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value, dtype=torch.get_default_dtype() if isinstance(value, numbers.Number) else None)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{owner}: {name} must be a number or a tensor, got {type(value).__name__}") from None


def check_probability(owner: str, p: torch.Tensor) -> None:
    if torch.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(
            f"{owner}: feature_probability must lie in [0, 1] (it is the chance a feature is present, "
            f"1 - sparsity), got values in [{p.min().item()}, {p.max().item()}]"
        )


def check_importance(owner: str, importance: torch.Tensor) -> None:
    if not torch.isfinite(importance).all() or (importance < 0).any():
        raise ValueError(f"{owner}: importance must be finite and >= 0")


def check_lr_scale(owner: str, lr_scale) -> None:
    if not callable(lr_scale):
        raise TypeError(f"{owner}: lr_scale must be a callable lr_scale(step, steps), got {type(lr_scale).__name__}")


# --- the peers' schedules (both define these three, with these formulas) ----------------
def constant_lr(*_):
    return 1.0


def linear_lr(step, steps):
    return 1 - (step / steps)


def cosine_decay_lr(step, steps):
    return np.cos(0.5 * np.pi * step / (steps - 1))


def schedule(owner: str, lr_scale: Callable, steps: int) -> list[float]:
    """Evaluate any ``lr_scale(step, steps)`` callable on the host, once per step (fast mode)."""
    scales = []
    for step in range(steps):
        value = float(lr_scale(step, steps))
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{owner}: lr_scale({step}, {steps}) returned {value}; fast mode needs finite multipliers >= 0 "
                "(exact=True runs any value)"
            )
        scales.append(value)
    return scales


def fast_seed(seed) -> int:
    """Fast mode's data seed: ``seed`` itself, or one int64 drawn from torch's default CPU generator.

    That one draw (``torch.randint(0, 2**62, ())``) is all fast mode takes from
    torch's generators: the CUDA generators are never touched, and with
    ``seed=`` given nothing is drawn at all.
    """
    if seed is None:
        return int(torch.randint(0, 2**62, (), dtype=torch.int64).item())
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def not_fastsups_own(model, originals: dict[str, Callable]) -> str | None:
    """Why fast mode cannot run ``model``: the methods of its class that are not the drop-in's own, or None.

    ``originals`` are the functions as defined in fastsup, captured at import,
    so a subclass override and a function patched onto the class afterwards
    (ARENA's exercises attach their solutions to the class) both count.
    """
    changed = [name for name, function in originals.items() if getattr(type(model), name) is not function]
    return f"{type(model).__name__} has its own {', '.join(changed)} (not fastsup's)" if changed else None


def exact_loop(
    optimizer: torch.optim.Optimizer,
    steps: int,
    lr: float,
    lr_scale: Callable,
    batch_loss: Callable[[], tuple[torch.Tensor, object]],
    *,
    log_every: int,
    n_instances: int,
    progress: bool,
    after_step: Callable[[int, float, torch.Tensor, object], None] | None = None,
) -> None:
    """The peers' training loop, operation for operation, so the same random stream and rounding.

    ``batch_loss()`` draws a batch and returns ``(loss, detail)``;
    ``after_step(step, step_lr, loss, detail)`` runs after each optimizer step
    (the notebook's hooks).  The bar shows the loss per instance.
    """
    bar = None
    step_iter = range(steps)
    if progress:
        from tqdm.auto import trange

        bar = step_iter = trange(steps)
    try:
        for step in step_iter:
            step_lr = lr * lr_scale(step, steps)
            for group in optimizer.param_groups:
                group["lr"] = step_lr
            optimizer.zero_grad(set_to_none=True)
            loss, detail = batch_loss()
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(step, step_lr, loss, detail)
            if bar is not None and (step % log_every == 0 or step + 1 == steps):
                bar.set_postfix(loss=loss.item() / n_instances, lr=step_lr)
    finally:
        if bar is not None:
            bar.close()


class LazyHookData(Mapping):
    """The dict a fast-mode hook receives: the notebook's keys, the model's weights synced only when read.

    Copying the live weights into the model every step is the one cost a
    hook adds that the hook may not need: a hook that reads only ``loss``,
    ``step`` or ``lr`` never triggers it.  Reading ``data["model"]`` (also
    through ``dict(data)``, ``data.items()``, ...) syncs first.
    """

    def __init__(self, values: dict, sync_model: Callable[[], None]):
        self._values = values
        self._sync_model = sync_model

    def __getitem__(self, key):
        if key == "model":
            self._sync_model()
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)
