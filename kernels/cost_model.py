"""Static cost model: FLOPs, global-memory bytes, launches and Philox calls per training step.

For one shape (n features, m hidden, I instances, batch B, model variant)
and each way of training it, this counts what one training step asks of the
device, from the code as written:

``notebook``
    ``benchmarks/notebook_baseline.py`` on CUDA: two ``torch.rand`` per batch
    element, the ``[B, I, n]`` batch materialised by every elementwise op of
    the loss, autograd's backward, ``torch.optim.AdamW`` (foreach, the CUDA
    default).  relu_output with ReLU only: that is all the notebook trains.
``torch``
    ``fastsup.backends.torch_backend`` eager (``compile=False``): Philox in
    int64 tensor ops, analytic gradients, the update of ``functional.adam_update``.
``torch_compiled``
    the same graph under ``torch.compile``.  Inductor decides what is
    materialised; the list used here is the one read from inductor's CPU
    output code (torch 2.13) for 5→2 and 20→5, each buffer counted as
    written once and read once.  The GPU (Triton) code generator may fuse
    differently: the roughest estimate of the five.
``triton_step``
    ``kernels/step.py``: the hidden kernel (grid ``(I, NB)``, features
    visited twice, x drawn from Philox each time; a and gh ``[I, m, B]`` and
    the losses written), the grads kernel (grid ``(I, feature blocks, S)``,
    x drawn once more, a and gh read; partial gradients ``[I, S, n, m]``
    (x2 for abs) + ``[I, S, n]`` written), the reduce/update kernel (reads
    partials, params and moments, writes them back) and the launcher's
    ``step_index += 1``.
``triton_persistent``
    ``kernels/warp.py`` (tiny models; the plan's n_pad, m_pad are then the
    exact sizes and its block_q the warp's 32 quads) or
    ``kernels/persistent.py``: one launch per run; the batch never leaves
    the chip, so a step touches global memory only to read and write the
    parameters and moments once (L1-resident), for the schedule tables and,
    every ``log_every`` steps, the loss history.  Per-instance constants are
    loaded once per *run* (``Cost.run_ops``).

Counting rules (the same for every strategy, and for the traced
cross-check in ``tests/test_cost_model.py``):

* **bytes** are global-memory traffic requested per op: every input tensor
  read once (a broadcast input counts its storage, not its expanded size),
  every output written once; views cost nothing.  Re-reads of the same data
  by several programs of one Triton kernel (the NB batch blocks of an
  instance, the three feature passes) are assumed to hit L1/L2 and are not
  counted, so the Triton figures are DRAM-traffic estimates; padded lanes
  are masked out of loads and stores and cost no bytes.
* **FLOPs**: contractions 2 per multiply-add (``contraction=True`` ops);
  elementwise arithmetic (add, sub, mul, div, sqrt, max/ReLU, abs,
  comparisons, each reduction input) 1 per element, ``lerp``/``addcmul``/
  ``addcdiv`` 3; selections (``where``), copies, casts and integer ops 0.
  Triton strategies count the *executed* work, padded lanes included (a
  register-path 5→2 tile computes on 8 features and every row of the last
  batch block).
* **Philox calls**: Philox4x32-10 evaluations (4 words each).  torch.rand on
  CUDA uses ``curand_uniform4`` (4 floats per call); on the CPU it is
  mt19937, not Philox.  fastsup draws one uniform per element; its Triton
  kernels evaluate Philox on padded lanes too, and the step kernel three
  times per element (x is re-drawn, never stored).
* **launches** are device operations per step (kernels, and host→device
  scalar copies); ``None`` where unknown (the compiled torch backend).

Everything here is an estimate of *work*, not a time.  The only time figure,
``roofline_seconds``, is a lower bound from the peak numbers stated below
(H100 SXM); it ignores launch latency, occupancy and caches.  Nothing in this
file was measured on a GPU.

Run ``python -m fastsup.kernels.cost_model --n 5 --m 2 --instances 10000
--batch 1024`` for the table and the dispatcher's choice.  Importing this
module needs neither triton nor a GPU; the two Triton strategies need the
dispatcher's tiles (``fastsup.kernels.dispatch``, which imports triton),
loaded lazily, or an explicit ``plan=``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Iterable

STRATEGIES = ("notebook", "torch", "torch_compiled", "triton_step", "triton_persistent")
MODELS = ("linear", "relu_output", "relu_hidden", "abs")

FP32, INT32, INT64, BOOL = 4, 4, 8, 1

# --- roofline constants: peak figures, not measurements ----------------------
# NVIDIA H100 SXM5 (80 GB) datasheet figures.  fp32 without tensor cores is the
# relevant compute peak: tl.dot with input_precision="ieee" (fastsup's default)
# and all elementwise work run on the FP32 pipes.
H100_SXM_FP32_FLOPS = 67e12  # FLOP/s, non-tensor fp32
H100_SXM_HBM_BYTES_PER_S = 3.35e12  # HBM3 bandwidth
# Integer throughput for Philox: 132 SMs x 64 INT32 lanes/clock x 1.98 GHz boost
# (Hopper SM: 64 INT32 units).  An assumption from the SM layout, not a datasheet line.
H100_SXM_INT32_OPS = 132 * 64 * 1.98e9
# Integer instructions per Philox4x32-10 call: per round 2 wide multiplies
# (mul.lo + mul.hi each), 2 three-way XORs (LOP3), 2 key additions; 10 rounds.
# An estimate of the SASS, not read from compiled code.
PHILOX_INT_OPS_PER_CALL = 10 * 8

# Elementwise ops per element in the Triton kernels, counted from kernels/block.py
# under the FLOP rules above (where/selects are free).
_SAMPLE_OPS = 3  # u * inv_p, min(., BELOW_ONE), u < p
_SIGNED_OPS = 2  # magnitude * 2 - 1
_ADAM_FLOPS = 14  # per parameter element: decay 1, m 3, v 4, sqrt/div/add 3, step 3


class NotApplicable(ValueError):
    """The strategy cannot train this shape (the reason is the message)."""


# ---------------------------------------------------------------------------
# the shape and the result
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Shape:
    """What the counts depend on; ``Shape.of`` accepts a ``TrainConfig`` or anything with its field names."""

    n_features: int
    n_hidden: int
    n_instances: int
    batch_size: int = 1024
    model: str = "relu_output"
    activation: str = "relu"
    steps: int = 10_000
    log_every: int = 100
    optimizer: str = "adamw"

    def __post_init__(self):
        for name in ("n_features", "n_hidden", "n_instances", "batch_size", "steps", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.activation not in ("relu", "exrelu"):
            raise ValueError(f"activation must be 'relu' or 'exrelu', got {self.activation!r}")
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")

    @classmethod
    def of(cls, config_like: Any) -> "Shape":
        if isinstance(config_like, Shape):
            return config_like
        fields = {f.name for f in dataclasses.fields(cls)}
        required = ("n_features", "n_hidden", "n_instances")
        missing = [name for name in required if not hasattr(config_like, name)]
        if missing:
            raise TypeError(f"config_like needs the attributes {required}; {type(config_like).__name__} lacks {missing}")
        return cls(**{name: getattr(config_like, name) for name in fields if hasattr(config_like, name)})

    @property
    def tied(self) -> bool:
        return self.model != "abs"

    @property
    def n_logged(self) -> int:
        """Loss-history rows: every ``log_every``-th step and the last (``backends.base.logged_steps``)."""
        return -(-self.steps // self.log_every) + (1 if (self.steps - 1) % self.log_every else 0)


@dataclasses.dataclass(frozen=True)
class Op:
    """One device operation: its arithmetic and its global-memory traffic (bytes)."""

    name: str
    phase: str  # setup | sample | forward | loss | backward | optimizer | reduce | buffers | log | run
    flops: float = 0.0
    read: float = 0.0
    written: float = 0.0
    launches: int | None = 1
    contraction: bool = False


@dataclasses.dataclass(frozen=True)
class Cost:
    """The counts of one strategy on one shape; ``ops`` is one step, ``run_ops`` what happens once per run."""

    strategy: str
    shape: Shape
    ops: tuple[Op, ...]
    run_ops: tuple[Op, ...]
    philox_calls: float  # per step
    notes: tuple[str, ...] = ()
    plan: Any = None  # the dispatcher's Plan for the Triton strategies

    # --- per step ---------------------------------------------------------
    @property
    def flops(self) -> float:
        return sum(op.flops for op in self.ops)

    @property
    def contraction_flops(self) -> float:
        return sum(op.flops for op in self.ops if op.contraction)

    @property
    def bytes_read(self) -> float:
        return sum(op.read for op in self.ops)

    @property
    def bytes_written(self) -> float:
        return sum(op.written for op in self.ops)

    @property
    def bytes(self) -> float:
        return self.bytes_read + self.bytes_written

    @property
    def launches(self) -> int | None:
        counts = [op.launches for op in self.ops]
        return None if None in counts else sum(counts)

    def phase(self, name: str) -> "Cost":
        """The same cost restricted to the ops of one phase (e.g. ``"forward"``)."""
        return dataclasses.replace(self, ops=tuple(op for op in self.ops if op.phase == name), run_ops=())

    # --- per run ------------------------------------------------------------
    @property
    def flops_per_run(self) -> float:
        return self.shape.steps * self.flops + sum(op.flops for op in self.run_ops)

    @property
    def bytes_per_run(self) -> float:
        return self.shape.steps * self.bytes + sum(op.read + op.written for op in self.run_ops)

    @property
    def launches_per_run(self) -> int | None:
        counts = [self.launches] + [op.launches for op in self.run_ops]
        return None if None in counts else self.shape.steps * self.launches + sum(op.launches for op in self.run_ops)

    @property
    def bytes_per_step_amortised(self) -> float:
        """Bytes per step with the once-per-run traffic spread over the steps."""
        return self.bytes_per_run / self.shape.steps

    @property
    def arithmetic_intensity(self) -> float:
        """FLOPs per byte, per-run traffic amortised over the steps."""
        return self.flops / max(self.bytes_per_step_amortised, 1.0)

    # --- roofline bound -------------------------------------------------------
    def roofline_seconds(self) -> tuple[float, str]:
        """A lower bound on seconds per step from the H100 SXM peaks above, and what binds it.

        Roofline bound from stated peak numbers, not a measurement or a
        prediction: it ignores launch latency (which dominates the many
        small kernels of the notebook and eager torch at small shapes),
        occupancy, caches and the dependency chains of a persistent program.
        """
        times = {
            "FP32": self.flops / H100_SXM_FP32_FLOPS,
            "HBM": self.bytes_per_step_amortised / H100_SXM_HBM_BYTES_PER_S,
            "Philox": self.philox_calls * PHILOX_INT_OPS_PER_CALL / H100_SXM_INT32_OPS,
        }
        bound = max(times, key=times.get)
        return times[bound], bound


def math_flops(config_like: Any) -> float:
    """FLOPs of the model's contractions for one step, unpadded: five per step, 2·I·B·n·m each.

    Forward: a = xW (or xW1) and z = hWᵀ (or hW2); backward: gh = g·dec,
    the decoder gradient hᵀg and the encoder gradient xᵀgh.  The same for
    every variant (tied models sum the two weight gradients).
    """
    s = Shape.of(config_like)
    return 10.0 * s.n_instances * s.batch_size * s.n_features * s.n_hidden


# ---------------------------------------------------------------------------
# per strategy
# ---------------------------------------------------------------------------


class _Ops(list):
    def add(self, name, phase, flops=0.0, read=0.0, written=0.0, launches=1, contraction=False):
        self.append(Op(name, phase, float(flops), float(read), float(written), launches, contraction))


def _sizes(s: Shape):
    I, n, m, B = s.n_instances, s.n_features, s.n_hidden, s.batch_size
    return I, n, m, B, I * n * B, I * m * B, I * n * m, I * n


def _notebook(s: Shape) -> Cost:
    if s.model != "relu_output" or s.activation != "relu" or s.optimizer != "adamw":
        raise NotApplicable("the notebook trainer trains relu_output with ReLU and AdamW only")
    I, n, m, B, E, H, P, V = _sizes(s)
    mm = 2.0 * I * B * n * m
    ops = _Ops()
    # generate_batch: [B, I, n]; p is [I, 1] and importance [1, n] as in the notebook cells
    ops.add("rand (magnitude)", "sample", written=FP32 * E)
    ops.add("rand (presence)", "sample", written=FP32 * E)
    ops.add("le (presence <= p)", "sample", E, FP32 * (E + I), BOOL * E)
    ops.add("zeros(())", "sample", written=FP32)
    ops.add("where", "sample", 0, (BOOL + FP32) * E + FP32, FP32 * E)
    # forward: two einsums (bmm on permuted views; a copy inside bmm, if cuBLAS needs one, is not counted)
    ops.add("einsum x W -> hidden (bmm)", "forward", mm, FP32 * (E + P), FP32 * H, contraction=True)
    ops.add("einsum hidden Wt -> out (bmm)", "forward", mm, FP32 * (H + P), FP32 * E, contraction=True)
    ops.add("add b_final", "forward", E, FP32 * (E + V), FP32 * E)
    ops.add("relu", "forward", E, FP32 * E, FP32 * E)
    # loss: importance * (batch.abs() - out) ** 2, mean over (b, f), sum over i
    ops.add("abs", "loss", E, FP32 * E, FP32 * E)
    ops.add("sub", "loss", E, 2 * FP32 * E, FP32 * E)
    ops.add("pow 2", "loss", E, FP32 * E, FP32 * E)
    ops.add("mul importance", "loss", E, FP32 * (E + n), FP32 * E)
    ops.add("mean", "loss", E, FP32 * E, FP32 * I)
    ops.add("sum", "loss", I, FP32 * I, FP32)
    # autograd
    ops.add("ones_like (seed grad)", "backward", written=FP32)
    ops.add("div (mean backward, expanded)", "backward", E, FP32, FP32 * E)
    ops.add("mul importance (mul backward)", "backward", E, FP32 * (E + n), FP32 * E)
    ops.add("pow 1 (pow backward)", "backward", E, FP32 * E, FP32 * E)
    ops.add("mul 2 (pow backward)", "backward", E, FP32 * E, FP32 * E)
    ops.add("mul grad (pow backward)", "backward", E, 2 * FP32 * E, FP32 * E)
    ops.add("neg (sub backward)", "backward", E, FP32 * E, FP32 * E)
    ops.add("threshold_backward (relu)", "backward", E, 2 * FP32 * E, FP32 * E)
    ops.add("sum over batch (grad b)", "backward", E, FP32 * E, FP32 * V)
    ops.add("bmm hidden^T g (grad W, decoder)", "backward", mm, FP32 * (H + E), FP32 * P, contraction=True)
    ops.add("bmm g W (grad hidden)", "backward", mm, FP32 * (E + P), FP32 * H, contraction=True)
    ops.add("bmm x^T gh (grad W, encoder)", "backward", mm, FP32 * (E + H), FP32 * P, contraction=True)
    ops.add("add grad W parts", "backward", P, 2 * FP32 * P, FP32 * P)
    ops.add("copy_ (AccumulateGrad: contiguous grad W)", "backward", 0, FP32 * P, FP32 * P)
    # torch.optim.AdamW, foreach implementation (CUDA default): one launch per op for W and b together
    N = P + V
    for name, reads, flops in (("mul_ (decay)", 1, 1), ("lerp_ (exp_avg)", 2, 3), ("mul_ (exp_avg_sq)", 1, 1),
                               ("addcmul_ (exp_avg_sq)", 2, 3), ("sqrt", 1, 1), ("div_ (bias correction)", 1, 1),
                               ("add_ (eps)", 1, 1), ("addcdiv_ (param)", 3, 3)):
        ops.add(f"_foreach_{name}", "optimizer", flops * N, reads * FP32 * N, FP32 * N)
    run_ops = _Ops()
    run_ops.add("zeros (AdamW state)", "run", written=2 * FP32 * N, launches=4)
    notes = (
        "notebook: op-by-op from benchmarks/notebook_baseline.py (estimate: torch may add copies inside bmm "
        "for the permuted einsum operands; they are not counted)",
        "notebook: torch.rand on CUDA is Philox (curand_uniform4: 4 floats/call); on the CPU it is mt19937",
    )
    return Cost("notebook", s, tuple(ops), tuple(run_ops), philox_calls=2 * math.ceil(E / 4), notes=notes)


def _torch_sample(ops: _Ops, s: Shape) -> float:
    """``fastsup.data.sample_batch`` eager: ``philox.uniform`` in int64 tensor ops; returns Philox calls."""
    I, n, m, B, E, H, P, V = _sizes(s)
    q = -(-B // 4)
    Q = I * n * q  # Philox calls: one per (instance, feature, row-quad)
    ops.add("arange (quads)", "sample", written=INT64 * q)
    ops.add("arange (columns)", "sample", written=INT64 * n)
    ops.add("bitwise_or (stream)", "sample", 0, INT64 * n, INT64 * n)
    # philox4x32 on unexpanded counters: a word spans the axes it depends on, and an
    # op writes the union of its operands' axes.  Per product: mul, rshift, xor key, xor, and.
    size = {"I": I, "n": n, "q": q}
    extent = lambda axes: math.prod(size[a] for a in axes)  # noqa: E731
    c0, c1, c2, c3 = {"q"}, {"n"}, set(), {"I"}
    for r in range(10):
        new = []
        for factor, other in ((c2, c1), (c0, c3)):
            mixed = factor | other
            ops.add(f"philox round {r}: mul", "sample", 0, INT64 * extent(factor), INT64 * extent(factor))
            ops.add(f"philox round {r}: rshift", "sample", 0, INT64 * extent(factor), INT64 * extent(factor))
            ops.add(f"philox round {r}: xor key", "sample", 0, INT64 * extent(factor), INT64 * extent(factor))
            ops.add(f"philox round {r}: xor", "sample", 0, INT64 * (extent(factor) + extent(other)),
                    INT64 * extent(mixed))
            ops.add(f"philox round {r}: and", "sample", 0, INT64 * extent(mixed), INT64 * extent(mixed))
            new.append((mixed, factor))
        (c0, c1), (c2, c3) = new
    for axes in (c1, c3):  # the low words' deferred mask
        ops.add("philox: and (low word)", "sample", 0, INT64 * extent(axes), INT64 * extent(axes))
    # uint32_to_uniform per lane on [I, n, q], then the lanes interleave into rows
    for lane in range(4):
        ops.add(f"lane {lane}: int64 -> int32", "sample", 0, INT64 * Q, INT32 * Q)
        ops.add(f"lane {lane}: rshift (sign fold)", "sample", 0, INT32 * Q, INT32 * Q)
        ops.add(f"lane {lane}: xor (sign fold)", "sample", 0, 2 * INT32 * Q, INT32 * Q)
        ops.add(f"lane {lane}: mul (uniform scale)", "sample", Q, INT32 * Q + FP32, FP32 * Q)
    ops.add("stack (4 lanes)", "sample", 0, 4 * FP32 * Q, 4 * FP32 * Q)
    ops.add("mul inv_p", "sample", E, FP32 * (E + V), FP32 * E)
    ops.add("clamp (below one)", "sample", E, FP32 * E, FP32 * E)
    ops.add("lt (presence)", "sample", E, FP32 * (E + V), BOOL * E)
    ops.add("mul (presence)", "sample", E, (FP32 + BOOL) * E, FP32 * E)
    if s.model == "abs":  # signed magnitudes: 2 x - presence
        ops.add("mul 2 (signed)", "sample", E, FP32 * E, FP32 * E)
        ops.add("bool -> fp32 (presence)", "sample", 0, BOOL * E, FP32 * E)
        ops.add("sub presence (signed)", "sample", E, 2 * FP32 * E, FP32 * E)
        ops.add("abs (target)", "sample", E, FP32 * E, FP32 * E)
    return Q


def _torch_apply(ops, phase, label, s: Shape, k: int, c: int, out: int):
    """``functional._apply``/``_outer`` eager: broadcast-multiply-sum for n·m <= 64, else bmm.

    The operands have k and c rows per instance (reduced over the other
    axis); ``out`` is the output's element count.
    """
    I, n, m, B, E, H, P, V = _sizes(s)
    product = I * n * m * B
    if n * m <= 64:
        ops.add(f"{label}: broadcast mul [I,n,m,B]", phase, product, FP32 * (k + c), FP32 * product, contraction=True)
        ops.add(f"{label}: sum", phase, product, FP32 * product, FP32 * out, contraction=True)
    else:
        ops.add(f"{label}: bmm", phase, 2 * product, FP32 * (k + c), FP32 * out, contraction=True)


def _torch_adam(ops: _Ops, s: Shape, sizes: Iterable[int]) -> None:
    """``functional.adam_update`` eager (one op per line of its loop, per parameter)."""
    I = s.n_instances
    ops.add("pow beta1^step", "optimizer", 1, 0, INT64)
    ops.add("rsub (bias correction 1)", "optimizer", 1, INT64, INT64)
    ops.add("pow beta2^step", "optimizer", 1, 0, INT64)
    ops.add("rsub (bias correction 2)", "optimizer", 1, INT64, INT64)
    ops.add("sqrt (bias correction 2)", "optimizer", 1, INT64, INT64)
    ops.add("to fp32", "optimizer", 0, INT64, FP32)
    ops.add("div (step size)", "optimizer", I, FP32 * I + INT64, FP32 * I)
    for N in sizes:
        if s.optimizer == "adamw":
            ops.add("mul lr*wd", "optimizer", I, 2 * FP32 * I, FP32 * I)
            ops.add("rsub 1 - lr*wd", "optimizer", I, FP32 * I, FP32 * I)
            ops.add("mul_ (decay)", "optimizer", N, FP32 * (N + I), FP32 * N)
        else:
            ops.add("mul wd*p", "optimizer", N, FP32 * (N + I), FP32 * N)
            ops.add("add (grad + wd*p)", "optimizer", N, 2 * FP32 * N, FP32 * N)
        ops.add("lerp_ (exp_avg)", "optimizer", 3 * N, 2 * FP32 * N, FP32 * N)
        ops.add("mul_ (exp_avg_sq)", "optimizer", N, FP32 * N, FP32 * N)
        ops.add("addcmul_ (exp_avg_sq)", "optimizer", 3 * N, 2 * FP32 * N, FP32 * N)
        ops.add("sqrt", "optimizer", N, FP32 * N, FP32 * N)
        ops.add("div (bias correction 2)", "optimizer", N, FP32 * (N + 1), FP32 * N)
        ops.add("add_ (eps)", "optimizer", N, FP32 * N, FP32 * N)
        ops.add("div (exp_avg / denom)", "optimizer", N, 2 * FP32 * N, FP32 * N)
        ops.add("mul (step size)", "optimizer", N, FP32 * (N + I), FP32 * N)
        ops.add("sub_ (param)", "optimizer", N, 2 * FP32 * N, FP32 * N)


def _param_sizes(s: Shape) -> list[int]:
    I, n, m, B, E, H, P, V = _sizes(s)
    return [P, V] if s.tied else [P, P, V]


def _torch(s: Shape) -> Cost:
    I, n, m, B, E, H, P, V = _sizes(s)
    ops = _Ops()
    # TorchTrainer.step: two scalar tensors to the device, the scheduled lr
    ops.add("step index to device", "setup", written=INT64)
    ops.add("step count to device", "setup", written=INT64)
    ops.add("mul (lr * scale)", "setup", I, FP32 * I, FP32 * I)
    philox_calls = _torch_sample(ops, s)
    # forward
    _torch_apply(ops, "forward", "a = enc x", s, P, E, H)
    if s.model in ("relu_hidden", "abs"):
        ops.add("relu (hidden)", "forward", H, FP32 * H, FP32 * H)
    _torch_apply(ops, "forward", "z = dec h", s, P, H, E)
    ops.add("add b", "forward", E, FP32 * (E + V), FP32 * E)
    if s.model != "linear":
        if s.activation == "relu":
            ops.add("relu (output)", "forward", E, FP32 * E, FP32 * E)
        else:
            ops.add("ge (ExReLU)", "forward", E, FP32 * E, BOOL * E)
            ops.add("scalar_tensor (0.0)", "forward", written=FP32)
            ops.add("where (ExReLU)", "forward", 0, (BOOL + FP32) * E + FP32, FP32 * E)
    # loss and output gradient
    ops.add("sub target", "loss", E, 2 * FP32 * E, FP32 * E)
    ops.add("mul importance", "loss", E, FP32 * (E + V), FP32 * E)
    ops.add("mul err", "loss", E, 2 * FP32 * E, FP32 * E)
    ops.add("mean", "loss", E, FP32 * E, FP32 * I)
    ops.add("mul 2/(Bn) * importance", "backward", V, FP32 * V, FP32 * V)
    ops.add("mul err (g)", "backward", E, FP32 * (E + V), FP32 * E)
    if s.model != "linear":
        ops.add("gt/ge (activation mask)", "backward", E, FP32 * E, BOOL * E)
        ops.add("mul mask (g)", "backward", E, (BOOL + FP32) * E, FP32 * E)
    _torch_apply(ops, "backward", "gh = dec^T g", s, P, E, H)
    if s.model in ("relu_hidden", "abs"):
        ops.add("gt (hidden mask)", "backward", H, FP32 * H, BOOL * H)
        ops.add("mul mask (gh)", "backward", H, (BOOL + FP32) * H, FP32 * H)
    ops.add("sum (grad b)", "backward", E, FP32 * E, FP32 * V)
    _torch_apply(ops, "backward", "outer g h (decoder grad)", s, E, H, P)
    _torch_apply(ops, "backward", "outer x gh (encoder grad)", s, E, H, P)
    if s.tied:
        ops.add("add grad W parts", "backward", P, 2 * FP32 * P, FP32 * P)
    _torch_adam(ops, s, _param_sizes(s))
    return Cost("torch", s, tuple(ops), tuple(_torch_run_ops(s)), philox_calls,
                notes=("torch: eager, op by op from fastsup/backends/torch_backend.py, data.py, philox.py, "
                       "functional.py",))


def _torch_run_ops(s: Shape) -> _Ops:
    I = s.n_instances
    run_ops = _Ops()
    run_ops.add("zeros (moments)", "run", written=2 * FP32 * sum(_param_sizes(s)), launches=2 * len(_param_sizes(s)))
    run_ops.add("clone (logged loss)", "log", 0, FP32 * I * s.n_logged, FP32 * I * s.n_logged, launches=s.n_logged)
    return run_ops


def _torch_compiled(s: Shape) -> Cost:
    I, n, m, B, E, H, P, V = _sizes(s)
    q = -(-B // 4)
    Q = I * n * q
    ops = _Ops()
    # Buffers inductor materialised for 5->2 and 20->5 (CPU output code, torch 2.13), each written once and
    # read once; every other intermediate fused away.  Unknown launch count on a GPU.
    buffers = [("Philox words (4 lanes) [I,n,B/4] int64", 4 * INT64 * Q), ("stacked words [I,n,B] int64", 4 * INT64 * Q)]
    if n * m <= 64:
        buffers += [("a [I,m,B]", FP32 * H), ("x / z [I,n,B]", FP32 * E), ("g [I,n,B]", FP32 * E),
                    ("outer product [I,n,m,B]", FP32 * I * n * m * B)]
    else:
        buffers += [("x [I,n,B]", FP32 * E), ("a [I,m,B]", FP32 * H), ("z [I,n,B]", FP32 * E),
                    ("g [I,n,B]", FP32 * E), ("gh [I,m,B]", FP32 * H), ("grad W parts [I,n,m] x2", 2 * FP32 * P)]
    for name, size in buffers:
        ops.add(f"materialised {name}", "buffers", 0, size, size, launches=None)
    # the same arithmetic as eager, fused
    eager = _torch(s)
    flops = sum(op.flops for op in eager.ops if not op.contraction)
    ops.add("contractions (fused or bmm)", "forward", eager.contraction_flops, FP32 * (P if s.tied else 2 * P), 0,
            launches=None, contraction=True)
    ops.add("elementwise (fused)", "loss", flops, FP32 * 3 * V + FP32 * I, FP32 * I, launches=None)
    N = sum(_param_sizes(s))
    # fused update: read param, grad, exp_avg, exp_avg_sq; write param, exp_avg, exp_avg_sq
    ops.add("fused AdamW/Adam", "optimizer", 0, 4 * FP32 * N, 3 * FP32 * N, launches=None)
    return Cost("torch_compiled", s, tuple(ops), tuple(_torch_run_ops(s)), eager.philox_calls,
                notes=("torch_compiled: buffers read from inductor's CPU output code (torch 2.13) for 5->2 and 20->5; "
                       "GPU codegen may differ; launches unknown",))


def _plan(s: Shape, strategy: str, plan):
    if plan is not None:
        return plan
    try:
        from fastsup.kernels.dispatch import plan_for
    except ImportError as err:
        raise NotApplicable(f"the dispatcher needs triton ({err}); pass plan= explicitly") from None
    return plan_for(s.n_features, s.n_hidden, s.batch_size, strategy, model=s.model)


def _output_ops(s: Shape) -> int:
    """Elementwise FLOPs per output element in block.output_loss_grad (plus z + b and db)."""
    act = 0 if s.model == "linear" else 1
    # z + b, act, y - t, imp*err, *err, sum, grad_scale*, act' compare, db sum (+ |x| target for abs)
    return 1 + act + 1 + 1 + 1 + 1 + 1 + act + 1 + (1 if s.model == "abs" else 0)


def _sample_ops(s: Shape) -> int:
    return _SAMPLE_OPS + (_SIGNED_OPS if s.model == "abs" else 0)


def _hidden_ops(s: Shape) -> int:
    return 2 if s.model in ("relu_hidden", "abs") else 0  # ReLU and its mask


def _triton_step(s: Shape, plan) -> Cost:
    plan = _plan(s, "step", plan)
    if plan.strategy != "step":
        raise NotApplicable(f"plan is {plan.strategy!r}, not 'step'")
    I, n, m, B, E, H, P, V = _sizes(s)
    quads = -(-B // 4)
    n_blocks = -(-quads // plan.block_q)  # NB = cdiv(cdiv(B, 4), block_q)
    n_splits = -(-quads // plan.split_quads)  # S
    rows = n_blocks * 4 * plan.block_q  # rows step_hidden executes, padding included
    grads_quads = -(-quads // plan.grads_block_q) * plan.grads_block_q  # and step_grads
    n_exec = -(-n // plan.block_n) * plan.block_n  # features step_hidden executes per program
    n_grads = -(-n // plan.grads_block_n) * plan.grads_block_n  # and step_grads
    mats = 1 if s.tied else 2
    hidden = FP32 * 2 * H  # a and gh, [I, m, B] each
    ops = _Ops()
    contraction = 6.0 * I * rows * n_exec * plan.m_pad  # a; z, gh
    ops.add("hidden kernel: contractions (a; z, gh)", "forward", contraction, contraction=True, launches=1)
    ops.add("hidden kernel: sampling x2, loss, output and hidden grads; store a, gh, losses", "backward",
            I * rows * n_exec * (2 * _sample_ops(s) + _output_ops(s)) + I * rows * plan.m_pad * _hidden_ops(s),
            FP32 * (mats * P + 4 * V) + INT64 * (I + 1), hidden + FP32 * I * n_blocks, launches=0)
    contraction = 6.0 * I * 4 * grads_quads * n_grads * plan.m_pad  # z; h gᵀ, x ghᵀ
    ops.add("grads kernel: contractions (z; d_dec, d_enc)", "backward", contraction, contraction=True, launches=1)
    part = I * n_splits
    ops.add("grads kernel: sampling, output grads; read a, gh; store partial grads", "backward",
            I * 4 * grads_quads * (n_grads * (_sample_ops(s) + _output_ops(s)) + plan.m_pad * _hidden_ops(s)),
            FP32 * (mats * P + 4 * V) + INT64 * (I + 1) + hidden, FP32 * part * (mats * n * m + n), launches=0)
    # reduce/update: grid (I, cdiv(n, reduce_block_n))
    tiles = -(-n // plan.reduce_block_n)
    adam_lanes = I * tiles * plan.reduce_block_n * plan.m_pad * mats + I * tiles * plan.reduce_block_n
    ops.add("reduce kernel: sum partials over row splits, losses over batch blocks", "reduce",
            part * (mats * n * m + n) + I * n_blocks, FP32 * (part * (mats * n * m + n) + I * n_blocks), 0,
            launches=1)
    ops.add("reduce kernel: AdamW/Adam (params and moments in and out)", "optimizer", _ADAM_FLOPS * adam_lanes,
            3 * FP32 * (mats * P + V) + 2 * FP32 * I + INT64 + 3 * FP32,
            3 * FP32 * (mats * P + V) + FP32 * I, launches=0)
    ops.add("step_index += 1", "setup", 0, INT64, INT64)
    philox = I * (2 * n_blocks * plan.block_q * n_exec + grads_quads * n_grads)
    run_ops = _Ops()
    run_ops.add("zeros (moments, a, gh, partials, losses)", "run", 0, 0,
                FP32 * (2 * sum(_param_sizes(s)) + 2 * H + part * (mats * n * m + n) + I * n_blocks + I),
                launches=10)
    run_ops.add("clone (logged loss)", "log", 0, FP32 * I * s.n_logged, FP32 * I * s.n_logged, launches=s.n_logged)
    notes = (f"triton_step: NB = {n_blocks} batch blocks of {4 * plan.block_q} rows, feature tiles of "
             f"{plan.block_n} (gradients: {plan.grads_block_n}); partial gradients are {n_splits} x the size of "
             f"the parameters per step (S = {n_splits} row splits of {4 * plan.split_quads} rows)",)
    return Cost("triton_step", s, tuple(ops), tuple(run_ops), philox, notes=notes, plan=plan)


def _triton_persistent(s: Shape, plan) -> Cost:
    try:
        plan = _plan(s, "persistent", plan)
    except NotApplicable:
        raise
    except ValueError as err:  # plan_for refuses tiles that do not fit on chip (NotApplicable is a ValueError too)
        raise NotApplicable(str(err)) from None
    if plan.strategy != "persistent":
        raise NotApplicable(f"plan is {plan.strategy!r}, not 'persistent'")
    I, n, m, B, E, H, P, V = _sizes(s)
    chunks = -(-(-(-B // 4)) // plan.block_q)
    rows = chunks * 4 * plan.block_q
    lanes = I * rows * plan.n_pad
    mats = 1 if s.tied else 2
    tile = plan.n_pad * plan.m_pad
    ops = _Ops()
    contraction = 10.0 * I * rows * plan.n_pad * plan.m_pad
    elementwise = lanes * (_sample_ops(s) + _output_ops(s)) + I * rows * plan.m_pad * _hidden_ops(s)
    accumulate = I * rows * (2 * tile + plan.n_pad + 1)  # every row adds x ghᵀ and h gᵀ, g and its loss
    reduce = I * plan.block_q * (mats * tile + plan.n_pad + 1)  # the per-quad sums, once per step
    state = FP32 * 3 * (mats * P + V)  # parameters and both moments
    ops.add("contractions (in registers)", "forward", contraction, launches=0, contraction=True)
    ops.add("sampling, loss, output and hidden grads (in registers)", "backward", elementwise, launches=0)
    ops.add("accumulate per-quad grads", "backward", accumulate, launches=0)
    ops.add("reduce per-quad grads (once per step)", "backward", reduce, launches=0)
    ops.add("AdamW/Adam: read and write params and moments", "optimizer", _ADAM_FLOPS * I * (mats * tile + plan.n_pad),
            state, state, launches=0)
    ops.add("schedule tables (lr scale, bias corrections)", "optimizer", 0, 3 * FP32, 0, launches=0)
    run_ops = _Ops()
    run_ops.add("launch: load per-instance constants", "run", 0, FP32 * (3 * V + 2 * I) + INT64 * I, 0, launches=1)
    run_ops.add("store loss history", "log", 0, 0, FP32 * I * s.n_logged, launches=0)
    notes = (f"triton_persistent: {chunks} batch chunk(s) of {4 * plan.block_q} rows per step on a "
             f"{plan.n_pad}x{plan.m_pad} tile, one reduction across threads per step; the batch stays in "
             "registers (the compile check proves no spills), parameters and moments are read and written "
             "once per step",)
    return Cost("triton_persistent", s, tuple(ops), tuple(run_ops), float(I * chunks * plan.n_pad * plan.block_q),
                notes=notes, plan=plan)


def cost(config_like: Any, strategy: str, plan=None) -> Cost:
    """The counts of ``strategy`` (one of ``STRATEGIES``) for ``config_like``.

    ``config_like``: a ``TrainConfig``, a ``Shape``, or any object with
    ``n_features``, ``n_hidden``, ``n_instances`` (and optionally
    ``batch_size``, ``model``, ``activation``, ``steps``, ``log_every``,
    ``optimizer``).  ``plan``: a ``fastsup.kernels.dispatch.Plan`` (or any
    object with its tile fields) for the Triton strategies; by default the
    dispatcher's plan for the forced strategy (needs triton).  Raises
    ``NotApplicable`` when the strategy cannot train the shape.
    """
    s = Shape.of(config_like)
    if strategy == "notebook":
        return _notebook(s)
    if strategy == "torch":
        return _torch(s)
    if strategy == "torch_compiled":
        return _torch_compiled(s)
    if strategy == "triton_step":
        return _triton_step(s, plan)
    if strategy == "triton_persistent":
        return _triton_persistent(s, plan)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------


def _si(value: float | None, unit: str = "") -> str:
    if value is None:
        return "?"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}"


def dispatcher_choice(config_like: Any) -> str:
    """What ``plan_for`` picks for the shape, with its reason (or why it cannot say)."""
    s = Shape.of(config_like)
    try:
        from fastsup.kernels.dispatch import plan_for
    except ImportError as err:
        return f"dispatcher unavailable: {err} (the Triton dispatcher needs triton)"
    from fastsup.kernels.predict import kernels_are_faster

    plan = plan_for(s.n_features, s.n_hidden, s.batch_size, model=s.model)
    faster, why = kernels_are_faster(s)
    return (f"dispatcher picks {plan.strategy} (plan_for): {plan.reason}; tile {plan.n_pad}x{plan.m_pad}, "
            f"block_n {plan.block_n}, {4 * plan.block_q} rows per block, {plan.num_warps} warps\n"
            f"backend='auto' on CUDA: {'triton' if faster else 'torch'} ({why})")


def table(n: int, m: int, I: int, B: int = 1024, model: str = "relu_output", *, steps: int = 10_000,
          log_every: int = 100, activation: str = "relu", optimizer: str = "adamw", roofline: bool = True) -> str:
    """A text table of every strategy's counts for one shape, the dispatcher's choice, and the caveats."""
    s = Shape(n, m, I, B, model, activation, steps, log_every, optimizer)
    lines = [
        f"fastsup cost model: {model} {n}->{m}, {I} instances, batch {B}, {steps} steps "
        f"(static counts from the code; estimates, not measurements)",
        f"math: {_si(math_flops(s), 'FLOP')} of contractions per step (10 I B n m)",
        dispatcher_choice(s),
        "",
    ]
    header = ["strategy", "launches/step", "FLOP/step", "bytes/step", "FLOP/byte", "Philox/step",
              "launches/run", "bytes/run"]
    if roofline:
        header += ["roofline us/step", "bound by", "models*steps/s bound"]
    rows, notes, skipped = [], [], []
    for strategy in STRATEGIES:
        try:
            c = cost(s, strategy)
        except NotApplicable as err:
            skipped.append(f"{strategy}: n/a ({err})")
            continue
        launches = "0 (1/run)" if c.launches == 0 else _si(c.launches)
        row = [strategy, launches, _si(c.flops), _si(c.bytes_per_step_amortised, "B"),
               f"{c.arithmetic_intensity:.3g}", _si(c.philox_calls), _si(c.launches_per_run), _si(c.bytes_per_run, "B")]
        if roofline:
            seconds, bound = c.roofline_seconds()
            row += [f"{seconds * 1e6:.3g}", bound, _si(I / seconds if seconds > 0 else float("inf"))]
        rows.append(row)
        notes.extend(c.notes)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(r, widths)))  # noqa: E731
    lines += [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    lines += [""] + skipped
    lines += [
        "bytes/step: global-memory bytes requested per step, once-per-run traffic amortised over the steps "
        "(persistent: parameters load/store once per run); FLOP/byte uses it.",
        "Triton rows count executed lanes (padding included) and assume L1/L2 serve repeated reads of an "
        "instance's parameters; Philox counts Philox4x32-10 calls (4 words each).",
    ]
    if roofline:
        lines.append(
            "roofline bound, not measured: max(FLOP / 67 TFLOP/s fp32, bytes / 3.35 TB/s HBM3, "
            f"Philox x {PHILOX_INT_OPS_PER_CALL} int ops / {H100_SXM_INT32_OPS / 1e12:.1f} Tops) from H100 SXM peak "
            "figures; ignores launch latency (see launches/step), occupancy and caches.")
    lines += notes
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastsup.kernels.cost_model", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, required=True, help="features")
    parser.add_argument("--m", type=int, required=True, help="hidden dimensions")
    parser.add_argument("--instances", type=int, required=True)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--model", choices=MODELS, default="relu_output")
    parser.add_argument("--activation", choices=("relu", "exrelu"), default="relu")
    parser.add_argument("--optimizer", choices=("adamw", "adam"), default="adamw")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--no-roofline", action="store_true", help="omit the roofline bound columns")
    args = parser.parse_args(argv)
    try:
        text = table(args.n, args.m, args.instances, args.batch, args.model, steps=args.steps,
                     log_every=args.log_every, activation=args.activation, optimizer=args.optimizer,
                     roofline=not args.no_roofline)
    except ValueError as err:
        parser.error(str(err))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
