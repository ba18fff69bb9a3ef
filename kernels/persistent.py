"""Persistent whole-run kernel: one launch trains every instance for every step.

Grid ``(I,)``.  A program keeps its instance's parameters and Adam moments in
registers for the whole run; each step it loops over the batch in blocks of
``4 * BLOCK_Q`` rows (sampling each block with Philox, nothing touches global
memory but the loss history), then applies the update.  The schedule comes
from per-step tables computed on the host once (lr multiplier and Adam bias
corrections), the same fp32 numbers the torch backend uses.

At the steps a ``Checkpoints`` table marks, the program also stores its
updated parameters into the checkpoint buffers (a per-step table lookup,
like the loss history's ``step % log_every``): checkpoints cost no launch.

The same kernel also runs a window of steps (``step_start`` to ``step_stop``),
reading and writing the Adam moments at its ends: ``PersistentStepper``
launches it once per step so that ``on_step`` hooks see every step, with the
same batch blocking, hence bit for bit the same training as one launch.

For small n·m only (phase diagrams, 5→2, 20→5): the parameters, moments and
the ``[N_PAD, M_PAD, R]`` register products must fit in one program's
registers; ``fastsup.kernels.dispatch`` decides, and the compile check proves
the chosen configurations do not spill.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastsup.kernels.block import ABS, adam_tile, block_loss_grads, sample_block
from fastsup.kernels.dispatch import Plan
from fastsup.kernels.utils import Checkpoints, KernelInputs, Moments, on_device

# ---------------------------------------------------------------------------
# kernel
# ---------------------------------------------------------------------------


# Every run-dependent integer is kept out of specialization: a window starting
# at step 1, or a log_every of 1, must not compile a second binary whose
# arithmetic could differ from the whole-run launch's.
@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "step_start", "step_stop", "n_steps", "log_every",
                               "history_row0"])
def persistent_run_kernel(
    enc_ptr,  # fp32 [I, n, m]: W (or W1); read at step_start, overwritten at step_stop
    dec_ptr,  # fp32 [I, m, n]: W2 for the abs model (unused otherwise)
    b_ptr,  # fp32 [I, n]: read, overwritten
    m_enc_ptr, v_enc_ptr,  # fp32 [I, n, m]: Adam moments of W / W1, read and overwritten
    m_dec_ptr, v_dec_ptr,  # fp32 [I, m, n]: Adam moments of W2 (abs only)
    m_b_ptr, v_b_ptr,  # fp32 [I, n]
    p_ptr,  # fp32 [I, n]: feature probability
    inv_p_ptr,  # fp32 [I, n]: host reciprocal of p (0 where p = 0)
    imp_ptr,  # fp32 [I, n]: importance
    lr_ptr,  # fp32 [I]: base lr
    wd_ptr,  # fp32 [I]: weight decay
    ids_ptr,  # int64 [I]: instance ids (Philox counter word c3)
    scale_ptr,  # fp32 [n_steps]: lr multiplier per step
    bc1_ptr,  # fp32 [n_steps]: 1 - beta1^(step+1)
    bc2_sqrt_ptr,  # fp32 [n_steps]: sqrt(1 - beta2^(step+1))
    history_ptr,  # fp32 [rows, I]: loss of the logged steps, row = logged index - history_row0
    checkpoint_row_ptr,  # int64 [n_steps]: the checkpoint row of each step, -1 for none (Checkpoints)
    checkpoint_enc_ptr,  # fp32 [C, I, n, m]: W (or W1) after the update of each checkpoint step
    checkpoint_dec_ptr,  # fp32 [C, I, m, n]: W2 likewise (abs only)
    checkpoint_b_ptr,  # fp32 [C, I, n]
    seed_lo,  # scalar: seed mod 2**32
    seed_hi,  # scalar: seed >> 32
    n_instances,  # scalar: I
    n_features,  # scalar: n
    n_hidden,  # scalar: m
    batch_size,  # scalar: B
    step_start,  # scalar: first step of this launch
    step_stop,  # scalar: one past its last step
    n_steps,  # scalar: steps of the whole run (its last step is logged)
    log_every,  # scalar: history stride in steps
    history_row0,  # scalar: the logged index stored in history row 0
    one_minus_beta1, beta2, one_minus_beta2, eps,  # fp32 scalars, host-computed (KernelInputs)
    threshold,  # fp32 scalar: ExReLU threshold
    grad_scale,  # fp32 scalar: 2 / (B n)
    MODEL: tl.constexpr,
    ACT: tl.constexpr,
    SIGNED: tl.constexpr,
    DECOUPLED: tl.constexpr,
    N_PAD: tl.constexpr,
    M_PAD: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    USE_DOT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    k = tl.program_id(0)
    features = tl.arange(0, N_PAD)
    hidden = tl.arange(0, M_PAD)
    f_mask = features < n_features
    h_mask = hidden < n_hidden
    nm_mask = f_mask[:, None] & h_mask[None, :]
    mn_mask = h_mask[:, None] & f_mask[None, :]
    # per-instance base offsets as int64 scalars, offsets within an instance as int32 tiles
    mat_base = k.to(tl.int64) * n_features * n_hidden
    vec_base = k.to(tl.int64) * n_features
    enc_offsets = features[:, None] * n_hidden + hidden[None, :]  # [N_PAD, M_PAD]
    dec_offsets = hidden[:, None] * n_features + features[None, :]  # [M_PAD, N_PAD]
    vec_offsets = features  # [N_PAD]

    enc = tl.load(enc_ptr + mat_base + enc_offsets, mask=nm_mask, other=0.0)
    if MODEL == ABS:
        dec = tl.load(dec_ptr + mat_base + dec_offsets, mask=mn_mask, other=0.0)
    else:
        dec = tl.trans(enc)
    b = tl.load(b_ptr + vec_base + vec_offsets, mask=f_mask, other=0.0)
    p = tl.load(p_ptr + vec_base + vec_offsets, mask=f_mask, other=0.0)
    inv_p = tl.load(inv_p_ptr + vec_base + vec_offsets, mask=f_mask, other=0.0)
    imp = tl.load(imp_ptr + vec_base + vec_offsets, mask=f_mask, other=0.0)
    lr = tl.load(lr_ptr + k)
    wd = tl.load(wd_ptr + k)
    instance = tl.load(ids_ptr + k)

    m_enc = tl.load(m_enc_ptr + mat_base + enc_offsets, mask=nm_mask, other=0.0)
    v_enc = tl.load(v_enc_ptr + mat_base + enc_offsets, mask=nm_mask, other=0.0)
    if MODEL == ABS:
        m_dec = tl.load(m_dec_ptr + mat_base + dec_offsets, mask=mn_mask, other=0.0)
        v_dec = tl.load(v_dec_ptr + mat_base + dec_offsets, mask=mn_mask, other=0.0)
    else:  # the tied model's one matrix has its moments in m_enc / v_enc
        m_dec = tl.zeros([M_PAD, N_PAD], dtype=tl.float32)
        v_dec = tl.zeros([M_PAD, N_PAD], dtype=tl.float32)
    m_b = tl.load(m_b_ptr + vec_base + vec_offsets, mask=f_mask, other=0.0)
    v_b = tl.load(v_b_ptr + vec_base + vec_offsets, mask=f_mask, other=0.0)
    n_quads = tl.cdiv(batch_size, 4)
    n_logged_regular = tl.cdiv(n_steps, log_every)

    for step in range(step_start, step_stop):
        loss = 0.0
        d_enc = tl.zeros([N_PAD, M_PAD], dtype=tl.float32)
        d_dec = tl.zeros([M_PAD, N_PAD], dtype=tl.float32)
        db = tl.zeros([N_PAD], dtype=tl.float32)
        for q0 in range(0, n_quads, BLOCK_Q):
            quads = q0 + tl.arange(0, BLOCK_Q)
            rows = 4 * q0 + tl.arange(0, 4 * BLOCK_Q)
            row_valid = rows < batch_size
            x = sample_block(seed_lo, seed_hi, instance, step, quads, features, p, inv_p, SIGNED)
            x = tl.where(row_valid[None, :], x, 0.0)
            block_loss, block_enc, block_dec, block_b = block_loss_grads(
                x, row_valid, enc, dec, b, imp, grad_scale, threshold, MODEL, ACT, USE_DOT, PRECISION
            )
            loss += block_loss
            d_enc += block_enc
            d_dec += block_dec
            db += block_b

        # int64: rows x I passes 2**31 in large runs (10**6 instances logged 2 148 times)
        if step % log_every == 0:
            row = (step // log_every - history_row0).to(tl.int64)
            tl.store(history_ptr + row * n_instances + k, loss * (grad_scale * 0.5))
        elif step == n_steps - 1:
            row = (n_logged_regular - history_row0).to(tl.int64)
            tl.store(history_ptr + row * n_instances + k, loss * (grad_scale * 0.5))

        lr_t = lr * tl.load(scale_ptr + step)
        bc1 = tl.load(bc1_ptr + step)
        bc2_sqrt = tl.load(bc2_sqrt_ptr + step)
        if MODEL == ABS:
            enc, m_enc, v_enc = adam_tile(enc, d_enc, m_enc, v_enc, lr_t, wd, one_minus_beta1, beta2,
                                          one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)
            dec, m_dec, v_dec = adam_tile(dec, d_dec, m_dec, v_dec, lr_t, wd, one_minus_beta1, beta2,
                                          one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)
        else:
            enc, m_enc, v_enc = adam_tile(enc, d_enc + tl.trans(d_dec), m_enc, v_enc, lr_t, wd, one_minus_beta1, beta2,
                                          one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)
            dec = tl.trans(enc)
        b, m_b, v_b = adam_tile(b, db, m_b, v_b, lr_t, wd, one_minus_beta1, beta2, one_minus_beta2, eps, bc1,
                                bc2_sqrt, DECOUPLED)

        checkpoint = tl.load(checkpoint_row_ptr + step)
        if checkpoint >= 0:  # int64: C x I x n x m passes 2**31 for long log-spaced runs
            instance_row = checkpoint * n_instances + k
            checkpoint_mat = instance_row * n_features * n_hidden
            tl.store(checkpoint_enc_ptr + checkpoint_mat + enc_offsets, enc, mask=nm_mask)
            if MODEL == ABS:
                tl.store(checkpoint_dec_ptr + checkpoint_mat + dec_offsets, dec, mask=mn_mask)
            tl.store(checkpoint_b_ptr + instance_row * n_features + vec_offsets, b, mask=f_mask)

    # The store addresses are formed here from bases the compiler cannot
    # prove equal to the loads' (instance ids are < 2**32, so instance >> 32
    # is 0): reusing the loads' 64-bit address tiles kept them live across
    # the step loop, and ptxas spilled them around div.rn's slow-path calls
    # (5→2 on sm_80: 40 B).
    zero = instance >> 32
    mat_base += zero
    vec_base += zero
    tl.store(enc_ptr + mat_base + enc_offsets, enc, mask=nm_mask)
    if MODEL == ABS:
        tl.store(dec_ptr + mat_base + dec_offsets, dec, mask=mn_mask)
    tl.store(b_ptr + vec_base + vec_offsets, b, mask=f_mask)
    tl.store(m_enc_ptr + mat_base + enc_offsets, m_enc, mask=nm_mask)
    tl.store(v_enc_ptr + mat_base + enc_offsets, v_enc, mask=nm_mask)
    if MODEL == ABS:
        tl.store(m_dec_ptr + mat_base + dec_offsets, m_dec, mask=mn_mask)
        tl.store(v_dec_ptr + mat_base + dec_offsets, v_dec, mask=mn_mask)
    tl.store(m_b_ptr + vec_base + vec_offsets, m_b, mask=f_mask)
    tl.store(v_b_ptr + vec_base + vec_offsets, v_b, mask=f_mask)


# ---------------------------------------------------------------------------
# launcher
# ---------------------------------------------------------------------------


def persistent_run_args(inputs: KernelInputs, moments: Moments, history, checkpoints: Checkpoints, plan: Plan,
                        step_start: int, step_stop: int, log_every: int, history_row0: int) -> tuple[dict, int]:
    """``persistent_run_kernel``'s arguments by name, and its num_warps (the launcher's and the compile check's)."""
    i = inputs
    args = dict(
        enc_ptr=i.enc, dec_ptr=i.dec, b_ptr=i.b, m_enc_ptr=moments.m_enc, v_enc_ptr=moments.v_enc,
        m_dec_ptr=moments.m_dec, v_dec_ptr=moments.v_dec, m_b_ptr=moments.m_b, v_b_ptr=moments.v_b,
        p_ptr=i.p, inv_p_ptr=i.inv_p, imp_ptr=i.importance, lr_ptr=i.lr, wd_ptr=i.weight_decay,
        ids_ptr=i.instance_ids, scale_ptr=i.scale, bc1_ptr=i.bias_correction1, bc2_sqrt_ptr=i.bias_correction2_sqrt,
        history_ptr=history, checkpoint_row_ptr=checkpoints.row, checkpoint_enc_ptr=checkpoints.enc,
        checkpoint_dec_ptr=checkpoints.dec, checkpoint_b_ptr=checkpoints.b, seed_lo=i.seed_lo, seed_hi=i.seed_hi, n_instances=i.n_instances,
        n_features=i.n_features, n_hidden=i.n_hidden, batch_size=i.batch_size, step_start=step_start,
        step_stop=step_stop, n_steps=i.steps, log_every=log_every, history_row0=history_row0,
        one_minus_beta1=i.one_minus_beta1, beta2=i.beta2, one_minus_beta2=i.one_minus_beta2, eps=i.eps,
        threshold=i.threshold, grad_scale=i.grad_scale,
        MODEL=i.model, ACT=i.activation, SIGNED=i.signed, DECOUPLED=i.decoupled, N_PAD=plan.n_pad,
        M_PAD=plan.m_pad, BLOCK_Q=plan.block_q, USE_DOT=plan.use_dot, PRECISION=plan.precision,
    )
    return args, plan.num_warps


def _launch(args: dict, num_warps: int, inputs: KernelInputs) -> None:
    with on_device(inputs.enc):
        persistent_run_kernel[(inputs.n_instances,)](**args, num_warps=num_warps)


def persistent_run(inputs: KernelInputs, plan: Plan, n_logged: int, checkpoints: Checkpoints) -> torch.Tensor:
    """Train every instance of ``inputs`` for the whole run in one launch (parameters updated in place).

    Returns the loss history ``[n_logged, I]``: every ``log_every``-th step and
    the last; the kernel also fills ``checkpoints`` at their steps.
    """
    history = torch.empty(n_logged, inputs.n_instances, dtype=torch.float32, device=inputs.enc.device)
    args, num_warps = persistent_run_args(inputs, Moments.zeros(inputs), history, checkpoints, plan, 0, inputs.steps,
                                          inputs.log_every, 0)
    _launch(args, num_warps, inputs)
    return history


class PersistentStepper:
    """The persistent kernel one step per launch (the ``StepTrainer`` protocol of ``fastsup.backends.base``).

    For ``on_step`` hooks: the same binary, batch blocks and summation order
    as ``persistent_run``, so the weights are bit-identical with or without a hook.
    The kernel stores no checkpoints here: the step loop copies them between launches.
    """

    def __init__(self, inputs: KernelInputs, plan: Plan):
        self.inputs, self.plan = inputs, plan
        self.moments = Moments.zeros(inputs)
        self.no_checkpoints = Checkpoints.at(inputs)
        self.params = inputs.params()

    def step(self, step: int, lr_scale: float) -> torch.Tensor:
        """Train step ``step`` (its lr comes from the kernel's schedule table); returns a fresh ``[I]`` loss."""
        loss = torch.empty(1, self.inputs.n_instances, dtype=torch.float32, device=self.inputs.enc.device)
        # log_every 1 makes every step a logged one, stored in row 0 of ``loss``
        args, num_warps = persistent_run_args(self.inputs, self.moments, loss, self.no_checkpoints, self.plan, step,
                                              step + 1, 1, step)
        _launch(args, num_warps, self.inputs)
        return loss[0]
