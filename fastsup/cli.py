"""The ``fastsup`` command: run a named experiment, train a sweep, list the experiments.

    fastsup list
    fastsup run intro --out runs/intro [--scale small|paper] [--steps N] [--instances N] [--seed S]
                      [--set FIELD=VALUE ...]
    fastsup gallery --out docs/gallery [--scale small] [--readme README.md]
    fastsup train --features 5 --hidden 2 --instances 10 --feature-probability 0.1 --out runs/sweep
    fastsup export-activations runs/sweep --samples 1000000 --out runs/activations [--instances K ...]

Bad input (an invalid argument, an unknown experiment, a missing CUDA device,
an ``--out`` that is not a fastsup result, a run that cannot fit in memory, a
path that cannot be written) prints ``fastsup: error: <message>`` and exits
with status 2, without a traceback.  A run in which every instance diverged
exits with status 1.  Progress bars come from :func:`fastsup.train` (tqdm, on stderr).
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
import warnings

from .config import BACKENDS, MODELS, OPTIMIZERS, SCHEDULES
from .result import TrainResult
from .train import DivergenceWarning

PROG = "fastsup"
_MAX_LISTED_LOSSES = 20
# A per-step multiplier list ("custom") does not fit a command line; use the Python API for it.
_CLI_SCHEDULES = tuple(s for s in SCHEDULES if s != "custom")


class _UsageError(Exception):
    def __init__(self, message: str, parser: argparse.ArgumentParser):
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    """Raise instead of exiting, so ``main`` reports every error the same way and returns 2."""

    def error(self, message):
        raise _UsageError(message, self)


# --- argument types: the message names the argument (argparse prefixes "argument --flag: ") ---
def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {what} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a {what} integer, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "positive")
_nonnegative_int = _int_at_least(0, "non-negative")


def _float(text: str, *, low: float | None = None, high: float | None = None, strict_low: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    if low is not None and (value <= low if strict_low else value < low):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict_low else '>='} {low:g}, got {value:g}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"must be <= {high:g}, got {value:g}")
    return value


def _probability(text: str) -> float:
    return _float(text, low=0.0, high=1.0)


def _positive_float(text: str) -> float:
    return _float(text, low=0.0, strict_low=True)


def _nonnegative_float(text: str) -> float:
    return _float(text, low=0.0)


def _override(text: str) -> tuple[str, object]:
    """``FIELD=VALUE``; VALUE is read as a Python literal (``100``, ``0.1``, ``[1, 2]``, ``None``), else as text."""
    field, sep, value = text.partition("=")
    if not sep or not field.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"must be FIELD=VALUE (e.g. steps=100), got {text!r}")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = value.strip()
    return field.strip(), parsed


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=_nonnegative_int, default=0, help="base seed (default 0)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="training backend (default auto)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if present)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch backend: force torch.compile on/off (default: decided by the amount of work)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from .experiments import SCALES, ordered_names
    from .experiments import gallery as experiment_gallery

    parser = _Parser(prog=PROG, description="Train toy models of superposition (many instances at once).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("list", help="list the named experiments", description="List the named experiments.")

    run = sub.add_parser(
        "run", help="run a named experiment (train, save result, figure and numbers)",
        description="Run a named experiment: writes its trained result(s) (OUT/result/ or OUT/result/<variant>/) "
                    "or sweep store(s) (OUT/sweep/...), its figures (PNG and SVG), OUT/NAME.parquet (the analysis "
                    "table) and OUT/NAME.json (the numbers).",
    )
    run.add_argument("name", metavar="NAME", help=f"experiment ({', '.join(ordered_names())})")
    run.add_argument("--out", required=True, metavar="DIR", help="output folder")
    run.add_argument("--scale", choices=SCALES, default="paper",
                     help="small: seconds on a laptop CPU; paper: the sources' sizes and steps (default paper)")
    run.add_argument("--set", dest="overrides", type=_override, action="append", default=[], metavar="FIELD=VALUE",
                     help="override a setting of the experiment (fastsup list shows them) or any TrainConfig "
                          "field, e.g. --set restarts=4 --set lr=0.01; repeatable")
    run.add_argument("--steps", type=_positive_int, default=None, help="training steps (default: the experiment's)")
    run.add_argument("--instances", type=_positive_int, default=None,
                     help="number of instances (default: the experiment's; density grids are respaced)")
    run.add_argument("--batch-size", type=_positive_int, default=None, help="batch size (default: the experiment's)")
    _add_run_options(run)
    run.set_defaults(seed=None, backend=None)  # unset: the scale's own values

    tr = sub.add_parser(
        "train", help="train a sweep of instances and save the result folder",
        description="Train I independent models n features -> m hidden and save the result folder "
                    "(fastsup.load reads it).",
    )
    tr.add_argument("--features", type=_positive_int, required=True, metavar="N", help="number of features n")
    tr.add_argument("--hidden", type=_positive_int, required=True, metavar="M", help="hidden dimensions m")
    tr.add_argument("--instances", type=_positive_int, required=True, metavar="I", help="number of instances")
    tr.add_argument("--model", choices=MODELS, default="relu_output", help="model variant (default relu_output)")
    tr.add_argument("--feature-probability", type=_probability, nargs="+", default=[1.0], metavar="P",
                    help="feature probability p = 1 - S: one value for all instances, or one per instance "
                         "(default 1)")
    tr.add_argument("--importance-decay", type=_positive_float, default=1.0, metavar="R",
                    help="importance of feature i is R**i (default 1: uniform)")
    tr.add_argument("--steps", type=_positive_int, default=10_000, help="training steps (default 10000)")
    tr.add_argument("--batch-size", type=_positive_int, default=1024, help="batch size (default 1024)")
    tr.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate (default 1e-3)")
    tr.add_argument("--weight-decay", type=_nonnegative_float, default=None,
                    help="weight decay (default: 0.01 for adamw, 0 for adam)")
    tr.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="optimizer (default adamw)")
    tr.add_argument("--schedule", choices=_CLI_SCHEDULES, default="constant", help="lr schedule (default constant)")
    tr.add_argument("--warmup-steps", type=_nonnegative_int, default=0, metavar="N",
                    help="warmup steps of --schedule warmup_cosine (0 < N < steps)")
    tr.add_argument("--checkpoint-steps", type=_nonnegative_int, nargs="+", default=(), metavar="S",
                    help="also save the parameters after these steps' updates (increasing, each < --steps)")
    tr.add_argument("--out", required=True, metavar="DIR", help="folder to save the result into: new, empty, or a previous fastsup result (replaced)")
    _add_run_options(tr)

    sw = sub.add_parser(
        "sweep", help="run (or resume) a sweep from a TOML spec into a store folder",
        description="Train every (point, restart) of the sweep in SPEC (TOML: [sweep], [fixed], [axes], "
                    "[fields]; see examples/) into the folder STORE; rerunning the same command resumes.",
    )
    sw.add_argument("spec", metavar="SPEC", help="sweep spec (.toml)")
    sw.add_argument("--store", required=True, metavar="DIR", help="the sweep's folder (created, or resumed)")
    sw.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="where chunks run: in this process, or one Ray task each (default local)")
    sw.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    sw.add_argument("--backend", choices=BACKENDS, default="auto", help="training backend (default auto)")
    sw.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if present)")
    sw.add_argument("--instance-chunk", type=_positive_int, default=None, metavar="N",
                    help="models per train call in a new store (default: bounded by memory)")
    sw.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    ex = sub.add_parser(
        "export-activations", help="write a saved result's hidden activations and true features (for SAEs)",
        description="Draw --samples fresh data points per instance and write each model's hidden activations "
                    "with the features that produced them to the folder --out (safetensors shards and a "
                    "manifest; fastsup.load_activations reads it).",
    )
    ex.add_argument("result", metavar="RESULT", help="a saved result folder (fastsup train --out, result.save)")
    ex.add_argument("--samples", type=_positive_int, required=True, metavar="N", help="data points per instance")
    ex.add_argument("--out", required=True, metavar="DIR",
                    help="folder to write: new, empty, or a previous export (replaced)")
    ex.add_argument("--instances", type=_nonnegative_int, nargs="+", default=None, metavar="K",
                    help="positions of the instances to export (default all)")
    ex.add_argument("--rows-per-shard", type=_positive_int, default=None, metavar="R",
                    help="rows per shard file, which bounds memory (default: 64 MiB shards)")
    ex.add_argument("--feature-probability", type=_probability, default=None, metavar="P",
                    help="draw the data with this feature probability (default: the training one)")
    ex.add_argument("--seed", type=_nonnegative_int, default=None,
                    help="draw other data (default: the result's seed)")
    ex.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda if present)")

    gallery = sub.add_parser(
        "gallery", help="run every experiment and write its figures and an index (index.md, index.html)",
        description="Run every registered experiment at one scale into DIR/runs/, write each figure small as "
                    "DIR/<stem>.png and an index (DIR/index.md, DIR/index.html) with the command, title and "
                    "summary of each.",
    )
    experiment_gallery.add_arguments(gallery)

    st = sub.add_parser("sweep-status", help="how far a sweep store has got",
                        description="Print the models finished / planned and the diverged count of a sweep store.")
    st.add_argument("store", metavar="DIR", help="the sweep's folder")
    return parser


def _cmd_list(args) -> int:
    from .experiments import EXPERIMENTS, ordered_names

    width = max((len(name) for name in EXPERIMENTS), default=0)
    for name in ordered_names():
        experiment = EXPERIMENTS[name]
        print(f"{name:<{width}}  {experiment.description}")
        print(f"{'':<{width}}  scales: {', '.join(experiment.scales)}; settings: "
              f"{', '.join(type(experiment.scales['paper']).field_names())}")
    return 0


def _cmd_run(args) -> int:
    from .experiments import run_experiment

    shorthands = {"steps": args.steps, "n_instances": args.instances, "batch_size": args.batch_size,
                  "seed": args.seed, "backend": args.backend, "device": args.device}
    overrides = {field: value for field, value in shorthands.items() if value is not None}
    overrides.update(args.overrides)
    run = run_experiment(args.name, args.out, scale=args.scale, progress=args.progress, compile=args.compile,
                         **overrides)
    for kind, paths in (("result", run.result_dirs), ("sweep", run.sweep_dirs)):
        for label, path in paths.items():
            print(f"{kind}{'' if len(paths) == 1 else f' ({label})'}: {path}")
    for path in run.figure_paths.values():
        print(f"figure: {path} (and .svg)")
    print(f"table: {run.table_path}")
    print(f"numbers: {run.numbers_path}")
    print(run.summary())
    return _report_divergence([r for r in run.results.values() if isinstance(r, TrainResult)])


def _cmd_train(args) -> int:
    from .config import TrainConfig
    from .result import check_save_target
    from .train import train

    p = args.feature_probability
    if len(p) == 1:
        probability = p[0]
    elif len(p) == args.instances:
        probability = [[v] for v in p]  # [I, 1]: per instance, unambiguous even when I == n
    else:
        raise ValueError(
            f"argument --feature-probability: got {len(p)} values; give one, or one per instance "
            f"(--instances {args.instances})"
        )
    check_save_target(args.out)  # before training, not after it
    importance = [[args.importance_decay ** i for i in range(args.features)]]
    config = TrainConfig(
        n_features=args.features, n_hidden=args.hidden, n_instances=args.instances, model=args.model,
        feature_probability=probability, importance=importance, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, optimizer=args.optimizer, schedule=args.schedule,
        warmup_steps=args.warmup_steps, seed=args.seed,
    )
    result = train(config, backend=args.backend, device=args.device, progress=args.progress, compile=args.compile,
                   checkpoint_steps=args.checkpoint_steps)
    path = result.save(args.out)
    print(f"result: {path}")
    losses = result.final_loss.double()
    if len(losses) <= _MAX_LISTED_LOSSES:
        print("final loss per instance: " + " ".join(f"{v:.6g}" for v in losses.tolist()))
    else:
        head = " ".join(f"{v:.6g}" for v in losses[:_MAX_LISTED_LOSSES // 2].tolist())
        print(f"final loss per instance ({len(losses)}; the rest are in the result): {head} ...")
    print(f"final loss mean {losses.mean().item():.6g}, min {losses.min().item():.6g}, max {losses.max().item():.6g}")
    return _report_divergence([result])


def _report_divergence(results) -> int:
    """Say how many instances diverged; 1 (failure) when every instance of every run did."""
    diverged = sum(int(r.diverged.sum()) for r in results)
    total = sum(r.config.n_instances for r in results)
    if diverged:
        print(f"{diverged} of {total} instances diverged (NaN or inf loss or weights)", file=sys.stderr)
    return 1 if diverged == total else 0


def _cmd_sweep(args) -> int:
    from .sweep import Sweep, run_sweep

    out = run_sweep(Sweep.from_toml(args.spec), args.store, executor=args.executor, address=args.address,
                    backend=args.backend,
                    device=args.device, instance_chunk=args.instance_chunk, progress=args.progress)
    table = out.table
    diverged = int(table["diverged"].sum())
    print(f"sweep: {len(table)} models ({table['point'].nunique()} points × {out.restarts} restarts) in "
          f"{args.store}; {diverged} diverged; table: {out.store / 'table.parquet'}")
    return 1 if diverged == len(table) else 0


def _cmd_sweep_status(args) -> int:
    from .sweep import load_sweep

    out = load_sweep(args.store)
    done, planned = out.status()
    print(f"{args.store}: {done} / {planned} models finished ({len(out.chunks)} chunks)")
    if done == planned:
        print(f"diverged: {int(out.table['diverged'].sum())}")
    return 0


def _cmd_export_activations(args) -> int:
    from .activations import check_export_target
    from .result import load

    check_export_target(args.out)  # before reading the result, not after it
    distribution = {name: value for name, value in (("feature_probability", args.feature_probability),
                                                    ("seed", args.seed)) if value is not None}
    activations = load(args.result).hidden_activations(args.samples, args.out, instances=args.instances,
                                                       rows_per_shard=args.rows_per_shard, device=args.device,
                                                       **distribution)
    I = len(activations.instances)
    print(f"activations: {activations.path} ({activations.n_samples} rows × {I} instances, shard files: "
          f"{len(activations)}; each holds hidden [{I}, rows, {activations.n_hidden}] and features "
          f"[{I}, rows, {activations.n_features}])")
    return 0


def _cmd_gallery(args) -> int:
    from .experiments.gallery import run_from_arguments

    return run_from_arguments(args)


_COMMANDS = {"list": _cmd_list, "run": _cmd_run, "train": _cmd_train, "sweep": _cmd_sweep,
             "sweep-status": _cmd_sweep_status, "gallery": _cmd_gallery,
             "export-activations": _cmd_export_activations}


def main(argv=None) -> int:
    """Entry point of the ``fastsup`` command; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        err.parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # the command says it in its own words
            return _COMMANDS[args.command](args)
    except (ValueError, TypeError, OSError, OverflowError, RuntimeError, MemoryError) as err:
        # OSError: a path that cannot be written; OverflowError/RuntimeError: numbers too large to
        # allocate or represent; MemoryError: the estimate before training says the run cannot fit.
        message = f"{err.filename}: {err.strerror}" if isinstance(err, OSError) and err.strerror and err.filename else err
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (files already written are complete)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
