"""SASS instructions per training step, predicted from the shape and the plan, fitted to the compiled SASS.

The compile check (``python -m fastsup.kernels.check --sass``) counts, for
every binary it compiles, the SASS instructions a thread executes per
training step.  This module predicts that count without compiling: a linear
model per kernel whose features are the work a thread is handed (Philox
calls, multiply-adds, elementwise lanes, gradient sums and parameters, a
constant), computed from the plan as the launcher runs it, with
coefficients fitted by least squares on the relative error to the check's
own counts.  ``python -m fastsup.kernels.instruction_model --fit
REPORT.json ...`` refits them and prints how well they predict every binary
of the reports; ``COEFFICIENTS`` holds the fit in use and says where it
came from.  Counts of code, not timings: ``fastsup.kernels.cost_model``
turns them into seconds.

Only the register path is modelled (every plan the dispatcher picks by
itself); the tf32 dot path is an opt-in.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict

KERNELS = ("warp_run", "persistent_run", "step_hidden", "step_grads", "reduce_update")
FEATURES = {
    # "feature quads": a (row-quad, feature) pair: its Philox call and its four rows' elementwise work, which
    # always come together (as separate features they were collinear)
    "warp_run": ("feature quads", "multiply-adds", "hidden lanes", "parameters", "constant"),
    "persistent_run": ("feature quads", "multiply-adds", "hidden lanes", "per-quad sums", "constant"),
    "step_hidden": ("feature quads", "multiply-adds", "hidden lanes", "constant"),
    # "row-sum steps": each trip sums its rows out of h gᵀ, x ghᵀ and g, a butterfly of log2(rows) steps over
    # a thread's share of the (parameter, row) products.  On the 2026-12-03 full step table (sm_90, 325
    # binaries, 4 to 64 rows) it equals the SHFL count at 161, is within 1.4x of it at all but 28, and is
    # 2-5x short at those (2→1 and 3→2 at batch 32, whose tiles hold fewer products than threads)
    "step_grads": ("feature quads", "multiply-adds", "hidden lanes", "row-sum steps", "partials", "constant"),
    "reduce_update": ("partials read", "parameters", "splits", "constant"),
}

# Fitted with ``--fit`` on the sm_90 binaries of the full compile tables
# (triton 3.9.0; benchmarks/results/compile-full-*-2026-12-03.txt), register
# path, per thread per step, each binary at every batch its workloads train
# at (1024, and 32 for the persistent strategy's shapes: the warp kernel
# packed, the tile kernel in one chunk per step, and the step kernels a user
# may force there; the default subset's 3→6 abs at batch 16): warp_run 337
# (packed as first compiled, with int64 slot offsets), persistent_run 336,
# step_hidden 521, step_grads 493, reduce_update 268.  |error| on them (max;
# sm_80, held out, in brackets): warp_run 11.9% (14.7%), persistent_run 13%
# (23%), step_hidden 33% (39%), step_grads 26% (26%), reduce_update 31%
# (56%; refitted on its full table of 2026-12-04, where the check counts a
# loop that ptxas unrolled once per source trip: before, sm_90's four-copy
# split loop and its remainder loop each ran at every split, 845 where 460
# run for 2→1, and the fit to those counts missed by 57% (164%)).
COEFFICIENTS = {
    "warp_run": (132.156, 4.597, 3.847, 69.073, 142.193),
    "persistent_run": (98.379, 6.984, 68.474, 20.791, 245.798),
    "step_hidden": (110.342, 6.798, 0.0, 252.742),
    "step_grads": (201.695, 3.072, 0.0, 2.717, 133.796, 0.0),
    "reduce_update": (10.411, 40.457, 69.0, 144.492),
}


def _share(elements: int, threads: int) -> float:
    """A thread's share of a tile op over ``elements`` lanes: below ``threads`` every thread still runs it."""
    return max(elements, threads) / threads


def threads_and_programs(kernel: str, n_features: int, plan, batch_size: int) -> tuple[int, float]:
    """(threads per program, programs per instance: 1 / pack where a program trains several) of ``kernel`` as
    launched for ``plan``."""
    if kernel in ("warp_run", "persistent_run"):
        return 32 * plan.num_warps, 1 / plan.pack  # the warp kernel packs instances at small batches
    quads = -(-batch_size // 4)
    if kernel == "step_hidden":
        return 32 * plan.num_warps, -(-quads // plan.block_q)
    if kernel == "step_grads":
        return 32 * plan.num_warps, -(-n_features // plan.grads_block_n) * -(-quads // plan.split_quads)
    return 128, -(-n_features // plan.reduce_block_n)


def features(kernel: str, n_features: int, n_hidden: int, batch_size: int, model: str, plan,
             splits: int | None = None) -> list[float]:
    """The work one thread of ``kernel`` is handed per training step, in the order of ``FEATURES[kernel]``.

    ``splits``: reduce_update's loop count where it is known (a compile
    report's trips), else the plan's.
    """
    n, m = n_features, n_hidden
    matrices = 2 if model == "abs" else 1
    quads = -(-batch_size // 4)
    threads, _ = threads_and_programs(kernel, n, plan, batch_size)
    share = lambda elements: _share(elements, threads)  # noqa: E731
    if kernel == "warp_run":  # one quad per thread, exact sizes, four lanes per chunk
        chunks = -(-quads // plan.block_q)
        return [chunks * n, chunks * 4 * n * m, chunks * 4 * m, matrices * n * m + n, 1]
    if kernel == "persistent_run":
        n_pad, m_pad, block_q = plan.n_pad, plan.m_pad, plan.block_q
        chunks = -(-quads // block_q)
        return [chunks * share(n_pad * block_q), chunks * 4 * share(n_pad * m_pad * block_q),
                chunks * 4 * share(m_pad * block_q), share((matrices * n_pad * m_pad + n_pad) * block_q), 1]
    if kernel == "step_hidden":  # two passes over the feature tiles (a; z, gh), x drawn in each
        block_n, m_pad, rows = plan.block_n, plan.m_pad, 4 * plan.block_q
        tiles = -(-n // block_n)
        return [2 * tiles * share(block_n * plan.block_q), 3 * tiles * share(block_n * m_pad * rows),
                share(m_pad * rows), 1]
    if kernel == "step_grads":  # a loop over the split's rows: x drawn, a and gh read, z; h gᵀ, x ghᵀ
        block_n, m_pad, rows = plan.grads_block_n, plan.m_pad, 4 * plan.grads_block_q
        trips = plan.split_quads // plan.grads_block_q
        summed = 2 * block_n * m_pad + block_n  # both outer products (a tied model adds them at the end), and g
        return [trips * share(block_n * plan.grads_block_q), 3 * trips * share(block_n * m_pad * rows),
                trips * share(m_pad * rows), trips * share(summed * rows) * math.log2(rows),
                share(matrices * block_n * m_pad + block_n), 1]
    if kernel == "reduce_update":
        splits = -(-quads // plan.split_quads) if splits is None else splits
        parameters = share(matrices * plan.reduce_block_n * plan.m_pad + plan.reduce_block_n)
        return [splits * parameters, parameters, splits, 1]
    raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def thread_instructions(kernel: str, n_features: int, n_hidden: int, batch_size: int, model: str, plan,
                        coefficients=None) -> float:
    """Predicted SASS instructions per thread per training step."""
    coefficients = COEFFICIENTS[kernel] if coefficients is None else coefficients
    return sum(c * f for c, f in zip(coefficients, features(kernel, n_features, n_hidden, batch_size, model, plan),
                                     strict=True))


def instance_instructions(kernel: str, n_features: int, n_hidden: int, batch_size: int, model: str, plan) -> float:
    """Predicted thread instructions per instance per training step: every thread of every program of it."""
    threads, programs = threads_and_programs(kernel, n_features, plan, batch_size)
    return thread_instructions(kernel, n_features, n_hidden, batch_size, model, plan) * threads * programs


# ---------------------------------------------------------------------------
# fitting, from the compile check's --json reports
# ---------------------------------------------------------------------------


def _workload(label: str, run_batch: int) -> tuple[int, int, str, int]:
    """(n, m, model, batch size) of a compile report's workload label ("intro 5→2 relu_output/relu/...", and
    " B32" where the batch is not the report's run batch)."""
    _, shape, variant = label.split()[:3]
    n, m = shape.split("→")
    batch = re.search(r" B(\d+)$", label)
    return int(n), int(m), variant.split("/")[0], int(batch.group(1)) if batch else run_batch


def _plan_of_row(row: dict, n: int, m: int, model: str, batch_size: int):
    """The plan the row's binary was compiled for (its tile columns over the dispatcher's plan)."""
    import dataclasses

    from fastsup.kernels.dispatch import plan_for

    c = row["config"]
    strategy = "persistent" if row["kernel"] in ("warp_run", "persistent_run") else "step"
    plan = plan_for(n, m, batch_size, strategy, model=model)
    if row["kernel"] == "reduce_update":
        return dataclasses.replace(plan, reduce_block_n=c["n_pad"], m_pad=c["m_pad"])
    if row["kernel"] == "step_grads":
        return dataclasses.replace(plan, grads_block_n=c["n_pad"], m_pad=c["m_pad"], grads_block_q=c["block_q"],
                                   num_warps=c["warps"])
    return dataclasses.replace(plan, n_pad=c["n_pad"] if row["kernel"] != "step_hidden" else plan.n_pad,
                               block_n=c["n_pad"], m_pad=c["m_pad"], block_q=c["block_q"], num_warps=c["warps"])


def samples(reports: list[dict], arch: int) -> dict[str, list[tuple[list[float], float, str]]]:
    """Per kernel: (features, SASS instructions per thread per step, workload label) of every register-path
    binary, once for each batch size its workloads train at (the report's ``by_batch`` profiles)."""
    out = defaultdict(list)
    seen = set()
    for report in reports:
        for row in report["results"]:
            if row["arch"] != arch or not row.get("sass") or row["config"].get("dot") or row["kernel"] not in KERNELS:
                continue
            profiles = {row["shapes"][0]: row["sass"], **row["sass"].get("by_batch", {})}
            for label, profile in profiles.items():
                n, m, model, batch_size = _workload(label, report["run"]["batch_size"])
                key = (row["kernel"], json.dumps(row["config"], sort_keys=True), n, m, batch_size)
                if key in seen:
                    continue
                seen.add(key)
                plan = _plan_of_row(row, n, m, model, batch_size)
                # reduce_update's loop count: the trips the check counted (the plan's row splits)
                splits = profile["trips"][0] if row["kernel"] == "reduce_update" else None
                out[row["kernel"]].append((features(row["kernel"], n, m, batch_size, model, plan, splits),
                                           profile["per_thread_step"]["total"], label))
    return out


def fit(rows: list[tuple[list[float], float, str]]) -> list[float]:
    """Least squares on the relative error, Σ ((Σ_k c_k f_k − y) / y)², with every c_k >= 0.

    Non-negative by elimination: a feature whose coefficient comes out
    negative is dropped (its coefficient 0) and the rest refitted, so that no
    feature makes a larger shape cheaper.
    """
    import numpy as np

    a = np.array([f for f, _, _ in rows], dtype=float)
    y = np.array([y for _, y, _ in rows], dtype=float)
    kept = list(range(a.shape[1]))
    while True:
        solved, *_ = np.linalg.lstsq(a[:, kept] / y[:, None], np.ones_like(y), rcond=None)
        if (solved >= 0).all():
            break
        kept.pop(int(np.argmin(solved)))
    coefficients = [0.0] * a.shape[1]
    for k, c in zip(kept, solved):
        coefficients[k] = round(float(c), 3)
    return coefficients


def errors(rows, coefficients) -> list[float]:
    """Relative errors (predicted / SASS − 1) of ``rows`` under ``coefficients``."""
    return [sum(c * x for c, x in zip(coefficients, f, strict=True)) / y - 1 for f, y, _ in rows]


def summary(errs: list[float]) -> str:
    absolute = sorted(abs(e) for e in errs)
    if not absolute:
        return "no binaries"
    pick = lambda q: absolute[min(len(absolute) - 1, math.ceil(q * len(absolute)) - 1)]  # noqa: E731
    return (f"{len(absolute)} binaries: |error| median {100 * pick(0.5):.1f}%, 90th percentile {100 * pick(0.9):.1f}%, "
            f"max {100 * absolute[-1]:.1f}%")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastsup.kernels.instruction_model",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--fit", nargs="+", metavar="REPORT", required=True,
                        help="compile-check --sass --json reports to fit on (sm_90) and to test on (sm_80 too)")
    args = parser.parse_args(argv)
    reports = [json.load(open(path)) for path in args.fit]
    fitted = samples(reports, 90)
    held_out = samples(reports, 80)
    for kernel in KERNELS:
        rows = fitted.get(kernel, [])
        if len(rows) < len(FEATURES[kernel]):
            print(f"{kernel}: {len(rows)} binaries, too few to fit")
            continue
        coefficients = fit(rows)
        print(f"{kernel}: coefficients {dict(zip(FEATURES[kernel], coefficients))}")
        print(f"  fitted, sm_90: {summary(errors(rows, coefficients))}")
        print(f"  held out, sm_80: {summary(errors(held_out.get(kernel, []), coefficients))}")
        current = COEFFICIENTS.get(kernel)
        if current and len(current) == len(coefficients):
            print(f"  COEFFICIENTS in use, sm_90: {summary(errors(rows, current))}")
        elif current:
            print(f"  COEFFICIENTS in use have {len(current)} terms for {len(coefficients)} features: refit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
