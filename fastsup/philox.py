"""The randomness contract: counter-based Philox4x32-10 in plain torch integer ops.

Every random number fastsup uses is a pure function of
``(seed, instance id, step, row, column, stream)``.  This module is the one
place that maps those indices to a Philox counter; the Triton kernels
(``fastsup.kernels.sampling``) use the same mapping, and the tests check
that both produce the same bits.

Counter layout (128 bits, no index is ever folded or wrapped)::

    c0 = row // 4                    # four consecutive rows share one Philox call
    c1 = column | (stream << 24)     # column < 2**24, stream < 2**8
    c2 = step                        # < 2**32
    c3 = instance id                 # < 2**32
    key = (seed mod 2**32, seed >> 32)   # seed < 2**64

and lane ``row % 4`` of the call's four outputs is the value for ``row``.
Grouping rows (not columns) by four means an odd number of features wastes
no draws: a 5-feature batch of 1024 rows costs exactly 5 * 256 Philox calls.

A 32-bit output becomes a float in [0, 1) exactly as Triton's
``uint_to_uniform_float``: reinterpret as int32, map negatives ``x -> ~x``,
convert to fp32 and multiply by ``4.6566127342e-10`` (the largest scale with
``(2**31 - 1) * scale < 1`` after fp32 rounding).

Torch has no unsigned 32-bit arithmetic worth using, so the words live in
int64 tensors holding values in [0, 2**32); a 32x32-bit product fits in 64
bits modulo the sign, and ``>> 32`` then ``& MASK`` recovers its high word.
"""

from __future__ import annotations

import enum
import operator

import torch

MASK32 = 0xFFFFFFFF
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
N_ROUNDS = 10
UNIFORM_SCALE = 4.6566127342e-10

MAX_COLUMN = 1 << 24
MAX_STREAM = 1 << 8
MAX_WORD = 1 << 32
MAX_SEED = 1 << 64


class Stream(enum.IntEnum):
    """Independent random streams.  Values are part of the contract: never renumber."""

    DATA = 0  # one uniform per element: presence (u < p) and magnitude (u / p)
    MAGNITUDE = 1  # independent magnitude (correlated/anticorrelated sets)
    MAGNITUDE_NORMAL = 2  # second uniform of the Box-Muller pair for clipped-normal magnitudes
    INIT_W = 3  # Box-Muller pair for W (or W1 in the abs model): streams 3 and 4
    INIT_W_PAIR = 4
    INIT_W2 = 5  # Box-Muller pair for W2 of the abs model: streams 5 and 6
    INIT_W2_PAIR = 6


# The evaluation batch (``final_loss``) is drawn like a training batch at this
# step index, which training never reaches (steps < DATASET_STEP), so every
# data stream of the evaluation batch is disjoint from training (it is drawn
# eagerly, never by the compiled step).
EVAL_STEP = (1 << 32) - 1
# A fixed dataset (``TrainConfig.dataset_size``) is the batch of this step
# index: the same T points at every step, disjoint from the evaluation batch.
# It is below 2**32 - 3 because the compiled torch step is fed it: inductor's
# CPU code for the int64 emulation differs from eager once the first round's
# product step * PHILOX_ROUND_B overflows int64, i.e. for steps >= ~2.6e9
# (tested at 2**32 - 3; exact at 2**31; torch 2.13).
DATASET_STEP = 1 << 31
# Exported hidden activations (``fastsup.activations``) are rows 0, 1, ... of
# this step index: above every training step and the fixed dataset, below the
# evaluation batch, so SAE data never repeats a batch the model trained or was
# scored on.  One step holds 4 * 2**32 rows (c0 = row // 4 is one word).
# Drawn eagerly only, like the evaluation batch.
ACTIVATIONS_STEP = (1 << 32) - 2
MAX_ROWS = 4 * MAX_WORD


def philox4x32(c0, c1, c2, c3, k0, k1, n_rounds: int = N_ROUNDS):
    """Philox4x32 rounds on int64 tensors of 32-bit words; returns four words.  The key words ``k0``, ``k1`` are
    Python ints or 0-d int64 tensors.

    Round structure and constants are Random123's, in the operand order of
    ``triton.language.random.philox_impl``.  The counter words may be any
    broadcastable shapes: unexpanded, the first rounds run on small tensors
    (step, instance, column and row words only mix from round 3 on), which
    halved the eager cost per call at 200 features (see ``uniform``).  The
    low words of the products are carried unmasked: they only ever enter an
    XOR whose result is masked, so ``& MASK32`` runs once per word at the end.
    """
    for _ in range(n_rounds):
        prod_b = c2 * PHILOX_ROUND_B
        prod_a = c0 * PHILOX_ROUND_A
        c0, c1, c2, c3 = (
            ((prod_b >> 32) ^ k0 ^ c1) & MASK32,
            prod_b,
            ((prod_a >> 32) ^ k1 ^ c3) & MASK32,
            prod_a,
        )
        k0 = (k0 + PHILOX_KEY_A) & MASK32
        k1 = (k1 + PHILOX_KEY_B) & MASK32
    return c0, c1 & MASK32, c2, c3 & MASK32


def uint32_to_uniform(x: torch.Tensor) -> torch.Tensor:
    """Triton's ``uint_to_uniform_float`` for 32-bit words held in int64: fp32 in [0, 1).

    The fold ``x -> ~x`` for negative int32 is ``x ^ (x >> 31)``: eager, a
    ``torch.where`` cost 5.7x as much (1.54 against 0.27 ms for 200 x 1024
    words, 1 thread, 2-core AMD EPYC VM).  The multiply by the fp32 scale
    converts the folded int32 to fp32 on the way, as a separate cast would.
    """
    signed = x.to(torch.int32)  # the low 32 bits, reinterpreted as Triton does
    return (signed ^ (signed >> 31)) * torch.tensor(UNIFORM_SCALE, dtype=torch.float32)


def check_seed(seed) -> int:
    """The seed as a Python int in [0, 2**64) (numpy integers accepted)."""
    try:
        as_int = operator.index(seed)
    except TypeError:
        as_int = None
    if isinstance(seed, bool) or as_int is None or not 0 <= as_int < MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return as_int


def seed_tensor(seed: int) -> torch.Tensor:
    """The seed as a 0-d int64 tensor holding its 64 bits (seeds from 2**63 on read as negative numbers):
    an input of the compiled step, so that one compiled step serves every seed."""
    seed = check_seed(seed)
    return torch.tensor(seed - MAX_SEED if seed >= 1 << 63 else seed, dtype=torch.int64)


def split_seed(seed) -> tuple:
    """The Philox key words ``(low 32 bits, high 32 bits)`` of a seed: Python ints, or 0-d int64 tensors for a
    seed given as ``seed_tensor`` (the masks recover the words of a negative one)."""
    if isinstance(seed, torch.Tensor):
        return seed & MASK32, (seed >> 32) & MASK32
    seed = check_seed(seed)
    return seed & MASK32, seed >> 32


def uniform(
    seed: int | torch.Tensor,
    instance_ids: torch.Tensor,
    step,
    n_rows: int,
    n_columns: int,
    stream: Stream,
    first_row: int = 0,
) -> torch.Tensor:
    """Uniform fp32 in [0, 1) for every (instance, row, column): shape ``[I, n_columns, n_rows]``.

    ``instance_ids`` is an int64 tensor ``[I]``; ``step`` is a python int or a
    0-d int64 tensor (a tensor keeps one compiled graph for every step), and
    so is ``seed`` (as ``seed_tensor`` makes it).
    ``first_row`` (a multiple of 4) gives rows ``first_row …`` of the same
    draw, so a long batch can be drawn in pieces.
    """
    if first_row % 4:
        raise ValueError(f"first_row must be a multiple of 4 (one Philox call covers 4 rows), got {first_row}")
    k0, k1 = split_seed(seed)
    device = instance_ids.device
    n_quads = -(-n_rows // 4)
    # Laid out [I, columns, quads] so the long row axis is innermost: inductor
    # vectorises the innermost axis, and vectorising over 5 features instead of
    # 256 row-quads made the 5-feature sampler 1.7x slower (208 vs 123 us per
    # 10x1024x5 batch, 2 threads, compiled).
    quad = torch.arange(first_row // 4, first_row // 4 + n_quads, dtype=torch.int64, device=device).view(1, 1, n_quads)
    column = torch.arange(n_columns, dtype=torch.int64, device=device).view(1, n_columns, 1)
    column = column | (int(stream) << 24)
    step = torch.as_tensor(step, dtype=torch.int64, device=device).view(1, 1, 1)
    inst = instance_ids.to(torch.int64).view(-1, 1, 1)
    shape = (inst.shape[0], n_columns, n_quads)
    # Unexpanded counters (see philox4x32): 175 -> 85 ns per call eager at 2 x 200 x 256 calls
    # (1 thread, 2-core AMD EPYC VM, 2026-12-01, with the unmasked low words).
    lanes = philox4x32(quad, column, step, inst, k0, k1)
    # Each lane becomes floats before the lanes interleave into rows: the stack then moves fp32, not int64.
    # Folding once after an int32 stack instead made the compiled intro step slower (0.55-0.6 against
    # 0.42 ms, 2 threads, quiet 2-core AMD EPYC VM).
    floats = torch.stack([uint32_to_uniform(lane.expand(shape)) for lane in lanes], dim=3)
    return floats.reshape(shape[0], n_columns, n_quads * 4)[:, :, :n_rows]


def normal(
    seed: int | torch.Tensor,
    instance_ids: torch.Tensor,
    step,
    n_rows: int,
    n_columns: int,
    stream: Stream,
    first_row: int = 0,
) -> torch.Tensor:
    """Standard normal fp32 via Box-Muller from streams ``stream`` and ``stream + 1``.

    Uses the cosine branch only, so each value costs two uniforms; normals are
    drawn for init and clipped-normal magnitudes, never on a hot path that
    counts draws.
    """
    u1 = uniform(seed, instance_ids, step, n_rows, n_columns, stream, first_row)
    u2 = uniform(seed, instance_ids, step, n_rows, n_columns, Stream(int(stream) + 1), first_row)
    radius = torch.sqrt(-2.0 * torch.log(torch.clamp(u1, min=1e-7)))
    return radius * torch.cos((2.0 * torch.pi) * u2)
