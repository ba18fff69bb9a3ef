"""Compile every kernel configuration the dispatcher can choose, for sm_80 and sm_90, with no GPU.

Run as::

    python -m fastsup.kernels.check [--quick] [--arch 80,90] [--json PATH] [--jobs N] [--only REGEX] [--list]

For the paper's experiment shapes (and, without ``--quick``, a size table up
to n = 1000, m = 100) and every model variant that changes the compiled code
(the ``MODEL``, ``ACT``, ``SIGNED`` and ``DECOUPLED`` constexprs; ``tf32``
for dot plans; an i64-typed seed), this asks
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

Exit status 1 on any compile failure, any spill, more than 255 registers,
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
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import triton
import triton.language as tl

from fastsup.backends.triton_backend import kernel_scalars
from fastsup.config import TrainConfig
from fastsup.kernels.block import MODEL_CODES, sample_block
from fastsup.kernels.dispatch import plan_for
from fastsup.kernels.persistent import persistent_run_args
from fastsup.kernels.step import StepBuffers, n_batch_blocks, reduce_update_args, step_partials_args
from fastsup.kernels.utils import KernelInputs, Moments

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
# The run every experiment uses (NOTEBOOK_DEFAULTS); these values only reach
# the binary through triton's specialization of int arguments (== 1, % 16).
RUN = dict(n_instances=10, batch_size=1024, steps=10_000, log_every=100, seed=0)

# Shared memory a block may use (opt-in maximum): A100 163 KiB, H100 227 KiB.
# Triton raises OutOfResources at load time above the device's limit.
SHARED_LIMIT = {80: 166_912, 90: 232_448}

KERNELS = {
    "persistent_run": "fastsup.kernels.persistent:persistent_run_kernel",
    "step_partials": "fastsup.kernels.step:step_partials_kernel",
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


# --quick, register-broadcast path: one paper experiment of each MODEL, as it runs
# (persistent by the dispatcher's choice, and the step kernels a user may force).
QUICK_REGISTER = [
    ("intro", 5, 2, "relu_output", "relu"),
    ("linear_vs_relu", 20, 5, "linear", "relu"),  # the paper's largest persistent tile
    ("privileged", 6, 3, "relu_hidden", "relu"),
    ("abs", 3, 6, "abs", "relu"),  # m > n
]


# Seeds are typed by value (``do_not_specialize`` stops value specialization,
# not typing): seed_lo / seed_hi >= 2**31 make them i64, another binary.
WIDE_SEED = 2**63 + 2**31 + 1


def workloads(quick: bool) -> list[tuple]:
    """(label, n, m, model, activation, magnitude, optimizer, seed) to plan.

    Full: every shape of the paper and of the size table, with every variant.
    Quick (about 20 binaries per arch): ``QUICK_REGISTER``, and every MODEL at
    the paper's smallest size on the tl.dot path (the tf32 opt-in), so that
    every kernel meets every MODEL on both paths, at the paper's sizes only.
    Both: the intro once more with a seed whose two words are i64-typed (and,
    full only, the smallest dot size too).
    """
    default = lambda label, n, m, model, act: (label, n, m, model, act, default_magnitude(model), "adamw")  # noqa: E731
    on_dot = sorted((n * m, label, n, m) for label, n, m, model, act in PAPER_SHAPES
                    if plan_of(make_config(n, m, model, act, default_magnitude(model), "adamw"), "step", "tf32").use_dot)
    wide = [default("intro", 5, 2, "relu_output", "relu") + (WIDE_SEED,)]
    if not quick:
        sizes = list(dict.fromkeys([(label, n, m) for label, n, m, _, _ in PAPER_SHAPES]))
        known = {(n, m) for _, n, m in sizes}
        sizes += [("table", n, m) for n in TABLE_N for m in TABLE_M if m < n and (n, m) not in known]
        if on_dot:
            wide.append(default(*on_dot[0][1:], "relu_output", "relu") + (WIDE_SEED,))
        return [(label, n, m, *variant, 0) for label, n, m in sizes for variant in variants()] + wide
    out = [default(*w) + (0,) for w in QUICK_REGISTER]
    if on_dot:
        _, label, n, m = on_dot[0]
        out += [default(label, n, m, model, "relu") + (0,) for model in MODELS]
    return out + wide


def make_config(n, m, model, activation, magnitude, optimizer, seed=0) -> TrainConfig:
    return TrainConfig(n_features=n, n_hidden=m, model=model, activation=activation, magnitude=magnitude,
                       optimizer=optimizer, activation_threshold=-0.25 if activation == "exrelu" else 0.0,
                       **{**RUN, "seed": seed})


def placeholder_inputs(config: TrainConfig) -> KernelInputs:
    """``KernelInputs`` of ``config`` with pointer placeholders for the tensors (what ``specialize`` mocks)."""
    tensors = {f.name: F32 for f in dataclasses.fields(KernelInputs) if f.type == "torch.Tensor"}
    return KernelInputs(**{**tensors, "instance_ids": I64}, **kernel_scalars(config))


def launch_args(kernel: str, config: TrainConfig, plan) -> tuple[dict, int]:
    """The kernel's arguments by name and its num_warps, from the builder its launcher uses."""
    inputs = placeholder_inputs(config)
    moments = Moments(*[F32] * len(dataclasses.fields(Moments)))
    if kernel == "persistent_run":
        return persistent_run_args(inputs, moments, F32, plan, 0, config.steps, config.log_every, 0)
    buffers = StepBuffers(moments, loss_part=F32, d_enc_part=F32, d_dec_part=F32, db_part=F32, loss=F32,
                          step_index=I64, n_blocks=n_batch_blocks(config.batch_size, plan))
    if kernel == "step_partials":
        return step_partials_args(inputs, buffers, plan)
    if kernel == "reduce_update":
        return reduce_update_args(inputs, buffers, plan)
    raise ValueError(kernel)


def plan_of(config: TrainConfig, strategy: str = "auto", precision: str = "ieee"):
    return plan_for(config.n_features, config.n_hidden, config.batch_size, strategy, precision)


@dataclasses.dataclass
class Job:
    kernel: str
    arch: int
    num_warps: int
    args: dict  # by name; pointers as F32 / I64
    config: dict  # the table's description of the binary
    shapes: list  # "label n→m model/act/magnitude/optimizer" of every workload that launches this binary
    auto: bool = False  # the dispatcher's own choice for at least one workload
    key: tuple = ()


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


def specialize(kernel: str, args: dict, num_warps: int, arch: int):
    """Triton's own binder on these arguments: (signature, constexprs, attrs, options) of the launch."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    fn = _resolve(kernel)
    backend = make_backend(GPUTarget("cuda", arch, 32))
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    # the options JITFunction.run adds to every launch
    kwargs = dict(num_warps=num_warps, debug=fn.debug or triton.knobs.runtime.debug,
                  instrumentation_mode=triton.knobs.compilation.instrumentation_mode,
                  fpsan_homomorphic_casts=triton.knobs.compilation.fpsan_homomorphic_casts)
    bound, specialization, options = binder(**{k: _mock(v) for k, v in args.items()}, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    return fn, signature, constexprs, attrs, options


def describe(kernel: str, config: TrainConfig, plan) -> dict:
    """The table's columns for one binary (None where the kernel has no such constexpr)."""
    partials, update = kernel != "reduce_update", kernel != "step_partials"
    return dict(
        model=config.model,
        act=config.activation if partials else None,
        signed=config.magnitude == "signed" if partials else None,
        decoupled=config.optimizer == "adamw" if update else None,
        n_pad=plan.reduce_block_n if kernel == "reduce_update" else plan.block_n, m_pad=plan.m_pad,
        block_q=plan.block_q if partials else None,
        dot=plan.use_dot if partials else None,
        precision=plan.precision if partials and plan.use_dot else None,
        warps=launch_args(kernel, config, plan)[1],
        seed="i64" if config.seed >= 2**31 else None,
    )


def build_jobs(quick: bool, archs) -> list[Job]:
    """One job per distinct binary.

    Binaries are the same when kernel, arch, num_warps, every constexpr and the
    argument types agree (types include triton's ``== 1`` specialization, which
    turns an int argument into a constant).  The ``tt.divisibility`` hints of
    int arguments (n % 16 == 0) are not part of the key: the first workload's
    are compiled, and recorded.
    """
    jobs: dict[tuple, Job] = {}
    for label, n, m, model, activation, magnitude, optimizer, seed in workloads(quick):
        config = make_config(n, m, model, activation, magnitude, optimizer, seed)
        workload = f"{label} {n}→{m} {model}/{activation}/{magnitude}/{optimizer}" + (" seed64" if seed else "")
        auto = plan_of(config, "auto")
        plans = [(auto, True)]
        if auto.strategy == "persistent":
            plans.append((plan_of(config, "step"), False))  # a user may force strategy="step"
        tf32 = plan_of(config, "step", "tf32")  # the tf32 opt-in is the only way onto the dot path
        if tf32.use_dot:
            plans.append((tf32, False))
        for plan, is_auto in plans:
            kernels = ["persistent_run"] if plan.strategy == "persistent" else ["step_partials", "reduce_update"]
            for kernel in kernels:
                args, num_warps = launch_args(kernel, config, plan)
                for arch in archs:
                    _, signature, constexprs, attrs, _ = specialize(kernel, args, num_warps, arch)
                    key = (kernel, arch, num_warps, tuple(signature.items()),
                           tuple(sorted((k, repr(v)) for k, v in constexprs.items())))
                    job = jobs.get(key)
                    if job is None:
                        job = jobs[key] = Job(kernel, arch, num_warps, args, describe(kernel, config, plan), [],
                                              False, key)
                    job.shapes.append(workload)
                    job.auto |= is_auto
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ptx_body(ptx: str) -> str:
    """The PTX without its debug sections (which name source lines, not instructions)."""
    return ptx.split(".section", 1)[0]


def compile_one(kernel: str, args: dict, num_warps: int, arch: int) -> dict:
    from triton.backends.compiler import GPUTarget

    out = dict(registers=None, spill_stores=None, spill_loads=None, stack=None, shared=None, seconds=None,
               cpu_seconds=None, approx_div=None, float_div=None, fma=None, inexact_fma=None, mma=None, attrs=None,
               error=None)
    try:
        fn, signature, constexprs, attrs, options = specialize(kernel, args, num_warps, arch)
        # the specialization of int arguments (pointers are always 16-byte aligned)
        names = [fn.arg_names[k[0]] for k in attrs]
        out["attrs"] = {name: v for name, v in zip(names, attrs.values()) if v and not signature[name].startswith("*")}
        log = io.StringIO()
        start, cpu_start, children_start = time.perf_counter(), time.process_time(), _children_cpu()
        with contextlib.redirect_stdout(log):  # ptxas -v log, printed by triton with TRITON_DUMP_PTXAS_LOG=1
            compiled = triton.compile(triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs,
                                                                attrs=attrs),
                                      target=GPUTarget("cuda", arch, 32), options=options.__dict__)
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
    except Exception as e:  # noqa: BLE001 - reported per binary, the run goes on
        out["error"] = f"{type(e).__name__}: {e}".strip()[-4000:]
    return out


def cuobjdump_registers(cubin: bytes) -> int:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([triton.knobs.nvidia.cuobjdump.path, "--dump-resource-usage", f.name],
                              check=True, capture_output=True, text=True).stdout
    found = _CUOBJDUMP_REG.findall(text)
    if len(found) != 1:
        raise RuntimeError(f"cuobjdump --dump-resource-usage: expected one REG entry, got:\n{text}")
    return int(found[0])


def _compile_job(job: Job) -> dict:
    return compile_one(job.kernel, job.args, job.num_warps, job.arch)


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
    fn, signature, constexprs, attrs, options = specialize(kernel, args, 4, arch)
    source = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options.__dict__).asm["ptx"]


def sampler_jobs(archs) -> list[Job]:
    jobs = []
    for label, kernel, args in SAMPLER_PROBES:
        for arch in archs:
            jobs.append(Job(kernel, arch, 4, args, dict(probe=label), [label], False, ("probe", label, arch)))
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


def run_jobs(jobs: list[Job], processes: int) -> list[dict]:
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
                futures = {pool.submit(_compile_job, job): i for i, job in enumerate(jobs)}
                for done, future in enumerate(as_completed(futures), 1):
                    results[futures[future]] = future.result()
                    progress(futures[future], done)
        else:
            for i, job in enumerate(jobs):
                results[i] = _compile_job(job)
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
    parser.add_argument("--quick", action="store_true",
                        help="the paper's experiments as they run, plus every MODEL on both paths "
                             "(default: every variant of the paper's sizes and the size table, and tf32)")
    parser.add_argument("--arch", default=",".join(map(str, ARCHS)), help="compute capabilities (default 80,90)")
    parser.add_argument("--json", metavar="PATH", help="write every result here")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="compile processes (default min(2, cores))")
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
    jobs = build_jobs(args.quick, archs)
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
    results = run_jobs(order + probes, args.jobs)
    wall = time.perf_counter() - started

    rows = [dict(kernel=job.kernel.split(":")[-1], arch=job.arch, config=job.config, auto=job.auto,
                 shapes=job.shapes, **result) for job, result in zip(order + probes, results)]
    kernel_rows = sorted(rows[:len(order)], key=lambda r: (list(KERNELS).index(r["kernel"]), r["config"]["n_pad"],
                                                           r["config"]["m_pad"], str(r["config"]), r["arch"]))
    probe_rows = rows[len(order):]
    failures = [(r, p) for r in kernel_rows + probe_rows for p in problems(r)]
    cpu = sum(r["cpu_seconds"] or 0 for r in rows)
    if args.json:
        report = dict(triton=triton.__version__, archs=archs, quick=args.quick, processes=args.jobs,
                      wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1), run=RUN,
                      fp_fusion=os.environ["TRITON_DEFAULT_FP_FUSION"], results=kernel_rows, sampler=probe_rows,
                      failures=[dict(name=_name(r), kernel=r["kernel"], arch=r["arch"], problem=p)
                                for r, p in failures])
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)

    print(format_table(kernel_rows))
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
