"""``run_experiment``: settings → train every variant → analysis → figures and numbers, written atomically.

Outputs in ``out_dir``::

    result/                  the TrainResult of a single-variant experiment, or
    result/<variant>/        one TrainResult per TrainConfig variant (e.g. result/linear/)
    sweep/ or sweep/<variant>/   the store of each Sweep variant (resumable: rerunning continues it)
    <stem>.png, <stem>.svg   each figure
    <name>.parquet           the analysis table
    <name>.json              scale, settings and the numbers (written last: its presence marks a finished run)

Every file is written through :mod:`fastsup.io` (a temporary name in the
same folder, renamed into place), so an interrupted run never leaves a
half-written file.  Nothing outside the sweep stores is touched until every
variant has trained (a sweep store only ever holds finished chunks of its
own spec); then ``<name>.json`` is removed first and written again last, so
a folder that has it holds the outputs of one complete run, and one without
it was interrupted while writing.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from .. import io, metrics
from ..config import TrainConfig
from ..result import TrainResult, check_save_target
from ..sweep import Sweep, SweepResult, run_sweep
from ..sweep import store as sweep_stores
from ..train import train
from .base import Experiment, Outcome, get_experiment
from .titles import experiment_title

__all__ = ["ExperimentRun", "run_experiment"]

FIGURE_FORMATS = ("png", "svg")
FIGURE_DPI = 100


@dataclasses.dataclass
class ExperimentRun:
    """What :func:`run_experiment` produced: where the files are, and the outcome it analysed.

    ``result_dirs`` / ``sweep_dirs`` map variant label → saved TrainResult
    folder / sweep store; ``figure_paths`` map figure stem → PNG (the SVG is
    beside it).  ``.result``, ``.result_dir`` and ``.figure_path`` give the
    only one directly.
    """

    name: str
    out_dir: Path
    outcome: Outcome
    table: Any
    figure_paths: dict[str, Path]
    table_path: Path
    numbers_path: Path
    result_dirs: dict[str, Path]
    sweep_dirs: dict[str, Path]

    @property
    def results(self) -> dict[str, TrainResult | SweepResult]:
        return dict(self.outcome.trained)

    @staticmethod
    def _single(name: str, mapping: dict, what: str):
        if len(mapping) != 1:
            raise ValueError(f"experiment {name!r} has several {what} ({', '.join(mapping) or 'none'}); index by one")
        return next(iter(mapping.values()))

    @property
    def result(self) -> TrainResult:
        return self.outcome.result()

    @property
    def result_dir(self) -> Path:
        return self._single(self.name, self.result_dirs, "runs")

    @property
    def figure_path(self) -> Path:
        return self._single(self.name, self.figure_paths, "figures")

    def summary(self) -> str:
        """One line per variant: sizes, steps, losses and represented features (train runs), or points,
        restarts and best losses (sweeps)."""
        parts = []
        for label, trained in self.outcome.trained.items():
            line = _result_summary(trained) if isinstance(trained, TrainResult) else _sweep_summary(trained)
            named = len(self.outcome.trained) == 1 or line.split(" ", 1)[0] == label  # a model name says it
            parts.append(line if named else f"{label}: {line}")
        return f"{self.name}: {self.outcome.scale} scale, " + "; ".join(parts)


def _result_summary(result: TrainResult) -> str:
    c = result.config
    loss = result.final_loss.double()
    rep = metrics.n_represented(result.encoder.detach().double()).tolist()
    shown = " ".join("nan" if math.isnan(v) else str(int(v)) for v in rep[:20]) + (" ..." if len(rep) > 20 else "")
    return (f"{c.model} {c.n_features}→{c.n_hidden} × {c.n_instances}, {c.steps} steps, "
            f"final loss mean {loss.mean().item():.4g} (min {loss.min().item():.4g}, max {loss.max().item():.4g}), "
            f"represented features per instance {shown}")


def _sweep_summary(sweep: SweepResult) -> str:
    best = sweep.best()
    return (f"sweep of {len(best)} points × {sweep.restarts} restarts, best-restart loss mean "
            f"{best['final_loss'].mean():.4g}, {int(sweep.table['diverged'].sum())} models diverged")


def _targets(out_dir: Path, variants: dict) -> tuple[dict[str, Path], dict[str, Path]]:
    """Where each TrainConfig variant's result and each Sweep variant's store go."""
    def place(kind, folder):
        labels = [label for label, v in variants.items() if isinstance(v, kind)]
        return {label: out_dir / folder if len(variants) == 1 else out_dir / folder / label for label in labels}

    return place(TrainConfig, "result"), place(Sweep, "sweep")


def _check_sweep_store(store: Path, sweep: Sweep) -> None:
    """Fail before anything trains when ``store`` holds another sweep (run_sweep would, but later)."""
    manifest = sweep_stores.check_store(store)
    if manifest is not None and manifest["fingerprint"] != sweep.resolve().fingerprint():
        raise ValueError(f"{str(store)!r} holds the store of another sweep (other settings); "
                         "use another --out, or the settings it was made with")


def run_experiment(
    name: str,
    out_dir,
    *,
    scale: str = "paper",
    progress: bool = True,
    compile: bool | None = None,
    instance_chunk: int | None = None,
    executor: str = "local",
    **overrides,
) -> ExperimentRun:
    """Train experiment ``name`` at ``scale`` with ``overrides``, and write its outputs under ``out_dir``.

    ``overrides`` are fields of the experiment's Settings (``steps``,
    ``batch_size``, ``seed``, ``backend``, ``device`` and its own, such as
    ``n_instances`` or ``restarts``) or any other TrainConfig field (``lr``,
    ``optimizer``...), applied to every model.  ``progress``, ``compile`` and
    ``instance_chunk`` go to :func:`fastsup.train` (``executor`` and
    ``instance_chunk`` to :func:`fastsup.run_sweep` for sweep variants).  Every
    spec is built and validated before anything trains.
    """
    experiment = get_experiment(name)
    settings = experiment.settings(scale, **overrides)
    variants = experiment.variants(settings)

    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ValueError(f"out_dir {str(out_dir)!r} exists and is not a folder")
    result_dirs, sweep_dirs = _targets(out_dir, variants)
    for target in result_dirs.values():
        check_save_target(target)
    for label, store in sweep_dirs.items():
        _check_sweep_store(store, variants[label])

    options = experiment.train_options(settings, variants) if experiment.train_options else {}
    trained = {}
    for label, variant in variants.items():
        if isinstance(variant, TrainConfig):
            trained[label] = train(variant, backend=settings.backend, device=settings.device, progress=progress,
                                   compile=compile, instance_chunk=instance_chunk, **options.get(label, {}))
        else:
            trained[label] = run_sweep(variant, sweep_dirs[label], executor=executor, backend=settings.backend,
                                       device=settings.device, instance_chunk=instance_chunk, progress=progress,
                                       **options.get(label, {}))
    outcome = Outcome(experiment, scale, settings, variants, trained)
    return _write_outputs(experiment, outcome, out_dir, result_dirs, sweep_dirs)


def _write_outputs(experiment: Experiment, outcome: Outcome, out_dir: Path, result_dirs, sweep_dirs) -> ExperimentRun:
    table = experiment.analysis(outcome)
    figures = dict(experiment.figures(outcome, table))
    payload = {
        "experiment": experiment.name,
        "description": experiment.description,
        "title": experiment_title(experiment.name, outcome.variants),
        "scale": outcome.scale,
        "settings": outcome.settings.to_dict(),
        **experiment.numbers(outcome, table),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers_path, table_path = out_dir / f"{experiment.name}.json", out_dir / f"{experiment.name}.parquet"
    figure_paths = {stem: out_dir / f"{stem}.png" for stem in figures}
    with io.folder_lock(out_dir):
        io.remove_stale_temporaries(out_dir)
        numbers_path.unlink(missing_ok=True)  # the record of a complete run goes first and comes back last
        saved = {label: outcome.trained[label].save(target) for label, target in result_dirs.items()}
        for stem, figure in figures.items():
            for fmt in FIGURE_FORMATS:
                with io.atomic_path(out_dir / f"{stem}.{fmt}") as tmp:
                    figure.savefig(tmp, format=fmt, dpi=FIGURE_DPI)
        with io.atomic_path(table_path) as tmp:
            table.to_parquet(tmp)
        io.write_json_atomic(numbers_path, payload)
    return ExperimentRun(experiment.name, out_dir, outcome, table, figure_paths, table_path, numbers_path,
                         saved, dict(sweep_dirs))

