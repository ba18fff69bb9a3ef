"""Compile every kernel configuration the dispatcher can choose, for sm_80 and sm_90, with no GPU.

Run as::

    python -m fastsup.kernels.check [--full] [--sass] [--arch 80,90] [--json PATH] [--jobs N] [--only REGEX] [--list]

By default a representative subset (every kernel x every MODEL x both
contraction paths, at the paper's sizes: about two minutes on 2 cores); with
``--full``, every shape of the paper and of a size table up to n = 1000,
m = 100, with every model variant that changes the compiled code (the
``MODEL``, ``ACT``, ``SIGNED`` and ``DECOUPLED`` constexprs; ``tf32`` for
dot plans; an i64-typed seed), at batch 1024 and, for the persistent
strategy's shapes, at batch 32.  For each workload this asks
``fastsup.kernels.dispatch.plan_for`` for the plan (the automatic one, and
``strategy="step"`` where the automatic one is persistent), builds each
kernel's arguments exactly as its launcher passes them (``persistent_run``,
``FusedStepTrainer.step``), lets triton's own binder derive the signature a
real launch would get (argument types, ``== 1`` constants, ``tt.divisibility``),
keeps one job per distinct binary (see ``build_jobs``) and compiles it with
``triton.compile(ASTSource(fn, signature, constexprs, attrs),
target=GPUTarget("cuda", arch, 32), options={"num_warps": ...})``:
TTIR → TTGIR → LLVM IR → PTX → ptxas → cubin, no driver needed.

Per binary it records registers (``cuobjdump --dump-resource-usage`` on the
cubin; ptxas' own count must agree), spill stores and loads and the stack
frame (the ``ptxas -v`` log triton writes with ``TRITON_DUMP_PTXAS_LOG=1``),
shared memory (``compiled.metadata.shared``) and compile seconds.  It also
compiles the sampler alone (``sample_block`` in a store-only probe kernel,
and ``uniform_kernel``) and checks its PTX has no float divide and no FMA
whose product can round (the batch must be bit-identical to the torch
backend's; the signed map's ``fma(m, 2, -1)`` is exact).

It reads the TTIR too: a 32-bit multiply on the way to a pointer offset that
involves the instance axis' program id or a loop counter (an offset that
grows with the number of instances or steps) fails the check, since it
wraps at 2**31 elements.

Exit status 1 on any compile failure, any spill, more than 255 registers, a
32-bit run-scaled pointer offset,
more shared memory than the arch allows a block (``SHARED_LIMIT``), an
approximate divide (``div.full``/``div.approx``/``rcp.approx``) in a training
kernel, or a float divide or rounding FMA on the sample path; 2 when
``TRITON_INTERPRET`` is set.

This process must compile, not interpret: run as ``__main__`` it sets
``TRITON_INTERPRET=0`` before importing any kernel; pytest processes (whose
conftest sets ``TRITON_INTERPRET=1``) must run it in a subprocess.
Every run compiles from scratch in a temporary triton cache (a cache hit
would skip ptxas, and with it the spill report); ``TRITON_DEFAULT_FP_FUSION=1``
is set explicitly (3.9's default, which the sampler's bit-exactness argument
assumes).
"""

from __future__ import annotations

import os

if __name__ == "__main__":
    # Decided at decoration time: must precede every import of a kernel module.
    os.environ["TRITON_INTERPRET"] = "0"

import argparse
import contextlib
import dataclasses
import io
import json
import math
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import NamedTuple

import triton
import triton.language as tl

from fastsup.backends.triton_backend import kernel_scalars
from fastsup.config import TrainConfig
from fastsup.kernels.block import MODEL_CODES, sample_block
from fastsup.kernels.dispatch import plan_for
from fastsup.kernels.persistent import persistent_run_args
from fastsup.kernels.warp import warp_run_args
from fastsup.kernels.step import (
    StepBuffers,
    n_batch_blocks,
    n_row_splits,
    reduce_update_args,
    step_grads_args,
    step_hidden_args,
)
from fastsup.kernels.utils import Checkpoints, KernelInputs, Moments

# ---------------------------------------------------------------------------
# what to compile
# ---------------------------------------------------------------------------

# PAPER.md section 4: (experiment, n, m, model, activation). Correlated sets
# (experiment 7) are sampled by the torch backend only; double descent (14)
# is included at 1000→2.
PAPER_SHAPES = [
    ("intro", 5, 2, "relu_output", "relu"),
    ("linear_vs_relu", 20, 5, "linear", "relu"),
    ("linear_vs_relu", 20, 5, "relu_output", "relu"),
    ("larger", 80, 20, "relu_output", "relu"),
    ("phase", 2, 1, "relu_output", "relu"),
    ("phase", 3, 2, "relu_output", "relu"),
    ("geometry", 400, 30, "relu_output", "relu"),
    ("geometry", 200, 20, "relu_output", "relu"),
    ("dynamics", 100, 10, "relu_output", "relu"),
    ("privileged", 6, 3, "relu_hidden", "relu"),
    ("privileged", 10, 5, "relu_hidden", "relu"),
    ("abs", 3, 6, "abs", "relu"),
    ("abs", 100, 40, "abs", "relu"),
    ("exrelu", 5, 2, "relu_output", "exrelu"),
    ("double_descent", 1000, 2, "relu_output", "relu"),
]
TABLE_N = (2, 5, 20, 100, 400, 1000)
TABLE_M = (1, 2, 5, 20, 40, 100)

MODELS = tuple(MODEL_CODES)
ARCHS = (80, 90)
# The notebook's run (the paper scale of fastsup.experiments); these values only reach
# the binary through triton's specialization of int arguments (== 1, % 16).
RUN = dict(n_instances=10, batch_size=1024, steps=10_000, log_every=100, seed=0)

# Shared memory a block may use (opt-in maximum): A100 163 KiB, H100 227 KiB.
# Triton raises OutOfResources at load time above the device's limit.
SHARED_LIMIT = {80: 166_912, 90: 232_448}

KERNELS = {
    "warp_run": "fastsup.kernels.warp:warp_run_kernel",
    "persistent_run": "fastsup.kernels.persistent:persistent_run_kernel",
    "step_hidden": "fastsup.kernels.step:step_hidden_kernel",
    "step_grads": "fastsup.kernels.step:step_grads_kernel",
    "reduce_update": "fastsup.kernels.step:reduce_update_kernel",
}
F32, I64 = "ptr:fp32", "ptr:i64"  # pointer arguments (16-byte aligned, as torch allocates them)


def variants() -> list[tuple[str, str, str, str]]:
    """(model, activation, magnitude, optimizer): every combination that changes the compiled code."""
    out = []
    for model in MODELS:
        for activation in ("relu",) if model == "linear" else ("relu", "exrelu"):
            for magnitude in ("uniform", "signed"):
                for optimizer in ("adamw", "adam"):
                    out.append((model, activation, magnitude, optimizer))
    return out


def default_magnitude(model: str) -> str:
    return "signed" if model == "abs" else "uniform"


# The default subset, register-broadcast path: one paper experiment of each MODEL, as it runs
# (persistent by the dispatcher's choice, and the step kernels a user may force).
# Each persistent kernel meets every MODEL: the warp kernel at the tiny sizes,
# the tile kernel at 20→5 and 10→5 (and at the size table's 20→5 for abs and
# linear-sized 5→2 for the warp kernel, which no paper experiment trains).
QUICK_REGISTER = [
    ("intro", 5, 2, "relu_output", "relu"),
    ("table", 5, 2, "linear", "relu"),
    ("linear_vs_relu", 20, 5, "linear", "relu"),  # the paper's largest persistent tile
    ("linear_vs_relu", 20, 5, "relu_output", "relu"),
    ("privileged", 6, 3, "relu_hidden", "relu"),
    ("privileged", 10, 5, "relu_hidden", "relu"),
    ("abs", 3, 6, "abs", "relu"),  # m > n
    ("table", 20, 5, "abs", "relu"),
]
# Small batches: under 128 rows the warp kernel packs instances
# (dispatch.warp_pack): 2→1 at batch 32 (4 per warp) and 3→6 abs, the widest
# warp shape, at batch 16 (8); the tile kernel runs one batch chunk per step,
# where its per-step work (the update, the once-per-step sums) weighs most.
# The full table trains every shape of the persistent strategy at SMALL_BATCH.
QUICK_SMALL_BATCH = [
    ("packed", 2, 1, "relu_output", "relu", 32),
    ("packed", 3, 6, "abs", "relu", 16),
    ("small", 20, 5, "relu_output", "relu", 32),
]
SMALL_BATCH = 32


# Seeds are typed by value (``do_not_specialize`` stops value specialization,
# not typing): seed_lo / seed_hi >= 2**31 make them i64, another binary.
WIDE_SEED = 2**63 + 2**31 + 1


class Workload(NamedTuple):
    label: str
    n: int
    m: int
    model: str
    activation: str
    magnitude: str
    optimizer: str
    seed: int = 0
    batch_size: int = RUN["batch_size"]


def workloads(full: bool) -> list[Workload]:
    """The runs to plan, each at ``RUN``'s sizes unless it says otherwise.

    Full: every shape of the paper and of the size table, with every variant,
    and every shape of the persistent strategy at ``SMALL_BATCH`` too (the
    warp kernel's packed, the tile kernel's in one chunk per step).
    Default (about 80 binaries per arch): ``QUICK_REGISTER``, ``QUICK_SMALL_BATCH``,
    and every MODEL at the paper's smallest size on the tl.dot path (the tf32
    opt-in), so that every kernel meets every MODEL on both paths, at the
    paper's sizes only.  Both: the intro once more with a seed whose two words
    are i64-typed (and, full only, the smallest dot size too).
    """
    def default(label, n, m, model, act, **run):
        return Workload(label, n, m, model, act, default_magnitude(model), "adamw", **run)

    on_dot = sorted((n * m, label, n, m) for label, n, m, model, act in PAPER_SHAPES
                    if plan_of(make_config(n, m, model, act, default_magnitude(model), "adamw"), "step", "tf32").use_dot)
    wide = [default("intro", 5, 2, "relu_output", "relu", seed=WIDE_SEED)]
    if full:
        sizes = list(dict.fromkeys([(label, n, m) for label, n, m, _, _ in PAPER_SHAPES]))
        known = {(n, m) for _, n, m in sizes}
        sizes += [("table", n, m) for n in TABLE_N for m in TABLE_M if m < n and (n, m) not in known]
        if on_dot:
            wide.append(default(*on_dot[0][1:], "relu_output", "relu", seed=WIDE_SEED))
        out = [Workload(label, n, m, *variant) for label, n, m in sizes for variant in variants()]
        at_small_batch = [(w, plan_of(make_config(*w[1:7], batch_size=SMALL_BATCH), "auto")) for w in out]
        small = [Workload("packed" if plan.warp else "small", *w[1:7], batch_size=SMALL_BATCH)
                 for w, plan in at_small_batch if plan.strategy == "persistent"]
        return out + small + wide
    out = [default(*w) for w in QUICK_REGISTER]
    out += [default(*w[:5], batch_size=w[5]) for w in QUICK_SMALL_BATCH]
    # the step kernel's smallest tiles with signed magnitudes: where predicates spilled at 256 rows
    out += [Workload("phase", 3, 2, "relu_hidden", "relu", "signed", "adamw"),
            Workload("phase", 3, 2, "relu_output", "exrelu", "signed", "adamw")]
    if on_dot:
        _, label, n, m = on_dot[0]
        out += [default(label, n, m, model, "relu") for model in MODELS]
    return out + wide


def make_config(n, m, model, activation, magnitude, optimizer, seed=0,
                batch_size=RUN["batch_size"]) -> TrainConfig:
    return TrainConfig(n_features=n, n_hidden=m, model=model, activation=activation, magnitude=magnitude,
                       optimizer=optimizer, activation_threshold=-0.25 if activation == "exrelu" else 0.0,
                       **{**RUN, "seed": seed, "batch_size": batch_size})


def placeholder_inputs(config: TrainConfig) -> KernelInputs:
    """``KernelInputs`` of ``config`` with pointer placeholders for the tensors (what ``specialize`` mocks)."""
    tensors = {f.name: F32 for f in dataclasses.fields(KernelInputs) if f.type == "torch.Tensor"}
    return KernelInputs(**{**tensors, "instance_ids": I64}, **kernel_scalars(config))


def launch_args(kernel: str, config: TrainConfig, plan) -> tuple[dict, dict]:
    """The kernel's arguments by name and its launch options, from the builder its launcher uses."""
    inputs = placeholder_inputs(config)
    moments = Moments(*[F32] * len(dataclasses.fields(Moments)))
    if kernel in ("persistent_run", "warp_run"):
        checkpoints = Checkpoints(row=I64, enc=F32, dec=F32, b=F32, count=1)
        build = warp_run_args if kernel == "warp_run" else persistent_run_args
        return build(inputs, moments, F32, checkpoints, plan, 0, config.steps, config.log_every, 0)
    buffers = StepBuffers(moments, loss_part=F32, a=F32, gh=F32, d_enc_part=F32, d_dec_part=F32, db_part=F32,
                          loss=F32, step_index=I64, n_blocks=n_batch_blocks(config.batch_size, plan),
                          n_splits=n_row_splits(config.batch_size, plan))
    builders = dict(step_hidden=step_hidden_args, step_grads=step_grads_args, reduce_update=reduce_update_args)
    if kernel not in builders:
        raise ValueError(kernel)
    return builders[kernel](inputs, buffers, plan)


def plan_of(config: TrainConfig, strategy: str = "auto", precision: str = "ieee"):
    return plan_for(config.n_features, config.n_hidden, config.batch_size, strategy, precision, model=config.model)


@dataclasses.dataclass
class Job:
    kernel: str
    arch: int
    options: dict  # launch options: num_warps (and maxnreg where the plan caps registers)
    args: dict  # by name; pointers as F32 / I64
    config: dict  # the table's description of the binary
    shapes: list  # "label n→m model/act/magnitude/optimizer" of every workload that launches this binary
    auto: bool = False  # the dispatcher's own choice for at least one workload
    key: tuple = ()
    # the batch size is a runtime argument, so workloads at other batches share the binary: their arguments, by
    # workload, for the SASS profile each of them runs (its loop trips)
    other_batches: dict = dataclasses.field(default_factory=dict)


def _resolve(kernel: str):
    """A kernel name of KERNELS, ``module:name``, or a kernel of this module."""
    path = KERNELS.get(kernel, kernel)
    module, name = (path if ":" in path else f"{__name__}:{kernel}").split(":")
    fn = getattr(sys.modules[module] if module in sys.modules else __import__(module, fromlist=[name]), name)
    if not isinstance(fn, triton.runtime.jit.JITFunction):
        raise RuntimeError(f"{kernel} is {type(fn).__name__}, not a JITFunction: the kernels were imported with "
                           "TRITON_INTERPRET set; run `python -m fastsup.kernels.check` in a process without it")
    return fn


def _mock(value):
    import torch
    from triton.runtime.jit import MockTensor

    if value == F32:
        return MockTensor(torch.float32)
    if value == I64:
        return MockTensor(torch.int64)
    return value


def specialize(kernel: str, args: dict, options: dict, arch: int):
    """Triton's own binder on these arguments: (signature, constexprs, attrs, options) of the launch."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    fn = _resolve(kernel)
    backend = make_backend(GPUTarget("cuda", arch, 32))
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    # the options JITFunction.run adds to every launch
    kwargs = dict(**options, debug=fn.debug or triton.knobs.runtime.debug,
                  instrumentation_mode=triton.knobs.compilation.instrumentation_mode,
                  fpsan_homomorphic_casts=triton.knobs.compilation.fpsan_homomorphic_casts)
    bound, specialization, options = binder(**{k: _mock(v) for k, v in args.items()}, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    return fn, signature, constexprs, attrs, options


def describe(kernel: str, config: TrainConfig, plan) -> dict:
    """The table's columns for one binary (None where the kernel has no such constexpr)."""
    samples, update = kernel != "reduce_update", kernel not in ("step_hidden", "step_grads")
    return dict(
        model=config.model,
        act=config.activation if samples else None,
        signed=config.magnitude == "signed" if samples else None,
        decoupled=config.optimizer == "adamw" if update else None,
        n_pad={"reduce_update": plan.reduce_block_n, "step_grads": plan.grads_block_n}.get(kernel, plan.block_n),
        m_pad=plan.m_pad,
        block_q=(plan.grads_block_q if kernel == "step_grads" else plan.block_q) if samples else None,
        dot=plan.use_dot if samples else None,
        precision=plan.precision if samples and plan.use_dot else None,
        warps=launch_args(kernel, config, plan)[1]["num_warps"],
        seed="i64" if config.seed >= 2**31 else None,
        batch=config.batch_size,
    )


def build_jobs(full: bool, archs) -> list[Job]:
    """One job per distinct binary.

    Binaries are the same when kernel, arch, launch options, every constexpr and the
    argument types agree (types include triton's ``== 1`` specialization, which
    turns an int argument into a constant).  The ``tt.divisibility`` hints of
    int arguments (n % 16 == 0) are not part of the key: the first workload's
    are compiled, and recorded.
    """
    jobs: dict[tuple, Job] = {}
    for w in workloads(full):
        config = make_config(*w[1:])
        workload = (f"{w.label} {w.n}→{w.m} {w.model}/{w.activation}/{w.magnitude}/{w.optimizer}"
                    + (" seed64" if w.seed else "")
                    + (f" B{w.batch_size}" if w.batch_size != RUN["batch_size"] else ""))
        auto = plan_of(config, "auto")
        plans = [(auto, True)]
        if auto.strategy == "persistent":
            plans.append((plan_of(config, "step"), False))  # a user may force strategy="step"
        tf32 = plan_of(config, "step", "tf32")  # the tf32 opt-in is the only way onto the dot path
        if tf32.use_dot:
            plans.append((tf32, False))
        for plan, is_auto in plans:
            for kernel in plan.kernels:
                args, options = launch_args(kernel, config, plan)
                for arch in archs:
                    _, signature, constexprs, attrs, _ = specialize(kernel, args, options, arch)
                    key = (kernel, arch, tuple(sorted(options.items())), tuple(signature.items()),
                           tuple(sorted((k, repr(v)) for k, v in constexprs.items())))
                    job = jobs.get(key)
                    if job is None:
                        job = jobs[key] = Job(kernel, arch, options, args, describe(kernel, config, plan), [],
                                              False, key)
                    job.shapes.append(workload)
                    job.auto |= is_auto
                    if config.batch_size != job.config["batch"] and not any(
                            a["batch_size"] == config.batch_size for a in job.other_batches.values()):
                        job.other_batches[workload] = args
    return list(jobs.values())


# ---------------------------------------------------------------------------
# compiling one binary (in a worker process)
# ---------------------------------------------------------------------------

_PTXAS_USED = re.compile(r"Used (\d+) registers")
_PTXAS_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_CUOBJDUMP_REG = re.compile(r"REG:(\d+)")
# float divides (div.full / div.approx are the approximate ones) and contracted multiply-adds
APPROX_DIV = re.compile(r"\b(?:div\.(?:full|approx)|rcp\.approx)[\w.]*\.f(?:32|64)\b")
FLOAT_DIV = re.compile(r"\bdiv\.[\w.]*\.f(?:16|32|64)\b|\brcp\.[\w.]*\.f(?:32|64)\b")
FLOAT_FMA = re.compile(r"\b(?:fma|mad)\.[\w.]*\.f(?:16|32|64)\b")
MMA = re.compile(r"\b(?:mma|wgmma\.mma_async)\.")  # tensor-core instructions


_FMA_OPERANDS = re.compile(r"\b(?:fma|mad)\.[\w.]*\.f32\s+[^,]+,\s*([^,]+),\s*([^,]+),")


def inexact_fmas(ptx_body: str) -> int:
    """FMAs whose product can round: neither factor an immediate power of two.

    ``fma(x, 2.0, -1.0)`` rounds once, like ``x * 2.0 - 1.0`` does, because
    the product is exact; any other contraction may change the last bit.
    """
    def power_of_two(operand: str) -> bool:
        operand = operand.strip()
        return operand.startswith("0f") and int(operand[2:], 16) & 0x7FFFFF == 0 and operand[2:] != "00000000"

    count = 0
    for line in ptx_body.splitlines():
        if FLOAT_FMA.search(line):
            match = _FMA_OPERANDS.search(line)
            if match is None or not any(power_of_two(f) for f in match.groups()):
                count += 1
    return count


_SSA = re.compile(r"^\s*(%[\w.-]+)(?::\d+)?\s*=\s*([\w.]+)(.*)$")
_SSA_NAME = re.compile(r"%[\w.-]+")
_LOOP_COUNTER = re.compile(r"scf\.for\s+(%[\w.-]+)\s*=")
_ADDPTR = re.compile(r"tt\.addptr\s+(%[\w.-]+),\s*(%[\w.-]+)\s*:.*,\s*(\S+)\s+loc")


def _i32(type_text: str) -> bool:
    return bool(re.search(r"\bi32>?$", type_text.strip().split(" loc(")[0].rstrip()))


def narrow_pointer_multiplies(ttir: str) -> list[str]:
    """32-bit multiplies on a pointer offset's path that involve the instance axis' program id or a loop counter.

    Such an offset grows with the number of instances or steps
    (``(step // log_every) * n_instances + k``) and wraps at 2**31.  Every
    kernel here puts instances on grid axis 0; axis 1 numbers blocks within
    one instance, so ``feature_block * BLOCK_N`` is bounded by one instance's
    size and passes, as do products of per-instance sizes (``feature * n_hidden``).
    Returns the offending TTIR lines.
    """
    defs, run_scaled = {}, set()
    for line in ttir.splitlines():
        code = line.split(" loc(")[0]
        for counter in _LOOP_COUNTER.findall(code):
            run_scaled.add(counter)
        match = _SSA.match(code)
        if match is None:
            continue
        name, op, rest = match.groups()
        operands = _SSA_NAME.findall(rest.split(" : ")[0]) if op != "scf.for" else []
        result_type = rest.rsplit(" : ", 1)[-1] if " : " in rest else ""
        defs[name] = (op, operands, result_type, code.strip())
        if op == "tt.get_program_id" and rest.strip().startswith("x"):
            run_scaled.add(name)

    scaled_memo: dict[str, bool] = {}

    def scaled(name: str) -> bool:  # derived from a program id or a loop counter
        if name not in scaled_memo:
            scaled_memo[name] = False  # cycles through iter_args end here
            op, operands, _, _ = defs.get(name, ("", [], "", ""))
            scaled_memo[name] = name in run_scaled or any(scaled(o) for o in operands)
        return scaled_memo[name]

    found, seen = [], set()

    def walk(name: str) -> None:
        if name in seen or name not in defs:
            return
        seen.add(name)
        op, operands, result_type, code = defs[name]
        if op == "arith.muli" and _i32(result_type) and any(scaled(o) for o in operands):
            found.append(code)
        for operand in operands:
            walk(operand)

    for line in ttir.splitlines():
        match = _ADDPTR.search(line)
        if match:
            walk(match.group(2))
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ptx_body(ptx: str) -> str:
    """The PTX without its debug sections (which name source lines, not instructions)."""
    return ptx.split(".section", 1)[0]


def compile_one(kernel: str, args: dict, options: dict, arch: int, sass: bool = False,
                other_batches: dict | None = None) -> dict:
    """Compile one binary and check it; with ``sass``, its static performance report for ``args`` and, under
    ``by_batch``, for each workload of ``other_batches`` (label: its arguments, the same binary at another
    batch size)."""
    from triton.backends.compiler import GPUTarget

    out = dict(registers=None, spill_stores=None, spill_loads=None, stack=None, shared=None, seconds=None,
               cpu_seconds=None, approx_div=None, float_div=None, fma=None, inexact_fma=None, mma=None, attrs=None,
               narrow_offsets=None, sass=None, error=None)
    try:
        fn, signature, constexprs, attrs, compile_options = specialize(kernel, args, options, arch)
        # the specialization of int arguments (pointers are always 16-byte aligned)
        names = [fn.arg_names[k[0]] for k in attrs]
        out["attrs"] = {name: v for name, v in zip(names, attrs.values()) if v and not signature[name].startswith("*")}
        log = io.StringIO()
        start, cpu_start, children_start = time.perf_counter(), time.process_time(), _children_cpu()
        with contextlib.redirect_stdout(log):  # ptxas -v log, printed by triton with TRITON_DUMP_PTXAS_LOG=1
            compiled = triton.compile(triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs,
                                                                attrs=attrs),
                                      target=GPUTarget("cuda", arch, 32), options=compile_options.__dict__)
        out["seconds"] = round(time.perf_counter() - start, 2)
        # this process plus ptxas: what the compile costs on an idle machine
        out["cpu_seconds"] = round(time.process_time() - cpu_start + _children_cpu() - children_start, 2)
        out["shared"] = compiled.metadata.shared
        ptxas = log.getvalue()
        spills = _PTXAS_SPILL.findall(ptxas)
        used = _PTXAS_USED.findall(ptxas)
        if not spills or not used:
            raise RuntimeError(f"no ptxas -v report in the compile log (cache hit?):\n{ptxas[-2000:]}")
        out["stack"], out["spill_stores"], out["spill_loads"] = (int(v) for v in spills[-1])
        out["registers"] = cuobjdump_registers(compiled.asm["cubin"])
        if out["registers"] != int(used[-1]):
            raise RuntimeError(f"cuobjdump says {out['registers']} registers, ptxas -v {used[-1]}")
        body = _ptx_body(compiled.asm["ptx"])
        out["approx_div"] = len(APPROX_DIV.findall(body))
        out["float_div"] = len(FLOAT_DIV.findall(body))
        out["fma"] = len(FLOAT_FMA.findall(body))
        out["inexact_fma"] = inexact_fmas(body)
        out["mma"] = len(MMA.findall(body))
        out["narrow_offsets"] = narrow_pointer_multiplies(compiled.asm["ttir"])
        if sass and kernel in KERNELS:
            structure = sass_structure(cuobjdump(compiled.asm["cubin"], "-sass"), source_lines(compiled.asm["cubin"]))
            num_warps = options["num_warps"]
            out["sass"] = dict(occupancy(out["registers"], out["shared"], num_warps, arch),
                               **sass_profile(structure, kernel, args, num_warps),
                               by_batch={label: sass_profile(structure, kernel, a, num_warps)
                                         for label, a in (other_batches or {}).items()})
    except Exception as e:  # noqa: BLE001 - reported per binary, the run goes on
        out["error"] = f"{type(e).__name__}: {e}".strip()[-4000:]
    return out


def cuobjdump(cubin: bytes, flag: str) -> str:
    """``cuobjdump <flag>`` (the one in triton's wheel) on a cubin."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run([triton.knobs.nvidia.cuobjdump.path, flag, f.name],
                              check=True, capture_output=True, text=True).stdout


def cuobjdump_registers(cubin: bytes) -> int:
    text = cuobjdump(cubin, "--dump-resource-usage")
    found = _CUOBJDUMP_REG.findall(text)
    if len(found) != 1:
        raise RuntimeError(f"cuobjdump --dump-resource-usage: expected one REG entry, got:\n{text}")
    return int(found[0])


# ---------------------------------------------------------------------------
# the static performance report (--sass): instruction counts from cuobjdump -sass
# ---------------------------------------------------------------------------

_SASS_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
_HEX_TARGET = re.compile(r"0x([0-9a-f]+)\s*$")
# per SM on sm_80 and sm_90: 64 K registers, 64 warps, 32 blocks; shared memory
# a block may use beside the 1 KiB the runtime reserves per block
SM_REGISTERS, SM_WARPS, SM_BLOCKS, RESERVED_SHARED = 65_536, 64, 32, 1024
SM_SHARED = {80: 167_936, 90: 233_472}
SASS_CLASSES = {"SHFL": ("SHFL",), "BAR": ("BAR",), "LDS/STS": ("LDS", "STS"), "MUFU": ("MUFU",),
                "LDG/STG": ("LDG", "STG")}
_NVDISASM_LINE = re.compile(r'//## File "(.*)", line (\d+)|^\s+/\*([0-9a-f]{4,})\*/\s+\S', re.M)


def sass_structure(sass: str, lines: dict[int, str] | None = None) -> dict:
    """The kernel body's instructions (up to its first subroutine: the slow paths of div.rn / sqrt.rn
    that CALL jumps to) and its loops, from backward branches: ``{"ops": [[pc, opcode]], "loops": [[start, end]],
    "copies": [per loop: [source loop, copies], see unrolled_copies]}``.

    The body does not end at its last EXIT: ptxas rotates loops, so a step
    loop's exit test can be an EXIT with the loop's back branch after it.
    Subroutines are the CALL targets past the last EXIT (on sm_80 ptxas
    also CALLs the next instruction inside loops).  ``lines`` (pc: source
    line, ``source_lines``) finds the copies: see ``unrolled_copies``.
    """
    ops, loops, calls = [], [], []
    for pc, opcode, operands in _SASS_LINE.findall(sass):
        pc = int(pc, 16)
        ops.append([pc, opcode])
        target = _HEX_TARGET.search(operands.strip())
        if target and opcode.startswith("CALL"):
            calls.append(int(target.group(1), 16))
        elif target and opcode.startswith("BRA") and int(target.group(1), 16) < pc:
            loops.append([int(target.group(1), 16), pc])
    last_exit = max((pc for pc, opcode in ops if opcode == "EXIT"), default=0)
    end = min((pc for pc in calls if pc > last_exit), default=ops[-1][0] + 1)
    ops = [op for op in ops if op[0] < end and op[1] != "NOP"]
    loops = sorted(loop for loop in loops if loop[1] < end)
    return dict(ops=ops, loops=loops, copies=unrolled_copies(ops, loops, lines or {}))


def _encloses(outer: list, inner: list) -> bool:
    """Whether the SASS loop ``outer`` ([start, end] pcs) contains ``inner`` (itself included)."""
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def unrolled_copies(ops: list, loops: list, lines: dict[int, str]) -> list[list[int]]:
    """Per SASS loop, [its source loop (the index of that loop's first SASS loop), how many of the source
    loop's trips one trip of it runs (1 unless ptxas unrolled it)].

    ptxas unrolls a loop whose trip count is a run-time value into a loop of
    U copies of the body and a remainder loop of one copy (reduce_update's
    split loop on sm_90: U = 4); counting both at the source loop's trips
    counted its work U + 1 times.  Such loops are siblings whose back
    branches come from the same source line (the ``for``).  A loop's U is
    its memory instructions (LDG, STG, LDS, STS) over the smallest
    sibling's: a copy loads and stores its own trip's addresses, where the
    copies share some of their arithmetic (5→2's split loop: 4 times the
    loads at 2.9 times the other instructions).  Without memory
    instructions, its instructions over the smallest sibling's, leaving out
    the ``for`` line's (the loop control, which unrolling does not copy).
    """
    memory = SASS_CLASSES["LDG/STG"] + SASS_CLASSES["LDS/STS"]

    def parents(loop):
        return tuple(tuple(o) for o in loops if o != loop and _encloses(o, loop))

    sources: dict[tuple, list[int]] = {}
    for i, loop in enumerate(loops):  # a loop without a line in the table is a source loop of its own
        sources.setdefault((parents(loop), lines.get(loop[1], f"loop {i}")), []).append(i)
    out = [[i, 1] for i in range(len(loops))]
    for (_, line), members in sources.items():
        if len(members) == 1:
            continue
        bodies = {i: [(pc, op) for pc, op in ops if loops[i][0] <= pc <= loops[i][1]] for i in members}
        sizes = {i: sum(op.split(".")[0] in memory for _, op in body) for i, body in bodies.items()}
        if not min(sizes.values()):
            sizes = {i: sum(lines.get(pc) != line for pc, _ in body) for i, body in bodies.items()}
        smallest = max(1, min(sizes.values()))
        for i in members:
            out[i] = [members[0], max(1, round(sizes[i] / smallest))]
    return out


def source_lines(cubin: bytes) -> dict[int, str]:
    """pc: the source line ("file:line") it was compiled from (the cubin's line table, ``nvdisasm -g``)."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([triton.knobs.nvidia.nvdisasm.path, "-g", "-c", f.name],
                              check=True, capture_output=True, text=True).stdout
    out, line = {}, None
    for file, number, pc in _NVDISASM_LINE.findall(text):
        if number:
            line = f"{file}:{number}"
        else:
            out[int(pc, 16)] = line
    return out


def occupancy(registers: int, shared: int, num_warps: int, arch: int) -> dict:
    """Blocks per SM as the CUDA occupancy calculator computes them, and what limits them."""
    per_warp = -(-registers * 32 // 256) * 256  # registers are allocated per warp, 256 at a time
    limits = {
        "registers": (SM_REGISTERS // per_warp) // num_warps,
        "warps": SM_WARPS // num_warps,
        "blocks": SM_BLOCKS,
        "shared": SM_SHARED[arch] // (shared + RESERVED_SHARED) if shared else SM_BLOCKS,
    }
    blocks = min(limits.values())
    return dict(blocks=blocks, limit=min(limits, key=limits.get), limits=limits)


def _trips(kernel: str, args: dict) -> tuple[tuple[int, ...], int]:
    """(trips per step of a loop at each nesting depth, per trip of the loop around it; programs per instance).

    persistent_run: the step loop runs once per step, the batch-chunk loop
    cdiv(cdiv(B, 4), BLOCK_Q) times in it, the lane loop four times in that.
    warp_run: likewise, with chunks of BLOCK_Q quads, PACK instances per program.
    step_hidden: its two feature loops cdiv(n, BLOCK_N) times each, in each
    of the NB batch-block programs.  step_grads: its row loop
    split_quads / BLOCK_Q times (fewer in a last split that the batch does not
    fill), in each of the cdiv(n, BLOCK_N) x S programs.  reduce_update: its
    loop over the S splits, in each feature-block program.  Deeper loops
    count once.
    """
    chunks = -(-(-(-args["batch_size"] // 4)) // args["BLOCK_Q"]) if "BLOCK_Q" in args else None
    if kernel == "warp_run":
        return (1, chunks, 4), 1 / args["PACK"]
    if kernel == "persistent_run":
        return (1, chunks, 4), 1
    feature_blocks = -(-args["n_features"] // args["BLOCK_N"])
    if kernel == "step_hidden":
        return (feature_blocks,), chunks
    if kernel == "step_grads":
        splits = -(-(-(-args["batch_size"] // 4)) // args["split_quads"])
        return (args["split_quads"] // args["BLOCK_Q"],), feature_blocks * splits
    return (args["n_splits"],), feature_blocks


def sass_profile(structure: dict, kernel: str, args: dict, num_warps: int) -> dict:
    """Dynamic instruction counts per thread per training step, from the static SASS and the loop trip counts.

    Each instruction counts once per trip of every loop around it (top-level
    loops and, for the persistent kernel, the batch-chunk loop nested in the
    step loop; a loop that ptxas unrolled shares its source loop's trips
    with its remainder loop, ``_loop_trips``); the persistent kernel's code
    outside the step loop runs once per run and is left out.  Branches
    inside loop bodies are counted as if taken (an upper bound for bodies
    with rarely taken paths).
    """
    depth_trips, programs = _trips(kernel, args)
    loops = structure["loops"]
    top = [loop for loop in loops if not any(o != loop and _encloses(o, loop) for o in loops)]
    trips = _loop_trips(loops, structure["copies"], depth_trips)
    counts = dict.fromkeys(["total", *SASS_CLASSES], 0)
    for pc, opcode in structure["ops"]:
        enclosing = [i for i, loop in enumerate(loops) if loop[0] <= pc <= loop[1]]
        if not enclosing:
            weight = 0 if kernel in ("persistent_run", "warp_run") else 1
        else:
            weight = math.prod(trips[i] for i in enclosing)
        counts["total"] += weight
        for name, prefixes in SASS_CLASSES.items():
            if opcode.split(".")[0] in prefixes:
                counts[name] += weight
    threads = 32 * num_warps
    # sampled (row, feature) elements per step: B n (reduce_update gets only loss_scale = 1 / (B n))
    if "batch_size" in args:
        elements = args["batch_size"] * args.get("n_features", args.get("N"))
    else:
        elements = round(1 / args["loss_scale"])
    return dict(per_thread_step=counts, per_element=round(counts["total"] * threads * programs / elements, 2),
                top_loops=len(top), nested_loops=len(loops) - len(top), threads=threads, programs=programs,
                trips=list(depth_trips), unrolled=[u for _, u in structure["copies"] if u > 1])


def _loop_trips(loops: list, copies: list[list[int]], depth_trips) -> list[int]:
    """Per SASS loop, its trips per trip of the loop around it: its depth's source trips (deeper loops than
    ``depth_trips`` once), shared out among the copies of one source loop (``unrolled_copies``) as ptxas runs
    them: the U-copy loop ``trips // U`` times, the remainder loop the rest."""
    trips = []
    for loop in loops:
        depth = sum(_encloses(o, loop) for o in loops)
        trips.append(depth_trips[depth - 1] if depth <= len(depth_trips) else 1)
    for source in {source for source, _ in copies}:
        members = sorted((i for i, (s, _) in enumerate(copies) if s == source), key=lambda i: -copies[i][1])
        left = trips[source]
        for i in members:
            trips[i], left = left // copies[i][1], left % copies[i][1]
    return trips


def _compile_job(job: Job, sass: bool = False) -> dict:
    return compile_one(job.kernel, job.args, job.options, job.arch, sass, job.other_batches)


# ---------------------------------------------------------------------------
# the sampler alone: no divide, no FMA on the sample path
# ---------------------------------------------------------------------------


@triton.jit(do_not_specialize=["seed_lo", "seed_hi", "step"])
def sampler_probe_kernel(x_ptr, p_ptr, inv_p_ptr, seed_lo, seed_hi, instance, step,
                         N_PAD: tl.constexpr, BLOCK_Q: tl.constexpr, SIGNED: tl.constexpr):
    """Stores ``sample_block``'s x and nothing else: its PTX is the sample path's."""
    features = tl.arange(0, N_PAD)
    quads = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    rows = tl.program_id(0) * (4 * BLOCK_Q) + tl.arange(0, 4 * BLOCK_Q)
    p = tl.load(p_ptr + features)
    inv_p = tl.load(inv_p_ptr + features)
    x = sample_block(seed_lo, seed_hi, instance, step, quads, features, p, inv_p, SIGNED)
    tl.store(x_ptr + features[:, None] * (4 * BLOCK_Q * tl.num_programs(0)) + rows[None, :], x)


SAMPLER_PROBES = [
    ("sample_block", "sampler_probe_kernel",
     dict(x_ptr=F32, p_ptr=F32, inv_p_ptr=F32, seed_lo=0, seed_hi=0, instance=3, step=7, N_PAD=8, BLOCK_Q=16,
          SIGNED=False)),
    ("sample_block signed", "sampler_probe_kernel",
     dict(x_ptr=F32, p_ptr=F32, inv_p_ptr=F32, seed_lo=0, seed_hi=0, instance=3, step=7, N_PAD=8, BLOCK_Q=16,
          SIGNED=True)),
    ("uniform_kernel", "fastsup.kernels.sampling:uniform_kernel",
     dict(out_ptr=F32, instance_ids_ptr=I64, seed_lo=0, seed_hi=0, step=7, n_rows=1000, n_columns=5, STREAM=0,
          BLOCK_Q=64, BLOCK_C=8)),
]


def probe_ptx(label: str, arch: int) -> str:
    """The PTX of the sampler probe ``label`` (a ``SAMPLER_PROBES`` entry) for ``sm_<arch>``."""
    from triton.backends.compiler import GPUTarget

    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    kernel, args = next((kernel, args) for name, kernel, args in SAMPLER_PROBES if name == label)
    fn, signature, constexprs, attrs, options = specialize(kernel, args, dict(num_warps=4), arch)
    source = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options.__dict__).asm["ptx"]


def sampler_jobs(archs) -> list[Job]:
    jobs = []
    for label, kernel, args in SAMPLER_PROBES:
        for arch in archs:
            jobs.append(Job(kernel, arch, dict(num_warps=4), args, dict(probe=label), [label], False, ("probe", label, arch)))
    return jobs


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

TABLE_COLUMNS = ["kernel", "model", "act", "mag", "opt", "seed", "n_pad/bn", "m_pad", "bq", "path", "warps", "arch",
                 "regs", "spill st+ld", "stack", "smem", "sec", "auto", "workloads"]


def _cell(value, yes=None, no=None) -> str:
    if value is None:
        return "-"
    if yes is not None:
        return yes if value else no
    return str(value)


def _path(config: dict) -> str:
    if config["dot"] is None:
        return "-"
    return ("dot" + ("/tf32" if config["precision"] == "tf32" else "")) if config["dot"] else "reg"


def _workloads(names: list[str]) -> str:
    sizes = list(dict.fromkeys(name.split()[1] if " " in name else name for name in names))
    text = ",".join(sizes[:4]) + (f",+{len(sizes) - 4}" if len(sizes) > 4 else "")
    return f"{text} ({len(names)})"


def table_row(r: dict) -> list[str]:
    c = r["config"]
    failed = r["error"] is not None
    return [
        r["kernel"], c["model"], _cell(c["act"]), _cell(c["signed"], "signed", "unif"),
        _cell(c["decoupled"], "adamw", "adam"), _cell(c.get("seed")), str(c["n_pad"]), str(c["m_pad"]),
        _cell(c["block_q"]), _path(c),
        str(c["warps"]), f"sm_{r['arch']}", "FAIL" if failed else _cell(r["registers"]),
        "FAIL" if failed else "-" if r["spill_stores"] is None else f"{r['spill_stores']}+{r['spill_loads']}",
        _cell(r["stack"]), _cell(r["shared"]),
        _cell(r["seconds"]), "auto" if r["auto"] else "", _workloads(r["shapes"]),
    ]


def format_table(rows: list[dict]) -> str:
    lines = [TABLE_COLUMNS] + [table_row(r) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


SASS_COLUMNS = ["kernel", "model", "n_pad/bn", "m_pad", "bq", "path", "warps", "arch", "regs", "smem",
                "blocks/SM", "limit", "instr/thread/step", "instr/element", "SHFL", "BAR", "LDS/STS", "MUFU",
                "LDG/STG", "loops", "workloads"]


def format_sass_table(rows: list[dict]) -> str:
    """The static performance report: one line per kernel binary compiled with ``--sass``."""
    lines = [SASS_COLUMNS]
    for r in rows:
        c, p = r["config"], r.get("sass")
        if p is None:
            continue
        counts = p["per_thread_step"]
        lines.append([r["kernel"], c["model"], str(c["n_pad"]), str(c["m_pad"]), _cell(c["block_q"]), _path(c),
                      str(c["warps"]), f"sm_{r['arch']}", str(r["registers"]), str(r["shared"]), str(p["blocks"]),
                      p["limit"], str(counts["total"]), str(p["per_element"]), str(counts["SHFL"]),
                      str(counts["BAR"]), str(counts["LDS/STS"]), str(counts["MUFU"]), str(counts["LDG/STG"]),
                      f"{p['top_loops']}+{p['nested_loops']}", _workloads(r["shapes"])])
    widths = [max(len(line[i]) for line in lines) for i in range(len(SASS_COLUMNS))]
    note = ("per thread per training step; persistent_run: the step loop's body with its batch-chunk loop run "
            "cdiv(cdiv(B, 4), bq) times and its lane loop 4 times in each; step kernels: one launch, feature / batch-block loops at their trip "
            "counts; instr/element: per sampled (row, feature) element, all of an instance's programs; "
            "loops: top-level+nested in the SASS, where a loop ptxas unrolled (its copies and remainder loop) "
            "counts once per trip of the source loop")
    return "\n".join(["static SASS report (cuobjdump -sass; counts, not timings): " + note] +
                     ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines])


def problems(row: dict) -> list[str]:
    """Why this binary fails the check (empty when it passes)."""
    if row["error"] is not None:
        return ["compile failed: " + row["error"]]
    out = []
    if row["spill_stores"] or row["spill_loads"]:
        out.append(f"spills: {row['spill_stores']} B stores + {row['spill_loads']} B loads, {row['stack']} B stack, "
                   f"{row['registers']} registers")
    if row["registers"] > 255:
        out.append(f"{row['registers']} registers > 255")
    limit = SHARED_LIMIT.get(row["arch"])
    if limit is not None and row["shared"] > limit:
        out.append(f"{row['shared']} B shared memory > sm_{row['arch']}'s {limit} B: fails to launch")
    if row["kernel"] in KERNELS and row["narrow_offsets"]:
        out.append(f"32-bit pointer offsets that grow with the run: {'; '.join(row['narrow_offsets'][:3])}")
    if row["kernel"] in KERNELS and row["approx_div"]:
        out.append(f"{row['approx_div']} approximate divides (div.full / div.approx / rcp.approx) in the PTX")
    if "probe" in row["config"] and (row["float_div"] or row["inexact_fma"]):
        out.append(f"the sample path has {row['float_div']} float divides and {row['inexact_fma']} FMAs "
                   "that may round differently from a multiply and an add in its PTX")
    return out


def _name(row: dict) -> str:
    c = row["config"]
    if "probe" in c:
        return f"sampler probe {c['probe']}"
    return f"{row['kernel']} " + " ".join(f"{k}={v}" for k, v in c.items() if v is not None)


def run_jobs(jobs: list[Job], processes: int, sass: bool = False) -> list[dict]:
    """Compile every job (in a fresh temporary triton cache), results in job order; progress on stderr."""
    cache = tempfile.mkdtemp(prefix="fastsup-check-cache-")
    previous = os.environ.get("TRITON_CACHE_DIR")
    os.environ["TRITON_CACHE_DIR"] = cache
    results: list[dict | None] = [None] * len(jobs)

    def progress(i, done):
        r, job = results[i], jobs[i]
        state = "FAIL" if r["error"] else f"{r['registers']} regs, spill {r['spill_stores']}+{r['spill_loads']}"
        print(f"[{done}/{len(jobs)}] {job.kernel} sm_{job.arch} {_workloads(job.shapes)}: {state}, {r['seconds']} s",
              file=sys.stderr, flush=True)

    try:
        if processes > 1:
            import multiprocessing

            # fork: workers inherit the imported kernels and this process's environment
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = {pool.submit(_compile_job, job, sass): i for i, job in enumerate(jobs)}
                for done, future in enumerate(as_completed(futures), 1):
                    results[futures[future]] = future.result()
                    progress(futures[future], done)
        else:
            for i, job in enumerate(jobs):
                results[i] = _compile_job(job, sass)
                progress(i, i + 1)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if previous is None:
            os.environ.pop("TRITON_CACHE_DIR", None)
        else:
            os.environ["TRITON_CACHE_DIR"] = previous
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastsup.kernels.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="every variant of the paper's sizes and of the size table, and tf32 (default: the "
                             "paper's experiments as they run, plus every MODEL on both paths)")
    parser.add_argument("--arch", default=",".join(map(str, ARCHS)), help="compute capabilities (default 80,90)")
    parser.add_argument("--json", metavar="PATH", help="write every result here")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="compile processes (default min(2, cores))")
    parser.add_argument("--sass", action="store_true",
                        help="also print the static performance report: blocks per SM, SASS instructions per "
                             "thread per step and per sampled element, SHFL / BAR / shared-memory counts")
    parser.add_argument("--list", action="store_true", help="list the binaries and stop")
    parser.add_argument("--only", metavar="REGEX", help="only the binaries whose kernel or workloads match")
    args = parser.parse_args(argv)
    archs = [int(a) for a in args.arch.split(",") if a.strip()]

    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("TRITON_INTERPRET is set: the kernels would be interpreted, not compiled; unset it", file=sys.stderr)
        return 2
    os.environ["TRITON_DEFAULT_FP_FUSION"] = "1"
    os.environ["TRITON_DUMP_PTXAS_LOG"] = "1"

    started = time.perf_counter()
    jobs = build_jobs(args.full, archs)
    probes = sampler_jobs(archs)
    if args.only:
        wanted = re.compile(args.only)
        jobs, probes = ([j for j in group if any(wanted.search(f"{j.kernel} {s}") for s in j.shapes)]
                        for group in (jobs, probes))
    print(f"{len(jobs)} kernel binaries + {len(probes)} sampler probes for sm_{', sm_'.join(map(str, archs))}, "
          f"{args.jobs} process{'es' if args.jobs > 1 else ''} (planned in {time.perf_counter() - started:.1f} s)",
          flush=True)
    if args.list:
        print(format_table([dict(kernel=j.kernel, arch=j.arch, config=j.config, auto=j.auto, shapes=j.shapes,
                                 error=None, registers=None, spill_stores=None, spill_loads=None, stack=None,
                                 shared=None, seconds=None) for j in jobs]))
        return 0

    # the longest compiles first, so that the pool does not end on one of them
    order = sorted(jobs, key=lambda j: (j.config["dot"] is not True, j.kernel != "persistent_run",
                                        -j.config["n_pad"] * j.config["m_pad"] * (j.config["block_q"] or 1)))
    results = run_jobs(order + probes, args.jobs, args.sass)
    wall = time.perf_counter() - started

    rows = [dict(kernel=job.kernel.split(":")[-1], arch=job.arch, config=job.config, auto=job.auto,
                 shapes=job.shapes, **result) for job, result in zip(order + probes, results)]
    kernel_rows = sorted(rows[:len(order)], key=lambda r: (list(KERNELS).index(r["kernel"]), r["config"]["n_pad"],
                                                           r["config"]["m_pad"], str(r["config"]), r["arch"]))
    probe_rows = rows[len(order):]
    failures = [(r, p) for r in kernel_rows + probe_rows for p in problems(r)]
    cpu = sum(r["cpu_seconds"] or 0 for r in rows)
    if args.json:
        report = dict(triton=triton.__version__, archs=archs, full=args.full, processes=args.jobs,
                      wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1), run=RUN,
                      fp_fusion=os.environ["TRITON_DEFAULT_FP_FUSION"], results=kernel_rows, sampler=probe_rows,
                      failures=[dict(name=_name(r), kernel=r["kernel"], arch=r["arch"], problem=p)
                                for r, p in failures])
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)

    print(format_table(kernel_rows))
    print()
    if args.sass:
        print(format_sass_table(kernel_rows))
        print()
    for r in probe_rows:
        state = "FAIL" if r["error"] else (f"{r['float_div']} float divides, {r['fma']} FMAs "
                                           f"({r['inexact_fma']} with a product that can round)")
        print(f"sampler probe {r['config']['probe']:<20} sm_{r['arch']}: {state} in its PTX "
              f"({r['registers']} registers)")
    print(f"\n{len(rows)} binaries in {wall:.1f} s wall, {cpu:.1f} s CPU compiling ({args.jobs} process"
          f"{'es' if args.jobs > 1 else ''}); {len(failures)} problem{'' if len(failures) == 1 else 's'}")
    for r, p in failures:
        lines = [line for line in p.splitlines() if line.strip()]
        summary = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1].strip()}"
        print(f"FAIL {_name(r)} sm_{r['arch']}: {summary[:400]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
