"""What the training kernels read, and the device every launch runs on.

The kernels and their launchers know only tensors and numbers: ``KernelInputs``
is the whole of a run as the kernels see it.  ``fastsup.backends.triton_backend``
builds it from a ``TrainConfig``; the compile check builds it with pointer
placeholders in place of the tensors.  Every kernel's argument list is made by
one builder beside the kernel (``persistent_run_args``, ``step_hidden_args``,
``step_grads_args``, ``reduce_update_args``), which both the launcher and the
compile check call.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch


@dataclasses.dataclass
class KernelInputs:
    """Tensors: contiguous fp32 (ids int64) on the training device; the rest: Python ints and floats."""

    enc: torch.Tensor  # [I, n, m]  W or W1 (trained in place)
    dec: torch.Tensor  # [I, m, n]  W2 (abs) or a 1-element placeholder
    b: torch.Tensor  # [I, n]
    p: torch.Tensor  # [I, n]
    inv_p: torch.Tensor  # [I, n] host reciprocal of p (0 where p = 0)
    importance: torch.Tensor  # [I, n]
    lr: torch.Tensor  # [I]
    weight_decay: torch.Tensor  # [I]
    instance_ids: torch.Tensor  # int64 [I]
    scale: torch.Tensor  # [steps] lr multiplier
    bias_correction1: torch.Tensor  # [steps] 1 - beta1^(s+1)
    bias_correction2_sqrt: torch.Tensor  # [steps] sqrt(1 - beta2^(s+1))
    n_instances: int
    n_features: int
    n_hidden: int
    batch_size: int
    steps: int
    log_every: int
    seed_lo: int  # seed mod 2**32
    seed_hi: int  # seed >> 32
    # Adam's 1 - beta1, beta2, 1 - beta2 as the host computes them in double.
    # A compiled kernel receives float arguments as fp32, so 1 - beta2 formed
    # in the kernel would be 1 - fp32(0.999) = 9.99987e-4, where torch.optim
    # uses fp32(1 - 0.999) = fp32(0.001): every update 6.7e-6 too large.
    one_minus_beta1: float
    beta2: float
    one_minus_beta2: float
    eps: float
    threshold: float  # ExReLU threshold
    grad_scale: float  # 2 / (B n)
    model: int  # fastsup.kernels.block.MODEL_CODES
    activation: int  # fastsup.kernels.block.ACTIVATION_CODES
    signed: bool  # signed magnitudes 2u/p - 1
    decoupled: bool  # AdamW (True) or Adam

    @property
    def abs_model(self) -> bool:
        from fastsup.kernels.block import MODEL_CODES

        return self.model == MODEL_CODES["abs"]

    def params(self) -> dict:
        return {"W1": self.enc, "W2": self.dec, "b": self.b} if self.abs_model else {"W": self.enc, "b": self.b}


@dataclasses.dataclass
class Moments:
    """Adam's first and second moments of every parameter, fp32, zero at the start of a run."""

    m_enc: torch.Tensor  # [I, n, m]
    v_enc: torch.Tensor  # [I, n, m]
    m_dec: torch.Tensor  # [I, m, n] (abs), else 1 element
    v_dec: torch.Tensor
    m_b: torch.Tensor  # [I, n]
    v_b: torch.Tensor

    @classmethod
    def zeros(cls, inputs: KernelInputs) -> "Moments":
        I, n, m = inputs.n_instances, inputs.n_features, inputs.n_hidden
        zeros = lambda *shape: torch.zeros(shape, dtype=torch.float32, device=inputs.enc.device)  # noqa: E731
        dec = (I, m, n) if inputs.abs_model else (1,)
        return cls(zeros(I, n, m), zeros(I, n, m), zeros(*dec), zeros(*dec), zeros(I, n), zeros(I, n))


@dataclasses.dataclass
class Checkpoints:
    """Where the persistent kernel keeps the parameters of chosen steps, after their update.

    ``row[step]`` is the checkpoint row of ``step`` or -1: a per-step table like
    the schedule's, so the kernel decides with one load per step, never a host call.
    The buffers have at least one row (a launch needs real pointers); the first
    ``count`` rows are the checkpoints.
    """

    row: torch.Tensor  # int64 [steps]
    enc: torch.Tensor  # fp32 [max(C, 1), I, n, m]: W (or W1)
    dec: torch.Tensor  # fp32 [max(C, 1), I, m, n]: W2 (abs), else 1 element
    b: torch.Tensor  # fp32 [max(C, 1), I, n]
    count: int  # C

    @classmethod
    def at(cls, inputs: KernelInputs, steps=()) -> "Checkpoints":
        """Buffers for the checkpoints of ``steps`` (increasing step indices; none: the kernel stores nothing)."""
        I, n, m, device = inputs.n_instances, inputs.n_features, inputs.n_hidden, inputs.enc.device
        row = torch.full((inputs.steps,), -1, dtype=torch.int64)
        row[list(steps)] = torch.arange(len(steps), dtype=torch.int64)
        rows = max(len(steps), 1)
        empty = lambda *shape: torch.empty(shape, dtype=torch.float32, device=device)  # noqa: E731
        dec = empty(rows, I, m, n) if inputs.abs_model else empty(1)
        return cls(row.to(device), empty(rows, I, n, m), dec, empty(rows, I, n), len(steps))

    def params(self, abs_model: bool) -> dict:
        """The checkpoints ``[C, I, ...]`` by parameter name, as ``KernelInputs.params`` names them."""
        C = self.count
        if abs_model:
            return {"W1": self.enc[:C], "W2": self.dec[:C], "b": self.b[:C]}
        return {"W": self.enc[:C], "b": self.b[:C]}


def on_device(tensor: torch.Tensor):
    """The context every launch runs in: triton launches on the *current* CUDA device, not the tensors'.

    Without it a run on ``cuda:1`` from a process whose current device is 0
    launches on device 0 with pointers into device 1.
    """
    if tensor.device.type == "cuda":
        return torch.cuda.device(tensor.device)
    return contextlib.nullcontext()
