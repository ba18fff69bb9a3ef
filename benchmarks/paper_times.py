"""Time every registered experiment, one whole ``run_experiment`` each, and write the times.

    python -m benchmarks.paper_times [--scale paper] [--only NAME ...] [--readme README.md]
    python -m benchmarks.paper_times --no-run --readme README.md     # only rewrite the README table

Each experiment runs in this one process, one after another, into a
temporary folder, with fastsup's own backend and compile decisions (as
``fastsup run NAME`` gets them); the time includes compiling, training,
analysis and writing the outputs.  Writes
``benchmarks/results/experiment-times-<scale>-<cpu|cuda>.json`` (the
machine, its load before and after each run, the times), rewritten after
every experiment: a run cut short keeps what it finished, and ``--only``
adds to the times already there (an experiment timed again replaces its
row; a file from another machine is started afresh).  With
``--readme``, the table between the README's experiment-times markers is
rewritten from every results file there is: a device without a measurement
reads "not measured".  Run it on a quiet machine: at ``paper`` scale it
takes a while.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.machine import cpu_name
from fastsup import io
from fastsup.experiments import SCALES, get_experiment, ordered_names, run_experiment
from fastsup.experiments.gallery import replace_section

RESULTS = Path(__file__).resolve().parent / "results"
DEVICES = {"cpu": "CPU", "cuda": "GPU"}  # torch device → column
README_START = "<!-- experiment-times:start (written by python -m benchmarks.paper_times) -->"
README_END = "<!-- experiment-times:end -->"


def results_path(results: Path, scale: str, device: str) -> Path:
    return results / f"experiment-times-{scale}-{device}.json"


def time_experiment(name: str, scale: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        run = run_experiment(name, Path(out) / name, scale=scale, progress=False)
        seconds = time.perf_counter() - start
    print(f"{name}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return {"experiment": name, "seconds": round(seconds, 1), "summary": run.summary(), "load_before": load_before,
            "load_after": os.getloadavg()[0], "date": _now()}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def record_times(path: Path, names, scale: str, device: str) -> None:
    """Time each experiment and merge its row into ``path`` as soon as it is done."""
    machine = _machine(device)
    record = io.read_json(path, str(path)) if path.is_file() else None
    if record is None or record.get("machine") != machine:
        record = {"scale": scale, "device": device, "machine": machine, "experiments": []}
    for name in names:
        row = time_experiment(name, scale)
        rows = {r["experiment"]: r for r in record["experiments"]}
        rows[name] = row
        order = {n: i for i, n in enumerate(ordered_names())}
        record.update(date=row["date"], torch=torch.__version__,
                      experiments=sorted(rows.values(), key=lambda r: order.get(r["experiment"], len(order))))
        io.write_json_atomic(path, record)


def _machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{cpu_name()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"


def readme_table(results: Path, scale: str) -> str:
    """One row per registered experiment, one column per device; "not measured" where no file says."""
    measured = {}
    for device in DEVICES:
        path = results_path(results, scale, device)
        if path.is_file():
            record = io.read_json(path, str(path))
            measured[device] = (record, {row["experiment"]: row["seconds"] for row in record["experiments"]})
    header = []
    for device, column in DEVICES.items():
        if device in measured:
            record = measured[device][0]
            header.append(f"{column} (s): {record['machine']}, {record['date'][:10]}")
        else:
            header.append(f"{column} (s)")
    lines = [f"| experiment at `{scale}` scale | " + " | ".join(header) + " |", "|---|" + "---|" * len(DEVICES)]
    for name in ordered_names():
        cells = []
        for device in DEVICES:
            seconds = measured.get(device, (None, {}))[1].get(name)
            cells.append("not measured" if seconds is None else f"{seconds:.0f}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="paper")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME")
    parser.add_argument("--results", type=Path, default=RESULTS, metavar="DIR")
    parser.add_argument("--readme", type=Path, default=None, metavar="FILE",
                        help="rewrite the table between this file's experiment-times markers")
    parser.add_argument("--no-run", dest="run", action="store_false", help="time nothing; only rewrite --readme")
    args = parser.parse_args(argv)
    if args.run:
        names = ordered_names() if args.only is None else [get_experiment(name).name for name in args.only]
        device = "cuda" if torch.cuda.is_available() else "cpu"
        args.results.mkdir(parents=True, exist_ok=True)
        path = results_path(args.results, args.scale, device)
        record_times(path, names, args.scale, device)
        print(f"written: {path}", file=sys.stderr)
    table = readme_table(args.results, args.scale)
    print(table)
    if args.readme is not None:
        replace_section(args.readme, README_START, README_END, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
