"""The oracle: autograd for gradients and ``torch.optim`` for updates, written plainly.

Each instance owns separate parameter tensors and its own optimizer param
group, so per-instance lr and weight decay go through torch's optimizer
untouched.  Slow, and only meant to check the other backends.
"""

from __future__ import annotations

import torch

from ..config import TrainConfig
from ..data import DataSpec, sample_batch, sampling_step, target_of
from .base import RawRun, RunOptions, initial_params, run_steps


def reference_forward(params, x: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The forward pass as einsums, independent of ``functional.forward``; x, y ``[I, B, n]``."""
    b = params["b"].unsqueeze(1)
    if config.model == "abs":
        h = torch.relu(torch.einsum("ibn,inm->ibm", x, params["W1"]))
        z = torch.einsum("ibm,imn->ibn", h, params["W2"]) + b
    else:
        a = torch.einsum("ibn,inm->ibm", x, params["W"])
        h = torch.relu(a) if config.model == "relu_hidden" else a
        z = torch.einsum("ibm,inm->ibn", h, params["W"]) + b
    if config.model == "linear":
        return z
    if config.activation == "relu":
        return torch.relu(z)
    return torch.where(z >= config.activation_threshold, z, torch.zeros_like(z))


class ReferenceTrainer:
    def __init__(self, config: TrainConfig, device, initial: dict[str, torch.Tensor]):
        self.config = config
        self.spec = DataSpec.from_config(config, device)
        self.importance = config.importance_tensor().to(device)
        self.per_instance = [
            {name: torch.nn.Parameter(value[k].clone()) for name, value in initial.items()}
            for k in range(config.n_instances)
        ]
        optimizer_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        lrs, wds = config.lr_tensor().tolist(), config.weight_decay_tensor().tolist()
        groups = [
            {"params": list(params.values()), "lr": lr, "weight_decay": wd}
            for params, lr, wd in zip(self.per_instance, lrs, wds)
        ]
        self.base_lrs = lrs
        self.optimizer = optimizer_cls(groups, betas=config.betas, eps=config.eps, foreach=False)

    @property
    def params(self):
        return {name: torch.stack([p[name].detach() for p in self.per_instance]) for name in self.per_instance[0]}

    def step(self, step: int, lr_scale: float) -> torch.Tensor:
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * lr_scale
        x = sample_batch(self.spec, sampling_step(self.config, step), self.config.batch_size).transpose(1, 2)
        stacked = {name: torch.stack([p[name] for p in self.per_instance]) for name in self.per_instance[0]}
        y = reference_forward(stacked, x, self.config)
        loss = (self.importance.unsqueeze(1) * (y - target_of(x, self.config.model)) ** 2).mean(dim=(1, 2))
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.optimizer.step()
        return loss.detach()


def run(config: TrainConfig, device, options: RunOptions) -> RawRun:
    trainer = ReferenceTrainer(config, device, initial_params(config, device, options))
    return run_steps(trainer, config, trainer.spec, options)
