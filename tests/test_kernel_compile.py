"""Compile tests (DESIGN.md section 7.2): the kernels as a GPU would get them, with no GPU.

``python -m fastsup.kernels.check --sass`` (its default subset) compiles
every kernel for every MODEL on both contraction paths at the paper's sizes
for sm_80 and sm_90 (``triton.compile`` runs the whole pipeline down to
ptxas' cubin without a driver); these tests hold its verdict: everything
compiles, nothing spills, at most 255 registers, no 32-bit pointer offset
that grows with the run, and a static SASS report for every binary.  A second test reads the sampler's PTX directly: the
batch is bit-identical to the torch backend's only if the sample path has no
float divide and no FMA that could round differently from torch's separate
multiply and add.

Both run in a subprocess: conftest sets ``TRITON_INTERPRET=1`` in this
process, under which ``@triton.jit`` makes interpreted kernels that cannot
be compiled, and the variable must not be inherited.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HAS_TRITON

pytestmark = pytest.mark.skipif(not HAS_TRITON, reason="needs triton (ptxas ships in its wheel)")

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("warp_run", "persistent_run", "step_hidden", "step_grads", "reduce_update")
MODELS = ("linear", "relu_output", "relu_hidden", "abs")
ARCHS = (80, 90)
SHARED_LIMIT = {80: 166_912, 90: 232_448}  # bytes a block may opt in to: A100, H100


def _compile_env(cache_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    env["TRITON_CACHE_DIR"] = str(cache_dir)  # keep the user's cache out of it
    return env


@pytest.fixture(scope="module")
def quick_check(tmp_path_factory):
    """(completed process, parsed --json report) of one default ``check --sass`` run, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("kernel_check")
    report = tmp / "check.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fastsup.kernels.check", "--sass", "--json", str(report)],
        cwd=ROOT, env=_compile_env(tmp / "cache"), capture_output=True, text=True, timeout=1800,
    )
    if not report.exists():
        pytest.fail(f"check wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc, json.loads(report.read_text())


def _failures(proc) -> str:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    return "\n".join(lines) or proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_quick_check_passes(quick_check):
    proc, report = quick_check
    assert proc.returncode == 0, f"kernel compile check failed:\n{_failures(proc)}"
    assert report["failures"] == []


@pytest.mark.slow
def test_quick_check_covers_every_kernel_model_path_and_arch(quick_check):
    _, report = quick_check
    rows = report["results"]
    for kernel in KERNELS:
        for arch in ARCHS:
            got = {r["config"]["model"] for r in rows if r["kernel"] == kernel and r["arch"] == arch}
            assert got == set(MODELS), f"{kernel} sm_{arch}: models {sorted(got)}"
    # the step's sampling kernels on both paths; the persistent one on the register path (no paper size puts
    # it on dots)
    for kernel, arch in itertools.product(("step_hidden", "step_grads"), ARCHS):
        paths = {(r["config"]["model"], r["config"]["dot"]) for r in rows if r["kernel"] == kernel and r["arch"] == arch}
        assert paths == {(model, dot) for model in MODELS for dot in (False, True)}, f"{kernel} sm_{arch}: {sorted(paths)}"
    for kernel in KERNELS:
        assert any(r["auto"] and r["kernel"] == kernel for r in rows), kernel


@pytest.mark.slow
def test_quick_check_no_spills_and_within_budgets(quick_check):
    _, report = quick_check
    bad = []
    for r in report["results"] + report["sampler"]:
        name = f"{r['kernel']} sm_{r['arch']} {r['config']}"
        if r["error"]:
            bad.append(f"{name}: {r['error'].splitlines()[0]}")
        elif r["spill_stores"] or r["spill_loads"] or r["registers"] > 255:
            bad.append(f"{name}: {r['registers']} registers, spills {r['spill_stores']}+{r['spill_loads']} B")
        elif r["shared"] > SHARED_LIMIT[r["arch"]]:
            bad.append(f"{name}: {r['shared']} B shared memory")
    assert not bad, "\n".join(bad)


@pytest.mark.slow
def test_quick_check_has_no_narrow_run_scaled_offsets_and_reports_sass(quick_check):
    proc, report = quick_check
    for r in report["results"]:
        name = f"{r['kernel']} sm_{r['arch']} {r['config']}"
        assert r["narrow_offsets"] == [], name
        sass = r["sass"]
        assert sass["blocks"] >= 1 and sass["per_thread_step"]["total"] > 0, name
        if r["kernel"] in ("persistent_run", "warp_run"):  # the step loop; in it the chunk loop, and the lane loop unless unrolled
            assert sass["top_loops"] == 1 and sass["nested_loops"] in (1, 2), name
        # ptxas unrolls a run-time loop four times (reduce_update's split loop on sm_90: one trip of the copies
        # loads the loss blocks of four splits, read in the 2→1 and 5→2 listings); a sibling size ratio, which
        # the copies' shared arithmetic skews, read 3 at 5→2
        assert set(sass["unrolled"]) <= {4}, name
    assert "static SASS report" in proc.stdout and "instr/thread/step" in proc.stdout


ROTATED_LOOP_SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/               @P0 EXIT ;
        /*0020*/                   FFMA R2, R2, R3, R4 ;
        /*0030*/              @!P1 CALL.REL.NOINC 0x0040 ;
        /*0040*/                   SHFL.BFLY PT, R5, R2, 0x1, 0x1f ;
        /*0050*/              @!P2 BRA 0x0030 ;
        /*0060*/                   CALL.REL.NOINC 0x00a0 ;
        /*0070*/               @P3 EXIT ;
        /*0080*/                   BRA 0x0020 ;
        /*0090*/                   BRA 0x0090;
        /*00a0*/                   MUFU.RSQ R6, R2 ;
        /*00b0*/                   RET.REL.NODEC R72 0x0 ;
"""


def test_sass_structure_keeps_a_rotated_loops_back_branch_and_drops_subroutines():
    """ptxas puts a step loop's exit test (EXIT) before its back branch, and on sm_80 CALLs the next
    instruction inside loops; the body ends at the first subroutine past the last EXIT (here 0xa0)."""
    from fastsup.kernels.check import sass_structure

    structure = sass_structure(ROTATED_LOOP_SASS)
    assert structure["loops"] == [[0x20, 0x80], [0x30, 0x50]]
    assert [pc for pc, _ in structure["ops"]] == list(range(0, 0xa0, 0x10))


# ptxas' unrolling of a run-time loop (reduce_update's split loop on sm_90): a loop of four copies of the body
# (line 7: a load and an add each, one address add shared by the copies), a remainder loop of one copy, both
# branching back from the for (line 5); then a loop of its own (line 9).  Their sizes are 9 and 3 instructions
# besides the for's, so only the loads tell the four copies.
UNROLLED_LOOP_SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   IADD3 R4, P0, R4, 0x40, RZ ;
        /*0020*/                   LDG.E R5, desc[UR4][R4.64] ;
        /*0030*/                   LDG.E R6, desc[UR4][R4.64+0x10] ;
        /*0040*/                   LDG.E R7, desc[UR4][R4.64+0x20] ;
        /*0050*/                   LDG.E R8, desc[UR4][R4.64+0x30] ;
        /*0060*/                   FADD R2, R2, R5 ;
        /*0070*/                   FADD R2, R2, R6 ;
        /*0080*/                   FADD R2, R2, R7 ;
        /*0090*/                   FADD R2, R2, R8 ;
        /*00a0*/                   IADD3 R9, R9, 0x4, RZ ;
        /*00b0*/               @P0 BRA 0x0010 ;
        /*00c0*/                   IADD3 R4, P0, R4, 0x10, RZ ;
        /*00d0*/                   LDG.E R5, desc[UR4][R4.64] ;
        /*00e0*/                   FADD R2, R2, R5 ;
        /*00f0*/                   IADD3 R9, R9, 0x1, RZ ;
        /*0100*/               @P1 BRA 0x00c0 ;
        /*0110*/                   FMUL R8, R2, R2 ;
        /*0120*/                   FMUL R8, R8, R2 ;
        /*0130*/               @P2 BRA 0x0110 ;
        /*0140*/                   EXIT ;
"""
UNROLLED_LOOP_LINES = {**dict.fromkeys(range(0x10, 0xa0, 0x10), "k.py:7"), 0xa0: "k.py:5", 0xb0: "k.py:5",
                       **dict.fromkeys(range(0xc0, 0xf0, 0x10), "k.py:7"), 0xf0: "k.py:5", 0x100: "k.py:5",
                       **dict.fromkeys(range(0x110, 0x140, 0x10), "k.py:9")}


@pytest.mark.parametrize("splits, counted", [pytest.param(6, 2 + 11 + 5 * 2 + 3 * 6, id="6splits"),
                                             pytest.param(4, 2 + 11 + 5 * 0 + 3 * 4, id="4splits"),
                                             pytest.param(3, 2 + 0 + 5 * 3 + 3 * 3, id="3splits")])
def test_sass_profile_counts_an_unrolled_loop_once_per_source_trip(splits, counted):
    """The four-copy loop runs splits // 4 times and the remainder splits % 4, so every split's body counts
    once, and the loop from another line keeps its trips; without the line table (the check before) both
    loops of the split ran at every split."""
    from fastsup.kernels.check import sass_profile, sass_structure

    structure = sass_structure(UNROLLED_LOOP_SASS, UNROLLED_LOOP_LINES)
    assert structure["copies"] == [[0, 4], [0, 1], [2, 1]]
    args = dict(n_splits=splits, n_features=8, BLOCK_N=8, loss_scale=1 / 1024)
    profile = sass_profile(structure, "reduce_update", args, num_warps=4)
    assert profile["per_thread_step"]["total"] == counted
    assert profile["unrolled"] == [4]
    # without the line table every loop is its own source loop, as the check counted before
    plain = sass_profile(sass_structure(UNROLLED_LOOP_SASS), "reduce_update", args, num_warps=4)
    assert plain["per_thread_step"]["total"] == 2 + 11 * splits + 5 * splits + 3 * splits


def test_occupancy_is_the_calculators(tmp_path):
    """Blocks per SM from registers (allocated per warp, 256 at a time), warps and shared memory."""
    script = ("from fastsup.kernels.check import occupancy as o; import json; "
              "print(json.dumps([o(167, 2048, 4, 90), o(24, 0, 4, 80), o(32, 100_000, 8, 90), o(255, 0, 8, 80)]))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=_compile_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b, c, d = json.loads(proc.stdout)
    assert (a["blocks"], a["limit"]) == (3, "registers")  # 168 x 32 = 5376 per warp: 12 warps of 4
    assert (b["blocks"], b["limit"]) == (16, "warps")  # 24 registers: 85 warps by registers, 16 blocks by warps
    assert (c["blocks"], c["limit"]) == (2, "shared")  # 233472 // (100000 + 1024)
    assert (d["blocks"], d["limit"]) == (1, "registers")  # 256 x 32 = 8192 per warp: 8 warps


_NARROW_SCRIPT = """
import json, sys, importlib.util
import triton
from triton.backends.compiler import GPUTarget
from fastsup.kernels.check import narrow_pointer_multiplies
spec = importlib.util.spec_from_file_location("offset_probes", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = {}
for name in ("narrow", "wide"):
    signature = {"out_ptr": "*fp32", "n_instances": "i32", "n_steps": "i32", "log_every": "i32"}
    source = triton.compiler.ASTSource(fn=getattr(module, name), signature=signature, constexprs={}, attrs={})
    ttir = triton.compile(source, target=GPUTarget("cuda", 90, 32)).asm["ttir"]
    out[name] = narrow_pointer_multiplies(ttir)
print(json.dumps(out))
"""
_OFFSET_PROBES = """
import triton
import triton.language as tl


@triton.jit
def narrow(out_ptr, n_instances, n_steps, log_every):
    k = tl.program_id(0)
    for step in range(n_steps):  # the persistent kernel's history store before the fix
        tl.store(out_ptr + (step // log_every) * n_instances + k, 1.0)


@triton.jit
def wide(out_ptr, n_instances, n_steps, log_every):
    k = tl.program_id(0)
    for step in range(n_steps):
        tl.store(out_ptr + (step // log_every).to(tl.int64) * n_instances + k, 1.0)
"""


def test_narrow_offset_scan_flags_the_32_bit_history_offset(tmp_path):
    """The TTIR scan of the compile check catches ``(step // log_every) * n_instances`` in int32, not in int64."""
    probes = tmp_path / "offset_probes.py"
    probes.write_text(_OFFSET_PROBES)
    proc = subprocess.run([sys.executable, "-c", _NARROW_SCRIPT, str(probes)], cwd=ROOT,
                          env=_compile_env(tmp_path / "cache"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout)
    assert len(found["narrow"]) == 1 and "arith.muli" in found["narrow"][0] and "i32" in found["narrow"][0]
    assert found["wide"] == []


# --------------------------------------------------------------------------
# the sampler's own PTX
# --------------------------------------------------------------------------

_PTX_SCRIPT = """
import json, sys
from fastsup.kernels.check import probe_ptx
print(json.dumps({f"{label}@{arch}": probe_ptx(label, arch)
                  for label in ("sample_block", "sample_block signed", "uniform_kernel") for arch in (80, 90)}))
"""
FLOAT_DIV = re.compile(r"\b(?:div|rcp)\.[\w.]*f(?:16|32|64)\b")
FMA = re.compile(r"^\s*(?:fma|mad)\.[\w.]*f(?:16|32|64)\s+[^,]+,\s*([^,]+),\s*([^,]+),", re.MULTILINE)
EXACT_DOUBLING = "0f40000000"  # 2.0: x * 2 is exact, so fma(x, 2, -1) rounds once, as x * 2 - 1 does


@pytest.fixture(scope="module")
def sampler_ptx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sampler_ptx")
    proc = subprocess.run([sys.executable, "-c", _PTX_SCRIPT], cwd=ROOT, env=_compile_env(tmp / "cache"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # instructions only: the debug sections after the kernel name source lines, not instructions
    return {key: ptx.split(".section", 1)[0] for key, ptx in json.loads(proc.stdout).items()}


def test_sampler_ptx_has_no_divide_and_no_fma(sampler_ptx):
    """The uniforms (``uniform_kernel``) and the batch x (``sample_block``) only convert and multiply."""
    for key, ptx in sampler_ptx.items():
        assert ".entry" in ptx and "cvt.rn.f32" in ptx, f"{key}: not the sampler's PTX?"
        assert "div.full" not in ptx and "div.approx" not in ptx, f"{key}: approximate divide"
        assert not FLOAT_DIV.findall(ptx), f"{key}: float divide {FLOAT_DIV.findall(ptx)}"
        if "signed" not in key:
            assert not FMA.findall(ptx), f"{key}: FMA on the sample path {FMA.findall(ptx)}"


def test_signed_sampler_fma_is_only_the_exact_doubling(sampler_ptx):
    """Signed magnitudes ``m * 2 - 1`` contract into ``fma(m, 2.0, -1.0)``: one rounding either way."""
    for arch in ARCHS:
        fmas = FMA.findall(sampler_ptx[f"sample_block signed@{arch}"])
        assert fmas, "expected the signed map to be contracted (fp-fusion on)"
        assert all(EXACT_DOUBLING in factors for factors in fmas), f"sm_{arch}: inexact FMA {fmas}"


# The instruction model's worst relative error on the full compile tables it was fitted to (sm_90) and on the
# same binaries for sm_80 (held out), rounded up: kernels/instruction_model.py's COEFFICIENTS say which tables.
PREDICTION_TOLERANCE = {
    "warp_run": {80: 0.15, 90: 0.15},
    "persistent_run": {80: 0.25, 90: 0.25},
    "step_hidden": {80: 0.4, 90: 0.4},
    "step_grads": {80: 0.3, 90: 0.3},
    "reduce_update": {80: 0.6, 90: 0.35},
}


@pytest.mark.slow
def test_instruction_model_predicts_the_compiled_sass(quick_check):
    """Predicted SASS instructions per thread per step against the counts of every register-path binary."""
    from fastsup.kernels.instruction_model import COEFFICIENTS, errors, samples

    _, report = quick_check
    checked = set()
    for arch in ARCHS:
        for kernel, rows in samples([report], arch).items():
            for error, (_, sass, label) in zip(errors(rows, COEFFICIENTS[kernel]), rows):
                assert abs(error) <= PREDICTION_TOLERANCE[kernel][arch], \
                    f"{kernel} sm_{arch} {label}: {sass} SASS, {error:+.1%}"
            checked.add(kernel)
    assert checked == set(PREDICTION_TOLERANCE)
