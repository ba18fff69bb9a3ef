"""Adversarial vulnerability: the loss of trained weights on small inputs along their own interference directions.

The attack (the paper's §"superposition and adversarial robustness", as
[KG] cells 100–105 implement it; EXPERIMENTS.md §9).  For a tied model the
output before the activation is z = WWᵀx + b (notebook layout, W ``[n, m]``),
so the input direction that moves output i the most per unit of L2 norm is
∇ₓzᵢ = cᵢ = W Wᵢ, column i of WWᵀ: feature i's direction together with the
interference every other feature j puts on it (cⱼᵢ = Wⱼ·Wᵢ).  Attack i is the
input x = r·cᵢ/‖cᵢ‖ of norm r (the radius, 0.1 in [KG]); the adversarial loss
is the worst over i of the model's loss on it, importance-weighted and
averaged over features as the training loss is.  With no superposition cᵢ is
Wᵢ's own feature axis and the model reconstructs the attack; with
superposition it spreads over the features that share the direction, and
the reconstruction errs on all of them.

Target.  The model is an autoencoder, so the loss compares the output with
the attacked input x itself (``target="input"``, the default).  [KG]'s code
compares it with the unnormalised cᵢ instead (a quirk: the target is ten
times the input's scale for a unit feature, and grows with the interference),
available as ``target="interference"`` to reproduce its numbers.

Vulnerability.  ``adversarial_vulnerability`` is the adversarial loss minus
the loss on the training distribution (:func:`fastsup.evaluate`), per
instance; with ``relative_to`` (a model without superposition, e.g. the
linear model trained on the same data) it is divided by that model's same
difference, which is [KG]'s measure.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

__all__ = ["ATTACK_TARGETS", "adversarial_attacks", "adversarial_loss", "adversarial_vulnerability"]

ATTACK_TARGETS = ("input", "interference")
DEFAULT_RADIUS = 0.1  # [KG] cell 100: "so norm of attack is at most 0.1"


def _check_tied(result) -> None:
    params, config = getattr(result, "params", None), getattr(result, "config", None)
    if not isinstance(params, dict) or config is None:
        raise TypeError(f"result must be a TrainResult (weights and config), got {type(result).__name__}")
    if not config.tied:
        raise ValueError(f"the interference attack needs a tied model (z = WWᵀx + b); model={config.model!r} "
                         "has separate encoder and decoder")


def _check_radius(radius) -> float:
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not math.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be a finite positive number (the attack's L2 norm), got {radius!r}")
    return float(radius)


def adversarial_attacks(W: Tensor, radius: float = DEFAULT_RADIUS) -> tuple[Tensor, Tensor]:
    """The attacks and the interference directions of tied weights ``W`` ``[I, n, m]``.

    Returns ``(x, c)``, both ``[I, n, n]`` with attack i in column i: ``c[:, :, i]``
    is column i of WWᵀ and ``x[:, :, i] = radius · c_i/‖c_i‖`` (a zero column,
    a feature the model does not represent, gives the zero attack).
    """
    radius = _check_radius(radius)
    c = W @ W.transpose(-1, -2)
    norms = torch.linalg.vector_norm(c, dim=-2, keepdim=True)
    x = torch.where(norms > 0, radius * c / torch.where(norms > 0, norms, torch.ones_like(norms)), 0.0)
    return x, c


def adversarial_loss(result, *, radius: float = DEFAULT_RADIUS, target: str = "input") -> Tensor:
    """Per-instance worst loss ``[I]`` (fp32) over the n interference attacks of norm ``radius``.

    ``target``: ``"input"`` (reconstruct the attack, the autoencoder's
    objective) or ``"interference"`` ([KG]'s unnormalised cᵢ).
    """
    from ..backends.base import model_spec  # the backends import the metrics package: import on use
    from ..functional import forward

    _check_tied(result)
    if target not in ATTACK_TARGETS:
        raise ValueError(f"target must be one of {', '.join(map(repr, ATTACK_TARGETS))}; got {target!r}")
    params = {name: value.detach().cpu().double() for name, value in result.params.items()}
    x, c = adversarial_attacks(params["W"], radius)
    with torch.no_grad():
        y = forward(params, x, model_spec(result.config))  # the n attacks are the batch axis: [I, n, n]
        goal = x if target == "input" else c
        importance = result.config.importance_tensor().double()
        per_attack = importance.unsqueeze(-1) * (y - goal) ** 2  # [I, feature, attack]
    return per_attack.mean(dim=1).amax(dim=1).float()


def adversarial_vulnerability(result, *, radius: float = DEFAULT_RADIUS, target: str = "input",
                              n_samples: int = 100_000, relative_to=None) -> Tensor:
    """Per-instance ``[I]`` (float64): adversarial loss minus the loss on the training distribution.

    The test loss is :func:`fastsup.evaluate` on ``n_samples`` samples
    ([KG] uses 100,000).  ``relative_to``: another result with the same
    number of instances (e.g. the linear model on the same densities); the
    difference is then divided by its difference, [KG]'s vulnerability.
    """
    from ..evaluate import evaluate

    def increase(model):
        return adversarial_loss(model, radius=radius, target=target).double() - \
            evaluate(model, n_samples=n_samples).double()

    gap = increase(result)
    if relative_to is None:
        return gap
    _check_tied(relative_to)
    if relative_to.config.n_instances != result.config.n_instances:
        raise ValueError(f"relative_to must have as many instances as result ({result.config.n_instances}), "
                         f"got {relative_to.config.n_instances}")
    return gap / increase(relative_to)
