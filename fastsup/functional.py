"""The math, in one place: forward, loss, analytic gradients, optimizer update, schedules.

Per instance k (instances never interact), with x ``[B, n]`` and t the target
(x, or |x| for ``abs``)::

    linear        h = x W            y = h Wᵀ + b
    relu_output   h = x W            y = act(h Wᵀ + b)
    relu_hidden   a = x W, h = ReLU(a)   y = act(h Wᵀ + b)
    abs           a = x W1, h = ReLU(a)  y = act(h W2 + b)      (W1 [n, m], W2 [m, n])

    L = 1/(B n) Σ_b Σ_f I_f (y_bf - t_bf)²        (summed over instances)
    g = 2/(B n) · I ⊙ (y - t) ⊙ act'(z),   db = Σ_b g
    tied:   dW = gᵀ h + xᵀ ((g W) ⊙ 1[a > 0 if relu_hidden])
    untied: dW2 = hᵀ g,  dW1 = xᵀ ((g W2ᵀ) ⊙ 1[a > 0])

``act`` is ReLU (derivative 1[z > 0], as torch's) or ExReLU(t): z if z ≥ t
else 0 (derivative 1[z ≥ t]).  Tensors carry a leading instance axis and
batches are feature-major: x ``[I, n, B]``, W ``[I, n, m]``, b ``[I, n]``.

Optimizers follow torch.optim exactly: AdamW decays first
(p ← p (1 − lr·wd)), Adam adds wd·p to the gradient; then the bias-corrected
step with eps added after the square root of the corrected second moment.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

Params = dict[str, torch.Tensor]


class ModelSpec(NamedTuple):
    """The static description of the network: which variant and output activation."""

    model: str  # linear | relu_output | relu_hidden | abs
    activation: str  # relu | exrelu
    threshold: float  # ExReLU threshold t (unused for relu)


# --- contractions over one instance axis -----------------------------------
# Batches are feature-major, x ``[I, n, B]``: the batch axis is innermost so
# that compiled loops vectorise over 1024 rows rather than over 2 or 5
# features (on the 5→2 intro run, 2 threads, the batch-major layout compiled
# to loops vectorised over m = 2 and ran 1.6 ms per step; feature-major 0.46 ms).
# Below r·c = 64 a contraction is a broadcast-multiply-sum that inductor fuses
# into the neighbouring loops; above it a batched GEMM.  The threshold sits
# between the paper's small shapes (5→2, 20→2) and 20→5; it was not tuned.
def _apply(M: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``out[i, c, b] = Σ_r M[i, r, c] · v[i, r, b]`` for M ``[I, r, c]``, v ``[I, r, B]``."""
    if M.shape[1] * M.shape[2] <= 64:
        return (M.unsqueeze(-1) * v.unsqueeze(2)).sum(1)
    return torch.bmm(M.transpose(1, 2), v)


def _outer(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``out[i, r, c] = Σ_b u[i, r, b] · v[i, c, b]``: reduces the batch axis."""
    if u.shape[1] * v.shape[1] <= 64:
        return (u.unsqueeze(2) * v.unsqueeze(1)).sum(-1)
    return torch.bmm(u, v.transpose(1, 2))


# --- forward, loss, gradients ----------------------------------------------
def _activation(z: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    if spec.model == "linear":
        return z
    if spec.activation == "relu":
        return torch.relu(z)
    return torch.where(z >= spec.threshold, z, 0.0)


def _activation_grad_mask(z: torch.Tensor, spec: ModelSpec) -> torch.Tensor | None:
    if spec.model == "linear":
        return None
    return z > 0 if spec.activation == "relu" else z >= spec.threshold


def _decoder(params: Params, spec: ModelSpec) -> torch.Tensor:
    """The ``[I, m, n]`` matrix mapping hidden to output: Wᵀ (tied) or W2."""
    return params["W2"] if spec.model == "abs" else params["W"].transpose(1, 2)


def _encoder(params: Params, spec: ModelSpec) -> torch.Tensor:
    return params["W1" if spec.model == "abs" else "W"]


def _hidden_preactivation(params: Params, x: torch.Tensor, spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor]:
    a = _apply(_encoder(params, spec), x)
    return a, (a if spec.model in ("linear", "relu_output") else torch.relu(a))


def hidden(params: Params, x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """The hidden layer h ``[I, m, B]`` for a feature-major batch x ``[I, n, B]``: x W, after the ReLU
    for ``relu_hidden`` and ``abs``."""
    return _hidden_preactivation(params, x, spec)[1]


def forward(params: Params, x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """Model output y ``[I, n, B]`` for a feature-major batch x ``[I, n, B]``."""
    h = hidden(params, x, spec)
    return _activation(_apply(_decoder(params, spec), h) + params["b"].unsqueeze(-1), spec)


def loss_per_instance(y: torch.Tensor, target: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """L ``[I]`` = mean over features and batch of I_f (y − t)²; y, t ``[I, n, B]``, importance ``[I, n]``."""
    return (importance.unsqueeze(-1) * (y - target) ** 2).mean(dim=(1, 2))


def loss_and_grads(
    params: Params, x: torch.Tensor, target: torch.Tensor, importance: torch.Tensor, spec: ModelSpec
) -> tuple[torch.Tensor, Params]:
    """Per-instance loss ``[I]`` and analytic gradients of the summed loss (no autograd)."""
    n, B = x.shape[1], x.shape[2]
    weight = importance.unsqueeze(-1)
    a, h = _hidden_preactivation(params, x, spec)
    decoder = _decoder(params, spec)
    z = _apply(decoder, h) + params["b"].unsqueeze(-1)
    err = _activation(z, spec) - target
    loss = (weight * err * err).mean(dim=(1, 2))
    g = (2.0 / (B * n)) * weight * err
    # Masks multiply rather than torch.where, 4x cheaper eager (data.sample_batch);
    # a masked gradient element may be -0.0, which no sum or update can tell from +0.0.
    mask = _activation_grad_mask(z, spec)
    if mask is not None:
        g = g * mask
    gh = _apply(decoder.transpose(1, 2), g)  # [I, m, B]
    if spec.model in ("relu_hidden", "abs"):
        gh = gh * (a > 0)
    grads = {"b": g.sum(-1)}
    if spec.model == "abs":
        grads["W1"] = _outer(x, gh)
        grads["W2"] = _outer(h, g)
    else:
        grads["W"] = _outer(g, h) + _outer(x, gh)
    return loss, grads


# --- optimizer ---------------------------------------------------------------
def adam_update(
    params: Params,
    grads: Params,
    exp_avg: Params,
    exp_avg_sq: Params,
    step: torch.Tensor,
    lr: torch.Tensor,
    weight_decay: torch.Tensor,
    betas: tuple[float, float],
    eps: float,
    decoupled: bool,
) -> None:
    """One in-place AdamW (``decoupled``) or Adam update, torch.optim's arithmetic.

    ``step`` is the 1-based step count (0-d float64 tensor, so the bias
    corrections are computed in double as torch.optim does); ``lr`` and
    ``weight_decay`` are per instance fp32 ``[I]`` (lr already scheduled).
    """
    beta1, beta2 = betas
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = torch.sqrt(1 - beta2**step).float()
    step_size = (lr / bias_correction1).float()
    for name, p in params.items():
        shape = (-1,) + (1,) * (p.ndim - 1)
        grad = grads[name]
        if decoupled:
            p.mul_(1 - (lr * weight_decay).view(shape))
        else:
            grad = grad + weight_decay.view(shape) * p
        exp_avg[name].lerp_(grad, 1 - beta1)
        exp_avg_sq[name].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq[name].sqrt() / bias_correction2_sqrt).add_(eps)
        p.sub_((exp_avg[name] / denom) * step_size.view(shape))


# --- schedules ----------------------------------------------------------------
def lr_scale(schedule: str, step: int, steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base lr at 0-based ``step`` of ``steps``.

    constant: 1; linear: 1 − s/S; cosine (the notebook's): cos(π/2 · s/(S−1));
    warmup_cosine: (s+1)/w for s < w, then the cosine over the remaining steps.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - step / steps
    if schedule == "warmup_cosine":
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        step, steps = step - warmup_steps, steps - warmup_steps
    if schedule in ("cosine", "warmup_cosine"):
        return math.cos(0.5 * math.pi * step / (steps - 1)) if steps > 1 else 1.0
    raise ValueError(f"unknown schedule {schedule!r}")


def lr_scales(schedule: str, steps: int, warmup_steps: int = 0, multipliers=None) -> torch.Tensor:
    """The whole schedule as fp32 ``[steps]`` (computed once per run, in float64 then rounded).

    ``schedule="custom"`` takes the given per-step ``multipliers``.
    """
    if schedule == "custom":
        return torch.as_tensor(multipliers, dtype=torch.float64).float()
    return torch.tensor([lr_scale(schedule, s, steps, warmup_steps) for s in range(steps)], dtype=torch.float64).float()
