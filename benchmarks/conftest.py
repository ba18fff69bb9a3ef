"""Shared timing for the CPU benchmarks: steps/s of every peer per case, printed with ratios to the notebook.

Every timed benchmark records the machine's load average before and after it
(``extra_info``, saved with ``--benchmark-save``): this 2-core machine is
shared, and a loaded run says so next to its numbers.
"""

from __future__ import annotations

import os

from benchmarks.machine import cpu_name

SPEEDS: dict[str, dict[str, float]] = {}  # case -> peer -> steps/s
FIRST_CALLS: dict[str, float] = {}  # label -> seconds of the whole train/optimize call in a fresh process
SWEEPS: dict[str, tuple[dict[str, float], int]] = {}  # label -> (trainer -> seconds of the whole sweep, models·steps)
LOADS: list[float] = []  # 1-minute load averages seen around timed benchmarks


def record(case: str, trainer: str, steps: int, seconds_per_round: float) -> None:
    SPEEDS.setdefault(case, {})[trainer] = steps / seconds_per_round


def record_sweep(label: str, seconds: dict[str, float], model_steps: int) -> None:
    SWEEPS[label] = (seconds, model_steps)


def load_average() -> float:
    return os.getloadavg()[0]


def timed(benchmark, fn, *args, rounds: int):
    """``benchmark.pedantic(fn, *args)`` with the load average before and after in ``extra_info``."""
    before = load_average()
    result = benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1)
    after = load_average()
    benchmark.extra_info.update(load_before=before, load_after=after)
    LOADS.extend([before, after])
    return result


def time_block(benchmark, run, steps: int, case: str, trainer: str, rounds: int = 3):
    """Time ``run(steps)`` after a warm-up block; with benchmarks disabled, run 2 steps once (a smoke test).

    Returns pytest-benchmark's stats (None when disabled).
    """
    if benchmark.disabled:
        benchmark(run, 2)
        return None
    run(steps)  # warm-up: compile, allocator, optimizer state
    timed(benchmark, run, steps, rounds=rounds)
    record(case, trainer, steps, benchmark.stats.stats.min)
    return benchmark.stats.stats


def pytest_terminal_summary(terminalreporter):
    if not SPEEDS and not FIRST_CALLS and not SWEEPS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fastsup and its peers on the CPU")
    write(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; 1-min load average during the timed benchmarks: "
          f"{min(LOADS, default=0):.1f}-{max(LOADS, default=0):.1f}")
    if SPEEDS:
        write("steady state, steps/s (fastest round) and speed relative to the notebook trainer:")
    for case, speeds in SPEEDS.items():
        base = speeds.get("notebook")
        cells = [f"{name}: {value:8.1f}" + (f" ({value / base:5.1f}x)" if base else "") for name, value in speeds.items()]
        write(f"  {case:18s} " + "  ".join(cells))
    if FIRST_CALLS:
        write("first call in a fresh process, seconds of the whole call:")
    for label, seconds in FIRST_CALLS.items():
        write(f"  {label:45s} {seconds:7.1f}")
    if SWEEPS:
        write("whole sweeps: seconds and models·steps/s of each trainer:")
    for label, (seconds, model_steps) in SWEEPS.items():
        first = next(iter(seconds.values()))
        cells = [f"{name}: {value:7.1f} s, {model_steps / value:9.0f} models·steps/s"
                 + (f" (takes {value / first:.1f}x as long)" if value is not first else "") for name, value in seconds.items()]
        write(f"  {label}: " + "; ".join(cells))
