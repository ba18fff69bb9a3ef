"""The per-block math both training strategies share, as ``@triton.jit`` helpers.

A program holds one instance's parameters as register tiles and a block of
batch rows, feature-major like the torch backend::

    x      [N_PAD, R]      R rows: 4 * BLOCK_Q (step), or one lane's BLOCK_Q (persistent)
    enc    [N_PAD, M_PAD]  W, or W1 for the abs model
    dec    [M_PAD, N_PAD]  Wᵀ (tied), or W2
    b, imp [N_PAD]

Padding is zero everywhere (masked loads with ``other=0``, p = 0 for padded
features, rows past the batch masked out of the loss), so padded entries get
zero gradients and stay zero through the optimizer.

Contractions run either as ``tl.dot`` (``USE_DOT``: every dimension padded
to >= 16, the minimum K of NVIDIA's MMA) or as register broadcast-and-sum
over a ``[*, *, R]`` product for tiny dims (5→2, 2→1), where a 16-wide dot
would be mostly padding.  The formulas are ``fastsup.functional``'s.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastsup.kernels.sampling import philox_uniform_tile

# model variants (constexpr MODEL) and output activations (constexpr ACT)
LINEAR: tl.constexpr = tl.constexpr(0)
RELU_OUTPUT: tl.constexpr = tl.constexpr(1)
RELU_HIDDEN: tl.constexpr = tl.constexpr(2)
ABS: tl.constexpr = tl.constexpr(3)
ACT_RELU: tl.constexpr = tl.constexpr(0)
ACT_EXRELU: tl.constexpr = tl.constexpr(1)
MODEL_CODES = {"linear": 0, "relu_output": 1, "relu_hidden": 2, "abs": 3}
ACTIVATION_CODES = {"relu": 0, "exrelu": 1}

# fp32's largest value below 1 (fastsup.data.BELOW_ONE): present magnitudes stay in [0, 1).
BELOW_ONE: tl.constexpr = tl.constexpr(1.0 - 2.0**-24)


@triton.jit
def sample_block(seed_lo, seed_hi, instance, step, quads, features, p, inv_p, SIGNED: tl.constexpr):
    """The batch block ``x`` ``[N_PAD, 4 * BLOCK_Q]`` exactly as ``fastsup.data.sample_batch``.

    quads: int [BLOCK_Q] row-quad indices; features: int [N_PAD];
    p, inv_p: fp32 [N_PAD] (0 for padded features, so they never fire).
    Rows past the batch are the caller's to mask.
    """
    u = philox_uniform_tile(seed_lo, seed_hi, instance, step, quads, features, 0)  # Stream.DATA
    return features_from_uniforms(u, p[:, None], inv_p[:, None], SIGNED)


@triton.jit
def features_from_uniforms(u, p, inv_p, SIGNED: tl.constexpr):
    """x from the data stream's uniforms u: present where u < p, magnitude u / p (or 2 u / p - 1).

    p and inv_p broadcast against u: ``[N_PAD, 1]`` for a ``[N_PAD, R]`` block.
    """
    magnitude = tl.minimum(u * inv_p, BELOW_ONE)
    if SIGNED:
        # exact as written or contracted into an FMA: doubling is exact
        magnitude = magnitude * 2.0 - 1.0
    return tl.where(u < p, magnitude, 0.0)


@triton.jit
def contract(mat, v, USE_DOT: tl.constexpr, PRECISION: tl.constexpr):
    """``out[c, r] = Σ_k mat[k, c] · v[k, r]``: mat ``[K, C]``, v ``[K, R]`` → ``[C, R]``."""
    if USE_DOT:
        return tl.dot(tl.trans(mat), v, input_precision=PRECISION)
    else:
        return tl.sum(mat[:, :, None] * v[:, None, :], axis=0)


@triton.jit
def outer(u, v, USE_DOT: tl.constexpr, PRECISION: tl.constexpr):
    """``out[a, c] = Σ_r u[a, r] · v[c, r]``: reduces the rows of the block."""
    if USE_DOT:
        return tl.dot(u, tl.trans(v), input_precision=PRECISION)
    else:
        return tl.sum(u[:, None, :] * v[None, :, :], axis=2)


@triton.jit
def hidden_activation(a, MODEL: tl.constexpr):
    """h from the hidden pre-activation a: ReLU for relu_hidden and abs, identity otherwise."""
    if MODEL == RELU_HIDDEN or MODEL == ABS:
        return tl.maximum(a, 0.0)
    else:
        return a


@triton.jit
def hidden_grad(gh, a, MODEL: tl.constexpr):
    """Back through the hidden activation: gh ⊙ 1[a > 0] where there is a ReLU."""
    if MODEL == RELU_HIDDEN or MODEL == ABS:
        return tl.where(a > 0.0, gh, 0.0)
    else:
        return gh


@triton.jit
def output_terms(z, x, imp, valid, grad_scale, threshold, MODEL: tl.constexpr, ACT: tl.constexpr):
    """Elementwise, on operands that broadcast together: each element's I_f (y − t)², and g = dL/dz.

    z: output pre-activations; x: the same elements' inputs; imp: their
    features' importance; valid: false for rows outside the batch, which
    contribute nothing.
    """
    if MODEL == LINEAR:
        y = z
    elif ACT == ACT_RELU:
        y = tl.maximum(z, 0.0)
    else:
        y = tl.where(z >= threshold, z, 0.0)
    if MODEL == ABS:
        target = tl.abs(x)
    else:
        target = x
    err = tl.where(valid, y - target, 0.0)
    weighted = imp * err
    g = grad_scale * weighted
    if MODEL != LINEAR:
        if ACT == ACT_RELU:
            g = tl.where(z > 0.0, g, 0.0)
        else:
            g = tl.where(z >= threshold, g, 0.0)
    return weighted * err, g


@triton.jit
def output_loss_grad(z, x, row_valid, imp, grad_scale, threshold, MODEL: tl.constexpr, ACT: tl.constexpr):
    """From the output pre-activation z ``[BN, R]`` of some features: each row's Σ_f I_f (y − t)² ``[R]``, and g = dL/dz.

    x: the same features' inputs ``[BN, R]``; imp ``[BN]``; rows outside the
    batch (``row_valid`` false) contribute nothing.
    """
    terms, g = output_terms(z, x, imp[:, None], row_valid[None, :], grad_scale, threshold, MODEL, ACT)
    return tl.sum(terms, axis=0), g


@triton.jit
def backprop_rows(
    x,  # fp32 [N_PAD, R], zero in padded features and rows
    row_valid,  # bool [R]: row < batch size
    enc,  # fp32 [N_PAD, M_PAD]
    dec,  # fp32 [M_PAD, N_PAD]
    b,  # fp32 [N_PAD]
    imp,  # fp32 [N_PAD], zero in padded features
    grad_scale,  # fp32 scalar: 2 / (batch_size * n_features)
    threshold,  # fp32 scalar: ExReLU threshold
    MODEL: tl.constexpr,
    ACT: tl.constexpr,
    USE_DOT: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Forward, loss and backward of a block of rows, all features at once, nothing summed over rows.

    Returns ``(row_loss [R], h [M_PAD, R], g = dL/dz [N_PAD, R], gh = dL/da [M_PAD, R])``:
    the rows' gradients are ``x ghᵀ`` (enc) and ``h gᵀ`` (dec; for tied models
    dW is their sum, transposed), left to the caller to sum.
    """
    a = contract(enc, x, USE_DOT, PRECISION)  # [M_PAD, R]
    h = hidden_activation(a, MODEL)
    z = contract(dec, h, USE_DOT, PRECISION) + b[:, None]  # [N_PAD, R]
    row_loss, g = output_loss_grad(z, x, row_valid, imp, grad_scale, threshold, MODEL, ACT)
    gh = hidden_grad(contract(tl.trans(dec), g, USE_DOT, PRECISION), a, MODEL)  # [M_PAD, R]
    return row_loss, h, g, gh


@triton.jit
def adam_tile(param, grad, exp_avg, exp_avg_sq, lr, weight_decay, one_minus_beta1, beta2, one_minus_beta2, eps,
              bias_correction1, bias_correction2_sqrt, DECOUPLED: tl.constexpr):
    """torch.optim's AdamW (``DECOUPLED``) / Adam arithmetic on one tile; returns the new tiles.

    ``one_minus_beta1``/``one_minus_beta2`` come from the host (``KernelInputs``):
    torch.optim forms 1 - beta in double and rounds it once to fp32.
    Divisions and the square root are IEEE-rounded (``div_rn``/``sqrt_rn``):
    a plain ``/`` may compile to an approximate divide.
    """
    if DECOUPLED:
        param = param * (1.0 - lr * weight_decay)
    else:
        grad = grad + weight_decay * param
    exp_avg = exp_avg + one_minus_beta1 * (grad - exp_avg)
    exp_avg_sq = exp_avg_sq * beta2 + one_minus_beta2 * grad * grad
    denom = tl.div_rn(tl.sqrt_rn(exp_avg_sq), bias_correction2_sqrt) + eps
    param = param - tl.div_rn(exp_avg, denom) * tl.div_rn(lr, bias_correction1)
    return param, exp_avg, exp_avg_sq


@triton.jit
def step_schedule(lr, step, scale_ptr, bc1_ptr, bc2_sqrt_ptr):
    """Step ``step``'s learning rate (``lr`` times the schedule's multiplier) and Adam's two bias corrections.

    ``scale_ptr``, ``bc1_ptr``, ``bc2_sqrt_ptr``: fp32 [n_steps] tables from the host (``KernelInputs``).
    """
    return lr * tl.load(scale_ptr + step), tl.load(bc1_ptr + step), tl.load(bc2_sqrt_ptr + step)


@triton.jit
def store_logged_loss(history_ptr, summed_loss, instance, step, n_steps, log_every, n_logged_regular, history_row0,
                      n_instances, grad_scale):
    """Stores a persistent launch's step loss if ``step`` is logged: every ``log_every``-th, and the last.

    ``history_ptr``: fp32 [rows, I], row = logged index - ``history_row0``;
    ``summed_loss``: the step's importance-weighted squared error summed over
    rows and features, so its mean is ``summed_loss * grad_scale / 2``
    (``grad_scale`` = 2 / (B n)); ``n_logged_regular`` = cdiv(n_steps, log_every),
    the last step's logged index when it is not a multiple of ``log_every``.
    """
    # int64: rows x I passes 2**31 in large runs (10**6 instances logged 2 148 times)
    if step % log_every == 0:
        row = (step // log_every - history_row0).to(tl.int64)
        tl.store(history_ptr + row * n_instances + instance, summed_loss * (grad_scale * 0.5))
    elif step == n_steps - 1:
        row = (n_logged_regular - history_row0).to(tl.int64)
        tl.store(history_ptr + row * n_instances + instance, summed_loss * (grad_scale * 0.5))


# ---------------------------------------------------------------------------
# a kernel that only samples: the batch the training kernels see, for checking
# ---------------------------------------------------------------------------


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "step"])
def batch_kernel(
    out_ptr,  # fp32 [I, n, B], feature-major like fastsup.data.sample_batch
    p_ptr,  # fp32 [I, n]
    inv_p_ptr,  # fp32 [I, n]
    ids_ptr,  # int64 [I]
    seed_lo, seed_hi, step,  # scalars
    n_features, batch_size,  # scalars
    SIGNED: tl.constexpr,
    N_PAD: tl.constexpr,
    BLOCK_Q: tl.constexpr,
):
    k = tl.program_id(0)
    block = tl.program_id(1)
    features = tl.arange(0, N_PAD)
    f_mask = features < n_features
    quads = block * BLOCK_Q + tl.arange(0, BLOCK_Q)
    rows = block * (4 * BLOCK_Q) + tl.arange(0, 4 * BLOCK_Q)
    vec = k.to(tl.int64) * n_features + features
    p = tl.load(p_ptr + vec, mask=f_mask, other=0.0)
    inv_p = tl.load(inv_p_ptr + vec, mask=f_mask, other=0.0)
    x = sample_block(seed_lo, seed_hi, tl.load(ids_ptr + k), step, quads, features, p, inv_p, SIGNED)
    offsets = k.to(tl.int64) * n_features * batch_size + features[:, None] * batch_size + rows[None, :]
    tl.store(out_ptr + offsets, x, mask=f_mask[:, None] & (rows < batch_size)[None, :])


def sample_batch(spec, step: int, batch_size: int) -> torch.Tensor:
    """``fastsup.data.sample_batch`` computed in a kernel (independent features; uniform or signed)."""
    if spec.presence_column is not None or spec.magnitude == "clipped_normal":
        raise ValueError("the kernels sample independent features with uniform or signed magnitudes only")
    I, n = spec.p.shape
    out = torch.empty(I, n, batch_size, dtype=torch.float32, device=spec.p.device)
    block_q = min(64, triton.next_power_of_2(triton.cdiv(batch_size, 4)))
    grid = (I, triton.cdiv(triton.cdiv(batch_size, 4), block_q))
    batch_kernel[grid](
        out, spec.p, spec.inv_p, spec.instance_ids, spec.seed & 0xFFFFFFFF, spec.seed >> 32, int(step), n, batch_size,
        SIGNED=spec.magnitude == "signed", N_PAD=triton.next_power_of_2(n), BLOCK_Q=block_q,
    )
    return out
