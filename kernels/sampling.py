"""Philox uniforms in Triton, bit-identical to ``fastsup.philox.uniform``.

``philox_uniform_tile`` is the sampler the training kernels build on: for one
instance, step and stream it returns the uniforms of a block of row-quads by a
block of columns, using the counter layout documented in ``fastsup.philox``::

    c0 = row // 4,  c1 = column | stream << 24,  c2 = step,  c3 = instance id
    key = (seed mod 2**32, seed >> 32);  lane row % 4 of the four outputs

``uniform_kernel`` / ``uniform`` wrap it into a standalone sampler with the
signature of ``fastsup.philox.uniform``; the tests compare the two bit for bit.

Why the sample path only multiplies (DESIGN.md section 4).  The batch must be
bit-identical on every backend, and a compiled GPU kernel has two ways of
silently changing the last bit of an fp32 result that the interpreter cannot
show: ``/`` may lower to an approximate divide (``div.full.f32``), and
fp-fusion may contract ``a * b + c`` into one FMA that rounds once where torch
rounds twice.  So a word becomes a float the way ``tl.uint_to_uniform_float``
does it -- an int-to-float conversion and one multiply by a constant, with
nothing added afterwards -- and anything that scales a uniform (``u / p`` for
magnitudes) multiplies by a reciprocal computed once on the host instead of
dividing.  With no add following a multiply there is nothing to contract, so
the result does not depend on the fp-fusion setting.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastsup import philox

# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------


@triton.jit
def philox_words(seed_lo, seed_hi, instance, step, quad, column, STREAM: tl.constexpr):
    """The four Philox output words of row-quad ``quad``, column ``column``: one uint32 tile per lane.

    The counters broadcast together (tensors or scalars); word ``lane`` is the
    random word of row ``4 * quad + lane`` (arguments as in ``philox_uniform_tile``).
    """
    c0 = tl.to_tensor(quad).to(tl.uint32)
    c1 = tl.to_tensor(column).to(tl.uint32) | (STREAM << 24)
    c2 = tl.to_tensor(step).to(tl.uint32)  # a Python int in interpreted loops
    c3 = tl.to_tensor(instance).to(tl.uint32)
    zero = tl.zeros_like(c0 + c1 + c2 + c3)  # the counters' common shape
    return tl.philox_impl(zero + c0, zero + c1, zero + c2, zero + c3, seed_lo.to(tl.uint32), seed_hi.to(tl.uint32))


@triton.jit
def philox_lane_words(seed_lo, seed_hi, instance, step, quads, columns, STREAM: tl.constexpr):
    """The four Philox output words of ``quads`` by ``columns``, one uint32 ``[BLOCK_C, BLOCK_Q]`` tile per lane.

    Word ``lane`` at ``[c, q]`` is the random word of row ``4 * quads[q] + lane``,
    column ``columns[c]``.  Kept apart, each lane's rows stay in the thread
    that drew them; interleaving them into row order moves data between threads.
    """
    return philox_words(seed_lo, seed_hi, instance, step, quads[None, :], columns[:, None], STREAM)


@triton.jit
def philox_uniform_tile(seed_lo, seed_hi, instance, step, quads, columns, STREAM: tl.constexpr):
    """Uniforms in [0, 1) for rows ``4 * quads[q] + lane`` by ``columns``.

    seed_lo, seed_hi: scalar ints, the Philox key words (seed mod 2**32, seed >> 32)
    instance:         scalar int in [0, 2**32), the instance id (counter word c3)
    step:             scalar int in [0, 2**32) (counter word c2)
    quads:            int [BLOCK_Q], row-quad indices row // 4 (counter word c0)
    columns:          int [BLOCK_C], column indices < 2**24 (low bits of c1)
    STREAM:           constexpr in [0, 256) (high byte of c1)

    Returns fp32 ``[BLOCK_C, 4 * BLOCK_Q]``: element ``[c, 4 * q + lane]`` is
    the uniform of row ``4 * quads[q] + lane``, column ``columns[c]``.  One
    Philox call per (quad, column) feeds four rows; masking is the caller's.
    """
    r0, r1, r2, r3 = philox_lane_words(seed_lo, seed_hi, instance, step, quads, columns, STREAM)
    # interleave(interleave(r0, r2), interleave(r1, r3)) along the last axis
    # gives r0[q], r1[q], r2[q], r3[q], r0[q + 1], ...: lane = row % 4.
    words = tl.interleave(tl.interleave(r0, r2), tl.interleave(r1, r3))
    return tl.uint_to_uniform_float(words)


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "step"])
def uniform_kernel(
    out_ptr,  # fp32 [I, n_columns, n_rows], contiguous
    instance_ids_ptr,  # int64 [I], each in [0, 2**32)
    seed_lo,  # scalar int: seed mod 2**32
    seed_hi,  # scalar int: seed >> 32
    step,  # scalar int in [0, 2**32)
    n_rows,  # scalar int: rows per (instance, column)
    n_columns,  # scalar int < 2**24
    STREAM: tl.constexpr,  # stream number in [0, 256)
    BLOCK_Q: tl.constexpr,  # row-quads per program (4 * BLOCK_Q rows), power of two
    BLOCK_C: tl.constexpr,  # columns per loop iteration, power of two
):
    """Grid ``(I, cdiv(cdiv(n_rows, 4), BLOCK_Q))``: one instance by one block of rows, all columns."""
    pid_instance = tl.program_id(0)
    pid_rows = tl.program_id(1)
    instance = tl.load(instance_ids_ptr + pid_instance)
    quads = pid_rows * BLOCK_Q + tl.arange(0, BLOCK_Q)  # [BLOCK_Q]
    rows = pid_rows * (4 * BLOCK_Q) + tl.arange(0, 4 * BLOCK_Q)  # [4 * BLOCK_Q]
    row_mask = rows < n_rows
    out_instance = out_ptr + pid_instance.to(tl.int64) * n_columns * n_rows
    for column_start in range(0, n_columns, BLOCK_C):
        columns = column_start + tl.arange(0, BLOCK_C)  # [BLOCK_C]
        u = philox_uniform_tile(seed_lo, seed_hi, instance, step, quads, columns, STREAM)
        offsets = columns.to(tl.int64)[:, None] * n_rows + rows[None, :]  # [BLOCK_C, 4 * BLOCK_Q]
        mask = (columns < n_columns)[:, None] & row_mask[None, :]
        tl.store(out_instance + offsets, u, mask=mask)


# ---------------------------------------------------------------------------
# launcher
# ---------------------------------------------------------------------------

MAX_BLOCK_Q = 64  # 256 rows per program
MAX_BLOCK_C = 8


def uniform(
    seed: int,
    instance_ids: torch.Tensor,
    step,
    n_rows: int,
    n_columns: int,
    stream: philox.Stream,
) -> torch.Tensor:
    """``fastsup.philox.uniform`` computed by ``uniform_kernel``: fp32 ``[I, n_columns, n_rows]``.

    ``step`` is an int or a 0-d integer tensor (read on the host).
    """
    seed_lo, seed_hi = philox.split_seed(seed)
    step = int(step)
    stream = int(stream)
    if not 0 <= step < philox.MAX_WORD:
        raise ValueError(f"step must lie in [0, 2**32), got {step}")
    if not 0 <= stream < philox.MAX_STREAM:
        raise ValueError(f"stream must lie in [0, 256), got {stream}")
    if not 0 <= n_columns <= philox.MAX_COLUMN:
        raise ValueError(f"n_columns must lie in [0, 2**24], got {n_columns}")
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    ids = instance_ids.to(torch.int64).contiguous().view(-1)
    out = torch.empty((ids.shape[0], n_columns, n_rows), dtype=torch.float32, device=ids.device)
    if out.numel() == 0:
        return out
    n_quads = triton.cdiv(n_rows, 4)
    block_q = min(MAX_BLOCK_Q, triton.next_power_of_2(n_quads))
    block_c = min(MAX_BLOCK_C, triton.next_power_of_2(n_columns))
    grid = (ids.shape[0], triton.cdiv(n_quads, block_q))
    uniform_kernel[grid](
        out, ids, seed_lo, seed_hi, step, n_rows, n_columns, STREAM=stream, BLOCK_Q=block_q, BLOCK_C=block_c
    )
    return out
