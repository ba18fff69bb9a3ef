"""Which kernel strategy and tile configuration trains a given shape, and why.

The reasons are static (registers, MMA minimums, launches per step); the
FLOP and byte counts behind them come from ``fastsup.kernels.cost_model``
and the register/spill figures from ``python -m fastsup.kernels.check``.
No choice here was timed on a GPU.
"""

from __future__ import annotations

import dataclasses

import triton

MIN_DOT = 16  # NVIDIA MMA needs every dot dimension >= 16

# Largest register broadcast product [features, hidden, rows] per program, in
# fp32 elements.  The compile check (sm_80/sm_90, 4 warps) measured: 8192
# spills in both kernels (255 registers, 0.5–3.5 KB of spill traffic); 8x4x256
# already reached 254–255 registers; so half of that leaves the other live
# tiles room.
REGISTER_PRODUCT_LIMIT = 4096
# Persistent mode also keeps W, its moments and gradients live for the whole
# run, so its product budget is smaller and its tile is capped: at 16x8 with
# 4096-element products it spilled 0.5 KB.  The full compile table (sm_90,
# 2026-12-01/02) found 2048 too much in two cases, both fixed by halving the
# rows, so each counts its product twice: abs from 8 to 32 features, whose two
# matrices keep two gradient sums (8x4, 16x8, 32x8 and 32x1 spilled 4-40 B at
# 128-255 registers), and tied models at m_pad = 2 from 32 features (12 B at
# 168 registers).  Not further: halved, abs at 4x8 and 128x2 spilled 4-8 B
# where the full budget compiled clean (ptxas then aims at more blocks per SM).
# Halving the rows beat 8 warps in SASS instructions per sampled element at
# all six (6→3 abs 117 against 134; 100→2 92 against 97).
PERSISTENT_PRODUCT_LIMIT = 2048
# PERSISTENT_ABS_WIDE: abs at 128x2 (65→2 to 128→2) spilled again at its 16
# rows, 8-12 B at 168 registers in 3 of its 8 variants on sm_90 (full table,
# 2026-12-03).  Not register pressure: ptxas, given the same PTX, compiles it
# clean at 168 at its default register-allocation level; triton 3.9 passes
# --regAllocOptLevel=2 (its workaround for a ptxas 13 bug), and then ptxas
# spills values needed once per step (in the 8 B variant: the address of the
# last step's loss-history slot, hoisted out of the step loop).
# Twice the rows on 8 warps compile clean on both archs (228 registers on
# sm_90, 200 on sm_80; one block of 8 warps per SM, where 4 warps had 2-3
# blocks on sm_90 and 2 on sm_80) at 5% more warp instructions per step.
# 2 warps at 8 rows, also clean, leave each warp 3.8x the instructions of 8
# warps (the step's latency, where instances are fewer than SMs); 4 warps at
# 32 rows spilled 4 B on sm_80.
PERSISTENT_ABS_WIDE = (128, 2)
PERSISTENT_TILE_LIMIT = 256
# Rows per block on the register path.  At 256 rows the step kernel for 3→2
# with signed magnitudes (relu_hidden, and relu_output with ExReLU) spilled
# 4–8 B on sm_90 at 72–80 registers: not register pressure but predicates
# (the SASS saves them with P2R and stores that register to the stack).  At
# 128 rows they compile clean (every variant of 3→2 and 2→1, sm_80 and sm_90,
# 2026-12-01, 2-core dev machine).
MAX_STEP_ROWS = 128
# Persistent tiles up to this many W elements give each thread one row-quad
# of every chunk, so n and m stay inside the thread (5→2 on sm_90: 2 353
# SHFL and 490 BAR per thread per step before, 175 and 12 after).  At 8x4
# (6→3) the same layout took 255 registers and spilled 4 B.  (At 8x1 three
# models spilled 4-20 B; every 8x1 shape now takes the warp kernel.)
QUAD_PER_THREAD_TILE_LIMIT = 16
QUAD_PER_THREAD_THREADS = 128  # 4 warps
# The warp kernel (kernels/warp.py) unrolls every feature and weight, so its
# registers grow with what a thread holds: about 8 per feature (4 Philox
# words, p, 1/p, importance, b; then the row's x, z, g) and 2 per matrix
# element (the weight and its gradient sum).  Measured on sm_90 (2026-12-02),
# words -> registers: 5→2 60 -> 93, 6→3 84 -> 147, 3→6 abs 96 -> 181, 7→4 112
# -> 202, 6→3 abs 120 -> 219, 9→3 126 -> 203, 4→6 abs 128 -> 212; beyond the
# limit 12→2 144 -> 228, 14→1 140 -> 238, and 20→1 (200) and 20→2 (240)
# spilled 220-400 B at 255.  Against the tile kernel in SASS instructions per
# sampled element: 5→2 50 against 98, 6→3 62 against 158, 3→6 abs 105 against 239.
WARP_REGISTER_WORDS = 128
# With more hidden units than features, ptxas capped the abs model's warp
# kernel at 168 registers by itself and spilled 4-8 B with Adam on sm_80
# (3→6, the full table, 2026-12-02); allowed 200 (.maxnreg) it compiles clean
# at 200, 10 warps per SM where it had 12.
WARP_WIDE_ABS_MAX_REGISTERS = 200
# Packed (warp_pack > 1), ptxas capped 3→6 relu_hidden at 128 registers by
# itself and spilled 8 B on sm_90 (batch 32, 2026-12-03; one instance per
# warp it takes 96).  Allowed 200 it took 186-194; allowed 160, 159 and no
# spill.
WARP_PACKED_MAX_REGISTERS = 160
WARP_PACKED_CAPPED = (("relu_hidden", 3, 6),)
QUADS_PER_WARP = 32  # warp-kernel threads per program: one row-quad each per chunk
# STEP_HALVED_ROWS: three step tiles spilled 4-28 B on sm_90 in the full
# table (2026-12-02), at 96-128 registers where ptxas capped itself: 32x8
# relu_hidden at 16 rows (20→5), 32x2 abs with ExReLU at 32 rows (20→2), and
# the tf32 32x16 relu_hidden with signed magnitudes at 32 rows (100→10).
# With half the rows: 80, 72 and 112 registers, no spills.  The rerun found
# one more, abs 128x8 with ExReLU and signed magnitudes (100→5), 4 B at 128
# registers; at its 4 rows the features are halved instead (64x8).
# The dot path holds x [block_n, rows] and three [m_pad, rows] tiles; with
# tf32 MMA, 64x32 tiles at 128 rows compiled without spills at 8 warps.
DOT_ROWS = 32
DOT_BLOCK_N = 32
# STEP_GRADS_HALVED: step_grads_kernel keeps three [block_n, m_pad] tiles (its
# decoder columns and two gradient sums) beside the product tile that
# step_hidden_kernel sizes to REGISTER_PRODUCT_LIMIT; on the same tile it
# spilled 4-12 B in 3 of the 74 default-subset binaries (64x16 at 4 rows,
# sm_80, at 255 registers; 8x2 at 128 rows, sm_90), and 300-480 B on the
# tf32 path at m_pad = 128 (sm_80); 8 warps instead added 19% instructions
# per element at 100→10 and spilled elsewhere.  It gets half the product:
# half the rows per trip, or half the features where the rows are at their
# least (4, or 16 for a dot).
# STEP_MAX_REGISTERS: ptxas capped itself at 128 registers and spilled 4 B in
# some step binaries (register path, sm_90: abs 64x16 at 4 rows in
# step_hidden, abs 32x8 at 8 rows in step_grads, default subset; tf32 path,
# sm_80: step_grads 32x16 at 16 rows, full table; 2026-12-02).  Allowed 168
# (.maxnreg) the register path's compile clean in the full table, 3 blocks
# of 4 warps per SM where they had 4; the tf32 path's take up to 255 without
# spilling, so they are allowed 255.
STEP_MAX_REGISTERS = 168
STEP_DOT_MAX_REGISTERS = 255
# Rows per program of step_grads_kernel: it sums its features' weight
# gradients over this many rows, so the step keeps cdiv(B, SPLIT_ROWS) copies
# of W as partial sums (4 at B = 1024; a program per batch block kept 256 for
# 400→30, 490 MB per step at 20 instances).  Fewer rows give more programs
# (I x feature blocks x splits) for few instances, more rows less partial
# traffic: a choice, not measured.
SPLIT_ROWS = 256
# reduce_update holds a [block_n, m_pad] tile of W, both moments and the
# gradient sums; 64x64 at 4 warps spilled 0.4–0.8 KB.  The limit counts both
# of abs' matrices: at 2048 each, abs took 236–255 registers and 1024x2
# spilled 24 B on sm_90 (full table, 2026-12-02).
REDUCE_TILE_LIMIT = 2048


@dataclasses.dataclass(frozen=True)
class Plan:
    strategy: str  # "persistent" | "step"
    use_dot: bool
    n_pad: int  # features padded (whole tile in persistent mode)
    m_pad: int  # hidden padded
    block_n: int  # features per tile in step mode (== n_pad in persistent mode)
    block_q: int  # row-quads per block: 4 * block_q batch rows
    num_warps: int
    reduce_block_n: int  # features per program of reduce_update
    precision: str  # tl.dot input precision: "ieee" (default) or "tf32" (opt-in)
    reason: str
    # persistent only: the warp kernel (kernels/warp.py: one warp per instance, exact n and m unrolled;
    # n_pad, m_pad are then n, m) instead of the tile kernel (kernels/persistent.py)
    warp: bool = False
    max_registers: int | None = None  # ptxas' register cap (.maxnreg) where its own choice spilled
    split_quads: int = 0  # step only: row-quads per program of step_grads (a multiple of block_q)
    grads_block_n: int = 0  # step only: features per program of step_grads
    grads_block_q: int = 0  # step only: row-quads per trip of step_grads' row loop

    @property
    def pack(self) -> int:
        """Instances per program: the warp kernel's ``QUADS_PER_WARP // block_q`` (``warp_pack``), else 1."""
        return QUADS_PER_WARP // self.block_q if self.warp else 1

    def launch_options(self) -> dict:
        """The training kernel's launch options: ``kernel[grid](**args, **plan.launch_options())``."""
        options = dict(num_warps=self.num_warps)
        if self.max_registers is not None:
            options["maxnreg"] = self.max_registers
        return options

    @property
    def kernels(self) -> tuple[str, ...]:
        """The kernels that train a step, in launch order: ``warp_run``, ``persistent_run``, or the step's three."""
        if self.strategy == "step":
            return ("step_hidden", "step_grads", "reduce_update")
        return ("warp_run",) if self.warp else ("persistent_run",)


def _pow2_floor(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)


def warp_words(n_features: int, n_hidden: int, model: str) -> int:
    """What a thread of the warp kernel keeps in registers, counted as ``WARP_REGISTER_WORDS`` counts it."""
    matrices = 2 if model == "abs" else 1
    return 8 * n_features + 2 * matrices * n_features * n_hidden


def warp_pack(batch_size: int) -> int:
    """Instances the warp kernel packs into its warp for batches of ``batch_size``: as many as leave each
    thread one row-quad (1 from 128 rows on; 4 at batch 32)."""
    quads = -(-batch_size // 4)
    return QUADS_PER_WARP // min(QUADS_PER_WARP, triton.next_power_of_2(quads))


def plan_for(n_features: int, n_hidden: int, batch_size: int, strategy: str = "auto", precision: str = "ieee", *,
             model: str) -> Plan:
    """The strategy and tiles for an ``n_features``→``n_hidden`` ``model`` trained on batches of ``batch_size``.

    ``strategy`` forces "persistent" or "step"; ``precision`` "tf32" opts in to ``tl.dot``.
    """
    if strategy not in ("auto", "persistent", "step"):
        raise ValueError(f"strategy must be 'auto', 'persistent' or 'step', got {strategy!r}")
    if precision not in ("ieee", "tf32"):
        raise ValueError(f"precision must be 'ieee' or 'tf32', got {precision!r}")
    n, m = n_features, n_hidden
    # fp32 tl.dot with input_precision="ieee" compiles to FMA loops, not MMA, in
    # triton 3.9 (the compile check found no mma instruction and 1–178 KB of
    # spills), so dots are used only with the tf32 opt-in, where they do run on
    # tensor cores, and only when no dimension is tiny (padding 2 to 16 would
    # make 87% of every MMA padding).
    use_dot = precision == "tf32" and min(n, m) >= 8
    n_pad = max(triton.next_power_of_2(n), MIN_DOT if use_dot else 1)
    m_pad = max(triton.next_power_of_2(m), MIN_DOT if use_dot else 1)
    fits_on_chip = not use_dot and n_pad * m_pad <= PERSISTENT_TILE_LIMIT
    if strategy == "auto":
        strategy = "persistent" if fits_on_chip else "step"
        why = (f"W tile {n_pad}x{m_pad} fits in registers: one launch per run, parameters never leave the chip"
               if fits_on_chip else f"W tile {n_pad}x{m_pad} is too big to keep on chip: fused step, features tiled")
    else:
        why = f"strategy {strategy!r} requested"
    if strategy == "persistent" and not fits_on_chip:
        raise ValueError(f"persistent strategy needs the register path and n_pad*m_pad <= {PERSISTENT_TILE_LIMIT}, "
                         f"got {n_pad}x{m_pad}{' with tf32 dots' if use_dot else ''}")
    if strategy == "persistent" and not use_dot and warp_words(n, m, model) <= WARP_REGISTER_WORDS:
        pack = warp_pack(batch_size)
        lanes = QUADS_PER_WARP // pack
        packing = "one warp per instance" if pack == 1 else f"{pack} instances per warp, {lanes} threads each"
        if model == "abs" and m > n:
            max_registers = WARP_WIDE_ABS_MAX_REGISTERS
        elif pack > 1 and (model, n, m) in WARP_PACKED_CAPPED:
            max_registers = WARP_PACKED_MAX_REGISTERS
        else:
            max_registers = None
        return Plan(strategy, False, n, m, n, lanes, 1, 1, precision,
                    f"{why}; {packing}, {n}x{m} unrolled (nothing padded), chunks of {4 * lanes} rows, "
                    f"gradients reduced across the instance's threads once per step", warp=True,
                    max_registers=max_registers)
    quads = triton.next_power_of_2(-(-batch_size // 4))
    quad_per_thread = strategy == "persistent" and n_pad * m_pad <= QUAD_PER_THREAD_TILE_LIMIT
    abs_wide = strategy == "persistent" and model == "abs" and (n_pad, m_pad) == PERSISTENT_ABS_WIDE
    if use_dot:
        block_n, rows = min(n_pad, DOT_BLOCK_N), DOT_ROWS
        if model == "relu_hidden" and (block_n, m_pad) == (32, 16):
            rows //= 2  # STEP_HALVED_ROWS
    elif quad_per_thread:
        # one quad (four rows, one lane at a time) per thread: n and m stay inside the thread
        block_n, rows = n_pad, 4 * min(quads, QUAD_PER_THREAD_THREADS)
    elif strategy == "persistent":
        # a lane's sub-block of block_q rows is the register product's row axis
        block_n = n_pad
        if model == "abs":  # two matrices, two gradient sums
            counted = 2 if 8 <= n_pad <= 32 else 1
        else:
            counted = 2 if m_pad == 2 and n_pad >= 32 else 1
        row_quads = _pow2_floor(PERSISTENT_PRODUCT_LIMIT // (counted * n_pad * max(m_pad, 4)))
        if abs_wide:
            row_quads *= 2  # on 8 warps, below
        rows = 4 * max(1, min(row_quads, quads))
    else:
        # [block_n, rows] tiles (x, z, g, ...) cost registers too: for m = 1 and
        # 2 the compile check saw 8-16 B spills at a full product budget, so
        # the hidden width counts as at least 4 here.
        width = max(m_pad, 4)
        block_n = min(n_pad, _pow2_floor(REGISTER_PRODUCT_LIMIT // (4 * width)))
        rows = max(4, min(_pow2_floor(REGISTER_PRODUCT_LIMIT // (block_n * width)), 4 * quads, MAX_STEP_ROWS))
        if (model, block_n, width) in (("relu_hidden", 32, 8), ("abs", 32, 4)):
            rows //= 2  # STEP_HALVED_ROWS
        elif (model, block_n, width) == ("abs", 128, 8):
            block_n //= 2  # STEP_HALVED_ROWS: at 4 rows already, so half the features
    # Wide hidden layers on the register path (m_pad >= 128) spilled 4 B at
    # 4 warps on sm_80 in some variants: 8 warps halve the per-thread share.
    num_warps = 8 if (use_dot and block_n * m_pad >= 2048) or (not use_dot and m_pad >= 128) else 4
    if abs_wide:
        num_warps = 8
    reduce_block_n = min(n_pad, max(1, _pow2_floor(REDUCE_TILE_LIMIT // (m_pad * (2 if model == "abs" else 1)))))
    path = "tl.dot, tf32" if use_dot else "register broadcast-sums"
    if strategy == "persistent":
        tile = (f"chunks of {rows} rows, {'one quad' if quad_per_thread else 'quads spread'} per thread, "
                "gradients reduced once per step")
    else:
        tile = f"{block_n} features x {rows} rows per tile"
    split_quads, grads_block_n, grads_block_q = 0, block_n, rows // 4
    if strategy == "step":
        split_quads = max(rows // 4, min(SPLIT_ROWS // 4, quads))
        # STEP_GRADS_HALVED: half the rows per trip, or half the features where the rows are at their least
        least_quads, least_features = (MIN_DOT // 4, MIN_DOT) if use_dot else (1, 1)
        if grads_block_q // 2 >= least_quads:
            grads_block_q //= 2
        elif block_n // 2 >= least_features:
            grads_block_n //= 2
        tile += (f"; weight gradients: {grads_block_n} features x {4 * grads_block_q} rows per tile, "
                 f"summed over {4 * split_quads} rows per program")
    return Plan(strategy, use_dot, n_pad, m_pad, block_n, rows // 4, num_warps, reduce_block_n, precision,
                f"{why}; {path}, {tile}", split_quads=split_quads, grads_block_n=grads_block_n,
                grads_block_q=grads_block_q,
                max_registers=(STEP_DOT_MAX_REGISTERS if use_dot else STEP_MAX_REGISTERS) if strategy == "step" else None)
