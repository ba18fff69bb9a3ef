"""GPU speed of fastsup against the notebook trainer: models·steps/s per trainer and case.

    python benchmarks/gpu_bench.py [--quick] [--cases intro,20to5,phase,400to30] [--no-compile]

Trainers, all on one CUDA device:

* ``notebook``: ``benchmarks.notebook_baseline`` (the paper notebook's trainer:
  two ``torch.rand`` per element, einsum forward, autograd, ``torch.optim.AdamW``);
* ``torch``/``torch+compile``: ``fastsup.backends.torch_backend.TorchTrainer``,
  eager and under ``torch.compile`` (reported as failed, not fatal, if compiling breaks);
* ``triton persistent``/``triton step``: ``fastsup.train(backend="triton",
  strategy=...)``, the whole library call (init, instance chunks, kernels,
  final evaluation, results to the host).

Cases (PAPER.md §4, §5): the intro 5→2 × 10 000 instances; 20→5 × 10 000;
the 2→1 phase diagram as a 100 × 100 grid (relative importance r in [0.1, 10]
and density in [0.01, 1], both log-spaced) × 10 restarts = 100 000
instances; the 400→30 geometry model × 20 instances.  Batch 1024, AdamW,
constant lr.

Timing: each step-wise trainer is warmed up (allocator, optimizer state,
compilation) and then timed over a block of steps between
``torch.cuda.synchronize()`` calls.  A ``fastsup.train`` call is one run, so
the triton rows time two runs of S1 and S2 steps after a warm-up run (which
JIT-compiles the kernels) and report the marginal rate
I · (S2 − S1) / (t2 − t1), which excludes the per-run overhead (init,
evaluation, copies); the end-to-end rate of the longer run is printed beside
it.  Where the notebook trainer is slow (100 000 instances) only a few steps
are timed, and the table says how many.  Peak memory is
``torch.cuda.max_memory_allocated`` per trainer.

Without a CUDA GPU it prints "no CUDA GPU: nothing measured" and exits 0.
Exit status 1 when a fastsup trainer (not the notebook, not torch.compile)
fails or returns non-finite losses.  ``--device cpu`` exists to test this
script itself (tiny ``--instances-scale``; triton rows need
``TRITON_INTERPRET=1`` there); its numbers say nothing about GPUs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `benchmarks` is not an installed package

from benchmarks.cases import Case, decay, log_probability  # noqa: E402  (needs ROOT on sys.path)

NO_GPU_MESSAGE = "no CUDA GPU: nothing measured"
TRAINERS = ("notebook", "torch", "torch-compile", "triton-persistent", "triton-step")


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------


def _uniform_importance(n: int) -> Callable[[int], torch.Tensor]:
    return lambda I: torch.ones(1, n)


PHASE_GRID, PHASE_RESTARTS = 100, 10


def _phase_grid(I: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, density) per instance: a log grid r in [0.1, 10] x density in [0.01, 1], restarts repeated.

    With I = 100 000: 100 x 100 points x 10 restarts; other I (smoke tests) take the first I.
    """
    r = torch.logspace(-1, 1, PHASE_GRID)
    density = torch.logspace(-2, 0, PHASE_GRID)
    rr, dd = torch.meshgrid(r, density, indexing="ij")
    per_point = torch.stack([rr.reshape(-1), dd.reshape(-1)], dim=1)  # [grid^2, 2]
    full = per_point.repeat_interleave(PHASE_RESTARTS, dim=0)  # restarts of a point are adjacent
    reps = -(-I // full.shape[0])
    full = full.repeat(reps, 1)[:I]
    return full[:, 0], full[:, 1]


def _phase_importance(I: int) -> torch.Tensor:
    r, _ = _phase_grid(I)
    return torch.stack([torch.ones(I), r], dim=1)  # [I, 2]: (1, r)


def _phase_probability(I: int) -> torch.Tensor:
    return _phase_grid(I)[1].view(I, 1)


CASES = {
    "intro": Case("intro", 5, 2, 10_000, decay(0.9, 5), log_probability(math.log10(1 / 20), 0.0),
                  "5->2, importance 0.9^i, density 20^-linspace(0,1,I)"),
    "20to5": Case("20to5", 20, 5, 10_000, decay(0.7, 20), log_probability(-3.0, 0.0),
                  "20->5, importance 0.7^i, density logspace(0,-3,I)"),
    "phase": Case("phase", 2, 1, PHASE_GRID * PHASE_GRID * PHASE_RESTARTS, _phase_importance, _phase_probability,
                  f"2->1 phase diagram: {PHASE_GRID}x{PHASE_GRID} grid (r in [0.1,10], density in [0.01,1], log) "
                  f"x {PHASE_RESTARTS} restarts"),
    "400to30": Case("400to30", 400, 30, 20, _uniform_importance(400), log_probability(-2.0, 0.0),
                    "400->30 geometry, importance 1, 1/density from 1 to 100"),
}


@dataclasses.dataclass(frozen=True)
class Budget:
    """Steps: warm-up and timed block for step-wise trainers; S1 < S2 runs for fastsup.train."""

    warmup: int
    timed: int
    run_short: int
    run_long: int


FULL = {"intro": Budget(5, 50, 200, 1200), "20to5": Budget(5, 30, 100, 600),
        "phase": Budget(2, 10, 100, 600), "400to30": Budget(5, 50, 100, 600)}
QUICK = {name: Budget(2, 3, 10, 30) for name in CASES}
NOTEBOOK_SLOW = {"phase": Budget(1, 3, 0, 0)}  # 100 000 instances: the notebook materialises ~0.8 GB per tensor
NOTEBOOK_SLOW_QUICK = {"phase": Budget(1, 1, 0, 0)}


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    case: str
    trainer: str
    rate: float | None = None  # models·steps/s
    steps: int = 0  # steps timed
    detail: str = ""
    peak_gib: float | None = None
    failed: bool = False  # a fastsup trainer broke (exit status 1)


class Device:
    def __init__(self, name: str):
        self.device = torch.device(name)
        self.cuda = self.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**30 if self.cuda else None

    def timed(self, fn: Callable[[], object]) -> tuple[float, object]:
        self.sync()
        start = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - start, out


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, getattr(torch, "OutOfMemoryError", ())) or "out of memory" in str(err).lower()


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:120]}"


def bench_notebook(case: Case, dev: Device, budget: Budget, few: bool = False) -> Row:
    from benchmarks import notebook_baseline as nb

    torch.manual_seed(0)
    I = case.n_instances
    model = nb.Model(nb.Config(case.n_features, case.n_hidden, I),
                     feature_probability=case.probability(I), importance=case.importance(I), device=dev.device)
    # each optimize() call builds a fresh AdamW, as the notebook does; its first step creates the state
    nb.optimize(model, n_batch=case.batch_size, steps=budget.warmup, progress=False)
    seconds, _ = dev.timed(lambda: nb.optimize(model, n_batch=case.batch_size, steps=budget.timed, progress=False))
    loss_ok = bool(torch.isfinite(model.W).all())
    detail = f"{seconds / budget.timed * 1e3:.3g} ms/step"
    if few:
        detail += f"; only {budget.timed} step(s) timed: too slow for more at this size"
    if not loss_ok:
        detail += "; non-finite W"
    return Row(case.name, "notebook", I * budget.timed / seconds, budget.timed, detail)


def bench_torch(case: Case, dev: Device, budget: Budget, compile: bool) -> Row:
    from fastsup.backends.torch_backend import TorchTrainer

    name = "torch+compile" if compile else "torch"
    config = case.config(steps=budget.warmup + budget.timed)
    trainer = TorchTrainer(config, dev.device, compile=compile)
    compile_seconds, _ = dev.timed(lambda: trainer.step(0, 1.0))
    for step in range(1, budget.warmup):
        trainer.step(step, 1.0)

    def block():
        loss = None
        for step in range(budget.warmup, budget.warmup + budget.timed):
            loss = trainer.step(step, 1.0)
        return loss

    seconds, loss = dev.timed(block)
    finite = bool(torch.isfinite(loss).all())
    detail = f"{seconds / budget.timed * 1e3:.3g} ms/step"
    if compile:
        detail += f"; first step (compile) {compile_seconds:.1f} s"
    if not finite:
        detail += "; NON-FINITE LOSS"
    return Row(case.name, name, case.n_instances * budget.timed / seconds, budget.timed, detail,
               failed=not finite)


def bench_triton(case: Case, dev: Device, budget: Budget, strategy: str, instance_chunk: int | None) -> Row:
    import fastsup

    name = f"triton {strategy}"
    try:
        from fastsup.kernels.dispatch import plan_for
    except ImportError as err:
        return Row(case.name, name, detail=f"n/a: {err} (pip install 'fastsup[triton]')")
    config = case.config(steps=budget.run_long)
    try:
        plan = plan_for(config.n_features, config.n_hidden, config.batch_size, strategy, model=config.model)
    except ValueError as err:
        return Row(case.name, name, detail=f"n/a: {err}")

    def run(steps: int):
        result = fastsup.train(config, backend="triton", device=dev.device, strategy=strategy, progress=False,
                               instance_chunk=instance_chunk, steps=steps, log_every=max(1, steps // 10))
        return result

    warm, _ = dev.timed(lambda: run(budget.run_short))  # JIT compile + allocator
    t_short, _ = dev.timed(lambda: run(budget.run_short))
    t_long, result = dev.timed(lambda: run(budget.run_long))
    finite = bool(torch.isfinite(result.final_loss).all() and torch.isfinite(result.loss_history).all())
    I = case.n_instances
    marginal = (t_long - t_short) / (budget.run_long - budget.run_short)
    end_to_end = I * budget.run_long / t_long
    chunk = instance_chunk or _default_chunk(config)
    detail = (f"{marginal * 1e3:.3g} ms/step marginal; end-to-end {end_to_end:.3g} models*steps/s "
              f"({budget.run_long} steps, {t_long:.2f} s); first run {warm:.1f} s; "
              f"chunks of {chunk}; {plan.n_pad}x{plan.m_pad} tile, {4 * plan.block_q} rows/block")
    if not finite:
        detail += "; NON-FINITE LOSS"
    rate = I / marginal if marginal > 0 else None
    if rate is None:
        detail += "; timing noise exceeded the difference of the two runs"
    return Row(case.name, name, rate, budget.run_long - budget.run_short, detail, failed=not finite)


def _default_chunk(config) -> int:
    from fastsup.backends import default_chunk

    return default_chunk("triton", config, torch.device("cuda"))


def _attempt(rows: list[Row], case: Case, trainer: str, dev: Device, fn: Callable[[], Row], *,
             fatal: bool) -> None:
    dev.reset_peak()
    try:
        row = fn()
    except Exception as err:  # noqa: BLE001 -- every failure is reported in the table
        if dev.cuda:
            torch.cuda.empty_cache()
        if _is_oom(err):
            row = Row(case.name, trainer, detail="out of memory")
        else:
            row = Row(case.name, trainer, detail=f"failed: {_short(err)}", failed=fatal)
    row.peak_gib = dev.peak_gib()
    rows.append(row)
    print(f"  {row.trainer:18s} {_fmt_rate(row.rate):>12s}  {row.detail}", flush=True)


def _fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "-"
    return f"{rate:.3g}"


def render(rows: list[Row]) -> str:
    baseline = {r.case: r.rate for r in rows if r.trainer == "notebook" and r.rate}
    header = ("case", "trainer", "models*steps/s", "x notebook", "steps timed", "peak GiB", "detail")
    table = []
    for r in rows:
        ratio = f"{r.rate / baseline[r.case]:.3g}" if r.rate and r.case in baseline else "-"
        peak = f"{r.peak_gib:.2f}" if r.peak_gib is not None else "-"
        table.append((r.case, r.trainer, _fmt_rate(r.rate), ratio, str(r.steps or "-"), peak, r.detail))
    widths = [max(len(row[i]) for row in [header] + table) for i in range(len(header) - 1)]
    lines = []
    for row in [header] + table:
        cells = [row[i].ljust(widths[i]) if i < 2 else row[i].rjust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join(cells) + "  " + row[-1])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few steps per trainer, torch.compile on the first case only (a smoke test of the GPU path)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--instance-chunk", type=int, default=None,
                        help="instances per fastsup.train chunk for the triton rows (default: the library's)")
    parser.add_argument("--device", default="cuda", help="cuda (default); cpu only to test this script")
    parser.add_argument("--instances-scale", type=float, default=1.0,
                        help="multiply every case's instance count (for smoke tests; the output says so)")
    parser.add_argument("--batch-size", type=int, default=1024, help="batch size (1024 unless smoke-testing)")
    parser.add_argument("--trainers", default=",".join(TRAINERS), help=f"comma-separated subset of {','.join(TRAINERS)}")
    parser.add_argument("--budget", type=lambda text: tuple(int(v) for v in text.split(",")), default=None,
                        metavar="W,T,S1,S2", help="override every step count: warm-up and timed steps of the "
                        "step-wise trainers, the two fastsup.train run lengths (S1 < S2)")
    args = parser.parse_args(argv)
    trainers = [name.strip() for name in args.trainers.split(",") if name.strip()]
    if [t for t in trainers if t not in TRAINERS]:
        parser.error(f"unknown trainer(s) {[t for t in trainers if t not in TRAINERS]}; choose from {list(TRAINERS)}")
    if args.budget is not None and (len(args.budget) != 4 or min(args.budget) < 1
                                    or args.budget[2] >= args.budget[3]):
        parser.error("--budget needs four positive integers W,T,S1,S2 with S1 < S2")
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")

    dev = Device(args.device)
    if dev.cuda and not torch.cuda.is_available():
        print(NO_GPU_MESSAGE)
        return 0
    if dev.cuda:
        # compiled kernels, whatever a parent test process set (decided when the kernels are imported)
        os.environ["TRITON_INTERPRET"] = "0"

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"

    from fastsup.kernels.cost_model import dispatcher_choice

    if dev.cuda:
        props = torch.cuda.get_device_properties(dev.device)
        where = f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs)"
    else:
        where = f"device: {dev.device} (testing the script only: these numbers say nothing about GPUs)"
    print(where)
    print(f"torch {torch.__version__}, triton {triton_version}; batch {args.batch_size}, AdamW, constant lr; "
          f"{'quick' if args.quick else 'full'} budget")
    if args.instances_scale != 1.0:
        print(f"instance counts scaled by {args.instances_scale} (not the benchmark's sizes)")

    rows: list[Row] = []
    for name in names:
        case = dataclasses.replace(CASES[name].scaled(args.instances_scale), batch_size=args.batch_size)
        budget = (QUICK if args.quick else FULL)[name]
        slow = NOTEBOOK_SLOW_QUICK if args.quick else NOTEBOOK_SLOW
        nb_budget = slow.get(name, budget)
        if args.budget:
            budget = nb_budget = Budget(*args.budget)
        print(f"\n{case.name}: {case.description}; {case.n_instances} instances")
        print(f"  {dispatcher_choice(case.config(steps=budget.run_long))}")
        few = name in slow and not args.budget
        if "notebook" in trainers:
            _attempt(rows, case, "notebook", dev, lambda: bench_notebook(case, dev, nb_budget, few), fatal=False)
        if "torch" in trainers:
            _attempt(rows, case, "torch", dev, lambda: bench_torch(case, dev, budget, compile=False), fatal=True)
        if "torch-compile" in trainers and not args.no_compile and (not args.quick or name == names[0]):
            _attempt(rows, case, "torch+compile", dev, lambda: bench_torch(case, dev, budget, compile=True),
                     fatal=False)
        for strategy in ("persistent", "step"):
            if f"triton-{strategy}" in trainers:
                _attempt(rows, case, f"triton {strategy}", dev,
                         lambda: bench_triton(case, dev, budget, strategy, args.instance_chunk), fatal=True)

    print()
    print(where)
    print(render(rows))
    print("\nmodels*steps/s = instances x steps / second; x notebook = ratio to the notebook trainer on the same case.")
    print("triton rows: marginal rate between two fastsup.train runs (per-run overhead excluded; end-to-end in detail).")
    if args.quick:
        print("--quick: a few steps per trainer; a smoke test, not a benchmark.")
    failed = [r for r in rows if r.failed]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
