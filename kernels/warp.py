"""Persistent whole-run kernel for tiny models: one warp per program, every feature unrolled.

Grid ``(cdiv(I, PACK),)``, one warp per program, training ``PACK`` instances
on ``BLOCK_Q = 32 / PACK`` threads each: every tile is ``[PACK, BLOCK_Q]``,
an instance per row.  Each step an instance's threads loop over the batch in
chunks of ``BLOCK_Q`` row-quads, one quad per thread.  A thread draws its
quad's Philox words feature by feature and then trains the quad's four rows
one lane at a time, adding their loss and gradients to its own sums.  At the
end of the step the sums cross the instance's threads (shuffles within the
warp: no shared memory) and the update runs, as in ``kernels/persistent.py``,
whose contract this kernel keeps: the same arguments, schedule tables, loss
history, checkpoints and windows of steps.

Why pack.  One instance per warp leaves threads idle when the batch has
fewer than 32 quads (batch 32: 8 of 32 threads would work), so the
dispatcher packs ``PACK = 32 / next_pow2(cdiv(B, 4))`` instances into the
warp (``fastsup.kernels.dispatch.warp_pack``): every thread then holds a
quad.  Packing depends on the batch size alone, never on the instance count,
so an instance trains the same whether it shares its warp or not, in any
chunk.  Packing at larger batches would buy nothing: every thread already
holds a quad, and 2→1 (the smallest model) takes 60–64 registers on sm_90,
32 warps per SM, which is also the 32-blocks-per-SM limit of one-warp
programs (compile check, 2026-12-02).  The last program's slots past
instance I - 1 train instance I - 1 again: they compute the same bits from
the same inputs and store them to the same places, which needs no masks.

Why a second persistent kernel.  The tile kernel holds the features as a
power-of-two tensor axis, so 5→2 computes 8 features (Philox, forward and
backward) for 5 real ones, and its sums cross four warps through shared
memory every step.  Here ``N`` and ``M`` are the exact sizes, as
compile-time constants: every feature, hidden unit and parameter is its own
``[PACK, BLOCK_Q]`` tile, kept in tuples and unrolled by
``tl.static_range``, so nothing is padded.  The price is code that grows as
``N * M``: the dispatcher uses it only for tiny models
(``fastsup.kernels.dispatch.WARP_REGISTER_WORDS``), where the compile check
proves it does not spill.

Why one warp per program, not an instance per warp.  With four instances
(one per warp) the per-instance values were ``[4]`` tiles; triton gave their
loads a layout of their own, and every one of the step's reduced sums then
moved through shared memory with two barriers (5→2 on sm_90: 32 BAR per
step), at 125 registers against 93 for one warp, so an SM held four
four-warp blocks where it holds 21 one-warp ones.  Here every per-instance
value is loaded through a full ``[PACK, BLOCK_Q]`` tile of pointers (the
instance's threads all read the same address), so it has the rows' layout,
and a sum reduced with ``keep_dims`` stays in it: nothing crosses warps.
"""

from __future__ import annotations

import triton
import triton.language as tl

from fastsup.kernels.block import (ABS, adam_tile, features_from_uniforms, hidden_activation, hidden_grad, output_terms,
                                   step_schedule, store_logged_loss)
from fastsup.kernels.dispatch import Plan
from fastsup.kernels.sampling import philox_words
from fastsup.kernels.utils import Checkpoints, KernelInputs, Moments

# ---------------------------------------------------------------------------
# kernel
# ---------------------------------------------------------------------------


@triton.jit
def _slots(first, n_instances, PACK: tl.constexpr):
    """``[PACK, 1]``: each tile row's instance less the program's ``first``; rows past instance I - 1 repeat it."""
    if PACK == 1:
        # I programs: the slot is always an instance, and a constant 0 keeps the instance's
        # pointers scalar (a [1, 32] tile of them spilled 4 B for 3→6 abs on sm_80)
        return tl.zeros([1, 1], dtype=tl.int32)
    else:
        # int32: below PACK, and an int64 offset per thread took more registers (5→2 abs on sm_90: 168 with
        # int64 spilled 8 B; int32 fits in 168)
        return (tl.minimum(first + tl.arange(0, PACK), n_instances - 1) - first).to(tl.int32)[:, None]


@triton.jit
def _load_each(ptr, offsets, COUNT: tl.constexpr):
    """``COUNT`` consecutive fp32 values of each instance: ``ptr`` at the program's first instance, ``offsets``
    ``[PACK, BLOCK_Q]`` its instances' (the same along a row).  A tuple of ``[PACK, BLOCK_Q]`` tiles."""
    values = ()
    for e in tl.static_range(COUNT):
        values = values + (tl.load(ptr + offsets + e),)
    return values


@triton.jit
def _zeros_each(shape, COUNT: tl.constexpr):
    values = ()
    for _ in tl.static_range(COUNT):
        values = values + (tl.zeros(shape, dtype=tl.float32),)
    return values


@triton.jit
def _sum_quads(values, COUNT: tl.constexpr):
    """Each ``[PACK, BLOCK_Q]`` sum reduced over its instance's threads: a tuple of ``[PACK, 1]`` tiles."""
    sums = ()
    for e in tl.static_range(COUNT):
        sums = sums + (tl.sum(values[e], axis=1, keep_dims=True),)
    return sums


@triton.jit
def _update_each(ptr, m_ptr, v_ptr, offsets, params, grads, lr, wd, one_minus_beta1, beta2, one_minus_beta2, eps,
                 bc1, bc2_sqrt, COUNT: tl.constexpr, DECOUPLED: tl.constexpr):
    """Adam on ``COUNT`` consecutive parameters; stores them and their moments, returns them."""
    updated = ()
    for e in tl.static_range(COUNT):
        param, exp_avg, exp_avg_sq = adam_tile(params[e], grads[e], tl.load(m_ptr + offsets + e),
                                               tl.load(v_ptr + offsets + e), lr, wd,
                                               one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2_sqrt, DECOUPLED)
        tl.store(ptr + offsets + e, param)
        tl.store(m_ptr + offsets + e, exp_avg)
        tl.store(v_ptr + offsets + e, exp_avg_sq)
        updated = updated + (param,)
    return updated


@triton.jit
def _store_each(ptr, offsets, values, COUNT: tl.constexpr):
    for e in tl.static_range(COUNT):
        tl.store(ptr + offsets + e, values[e])


@triton.jit
def accumulate_row(
    words,  # tuple of N uint32 [PACK, BLOCK_Q]: each feature's Philox word of this lane's rows
    row_valid,  # bool [1, BLOCK_Q]: the row is inside the batch
    p, inv_p, imp, b,  # tuples of N fp32 [PACK, BLOCK_Q], the same along a row
    enc,  # tuple of N * M fp32 [PACK, BLOCK_Q]: W (or W1), element f * M + j
    dec,  # tuple of M * N fp32 [PACK, BLOCK_Q]: W2, element j * N + f (abs only)
    grad_scale, threshold,  # fp32 scalars
    loss,  # fp32 [PACK, BLOCK_Q]: each thread's loss so far
    d_enc,  # tuple of N * M fp32 [PACK, BLOCK_Q]: dW (tied) or dW1 so far
    d_dec,  # tuple of M * N fp32 [PACK, BLOCK_Q]: dW2 so far (abs only)
    db,  # tuple of N fp32 [PACK, BLOCK_Q]
    N: tl.constexpr, M: tl.constexpr, MODEL: tl.constexpr, ACT: tl.constexpr, SIGNED: tl.constexpr,
):
    """Forward, loss and backward of one row per thread, added to the thread's sums (``block.backprop_rows``'s
    formulas, one feature and one hidden unit at a time)."""
    x = ()
    for f in tl.static_range(N):
        u = tl.uint_to_uniform_float(words[f])
        x = x + (tl.where(row_valid, features_from_uniforms(u, p[f], inv_p[f], SIGNED), 0.0),)
    a = ()
    h = ()
    for j in tl.static_range(M):
        pre = x[0] * enc[j]
        for f in tl.static_range(1, N):
            pre += x[f] * enc[f * M + j]
        a = a + (pre,)
        h = h + (hidden_activation(pre, MODEL),)
    g = ()
    for f in tl.static_range(N):
        if MODEL == ABS:
            z = h[0] * dec[f]
            for j in tl.static_range(1, M):
                z += h[j] * dec[j * N + f]
        else:
            z = h[0] * enc[f * M]
            for j in tl.static_range(1, M):
                z += h[j] * enc[f * M + j]
        terms, g_f = output_terms(z + b[f], x[f], imp[f], row_valid, grad_scale, threshold, MODEL, ACT)
        loss += terms
        g = g + (g_f,)
    gh = ()
    for j in tl.static_range(M):
        if MODEL == ABS:
            back = g[0] * dec[j * N]
            for f in tl.static_range(1, N):
                back += g[f] * dec[j * N + f]
        else:
            back = g[0] * enc[j]
            for f in tl.static_range(1, N):
                back += g[f] * enc[f * M + j]
        gh = gh + (hidden_grad(back, a[j], MODEL),)
    summed_enc = ()
    for f in tl.static_range(N):
        for j in tl.static_range(M):
            if MODEL == ABS:
                summed_enc = summed_enc + (d_enc[f * M + j] + x[f] * gh[j],)
            else:  # tied: the decoder's share of dW too, transposed onto W's [n, m]
                summed_enc = summed_enc + (d_enc[f * M + j] + x[f] * gh[j] + g[f] * h[j],)
    summed_dec = d_dec
    if MODEL == ABS:
        summed_dec = ()
        for j in tl.static_range(M):
            for f in tl.static_range(N):
                summed_dec = summed_dec + (d_dec[j * N + f] + h[j] * g[f],)
    summed_b = ()
    for f in tl.static_range(N):
        summed_b = summed_b + (db[f] + g[f],)
    return loss, summed_enc, summed_dec, summed_b


# Every run-dependent integer is kept out of specialization, as in persistent_run_kernel.
@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "n_instances", "batch_size", "step_start", "step_stop",
                               "n_steps", "log_every", "history_row0"])
def warp_run_kernel(
    enc_ptr,  # fp32 [I, N, M]: W (or W1); read at step_start, overwritten at step_stop
    dec_ptr,  # fp32 [I, M, N]: W2 for the abs model (unused otherwise)
    b_ptr,  # fp32 [I, N]: read, overwritten
    m_enc_ptr, v_enc_ptr,  # fp32 [I, N, M]: Adam moments of W / W1, read and overwritten
    m_dec_ptr, v_dec_ptr,  # fp32 [I, M, N]: Adam moments of W2 (abs only)
    m_b_ptr, v_b_ptr,  # fp32 [I, N]
    p_ptr,  # fp32 [I, N]: feature probability
    inv_p_ptr,  # fp32 [I, N]: host reciprocal of p (0 where p = 0)
    imp_ptr,  # fp32 [I, N]: importance
    lr_ptr,  # fp32 [I]: base lr
    wd_ptr,  # fp32 [I]: weight decay
    ids_ptr,  # int64 [I]: instance ids (Philox counter word c3)
    scale_ptr,  # fp32 [n_steps]: lr multiplier per step
    bc1_ptr,  # fp32 [n_steps]: 1 - beta1^(step+1)
    bc2_sqrt_ptr,  # fp32 [n_steps]: sqrt(1 - beta2^(step+1))
    history_ptr,  # fp32 [rows, I]: loss of the logged steps, row = logged index - history_row0
    checkpoint_row_ptr,  # int64 [n_steps]: the checkpoint row of each step, -1 for none (Checkpoints)
    checkpoint_enc_ptr,  # fp32 [C, I, N, M]: W (or W1) after the update of each checkpoint step
    checkpoint_dec_ptr,  # fp32 [C, I, M, N]: W2 likewise (abs only)
    checkpoint_b_ptr,  # fp32 [C, I, N]
    seed_lo,  # scalar: seed mod 2**32
    seed_hi,  # scalar: seed >> 32
    n_instances,  # scalar: I
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
    N: tl.constexpr,  # features, exact
    M: tl.constexpr,  # hidden units, exact
    PACK: tl.constexpr,  # instances per program (a power of two)
    BLOCK_Q: tl.constexpr,  # 32 // PACK: row-quads per chunk, one per thread of the instance
):
    # the program's instances, one per tile row: first + slot
    first = tl.program_id(0).to(tl.int64) * PACK  # int64: I x N x M passes 2**31 at a few 10**8 instances
    slot_row = _slots(first, n_instances, PACK)  # [PACK, 1]
    slot = slot_row + tl.zeros([PACK, BLOCK_Q], dtype=slot_row.dtype)  # [PACK, BLOCK_Q]
    mat_first, mat_slot = first * (N * M), slot * (N * M)
    vec_first, vec_slot = first * N, slot * N
    p = _load_each(p_ptr + vec_first, vec_slot, N)
    inv_p = _load_each(inv_p_ptr + vec_first, vec_slot, N)
    imp = _load_each(imp_ptr + vec_first, vec_slot, N)
    lr = tl.load(lr_ptr + first + slot)
    wd = tl.load(wd_ptr + first + slot)
    instance = tl.load(ids_ptr + first + slot)
    quad_in_chunk = tl.arange(0, BLOCK_Q)[None, :]  # [1, BLOCK_Q]
    n_quads = tl.cdiv(batch_size, 4)
    n_logged_regular = tl.cdiv(n_steps, log_every)

    for step in range(step_start, step_stop):
        # parameters live in their (L1-resident) buffers between steps, read once per step
        enc = _load_each(enc_ptr + mat_first, mat_slot, N * M)
        if MODEL == ABS:
            dec = _load_each(dec_ptr + mat_first, mat_slot, M * N)
        else:
            dec = ()
        b = _load_each(b_ptr + vec_first, vec_slot, N)

        loss = tl.zeros([PACK, BLOCK_Q], dtype=tl.float32)
        d_enc = _zeros_each([PACK, BLOCK_Q], N * M)
        if MODEL == ABS:
            d_dec = _zeros_each([PACK, BLOCK_Q], M * N)
        else:
            d_dec = ()
        db = _zeros_each([PACK, BLOCK_Q], N)
        for q0 in range(0, n_quads, BLOCK_Q):
            quads = q0 + quad_in_chunk  # [1, BLOCK_Q]
            lane_words = ()  # per feature: the four lanes' words
            for f in tl.static_range(N):
                lane_words = lane_words + (philox_words(seed_lo, seed_hi, instance, step, quads, f, 0),)  # Stream.DATA
            # one lane's rows in flight at a time: unrolled, the four lanes took 160
            # registers for 5→2 (sm_90) and 34 s to compile
            for lane in tl.range(0, 4, loop_unroll_factor=1):
                words = ()
                for f in tl.static_range(N):
                    w0, w1, w2, w3 = lane_words[f]
                    words = words + (tl.where(lane == 0, w0, tl.where(lane == 1, w1, tl.where(lane == 2, w2, w3))),)
                row_valid = 4 * quads + lane < batch_size
                loss, d_enc, d_dec, db = accumulate_row(words, row_valid, p, inv_p, imp, b, enc, dec,
                                                        grad_scale, threshold, loss, d_enc, d_dec, db, N, M, MODEL,
                                                        ACT, SIGNED)
        # the step's one reduction, across each instance's threads
        loss = tl.sum(loss, axis=1, keep_dims=True)
        d_enc = _sum_quads(d_enc, N * M)
        if MODEL == ABS:
            d_dec = _sum_quads(d_dec, M * N)
        db = _sum_quads(db, N)

        store_logged_loss(history_ptr, loss, first + slot_row, step, n_steps, log_every, n_logged_regular,
                          history_row0, n_instances, grad_scale)
        lr_t, bc1, bc2_sqrt = step_schedule(lr, step, scale_ptr, bc1_ptr, bc2_sqrt_ptr)
        enc = _update_each(enc_ptr + mat_first, m_enc_ptr + mat_first, v_enc_ptr + mat_first, mat_slot, enc, d_enc,
                           lr_t, wd, one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2_sqrt, N * M, DECOUPLED)
        if MODEL == ABS:
            dec = _update_each(dec_ptr + mat_first, m_dec_ptr + mat_first, v_dec_ptr + mat_first, mat_slot, dec,
                               d_dec, lr_t, wd, one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2_sqrt, M * N,
                               DECOUPLED)
        b = _update_each(b_ptr + vec_first, m_b_ptr + vec_first, v_b_ptr + vec_first, vec_slot, b, db, lr_t, wd,
                         one_minus_beta1, beta2, one_minus_beta2, eps, bc1, bc2_sqrt, N, DECOUPLED)

        checkpoint = tl.load(checkpoint_row_ptr + step)
        if checkpoint >= 0:  # int64: C x I x N x M passes 2**31 for long log-spaced runs
            row_first = checkpoint * n_instances + first
            _store_each(checkpoint_enc_ptr + row_first * (N * M), mat_slot, enc, N * M)
            if MODEL == ABS:
                _store_each(checkpoint_dec_ptr + row_first * (M * N), mat_slot, dec, M * N)
            _store_each(checkpoint_b_ptr + row_first * N, vec_slot, b, N)
        # the next step reads what other threads of the warp just wrote (one warp: a cheap barrier)
        tl.debug_barrier()


# ---------------------------------------------------------------------------
# launcher's arguments
# ---------------------------------------------------------------------------


def warp_run_args(inputs: KernelInputs, moments: Moments, history, checkpoints: Checkpoints, plan: Plan,
                  step_start: int, step_stop: int, log_every: int, history_row0: int) -> tuple[dict, dict]:
    """``warp_run_kernel``'s arguments by name, and its launch options (the launcher's and the compile check's)."""
    i = inputs
    args = dict(
        enc_ptr=i.enc, dec_ptr=i.dec, b_ptr=i.b, m_enc_ptr=moments.m_enc, v_enc_ptr=moments.v_enc,
        m_dec_ptr=moments.m_dec, v_dec_ptr=moments.v_dec, m_b_ptr=moments.m_b, v_b_ptr=moments.v_b,
        p_ptr=i.p, inv_p_ptr=i.inv_p, imp_ptr=i.importance, lr_ptr=i.lr, wd_ptr=i.weight_decay,
        ids_ptr=i.instance_ids, scale_ptr=i.scale, bc1_ptr=i.bias_correction1, bc2_sqrt_ptr=i.bias_correction2_sqrt,
        history_ptr=history, checkpoint_row_ptr=checkpoints.row, checkpoint_enc_ptr=checkpoints.enc,
        checkpoint_dec_ptr=checkpoints.dec, checkpoint_b_ptr=checkpoints.b, seed_lo=i.seed_lo, seed_hi=i.seed_hi,
        n_instances=i.n_instances, batch_size=i.batch_size, step_start=step_start, step_stop=step_stop,
        n_steps=i.steps, log_every=log_every, history_row0=history_row0,
        one_minus_beta1=i.one_minus_beta1, beta2=i.beta2, one_minus_beta2=i.one_minus_beta2, eps=i.eps,
        threshold=i.threshold, grad_scale=i.grad_scale,
        MODEL=i.model, ACT=i.activation, SIGNED=i.signed, DECOUPLED=i.decoupled, N=i.n_features, M=i.n_hidden,
        PACK=plan.pack, BLOCK_Q=plan.block_q,
    )
    return args, plan.launch_options()
