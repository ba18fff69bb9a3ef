"""The triton backend: fastsup.kernels on CUDA (or on CPU tensors under ``TRITON_INTERPRET=1``).

``fastsup.kernels.dispatch.plan_for`` picks the persistent whole-run kernel
or the fused step; either way the result is the same run description's result.
"""

from __future__ import annotations

import torch

from ..config import TrainConfig
from ..data import DataSpec
from ..functional import Params
from .base import RawRun, RunOptions, evaluate, initial_params, logged_steps, run_steps


def unsupported_reason(config: TrainConfig) -> str | None:
    """Why the kernels cannot train ``config`` (None when they can)."""
    if config.correlated_sets or config.anticorrelated_pairs:
        return "correlated sets and anticorrelated pairs are sampled by the torch backend only"
    if config.magnitude == "clipped_normal":
        return "clipped-normal magnitudes are sampled by the torch backend only"
    if config.normalize_points:
        return "normalized data points are sampled by the torch backend only"
    if config.dataset_size is not None:
        return "fixed datasets (dataset_size) are trained by the torch backend only"
    return None


# fp32 elements of per-instance device state a chunk may hold (1 GiB): the
# parameters and moments, and in step mode the hidden activations, their
# gradients and the per-split partial gradients (kernels.step.StepBuffers).
STATE_ELEMENTS = 1 << 28


def chunk_limit(config: TrainConfig, strategy: str = "auto") -> int:
    """Instances per chunk whose kernel state fits ``STATE_ELEMENTS``."""
    from fastsup.kernels.dispatch import plan_for

    plan = plan_for(config.n_features, config.n_hidden, config.batch_size, strategy, model=config.model)
    n, m = config.n_features, config.n_hidden
    per_instance = 4 * n * m + 3 * n  # W (W1, W2), moments, b
    if plan.strategy == "step":
        from fastsup.kernels.step import step_elements

        per_instance += step_elements(n, m, config.batch_size, plan, config.model == "abs")
    return STATE_ELEMENTS // per_instance


def kernel_inputs(config: TrainConfig, params: Params, scales: list[float], device):
    """The run as the kernels see it: ``config``'s numbers and ``params``, on ``device``."""
    from fastsup.kernels.utils import KernelInputs

    spec = DataSpec.from_config(config, device)
    tied = config.model != "abs"
    steps = torch.arange(1, config.steps + 1, dtype=torch.float64)  # bias corrections in double, as torch.optim
    beta1, beta2 = config.betas
    return KernelInputs(
        enc=params["W" if tied else "W1"].contiguous(),
        dec=torch.zeros(1, device=device) if tied else params["W2"].contiguous(),
        b=params["b"].contiguous(),
        p=spec.p.contiguous(),
        inv_p=spec.inv_p.contiguous(),
        importance=config.importance_tensor().to(device),
        lr=config.lr_tensor().to(device),
        weight_decay=config.weight_decay_tensor().to(device),
        instance_ids=spec.instance_ids.contiguous(),
        scale=torch.tensor(scales, dtype=torch.float32, device=device),
        bias_correction1=(1 - beta1**steps).float().to(device),
        bias_correction2_sqrt=torch.sqrt(1 - beta2**steps).float().to(device),
        **kernel_scalars(config),
    )


def kernel_scalars(config: TrainConfig) -> dict:
    """``KernelInputs``' numbers for ``config`` (the compile check builds its binaries from these too)."""
    from fastsup.kernels.block import ACTIVATION_CODES, MODEL_CODES

    beta1, beta2 = config.betas
    return dict(
        n_instances=config.n_instances, n_features=config.n_features, n_hidden=config.n_hidden,
        batch_size=config.batch_size, steps=config.steps, log_every=config.log_every,
        seed_lo=config.seed & 0xFFFFFFFF, seed_hi=config.seed >> 32,
        one_minus_beta1=1.0 - beta1, beta2=beta2, one_minus_beta2=1.0 - beta2, eps=config.eps,
        threshold=config.activation_threshold, grad_scale=2.0 / (config.batch_size * config.n_features),
        model=MODEL_CODES[config.model], activation=ACTIVATION_CODES[config.activation],
        signed=config.magnitude == "signed", decoupled=config.optimizer == "adamw",
    )


def run(config: TrainConfig, device, options: RunOptions) -> RawRun:
    from fastsup.kernels.dispatch import plan_for
    from fastsup.kernels.persistent import PersistentStepper, persistent_run
    from fastsup.kernels.step import FusedStepTrainer
    from fastsup.kernels.utils import Checkpoints

    reason = unsupported_reason(config)
    if reason:
        raise ValueError(f"backend='triton' cannot train this config: {reason}; use backend='torch'")
    # on_step does not change the plan: the persistent kernel then runs one
    # launch per step (PersistentStepper), with the same batch blocks.
    plan = plan_for(config.n_features, config.n_hidden, config.batch_size, options.strategy, options.precision,
                    model=config.model)
    inputs = kernel_inputs(config, initial_params(config, device, options), options.scales, device)
    spec = DataSpec.from_config(config, device)
    if plan.strategy == "step":
        return run_steps(FusedStepTrainer(inputs, plan), config, spec, options)
    if options.on_step is not None:
        return run_steps(PersistentStepper(inputs, plan), config, spec, options)
    steps = logged_steps(config)
    checkpoints = Checkpoints.at(inputs, options.checkpoint_steps)
    history = persistent_run(inputs, plan, len(steps), checkpoints)
    options.progress(config.steps)
    return RawRun(params=inputs.params(), loss_history=history, loss_steps=steps,
                  final_loss=evaluate(inputs.params(), config, spec),
                  checkpoints=checkpoints.params(inputs.abs_model))
