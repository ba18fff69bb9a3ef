"""Drop-in replacement for the trainer of the paper's notebook (``toy_models.ipynb``).

Switch a notebook by changing one import::

    from fastsup.compat import Config, Model, optimize, constant_lr, linear_lr, cosine_decay_lr

Everything else keeps the notebook's names, signatures and layout:
``Config(n_features, n_hidden, n_instances)``; ``Model(config,
feature_probability=None, importance=None, device="cuda")`` with parameters
``W`` ``[I, n, m]`` (``xavier_normal_`` on the 3-D tensor, as the notebook)
and ``b_final`` ``[I, n]``; ``model.feature_probability`` /
``model.importance`` plain tensor attributes broadcast against
``[..., I, n]``; ``forward``; ``generate_batch``; the three schedules; and
``optimize(model, render=False, n_batch=1024, steps=10_000, print_freq=100,
lr=1e-3, lr_scale=constant_lr, hooks=[])``.

Two ways to train
-----------------
``optimize(model, ...)`` (fast mode, the default) trains through
``fastsup.train``: same model, loss (importance-weighted squared error, mean
over batch and features, summed over instances), optimizer (AdamW, torch
defaults, weight decay 0.01), learning rate ``lr * lr_scale(step, steps)``
and starting weights (the model's own ``W`` and ``b_final``), then writes the
trained weights into ``model.W`` / ``model.b_final`` in place.  The batches
come from fastsup's counter-based sampler: the same distribution as
``generate_batch`` but another random stream, so the numbers differ from a
notebook run the way two seeds do; the science does not.

``optimize(model, ..., exact=True)`` is the notebook's own loop: batches from
``model.generate_batch`` (``torch.rand`` magnitude first, then presence with
``<=``), autograd through ``model.forward`` and ``torch.optim.AdamW``, so with
the same ``torch.manual_seed`` it reproduces a notebook run (bit for bit on
CPU in our tests).  It is as slow as the notebook.  Autograd and torch's own
AdamW are used rather than fastsup's analytic gradients because only the
same operations in the same order give the same rounding: analytic
gradients sum in another order, and Adam's division by sqrt(v) amplifies
those last-bit differences over a run.

Fast mode falls back to exact mode, with a warning, for models it cannot
represent: a subclass that overrides ``forward`` or ``generate_batch`` (or
a function patched onto ``Model`` in their place), or a model that is not a
``fastsup.compat.Model``.

Randomness: what fast mode takes from torch's generators
--------------------------------------------------------
Building a ``Model`` draws its init from torch's generator exactly as the
notebook's does.  Training differs:

* the notebook's loop draws ``2 * n_batch * n_instances * n_features``
  uniforms per step from torch's generator (on the model's device);
* fast mode draws one int64, ``torch.randint(0, 2**62, ())``, from torch's
  default CPU generator per ``optimize`` call (its data seed; so
  ``torch.manual_seed`` still makes a run reproducible) and nothing from
  any other generator; with ``seed=`` given it draws nothing at all.

So after a fast ``optimize`` torch's generator is in another state than after
the notebook's, and whatever draws from it next (the init of the next
``Model`` a notebook builds, for one) gets other numbers than under the
notebook: as different as another seed, no different in distribution.
Advancing torch's generator past the notebook's uniforms without drawing
them is not possible on the CPU (torch's Mersenne Twister has no
skip-ahead), and drawing them would cost as much as the notebook's own
sampling.  ``exact=True`` consumes the generator exactly as the
notebook does.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ._common import (
    LazyHookData,
    as_tensor,
    check_importance,
    check_lr_scale,
    check_probability,
    constant_lr,
    cosine_decay_lr,
    exact_loop,
    fast_seed,
    linear_lr,
    not_fastsups_own,
    positive_int,
    resolve_device,
    schedule,
)

__all__ = [
    "Config",
    "Model",
    "constant_lr",
    "linear_lr",
    "cosine_decay_lr",
    "optimize",
]

# The notebook's AdamW: torch.optim.AdamW defaults.
NOTEBOOK_WEIGHT_DECAY = 0.01


def _broadcast_to_instances_features(owner: str, name: str, value: torch.Tensor, n_instances: int, n_features: int) -> torch.Tensor:
    """``value`` broadcast to ``[I, n]`` by torch's (the notebook's) rules: shapes align from the right.

    Leading size-1 axes beyond two are dropped (``[1, I, n]`` broadcasts
    against a ``[batch, I, n]`` batch just as ``[I, n]`` does).
    """
    tensor = value
    while tensor.ndim > 2 and tensor.shape[0] == 1:
        tensor = tensor[0]
    try:
        return torch.broadcast_to(tensor, (n_instances, n_features))
    except RuntimeError:
        raise ValueError(
            f"{owner}: {name} has shape {list(value.shape)}, which does not broadcast against "
            f"[n_instances, n_features] = [{n_instances}, {n_features}]. Use a scalar, [{n_instances}, 1] "
            f"(one value per instance), [1, {n_features}] or [{n_features}] (one per feature), or "
            f"[{n_instances}, {n_features}]; note that a 1-D tensor is per feature under broadcasting"
        ) from None


# --- the notebook API -----------------------------------------------------------
@dataclasses.dataclass
class Config:
    """Sizes of a batch of independent toy models (the notebook's fields, in its order)."""

    n_features: int
    n_hidden: int
    # Number of independent models trained side by side along an instance axis.
    n_instances: int

    def __post_init__(self):
        for name in ("n_features", "n_hidden", "n_instances"):
            setattr(self, name, positive_int("Config", name, getattr(self, name)))


class Model(nn.Module):
    """The notebook's tied toy model ReLU(WᵀW x + b), one per instance.

    ``W`` ``[n_instances, n_features, n_hidden]`` (``xavier_normal_`` on the
    3-D tensor, so its std depends on the instance count, as the notebook's);
    ``b_final`` ``[n_instances, n_features]`` (zeros).  ``feature_probability``
    and ``importance`` are plain tensor attributes (not buffers), default
    ``torch.ones(())``, broadcast against ``[..., n_instances, n_features]``;
    their shape and values are checked here rather than at the first batch.

    ``device="cuda"`` (the notebook's default) on a machine without CUDA
    warns and uses the CPU.
    """

    def __init__(self, config, feature_probability=None, importance=None, device="cuda"):
        super().__init__()
        for name in ("n_features", "n_hidden", "n_instances"):
            if not hasattr(config, name):
                raise TypeError(f"Model: config must be a Config(n_features, n_hidden, n_instances), got {type(config).__name__}")
            positive_int("Model config", name, getattr(config, name))
        device = resolve_device(device, "Model")
        I, n = config.n_instances, config.n_features
        self.config = config
        self.W = nn.Parameter(torch.empty((config.n_instances, config.n_features, config.n_hidden), device=device))
        nn.init.xavier_normal_(self.W)
        self.b_final = nn.Parameter(torch.zeros((config.n_instances, config.n_features), device=device))

        p = torch.ones(()) if feature_probability is None else as_tensor("Model", "feature_probability", feature_probability)
        check_probability("Model", _broadcast_to_instances_features("Model", "feature_probability", p, I, n))
        self.feature_probability = p.to(device)
        imp = torch.ones(()) if importance is None else as_tensor("Model", "importance", importance)
        check_importance("Model", _broadcast_to_instances_features("Model", "importance", imp, I, n))
        self.importance = imp.to(device)

    def forward(self, features):
        # features: [..., instance, n_features]
        hidden = torch.einsum("...if,ifh->...ih", features, self.W)
        out = torch.einsum("...ih,ifh->...if", hidden, self.W)
        out = out + self.b_final
        out = F.relu(out)
        return out

    def generate_batch(self, n_batch):
        """``[n_batch, n_instances, n_features]``: magnitude ``torch.rand`` first, presence ``torch.rand <= p`` second."""
        shape = (n_batch, self.config.n_instances, self.config.n_features)
        magnitude = torch.rand(shape, device=self.W.device)
        present = torch.rand(shape, device=self.W.device) <= self.feature_probability
        return torch.where(present, magnitude, torch.zeros((), device=self.W.device))


# The methods fast mode replaces by fastsup's fused equivalents, as defined here.
_FAST_METHODS = {name: getattr(Model, name) for name in ("forward", "generate_batch")}


def optimize(
    model,
    render=False,
    n_batch=1024,
    steps=10_000,
    print_freq=100,
    lr=1e-3,
    lr_scale=constant_lr,
    hooks=[],  # noqa: B006 -- the notebook's signature; never mutated
    *,
    exact=False,
    backend="auto",
    progress=True,
    seed=None,
    compile=None,
):
    """Train ``model`` as the notebook's ``optimize`` does; the trained weights land in ``model.W``/``model.b_final``.

    Notebook arguments: ``render`` is accepted and ignored (no live plots);
    ``n_batch``, ``steps``, ``lr`` as the notebook; ``print_freq`` is how often
    the loss is logged; ``lr_scale`` is any callable ``lr_scale(step, steps)``
    (evaluated once per step on the host; fast mode needs values >= 0);
    ``hooks`` are called after every optimizer step with a dict with keys
    ``model, step, opt, error, loss, lr``.

    fastsup additions (keyword only): ``exact`` (the notebook's own random
    stream and autograd loop, see the module docstring), ``backend``
    (fastsup backend for fast mode: ``auto``, ``torch``, ``reference``),
    ``progress`` (tqdm bar), ``seed`` (fast mode's data seed; default: one
    int64 drawn from torch's default CPU generator, see "Randomness" in the
    module docstring), ``compile`` (fast mode, torch backend:
    ``torch.compile`` the step; None lets fastsup decide by run length).

    Hooks in fast mode.  A fused backend keeps the weights in its own
    buffers and never materialises the batch, so when ``hooks`` are given:

    * all instances train in one chunk, and the hooks run after every step;
    * the live weights are copied into ``model.W``/``model.b_final`` when a
      hook reads ``data["model"]`` (once per step at most): a hook that reads
      only ``loss``, ``step`` or ``lr`` costs no copy.  Hooks must treat the
      model as read-only: a write to ``model.W`` in a hook does not feed back
      into training and is overwritten at the next sync or at the end;
    * ``model``: the synced model; ``step``: the 0-based step; ``lr``: the
      float ``lr * lr_scale(step, steps)`` used at that step;
    * ``loss``: a 0-d tensor, the training-batch loss of this step summed
      over instances (computed before the update, as the notebook's, but
      detached: no graph);
    * ``opt``: ``None`` (there is no torch optimizer);
    * ``error``: ``None`` (the per-element error tensor is never built).

    Hooks that need ``opt``, ``error`` or to modify the model: use
    ``exact=True``, where every key is exactly the notebook's.

    Returns None, as the notebook's.
    """
    del render  # the notebook's live-plot switch; fastsup does no plotting here
    n_batch = positive_int("optimize", "n_batch", n_batch)
    steps = positive_int("optimize", "steps", steps)
    print_freq = positive_int("optimize", "print_freq", print_freq)
    hooks = list(hooks or [])
    check_lr_scale("optimize", lr_scale)
    if not exact:
        if not isinstance(model, Model):
            reason = f"model is a {type(model).__name__}, not a fastsup.compat.Model"
        else:
            reason = not_fastsups_own(model, _FAST_METHODS)
        if reason is not None:
            warnings.warn(
                f"optimize: {reason}, which fast mode cannot run; falling back to exact=True "
                "(the notebook's own loop, not faster)",
                UserWarning,
                stacklevel=2,
            )
            exact = True
    if exact:
        _optimize_exact(model, n_batch, steps, print_freq, lr, lr_scale, hooks, progress)
    else:
        _optimize_fast(model, n_batch, steps, print_freq, lr, lr_scale, hooks, progress, backend, seed, compile)



def _optimize_exact(model, n_batch, steps, print_freq, lr, lr_scale, hooks, progress):
    """The notebook's loop: autograd through the model and torch.optim.AdamW."""

    def batch_loss():
        batch = model.generate_batch(n_batch)
        error = model.importance * (batch.abs() - model(batch)) ** 2
        # the notebook's einops.reduce(error, 'b i f -> i', 'mean').sum()
        return error.mean(dim=(0, 2)).sum(), error

    def call_hooks(step, step_lr, loss, error):
        data = dict(model=model, step=step, opt=optimizer, error=error, loss=loss, lr=step_lr)
        for hook in hooks:
            hook(data)

    optimizer = torch.optim.AdamW(list(model.parameters()), lr=lr)
    exact_loop(optimizer, steps, lr, lr_scale, batch_loss, log_every=print_freq, n_instances=model.config.n_instances,
               progress=progress, after_step=call_hooks if hooks else None)


def _optimize_fast(model, n_batch, steps, print_freq, lr, lr_scale, hooks, progress, backend, seed, compile):
    from ..train import train

    cfg = model.config
    I, n = cfg.n_instances, cfg.n_features
    p = _broadcast_to_instances_features("optimize", "model.feature_probability", as_tensor("optimize", "model.feature_probability", model.feature_probability), I, n)
    check_probability("optimize", p)
    importance = _broadcast_to_instances_features("optimize", "model.importance", as_tensor("optimize", "model.importance", model.importance), I, n)
    check_importance("optimize", importance)
    scales = schedule("optimize", lr_scale, steps)
    on_step = None
    if hooks:
        W, b = model.W, model.b_final

        def on_step(info):
            synced = False

            def sync_model():
                nonlocal synced
                if not synced:
                    with torch.no_grad():
                        W.copy_(info.params["W"])
                        b.copy_(info.params["b"])
                    synced = True

            values = dict(model=model, step=info.step, opt=None, error=None, loss=info.loss.sum(), lr=lr * scales[info.step])
            data = LazyHookData(values, sync_model)
            for hook in hooks:
                hook(data)

    result = train(
        n_features=n,
        n_hidden=cfg.n_hidden,
        n_instances=I,
        model="relu_output",
        feature_probability=p.detach().cpu().float(),
        importance=importance.detach().cpu().float(),
        steps=steps,
        batch_size=n_batch,
        lr=lr,
        weight_decay=NOTEBOOK_WEIGHT_DECAY,
        optimizer="adamw",
        seed=fast_seed(seed),
        log_every=print_freq,
        backend=backend,
        device=model.W.device,
        progress=progress,
        compile=compile,
        init={"W": model.W.detach().float(), "b": model.b_final.detach().float()},
        on_step=on_step,
        # hooks see every instance at every step in order: one chunk
        instance_chunk=I if hooks else None,
        lr_schedule=scales,
    )
    with torch.no_grad():
        model.W.copy_(result.params["W"])
        model.b_final.copy_(result.params["b"])
