"""Predicted seconds of a training run on a GPU, and the backend ``backend="auto"`` picks from them.

For the Triton kernels the work is the SASS instruction count that
``fastsup.kernels.instruction_model`` predicts (fitted to the compiled
SASS); for the torch backend it is the op-by-op FLOPs and bytes of
``fastsup.kernels.cost_model``.  A kernel takes the longest of three
bounds: its warps issuing at the SMs' full rate, one warp's instructions
one after another (a lone warp cannot issue every clock), and its memory
traffic; an eager torch op takes at least its host-side dispatch time.
A run is its steps, plus for the compiled torch step its compile: the
torch backend runs eager or compiled, whichever is quicker for the run.
The kernels' compile is not counted: triton keeps compiled kernels in its
disk cache, so only the first run of a shape on a machine pays it (2-7 s
per kernel in this project's compile check, on 2 CPU cores).

The machine is an H100 SXM (``cost_model``'s peak figures) and the per-op
and per-launch times below are assumptions stated here, not measurements:
nothing in this file was timed on a GPU.  The dispatcher follows these
numbers, so ``backend="auto"`` never picks the kernels where this model
ranks them slower than the torch backend; how close the model is to a real
GPU is not known until ``benchmarks/gpu_bench.py`` runs on one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from fastsup.kernels import cost_model
from fastsup.kernels.cost_model import H100_SXM_FP32_FLOPS, H100_SXM_HBM_BYTES_PER_S, Shape

H100_SXM_SMS = 132
H100_SXM_CLOCK_HZ = 1.98e9
ISSUE_PER_SM_CLOCK = 4  # four warp schedulers per SM, one warp instruction each per clock
# Clocks per instruction of a warp that runs alone on its scheduler: the
# dependent FP32 latency of Hopper (4 clocks), an assumption for code whose
# chains are mostly dependent.
LONE_WARP_CLOCKS_PER_INSTRUCTION = 4
# Assumptions, not measurements (no GPU has run fastsup):
GRAPH_KERNEL_SECONDS = 2e-6  # one kernel node of a CUDA graph replay (the step strategy replays its windows)
TORCH_OP_SECONDS = 8e-6  # host-side dispatch of one eager torch op on CUDA
COMPILED_KERNEL_SECONDS = 5e-6  # one kernel of the torch.compile'd step (inductor, without CUDA graphs)


@dataclasses.dataclass(frozen=True)
class Prediction:
    strategy: str
    seconds: float  # per training step
    detail: str
    compile_seconds: float = 0.0  # once per run

    def run_seconds(self, steps: int) -> float:
        return self.compile_seconds + steps * self.seconds


def _kernel_seconds(kernel: str, s: Shape, plan) -> tuple[float, str]:
    from fastsup.kernels.instruction_model import thread_instructions, threads_and_programs

    per_thread = thread_instructions(kernel, s.n_features, s.n_hidden, s.batch_size, s.model, plan)
    threads, programs = threads_and_programs(kernel, s.n_features, plan, s.batch_size)
    warps = math.ceil(s.n_instances * programs) * threads // 32
    issue = per_thread * warps / (H100_SXM_SMS * ISSUE_PER_SM_CLOCK * H100_SXM_CLOCK_HZ)
    lone = per_thread * LONE_WARP_CLOCKS_PER_INSTRUCTION / H100_SXM_CLOCK_HZ
    seconds, bound = max((issue, "issue rate"), (lone, "one warp's chain"))
    return seconds, f"{kernel} {per_thread:.0f} instructions per thread, {warps} warps: {bound}"


def _triton(s: Shape, strategy: str) -> Prediction:
    from fastsup.kernels.dispatch import plan_for

    plan = plan_for(s.n_features, s.n_hidden, s.batch_size, strategy, model=s.model)
    counts = cost_model.cost(s, f"triton_{plan.strategy}", plan)
    memory = counts.bytes_per_step_amortised / H100_SXM_HBM_BYTES_PER_S
    kernels = [_kernel_seconds(kernel, s, plan) for kernel in plan.kernels]
    compute, detail = sum(seconds for seconds, _ in kernels), "; then ".join(detail for _, detail in kernels)
    if plan.strategy == "persistent":
        return Prediction("triton_persistent", max(compute, memory), detail)
    # a graph node per kernel, and the step counter's add
    seconds = max(compute, memory) + (len(kernels) + 1) * GRAPH_KERNEL_SECONDS
    return Prediction("triton_step", seconds, detail)


def _torch_eager(s: Shape) -> Prediction:
    counts = cost_model.cost(s, "torch")
    seconds = sum(max(TORCH_OP_SECONDS * (op.launches or 0), op.flops / H100_SXM_FP32_FLOPS,
                      (op.read + op.written) / H100_SXM_HBM_BYTES_PER_S) for op in counts.ops)
    return Prediction("torch", seconds, f"{counts.launches} ops of at least {TORCH_OP_SECONDS * 1e6:g} us")


def _torch_compiled(s: Shape) -> Prediction:
    counts = cost_model.cost(s, "torch_compiled")
    kernels = sum(1 for op in counts.ops if op.phase == "buffers") + 2  # one per materialised buffer, and the update
    device = max(counts.flops / H100_SXM_FP32_FLOPS, counts.bytes_per_step_amortised / H100_SXM_HBM_BYTES_PER_S)
    from fastsup.backends.torch_backend import FIRST_COMPILE_SECONDS

    return Prediction("torch_compiled", device + kernels * COMPILED_KERNEL_SECONDS,
                      f"{kernels} kernels of at least {COMPILED_KERNEL_SECONDS * 1e6:g} us", FIRST_COMPILE_SECONDS)


def predictions(config_like: Any, strategy: str = "auto") -> dict[str, Prediction]:
    """Seconds per step of the kernels (the dispatcher's plan for ``strategy``) and of the torch backend."""
    s = Shape.of(config_like)
    out = {p.strategy: p for p in (_torch_eager(s), _torch_compiled(s))}
    triton = _triton(s, strategy)
    out[triton.strategy] = triton
    return out


def kernels_are_faster(config_like: Any, strategy: str = "auto") -> tuple[bool, str]:
    """Whether the kernels train the run no slower than the torch backend (eager or compiled, the quicker
    for the run), and the numbers."""
    p = predictions(config_like, strategy)
    steps = Shape.of(config_like).steps
    torch_best = min(p["torch"], p["torch_compiled"], key=lambda x: x.run_seconds(steps))
    triton = next(x for name, x in p.items() if name.startswith("triton"))
    faster = triton.run_seconds(steps) <= torch_best.run_seconds(steps)

    def said(x: Prediction) -> str:
        return (f"{x.strategy} {x.run_seconds(steps):.3g} s ({x.compile_seconds:g} s compile + {steps} x "
                f"{x.seconds * 1e6:.3g} us: {x.detail})")

    return faster, f"predicted run: {said(triton)} against {said(torch_best)}; H100 SXM figures, not measured"
