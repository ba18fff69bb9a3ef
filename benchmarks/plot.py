"""Draw a saved benchmark run as a PNG: steady-state steps/s per case and peer, and the first-call seconds.

    python -m pytest benchmarks/test_cpu_speed.py benchmarks/test_first_call.py --benchmark-enable \\
        --benchmark-json=benchmarks/results/cpu.json
    python benchmarks/plot.py benchmarks/results/cpu.json benchmarks/results/cpu.png

Reads pytest-benchmark's JSON (``--benchmark-json``, or a file that
``--benchmark-save`` wrote under ``.benchmarks/``); the title names the CPU
and the load average recorded with the run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def steady_state(data: dict) -> dict[str, dict[str, float]]:
    """case -> peer -> steps/s (fastest round) from ``test_steady_state`` entries."""
    speeds: dict[str, dict[str, float]] = {}
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if bench["name"].startswith("test_steady_state") and "steps" in info:
            speeds.setdefault(info["case"], {})[info["peer"]] = info["steps"] / bench["stats"]["min"]
    return speeds


def first_calls(data: dict) -> dict[str, float]:
    """label -> seconds of the call, from ``test_first_call`` entries."""
    return {bench["param"]: bench["extra_info"]["call_seconds"] for bench in data["benchmarks"]
            if bench["name"].startswith("test_first_call") and "call_seconds" in bench["extra_info"]}


def loads(data: dict) -> tuple[float, float]:
    values = [v for b in data["benchmarks"] for k, v in b["extra_info"].items() if k.startswith("load_")]
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def draw(data: dict, out: Path) -> None:
    speeds, calls = steady_state(data), first_calls(data)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 1.3]})
    peers = sorted({p for s in speeds.values() for p in s}, key=lambda p: (p != "notebook", p))
    width = 0.8 / max(1, len(peers))
    for k, peer in enumerate(peers):
        xs = [i + k * width for i, case in enumerate(speeds) if peer in speeds[case]]
        ys = [speeds[case][peer] for case in speeds if peer in speeds[case]]
        left.bar(xs, ys, width, label=peer)
    left.set_xticks([i + 0.4 - width / 2 for i in range(len(speeds))], list(speeds), fontsize=8)
    left.set_yscale("log")
    left.set_ylabel("steps/s (fastest round)")
    left.set_title("steady state")
    left.legend(fontsize=7)
    right.barh(list(calls), list(calls.values()), color="tab:gray")
    right.set_xlabel("seconds of the whole call, fresh process")
    right.set_title("first call (intro)")
    right.tick_params(axis="y", labelsize=7)
    machine = data.get("machine_info", {}).get("cpu", {}).get("brand_raw", "unknown CPU")
    low, high = loads(data)
    fig.suptitle(f"{machine}, {data.get('machine_info', {}).get('cpu', {}).get('count', '?')} CPUs; "
                 f"1-min load average {low:.1f}-{high:.1f} during the run")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args(argv)
    draw(json.loads(args.json.read_text()), args.png)


if __name__ == "__main__":
    main()
