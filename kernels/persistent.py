"""Persistent whole-run kernel: one launch trains every instance for every step.

This is the tile kernel, for the persistent shapes past the warp kernel's
register budget (``kernels/warp.py`` trains the tiny ones); the launchers at
the end run whichever the plan names.

Grid ``(I,)``.  Each step a program loops over the batch in chunks of
``4 * BLOCK_Q`` rows.  A chunk's Philox call per (quad, feature) gives four
rows, one per lane; the program handles them a lane at a time and keeps the
rows in the thread that drew them, adding their loss and gradients to
per-quad sums (tiles with a quad axis).  Those sums cross threads once, at
the end of the step, and then the update runs.  Nothing touches global
memory in the chunk loop; the parameters and Adam moments are read and
written once per step in their buffers, which stay in L1.  The schedule
comes from per-step tables computed on the host once (lr multiplier and Adam
bias corrections), the same fp32 numbers the torch backend uses.

At the steps a ``Checkpoints`` table marks, the program also stores its
updated parameters into the checkpoint buffers (a per-step table lookup,
like the loss history's ``step % log_every``): checkpoints cost no launch.

The same kernel also runs a window of steps (``step_start`` to ``step_stop``):
``PersistentStepper`` launches it once per step so that ``on_step`` hooks see
every step, with the same batch blocking, hence bit for bit the same training
as one launch.

For small n·m only (phase diagrams, 5→2, 20→5): the ``[N_PAD, M_PAD, BLOCK_Q]``
register products and sums must fit in one program's registers;
``fastsup.kernels.dispatch`` decides, and the compile check proves the chosen
configurations do not spill.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastsup.kernels.block import ABS, adam_tile, backprop_rows, features_from_uniforms, step_schedule, store_logged_loss
from fastsup.kernels.dispatch import Plan
from fastsup.kernels.sampling import philox_lane_words
from fastsup.kernels.utils import Checkpoints, KernelInputs, Moments, on_device
from fastsup.kernels.warp import warp_run_args, warp_run_kernel

# ---------------------------------------------------------------------------
# kernel
# ---------------------------------------------------------------------------


@triton.jit
def accumulate_lane(
    word,  # uint32 [N_PAD, BLOCK_Q]: the data stream's Philox words of rows 4 * quads + lane
    lane,  # scalar in [0, 4)
    quads,  # int [BLOCK_Q]: row-quad indices
    batch_size,  # scalar: B
    p, inv_p, imp, b,  # fp32 [N_PAD]
    enc,  # fp32 [N_PAD, M_PAD]
    dec,  # fp32 [M_PAD, N_PAD]
    grad_scale, threshold,  # fp32 scalars
    loss_acc,  # fp32 [BLOCK_Q]: each quad column's loss so far
    enc_acc,  # fp32 [N_PAD, M_PAD, BLOCK_Q]: dW (tied) or dW1 so far, per quad column
    dec_acc,  # fp32 [M_PAD, N_PAD, BLOCK_Q]: dW2 so far (abs only)
    b_acc,  # fp32 [N_PAD, BLOCK_Q]
    MODEL: tl.constexpr, ACT: tl.constexpr, SIGNED: tl.constexpr,
):
    """Adds one lane's rows (one row per quad) to the step's per-quad loss and gradient sums.

    The sums keep their quad axis, so each thread adds up the rows it drew
    and nothing crosses threads until the step's one reduction.  They are the
    shape of the register products, which the dispatcher already sizes to fit.
    """
    row_valid = 4 * quads + lane < batch_size
    u = tl.uint_to_uniform_float(word)
    x = tl.where(row_valid[None, :], features_from_uniforms(u, p[:, None], inv_p[:, None], SIGNED), 0.0)
    row_loss, h, g, gh = backprop_rows(x, row_valid, enc, dec, b, imp, grad_scale, threshold, MODEL, ACT, False,
                                       "ieee")
    enc_acc += x[:, None, :] * gh[None, :, :]
    if MODEL == ABS:
        dec_acc += h[:, None, :] * g[None, :, :]
    else:  # tied: the decoder's share of dW, transposed onto W's [N_PAD, M_PAD]
        enc_acc += g[:, None, :] * h[None, :, :]
    return loss_acc + row_loss, enc_acc, dec_acc, b_acc + g


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
    BLOCK_Q: tl.constexpr,  # row-quads per batch chunk: 4 * BLOCK_Q rows, drawn and summed lane by lane
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
    p = tl.load(p_ptr + vec_base + features, mask=f_mask, other=0.0)
    inv_p = tl.load(inv_p_ptr + vec_base + features, mask=f_mask, other=0.0)
    imp = tl.load(imp_ptr + vec_base + features, mask=f_mask, other=0.0)
    lr = tl.load(lr_ptr + k)
    wd = tl.load(wd_ptr + k)
    instance = tl.load(ids_ptr + k)
    n_quads = tl.cdiv(batch_size, 4)
    n_logged_regular = tl.cdiv(n_steps, log_every)

    for step in range(step_start, step_stop):
        # Parameters and moments live in their (L1-resident) buffers between
        # steps, read and written once per step.  Carried through the step loop
        # in registers instead, the compiler kept them in three layouts at once
        # (the update's, the forward's, the backward's) and repeated the Adam
        # update in each (5→2 on sm_90 spilled 172 B; 4 B from the buffers, with the lanes unrolled).
        # The addresses are formed anew each step from ``zero`` (0, as steps
        # < 2**31, but not provably so): hoisted out of the loop, the 64-bit
        # address tiles stay live in every layout, and 7 of the 14 default
        # persistent binaries spilled (sm_80 and sm_90, 2026-12-01).
        zero = step >> 31
        mat_offsets = zero + features[:, None] * n_hidden + hidden[None, :]  # [N_PAD, M_PAD]
        dec_offsets = zero + hidden[:, None] * n_features + features[None, :]  # [M_PAD, N_PAD]
        vec_offsets = zero + features  # [N_PAD]
        enc_at = enc_ptr + mat_base + mat_offsets
        dec_at = dec_ptr + mat_base + dec_offsets
        m_enc_at = m_enc_ptr + mat_base + mat_offsets
        v_enc_at = v_enc_ptr + mat_base + mat_offsets
        m_dec_at = m_dec_ptr + mat_base + dec_offsets
        v_dec_at = v_dec_ptr + mat_base + dec_offsets
        b_at = b_ptr + vec_base + vec_offsets
        m_b_at = m_b_ptr + vec_base + vec_offsets
        v_b_at = v_b_ptr + vec_base + vec_offsets
        enc = tl.load(enc_at, mask=nm_mask, other=0.0)
        if MODEL == ABS:
            dec = tl.load(dec_at, mask=mn_mask, other=0.0)
        else:
            dec = tl.trans(enc)
        b = tl.load(b_at, mask=f_mask, other=0.0)

        loss = tl.zeros([BLOCK_Q], dtype=tl.float32)
        d_enc = tl.zeros([N_PAD, M_PAD, BLOCK_Q], dtype=tl.float32)
        d_dec = tl.zeros([M_PAD, N_PAD, BLOCK_Q], dtype=tl.float32)
        db = tl.zeros([N_PAD, BLOCK_Q], dtype=tl.float32)
        for q0 in range(0, n_quads, BLOCK_Q):
            quads = q0 + tl.arange(0, BLOCK_Q)
            w0, w1, w2, w3 = philox_lane_words(seed_lo, seed_hi, instance, step, quads, features, 0)  # Stream.DATA
            # one lane's rows in flight at a time: unrolled, the four lanes' working
            # tiles were live together (5→2 on sm_90: 255 registers and a spill)
            for lane in tl.range(0, 4, loop_unroll_factor=1):
                word = tl.where(lane == 0, w0, tl.where(lane == 1, w1, tl.where(lane == 2, w2, w3)))
                loss, d_enc, d_dec, db = accumulate_lane(word, lane, quads, batch_size, p, inv_p, imp, b, enc, dec,
                                                         grad_scale, threshold, loss, d_enc, d_dec, db, MODEL, ACT,
                                                         SIGNED)
        # the step's one reduction across threads
        loss = tl.sum(loss, axis=0)
        d_enc = tl.sum(d_enc, axis=2)
        d_dec = tl.sum(d_dec, axis=2)
        db = tl.sum(db, axis=1)

        store_logged_loss(history_ptr, loss, k, step, n_steps, log_every, n_logged_regular, history_row0,
                          n_instances, grad_scale)
        lr_t, bc1, bc2_sqrt = step_schedule(lr, step, scale_ptr, bc1_ptr, bc2_sqrt_ptr)
        # the tied model's d_enc already holds both of its matrix's shares
        enc, m_enc, v_enc = adam_tile(enc, d_enc, tl.load(m_enc_at, mask=nm_mask, other=0.0),
                                      tl.load(v_enc_at, mask=nm_mask, other=0.0), lr_t, wd, one_minus_beta1, beta2,
                                      one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)
        tl.store(enc_at, enc, mask=nm_mask)
        tl.store(m_enc_at, m_enc, mask=nm_mask)
        tl.store(v_enc_at, v_enc, mask=nm_mask)
        if MODEL == ABS:
            dec, m_dec, v_dec = adam_tile(dec, d_dec, tl.load(m_dec_at, mask=mn_mask, other=0.0),
                                          tl.load(v_dec_at, mask=mn_mask, other=0.0), lr_t, wd, one_minus_beta1,
                                          beta2, one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)
            tl.store(dec_at, dec, mask=mn_mask)
            tl.store(m_dec_at, m_dec, mask=mn_mask)
            tl.store(v_dec_at, v_dec, mask=mn_mask)
        b, m_b, v_b = adam_tile(b, db, tl.load(m_b_at, mask=f_mask, other=0.0), tl.load(v_b_at, mask=f_mask, other=0.0),
                                lr_t, wd, one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)
        tl.store(b_at, b, mask=f_mask)
        tl.store(m_b_at, m_b, mask=f_mask)
        tl.store(v_b_at, v_b, mask=f_mask)

        checkpoint = tl.load(checkpoint_row_ptr + step)
        if checkpoint >= 0:  # int64: C x I x n x m passes 2**31 for long log-spaced runs
            instance_row = checkpoint * n_instances + k
            checkpoint_mat = instance_row * n_features * n_hidden
            tl.store(checkpoint_enc_ptr + checkpoint_mat + mat_offsets, enc, mask=nm_mask)
            if MODEL == ABS:
                tl.store(checkpoint_dec_ptr + checkpoint_mat + dec_offsets, dec, mask=mn_mask)
            tl.store(checkpoint_b_ptr + instance_row * n_features + vec_offsets, b, mask=f_mask)
        # the next step reads what other threads of this program just wrote
        tl.debug_barrier()


# ---------------------------------------------------------------------------
# launcher
# ---------------------------------------------------------------------------


def persistent_run_args(inputs: KernelInputs, moments: Moments, history, checkpoints: Checkpoints, plan: Plan,
                        step_start: int, step_stop: int, log_every: int, history_row0: int) -> tuple[dict, dict]:
    """``persistent_run_kernel``'s arguments by name, and its launch options (the launcher's and the compile check's)."""
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
        M_PAD=plan.m_pad, BLOCK_Q=plan.block_q,
    )
    return args, plan.launch_options()


def _launch(inputs: KernelInputs, moments: Moments, history, checkpoints: Checkpoints, plan: Plan, step_start: int,
            step_stop: int, log_every: int, history_row0: int) -> None:
    """Steps ``step_start`` to ``step_stop`` on the plan's kernel: the tile kernel here, or ``kernels.warp``'s."""
    kernel, build = (warp_run_kernel, warp_run_args) if plan.warp else (persistent_run_kernel, persistent_run_args)
    args, options = build(inputs, moments, history, checkpoints, plan, step_start, step_stop, log_every, history_row0)
    with on_device(inputs.enc):
        kernel[(triton.cdiv(inputs.n_instances, plan.pack),)](**args, **options)


def persistent_run(inputs: KernelInputs, plan: Plan, n_logged: int, checkpoints: Checkpoints) -> torch.Tensor:
    """Train every instance of ``inputs`` for the whole run in one launch (parameters updated in place).

    Returns the loss history ``[n_logged, I]``: every ``log_every``-th step and
    the last; the kernel also fills ``checkpoints`` at their steps.
    """
    history = torch.empty(n_logged, inputs.n_instances, dtype=torch.float32, device=inputs.enc.device)
    _launch(inputs, Moments.zeros(inputs), history, checkpoints, plan, 0, inputs.steps, inputs.log_every, 0)
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
        _launch(self.inputs, self.moments, loss, self.no_checkpoints, self.plan, step, step + 1, 1, step)
        return loss[0]
