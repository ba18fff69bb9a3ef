"""Fused training step for shapes too big to keep on chip: three launches per step, no float atomics.

1. ``step_hidden_kernel``, grid ``(I, batch blocks)``: a program samples its
   block of ``4 * BLOCK_Q`` rows with Philox and runs the forward pass and
   the loss with the features tiled by ``BLOCK_N``.  The hidden
   pre-activation needs every feature before any output can be formed, and
   the hidden gradient gh = Σ_f dec[:, f] g[f, :] every feature's output
   gradient, so the features are visited twice (a, then z/g/gh), x re-drawn
   from Philox each time rather than kept.  It writes a and gh, ``[m, B]``
   per instance, and the block's loss.
2. ``step_grads_kernel``, grid ``(I, feature blocks, row splits)``: a program
   owns ``BLOCK_N`` features and sums their weight gradients (x ghᵀ, h gᵀ
   and g) over a split of ``split_quads`` row-quads, drawing x once more and
   recomputing its features' outputs from h, so g is never stored.  The sums
   over the batch stay in the program: the partial gradients are one copy
   of W per split (a split is hundreds of rows), not one per batch block.
3. ``reduce_update_kernel``, grid ``(I, feature blocks)``: sums the splits in
   a fixed order (deterministic) and applies AdamW/Adam with the step's
   schedule values.

The step index lives in a device tensor read by the kernels (and advanced by
the launcher with an in-place add), so a step is four device operations with
fixed arguments: capturable in a CUDA graph.
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from fastsup.kernels.block import (
    ABS,
    adam_tile,
    contract,
    hidden_activation,
    hidden_grad,
    outer,
    output_loss_grad,
    sample_block,
    step_schedule,
)
from fastsup.kernels.dispatch import Plan
from fastsup.kernels.utils import KernelInputs, Moments, on_device

# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------


@triton.jit
def _load_enc(enc_ptr, base, features, hidden, n_features, n_hidden):
    """W (or W1) rows ``features`` as ``[BLOCK_N, M_PAD]``, zero outside the matrix."""
    mask = (features < n_features)[:, None] & (hidden < n_hidden)[None, :]
    return tl.load(enc_ptr + base + features[:, None] * n_hidden + hidden[None, :], mask=mask, other=0.0)


@triton.jit
def _load_dec(enc_ptr, dec_ptr, base, features, hidden, n_features, n_hidden, MODEL: tl.constexpr):
    """The decoder columns ``features`` as ``[M_PAD, BLOCK_N]``: Wᵀ (tied) or W2."""
    mask = (hidden < n_hidden)[:, None] & (features < n_features)[None, :]
    if MODEL == ABS:
        offsets = hidden[:, None] * n_features + features[None, :]
        return tl.load(dec_ptr + base + offsets, mask=mask, other=0.0)
    else:
        offsets = features[None, :] * n_hidden + hidden[:, None]
        return tl.load(enc_ptr + base + offsets, mask=mask, other=0.0)


@triton.jit
def _sample_rows(p_ptr, inv_p_ptr, vec_base, features, f_mask, row_valid, seed_lo, seed_hi, instance, step, quads,
                 SIGNED: tl.constexpr):
    """x for ``features`` of the program's rows ``[BLOCK_N, 4 * BLOCK_Q]``, zero outside the batch."""
    p = tl.load(p_ptr + vec_base + features, mask=f_mask, other=0.0)
    inv_p = tl.load(inv_p_ptr + vec_base + features, mask=f_mask, other=0.0)
    x = sample_block(seed_lo, seed_hi, instance, step, quads, features, p, inv_p, SIGNED)
    return tl.where(row_valid[None, :], x, 0.0)


@triton.jit(do_not_specialize=["seed_lo", "seed_hi"])
def step_hidden_kernel(
    enc_ptr,  # fp32 [I, n, m]: W or W1
    dec_ptr,  # fp32 [I, m, n]: W2 (abs only)
    b_ptr,  # fp32 [I, n]
    p_ptr,  # fp32 [I, n]
    inv_p_ptr,  # fp32 [I, n]
    imp_ptr,  # fp32 [I, n]
    ids_ptr,  # int64 [I]
    step_ptr,  # int64 [1]: the step being trained (Philox counter word c2)
    loss_part_ptr,  # fp32 [I, NB]: Σ I_f (y - t)² over the block's rows
    a_ptr,  # fp32 [I, m, B]: hidden pre-activation a
    gh_ptr,  # fp32 [I, m, B]: its gradient dL/da
    seed_lo,  # scalar: seed mod 2**32
    seed_hi,  # scalar: seed >> 32
    n_features,  # scalar: n
    n_hidden,  # scalar: m
    batch_size,  # scalar: B
    threshold,  # fp32 scalar
    grad_scale,  # fp32 scalar: 2 / (B n)
    MODEL: tl.constexpr,
    ACT: tl.constexpr,
    SIGNED: tl.constexpr,
    BLOCK_N: tl.constexpr,  # features per tile
    M_PAD: tl.constexpr,
    BLOCK_Q: tl.constexpr,  # row-quads per program
    USE_DOT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    k = tl.program_id(0)
    block = tl.program_id(1)
    n_blocks = tl.num_programs(1)
    instance = tl.load(ids_ptr + k)
    step = tl.load(step_ptr)
    quads = block * BLOCK_Q + tl.arange(0, BLOCK_Q)
    rows = block * (4 * BLOCK_Q) + tl.arange(0, 4 * BLOCK_Q)
    row_valid = rows < batch_size
    hidden = tl.arange(0, M_PAD)
    k64 = k.to(tl.int64)
    mat_base = k64 * n_features * n_hidden
    vec_base = k64 * n_features

    # pass 1: hidden pre-activation a = Σ_f W[f, :] x[f, :]
    a = tl.zeros([M_PAD, 4 * BLOCK_Q], dtype=tl.float32)
    for f0 in range(0, n_features, BLOCK_N):
        features = f0 + tl.arange(0, BLOCK_N)
        f_mask = features < n_features
        x = _sample_rows(p_ptr, inv_p_ptr, vec_base, features, f_mask, row_valid, seed_lo, seed_hi, instance, step,
                         quads, SIGNED)
        a += contract(_load_enc(enc_ptr, mat_base, features, hidden, n_features, n_hidden), x, USE_DOT, PRECISION)
    h = hidden_activation(a, MODEL)

    # pass 2: outputs, loss, output gradient g and gh = Σ_f dec[:, f] g[f, :]
    loss = 0.0
    gh = tl.zeros([M_PAD, 4 * BLOCK_Q], dtype=tl.float32)
    for f0 in range(0, n_features, BLOCK_N):
        features = f0 + tl.arange(0, BLOCK_N)
        f_mask = features < n_features
        x = _sample_rows(p_ptr, inv_p_ptr, vec_base, features, f_mask, row_valid, seed_lo, seed_hi, instance, step,
                         quads, SIGNED)
        dec = _load_dec(enc_ptr, dec_ptr, mat_base, features, hidden, n_features, n_hidden, MODEL)  # [M_PAD, BLOCK_N]
        b = tl.load(b_ptr + vec_base + features, mask=f_mask, other=0.0)
        imp = tl.load(imp_ptr + vec_base + features, mask=f_mask, other=0.0)
        z = contract(dec, h, USE_DOT, PRECISION) + b[:, None]
        row_loss, g = output_loss_grad(z, x, row_valid, imp, grad_scale, threshold, MODEL, ACT)
        loss += tl.sum(row_loss, axis=0)
        gh += contract(tl.trans(dec), g, USE_DOT, PRECISION)
    gh = hidden_grad(gh, a, MODEL)

    hidden_offsets = k64 * n_hidden * batch_size + hidden[:, None] * batch_size + rows[None, :]
    hidden_mask = (hidden < n_hidden)[:, None] & row_valid[None, :]
    tl.store(a_ptr + hidden_offsets, a, mask=hidden_mask)
    tl.store(gh_ptr + hidden_offsets, gh, mask=hidden_mask)
    tl.store(loss_part_ptr + k64 * n_blocks + block, loss)


@triton.jit(do_not_specialize=["seed_lo", "seed_hi"])
def step_grads_kernel(
    enc_ptr,  # fp32 [I, n, m]: W or W1 (tied models read their decoder Wᵀ from it)
    dec_ptr,  # fp32 [I, m, n]: W2 (abs only)
    b_ptr,  # fp32 [I, n]
    p_ptr,  # fp32 [I, n]
    inv_p_ptr,  # fp32 [I, n]
    imp_ptr,  # fp32 [I, n]
    ids_ptr,  # int64 [I]
    step_ptr,  # int64 [1]
    a_ptr,  # fp32 [I, m, B]: from step_hidden_kernel
    gh_ptr,  # fp32 [I, m, B]: from step_hidden_kernel
    d_enc_part_ptr,  # fp32 [I, S, n, m]: Σ x ghᵀ over the split's rows (tied: plus (h gᵀ)ᵀ, the whole dW)
    d_dec_part_ptr,  # fp32 [I, S, m, n]: Σ h gᵀ (abs only)
    db_part_ptr,  # fp32 [I, S, n]: Σ g
    seed_lo,  # scalar: seed mod 2**32
    seed_hi,  # scalar: seed >> 32
    n_features,  # scalar: n
    n_hidden,  # scalar: m
    batch_size,  # scalar: B
    split_quads,  # scalar: row-quads per split, a multiple of BLOCK_Q
    threshold,  # fp32 scalar
    grad_scale,  # fp32 scalar: 2 / (B n)
    MODEL: tl.constexpr,
    ACT: tl.constexpr,
    SIGNED: tl.constexpr,
    BLOCK_N: tl.constexpr,  # features of the program
    M_PAD: tl.constexpr,
    BLOCK_Q: tl.constexpr,  # row-quads per trip of the row loop
    USE_DOT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    k = tl.program_id(0)
    fb = tl.program_id(1)
    split = tl.program_id(2)
    n_splits = tl.num_programs(2)
    instance = tl.load(ids_ptr + k)
    step = tl.load(step_ptr)
    features = fb * BLOCK_N + tl.arange(0, BLOCK_N)
    f_mask = features < n_features
    hidden = tl.arange(0, M_PAD)
    h_mask = hidden < n_hidden
    k64 = k.to(tl.int64)
    mat_base = k64 * n_features * n_hidden
    vec_base = k64 * n_features
    hidden_base = k64 * n_hidden * batch_size
    # the block's own decoder columns are all z needs: its rows' outputs are recomputed, never stored
    dec = _load_dec(enc_ptr, dec_ptr, mat_base, features, hidden, n_features, n_hidden, MODEL)  # [M_PAD, BLOCK_N]
    b = tl.load(b_ptr + vec_base + features, mask=f_mask, other=0.0)
    imp = tl.load(imp_ptr + vec_base + features, mask=f_mask, other=0.0)

    d_enc = tl.zeros([BLOCK_N, M_PAD], dtype=tl.float32)
    d_dec = tl.zeros([M_PAD, BLOCK_N], dtype=tl.float32)
    db = tl.zeros([BLOCK_N], dtype=tl.float32)
    first_quad = split * split_quads
    for q0 in range(first_quad, tl.minimum(first_quad + split_quads, tl.cdiv(batch_size, 4)), BLOCK_Q):
        quads = q0 + tl.arange(0, BLOCK_Q)
        rows = 4 * tl.cast(q0, tl.int64) + tl.arange(0, 4 * BLOCK_Q)  # tl.cast: q0 is a Python int when interpreted
        row_valid = rows < batch_size
        x = _sample_rows(p_ptr, inv_p_ptr, vec_base, features, f_mask, row_valid, seed_lo, seed_hi, instance, step,
                         quads, SIGNED)
        hidden_offsets = hidden_base + hidden[:, None] * batch_size + rows[None, :]
        hidden_mask = h_mask[:, None] & row_valid[None, :]
        h = hidden_activation(tl.load(a_ptr + hidden_offsets, mask=hidden_mask, other=0.0), MODEL)
        gh = tl.load(gh_ptr + hidden_offsets, mask=hidden_mask, other=0.0)
        z = contract(dec, h, USE_DOT, PRECISION) + b[:, None]
        _, g = output_loss_grad(z, x, row_valid, imp, grad_scale, threshold, MODEL, ACT)
        d_dec += outer(h, g, USE_DOT, PRECISION)
        db += tl.sum(g, axis=1)
        d_enc += outer(x, gh, USE_DOT, PRECISION)

    part = k64 * n_splits + split
    enc_mask = f_mask[:, None] & h_mask[None, :]
    if MODEL == ABS:
        dec_mask = h_mask[:, None] & f_mask[None, :]
        dec_offsets = part * n_features * n_hidden + hidden[:, None] * n_features + features[None, :]
        tl.store(d_dec_part_ptr + dec_offsets, d_dec, mask=dec_mask)
    else:
        d_enc += tl.trans(d_dec)  # W is both encoder and decoder
    enc_offsets = part * n_features * n_hidden + features[:, None] * n_hidden + hidden[None, :]
    tl.store(d_enc_part_ptr + enc_offsets, d_enc, mask=enc_mask)
    tl.store(db_part_ptr + part * n_features + features, db, mask=f_mask)


@triton.jit
def _update_stored(param_ptrs, exp_avg_ptrs, exp_avg_sq_ptrs, mask, grad, lr, weight_decay, one_minus_beta1, beta2,
                   one_minus_beta2, eps, bias_correction1, bias_correction2_sqrt, DECOUPLED: tl.constexpr):
    """Load a tile of parameters and Adam moments, update it with ``grad``, store it back."""
    param, exp_avg, exp_avg_sq = adam_tile(
        tl.load(param_ptrs, mask=mask, other=0.0), grad,
        tl.load(exp_avg_ptrs, mask=mask, other=0.0), tl.load(exp_avg_sq_ptrs, mask=mask, other=0.0),
        lr, weight_decay, one_minus_beta1, beta2, one_minus_beta2, eps, bias_correction1, bias_correction2_sqrt,
        DECOUPLED)
    tl.store(param_ptrs, param, mask=mask)
    tl.store(exp_avg_ptrs, exp_avg, mask=mask)
    tl.store(exp_avg_sq_ptrs, exp_avg_sq, mask=mask)


@triton.jit
def reduce_update_kernel(
    enc_ptr,  # fp32 [I, n, m]: updated in place
    dec_ptr,  # fp32 [I, m, n]: W2, updated in place (abs only)
    b_ptr,  # fp32 [I, n]
    m_enc_ptr, v_enc_ptr,  # fp32 [I, n, m]: Adam moments of W / W1
    m_dec_ptr, v_dec_ptr,  # fp32 [I, m, n]: Adam moments of W2 (abs only)
    m_b_ptr, v_b_ptr,  # fp32 [I, n]
    loss_part_ptr,  # fp32 [I, NB]
    d_enc_part_ptr,  # fp32 [I, S, n, m]
    d_dec_part_ptr,  # fp32 [I, S, m, n] (abs only)
    db_part_ptr,  # fp32 [I, S, n]
    loss_ptr,  # fp32 [I]: this step's loss, written by feature block 0
    lr_ptr, wd_ptr,  # fp32 [I]
    step_ptr,  # int64 [1]
    scale_ptr, bc1_ptr, bc2_sqrt_ptr,  # fp32 [steps]
    n_blocks,  # scalar: NB, batch blocks of step_hidden_kernel
    n_splits,  # scalar: S, row splits of step_grads_kernel
    n_features, n_hidden,  # scalars
    one_minus_beta1, beta2, one_minus_beta2, eps,  # fp32 scalars, host-computed (KernelInputs)
    loss_scale,  # fp32 scalar: 1 / (B n)
    MODEL: tl.constexpr,
    DECOUPLED: tl.constexpr,
    BLOCK_N: tl.constexpr,
    M_PAD: tl.constexpr,
    BLOCKS_PER_SPLIT: tl.constexpr,  # batch blocks of step_hidden_kernel per row split: split_quads // block_q
):
    k = tl.program_id(0)
    fb = tl.program_id(1)
    k64 = k.to(tl.int64)
    step = tl.load(step_ptr)
    features = fb * BLOCK_N + tl.arange(0, BLOCK_N)
    hidden = tl.arange(0, M_PAD)
    f_mask = features < n_features
    enc_mask = f_mask[:, None] & (hidden < n_hidden)[None, :]
    dec_mask = (hidden < n_hidden)[:, None] & f_mask[None, :]
    enc_offsets = features[:, None] * n_hidden + hidden[None, :]  # [BLOCK_N, M_PAD]
    dec_offsets = hidden[:, None] * n_features + features[None, :]  # [M_PAD, BLOCK_N]
    mat = n_features * n_hidden

    d_enc = tl.zeros([BLOCK_N, M_PAD], dtype=tl.float32)
    d_dec = tl.zeros([M_PAD, BLOCK_N], dtype=tl.float32)
    db = tl.zeros([BLOCK_N], dtype=tl.float32)
    loss = 0.0
    for split in range(n_splits):
        part = k64 * n_splits + split
        d_enc += tl.load(d_enc_part_ptr + part * mat + enc_offsets, mask=enc_mask, other=0.0)
        if MODEL == ABS:
            d_dec += tl.load(d_dec_part_ptr + part * mat + dec_offsets, mask=dec_mask, other=0.0)
        db += tl.load(db_part_ptr + part * n_features + features, mask=f_mask, other=0.0)
        # the batch blocks of the split's rows (a split is a whole number of them)
        blocks = tl.cast(split, tl.int64) * BLOCKS_PER_SPLIT + tl.arange(0, BLOCKS_PER_SPLIT)
        loss += tl.sum(tl.load(loss_part_ptr + k64 * n_blocks + blocks, mask=blocks < n_blocks, other=0.0))
    if fb == 0:
        tl.store(loss_ptr + k, loss * loss_scale)

    lr, bc1, bc2_sqrt = step_schedule(tl.load(lr_ptr + k), step, scale_ptr, bc1_ptr, bc2_sqrt_ptr)
    wd = tl.load(wd_ptr + k)
    base = k64 * mat
    _update_stored(enc_ptr + base + enc_offsets, m_enc_ptr + base + enc_offsets, v_enc_ptr + base + enc_offsets,
                   enc_mask, d_enc, lr, wd, one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2_sqrt,
                   DECOUPLED)
    if MODEL == ABS:
        _update_stored(dec_ptr + base + dec_offsets, m_dec_ptr + base + dec_offsets, v_dec_ptr + base + dec_offsets,
                       dec_mask, d_dec, lr, wd, one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2_sqrt,
                       DECOUPLED)
    vec = k64 * n_features + features
    _update_stored(b_ptr + vec, m_b_ptr + vec, v_b_ptr + vec, f_mask, db, lr, wd, one_minus_beta1, beta2,
                   one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)


# ---------------------------------------------------------------------------
# launcher
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class StepBuffers:
    """The step strategy's device state besides the parameters."""

    moments: Moments
    loss_part: torch.Tensor  # [I, NB]
    a: torch.Tensor  # [I, m, B]: hidden pre-activation
    gh: torch.Tensor  # [I, m, B]: its gradient
    d_enc_part: torch.Tensor  # [I, S, n, m]
    d_dec_part: torch.Tensor  # [I, S, m, n] (abs), else 1 element
    db_part: torch.Tensor  # [I, S, n]
    loss: torch.Tensor  # [I]: the last step's loss
    step_index: torch.Tensor  # int64 [1]: the step being trained
    n_blocks: int  # NB: batch blocks of step_hidden_kernel, 4 * block_q rows each
    n_splits: int  # S: row splits of step_grads_kernel, 4 * split_quads rows each


def n_batch_blocks(batch_size: int, plan: Plan) -> int:
    return triton.cdiv(triton.cdiv(batch_size, 4), plan.block_q)


def n_row_splits(batch_size: int, plan: Plan) -> int:
    return triton.cdiv(triton.cdiv(batch_size, 4), plan.split_quads)


def step_elements(n_features: int, n_hidden: int, batch_size: int, plan: Plan, abs_model: bool) -> int:
    """fp32 elements of an instance's ``StepBuffers`` besides the moments (the chunk planner counts them)."""
    nb, splits = n_batch_blocks(batch_size, plan), n_row_splits(batch_size, plan)
    matrices = 2 if abs_model else 1
    return nb + 2 * n_hidden * batch_size + splits * (matrices * n_features * n_hidden + n_features) + 1


def _hidden_and_grads_args(inputs: KernelInputs, buffers: StepBuffers, plan: Plan) -> dict:
    """The arguments ``step_hidden_kernel`` and ``step_grads_kernel`` share."""
    i = inputs
    return dict(
        enc_ptr=i.enc, dec_ptr=i.dec, b_ptr=i.b, p_ptr=i.p, inv_p_ptr=i.inv_p, imp_ptr=i.importance,
        ids_ptr=i.instance_ids, step_ptr=buffers.step_index, a_ptr=buffers.a, gh_ptr=buffers.gh,
        seed_lo=i.seed_lo, seed_hi=i.seed_hi, n_features=i.n_features, n_hidden=i.n_hidden, batch_size=i.batch_size,
        threshold=i.threshold, grad_scale=i.grad_scale,
        MODEL=i.model, ACT=i.activation, SIGNED=i.signed, BLOCK_N=plan.block_n, M_PAD=plan.m_pad,
        BLOCK_Q=plan.block_q, USE_DOT=plan.use_dot, PRECISION=plan.precision,
    )


def step_hidden_args(inputs: KernelInputs, buffers: StepBuffers, plan: Plan) -> tuple[dict, dict]:
    """``step_hidden_kernel``'s arguments by name, and its launch options (the launcher's and the compile check's)."""
    args = dict(_hidden_and_grads_args(inputs, buffers, plan), loss_part_ptr=buffers.loss_part)
    return args, plan.launch_options()


def step_grads_args(inputs: KernelInputs, buffers: StepBuffers, plan: Plan) -> tuple[dict, dict]:
    """``step_grads_kernel``'s arguments by name, and its launch options (the launcher's and the compile check's)."""
    args = dict(_hidden_and_grads_args(inputs, buffers, plan), d_enc_part_ptr=buffers.d_enc_part,
                d_dec_part_ptr=buffers.d_dec_part, db_part_ptr=buffers.db_part, split_quads=plan.split_quads,
                BLOCK_N=plan.grads_block_n, BLOCK_Q=plan.grads_block_q)
    return args, plan.launch_options()


def reduce_update_args(inputs: KernelInputs, buffers: StepBuffers, plan: Plan) -> tuple[dict, dict]:
    """``reduce_update_kernel``'s arguments by name, and its launch options (the launcher's and the compile check's)."""
    i, mo = inputs, buffers.moments
    args = dict(
        enc_ptr=i.enc, dec_ptr=i.dec, b_ptr=i.b, m_enc_ptr=mo.m_enc, v_enc_ptr=mo.v_enc, m_dec_ptr=mo.m_dec,
        v_dec_ptr=mo.v_dec, m_b_ptr=mo.m_b, v_b_ptr=mo.v_b, loss_part_ptr=buffers.loss_part,
        d_enc_part_ptr=buffers.d_enc_part, d_dec_part_ptr=buffers.d_dec_part, db_part_ptr=buffers.db_part,
        loss_ptr=buffers.loss, lr_ptr=i.lr, wd_ptr=i.weight_decay, step_ptr=buffers.step_index, scale_ptr=i.scale,
        bc1_ptr=i.bias_correction1, bc2_sqrt_ptr=i.bias_correction2_sqrt, n_blocks=buffers.n_blocks,
        n_splits=buffers.n_splits, n_features=i.n_features, n_hidden=i.n_hidden, one_minus_beta1=i.one_minus_beta1,
        beta2=i.beta2, one_minus_beta2=i.one_minus_beta2, eps=i.eps, loss_scale=i.grad_scale * 0.5,
        MODEL=i.model, DECOUPLED=i.decoupled, BLOCK_N=plan.reduce_block_n, M_PAD=plan.m_pad,
        BLOCKS_PER_SPLIT=plan.split_quads // plan.block_q,
    )
    return args, dict(num_warps=4)  # a [reduce_block_n, m_pad] tile of at most REDUCE_TILE_LIMIT elements


# Steps per CUDA graph at most (four kernel nodes each): a graph's instantiation time and
# memory grow with its nodes, so a longer window replays this one repeatedly (a bound
# chosen, not measured).
GRAPH_STEPS = 256


class FusedStepTrainer:
    """Step-wise trainer on the two kernels (the ``StepTrainer`` and ``ReplaysWindows`` protocols of
    ``fastsup.backends.base``).

    On CUDA a window of steps runs from a CUDA graph of its launches: host
    time per step is then one replay's share instead of four operations (about
    20–40 µs of Python and driver work per step, for a few µs of GPU work at
    small shapes; an estimate, not measured).  A window length is recorded the
    second time it comes (the regular ``log_every`` windows): a length seen
    once, and the first window, which compiles the kernels, are launched.
    The step index, lr table and bias corrections live on the device, so every
    replay trains the next steps with the same arguments, bit for bit as launched.
    """

    def __init__(self, inputs: KernelInputs, plan: Plan):
        self.inputs, self.plan = inputs, plan
        I, n, m = inputs.n_instances, inputs.n_features, inputs.n_hidden
        B, nb, splits = inputs.batch_size, n_batch_blocks(inputs.batch_size, plan), n_row_splits(inputs.batch_size, plan)
        zeros = lambda *shape: torch.zeros(shape, dtype=torch.float32, device=inputs.enc.device)  # noqa: E731
        self.buffers = StepBuffers(
            moments=Moments.zeros(inputs), loss_part=zeros(I, nb), a=zeros(I, m, B), gh=zeros(I, m, B),
            d_enc_part=zeros(I, splits, n, m), d_dec_part=zeros(I, splits, m, n) if inputs.abs_model else zeros(1),
            db_part=zeros(I, splits, n), loss=zeros(I),
            step_index=torch.zeros(1, dtype=torch.int64, device=inputs.enc.device), n_blocks=nb, n_splits=splits,
        )
        self.params = inputs.params()
        self.hidden = step_hidden_args(inputs, self.buffers, plan)
        self.grads = step_grads_args(inputs, self.buffers, plan)
        self.update = reduce_update_args(inputs, self.buffers, plan)
        self.window_lengths_seen: set[int] = set()
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}  # steps -> their recorded launches

    def launch(self) -> None:
        """The step's four device operations, with fixed arguments: what a CUDA graph would capture."""
        i, b, plan = self.inputs, self.buffers, self.plan
        with on_device(i.enc):
            args, options = self.hidden
            step_hidden_kernel[(i.n_instances, b.n_blocks)](**args, **options)
            args, options = self.grads
            step_grads_kernel[(i.n_instances, triton.cdiv(i.n_features, plan.grads_block_n), b.n_splits)](**args, **options)
            args, options = self.update
            reduce_update_kernel[(i.n_instances, triton.cdiv(i.n_features, plan.reduce_block_n))](**args, **options)
            b.step_index += 1

    def step(self, step: int, lr_scale: float) -> torch.Tensor:
        """One step (its index and lr live on the device: step counter and tables); a fresh ``[I]`` loss."""
        self.launch()
        # a copy: the buffer is rewritten next step, and a hook may keep what it was given
        return self.buffers.loss.clone()

    def replay_window(self, count: int) -> torch.Tensor | None:
        """The next ``count`` steps, from CUDA graphs where recorded; the last one's loss.  None off CUDA."""
        if self.inputs.enc.device.type != "cuda":
            return None
        whole, rest = divmod(count, GRAPH_STEPS)
        with on_device(self.inputs.enc):
            for piece in [GRAPH_STEPS] * whole + [rest] * (rest > 0):
                graph = self.graphs.get(piece)
                if graph is None and piece in self.window_lengths_seen:
                    graph = self.graphs[piece] = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):  # recorded, not run
                        for _ in range(piece):
                            self.launch()
                if graph is None:  # first of its length: launched (and the kernels compiled on the first)
                    self.window_lengths_seen.add(piece)
                    for _ in range(piece):
                        self.launch()
                else:
                    graph.replay()
        return self.buffers.loss.clone()
