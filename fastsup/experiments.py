"""The paper's experiments, by name: a config, a training run, a figure and the numbers.

Each registered :class:`Experiment` has a config function (``overrides`` →
:class:`~fastsup.config.TrainConfig`), optional *variants* (one training run
each, e.g. the linear and the ReLU model of ``linear_vs_relu``) and a figure
function.  :func:`run_experiment` trains every variant, then writes into
``out_dir``::

    result/                  the TrainResult (single-variant experiments), or
    result/<variant>/        one TrainResult per variant (e.g. result/linear/)
    <name>.png               the experiment's figure
    <name>.json              the numbers (written last: its presence marks a finished run)

Every file is written through :mod:`fastsup.io` (a temporary name in the
same folder, renamed into place), so an interrupted run never leaves a
half-written file.  Nothing is touched until training has finished; then
``<name>.json`` is removed first and written again last, so a folder that has
it holds the outputs of one complete run, and one without it was interrupted
while writing (its result folder is still a complete result, old or new).

Names follow the paper: ``feature_probability`` is p = 1 - S (the density,
"1-S" in plot titles); ``sparsity`` is S.

Adding an experiment::

    def my_config(*, n_instances=4, **overrides) -> TrainConfig: ...
    register(Experiment("mine", "what it shows", my_config, figure=my_figure))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from . import io, metrics
from .config import TrainConfig
from .plots import plot_features_2d
from .result import TrainResult, check_save_target
from .train import train

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentRun",
    "NOTEBOOK_DEFAULTS",
    "experiment_config",
    "experiment_configs",
    "get_experiment",
    "intro",
    "linear_vs_relu",
    "numbers",
    "register",
    "run_experiment",
]

#: The notebook's ``optimize`` defaults (AdamW with torch's weight decay 0.01).
NOTEBOOK_DEFAULTS: dict[str, Any] = dict(
    steps=10_000, batch_size=1024, lr=1e-3, optimizer="adamw", weight_decay=0.01, schedule="constant",
)

REPRESENTED_THRESHOLD = metrics.REPRESENTED_THRESHOLD

_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment.

    Attributes:
        name: registry key (also the file stem of its figure and numbers).
        description: one line, shown by ``fastsup list``.
        config: ``config(**overrides) -> TrainConfig``; accepts any TrainConfig
            field as a keyword (``n_instances``, ``steps``, ``seed``, ``batch_size``...).
        figure: ``figure(results) -> matplotlib Figure`` where ``results`` maps
            variant label → TrainResult (the experiment's name for a single run).
        variants: variant label → fields passed to ``config`` for that run
            (empty: a single run).
    """

    name: str
    description: str
    config: Callable[..., TrainConfig]
    figure: Callable[[dict[str, TrainResult]], Figure]
    variants: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.variants) or (self.name,)

    def configs(self, **overrides) -> dict[str, TrainConfig]:
        """variant label → TrainConfig, with ``overrides`` applied to every variant."""
        _check_fields(self.name, overrides)
        if not self.variants:
            return {self.name: self.config(**overrides)}
        out = {}
        for label, fields in self.variants.items():
            clash = sorted(set(fields) & set(overrides))
            if clash:
                raise ValueError(
                    f"experiment {self.name!r} sets {', '.join(clash)} per variant ({', '.join(self.variants)}); "
                    f"it cannot be overridden"
                )
            out[label] = self.config(**fields, **overrides)
        return out


EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment, *, replace: bool = False) -> Experiment:
    """Add ``experiment`` to :data:`EXPERIMENTS` (refuses to overwrite unless ``replace``)."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register expects an Experiment, got {type(experiment).__name__}")
    if not replace and experiment.name in EXPERIMENTS:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name``; an unknown name is a ValueError listing the known ones."""
    try:
        return EXPERIMENTS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(EXPERIMENTS)) or "(none)"
        raise ValueError(f"unknown experiment {name!r}; known experiments: {known}") from None


def experiment_configs(name: str, **overrides) -> dict[str, TrainConfig]:
    """variant label → TrainConfig of experiment ``name`` with ``overrides`` (TrainConfig fields)."""
    return get_experiment(name).configs(**overrides)


def experiment_config(name: str, **overrides) -> TrainConfig:
    """The TrainConfig of a single-run experiment (for variant experiments, pass the variant's fields,
    e.g. ``experiment_config("linear_vs_relu", model="linear")``)."""
    experiment = get_experiment(name)
    _check_fields(name, overrides)
    return experiment.config(**overrides)


def _check_fields(name: str, overrides: Mapping[str, Any]) -> None:
    unknown = sorted(set(overrides) - set(_CONFIG_FIELDS))
    if unknown:
        raise TypeError(
            f"experiment {name!r} got unknown override(s) {', '.join(unknown)}; "
            f"overrides must be TrainConfig fields: {', '.join(_CONFIG_FIELDS)}"
        )


# --------------------------------------------------------------------------
# Config functions
# --------------------------------------------------------------------------
def _decay(rate: float, n: int) -> list[list[float]]:
    """Importance ``rate**i`` as ``[1, n]`` (2-D, so it never collides with a per-instance ``[I]``)."""
    return [[rate ** i for i in range(n)]]


def _per_instance(values) -> list[list[float]]:
    """Per-instance values as ``[I, 1]`` (unambiguous even when n_instances == n_features)."""
    return [[float(v)] for v in values]


def intro(*, n_features: int = 5, n_hidden: int = 2, n_instances: int = 10, **overrides) -> TrainConfig:
    """The notebook's intro cell: 5 features → 2 hidden, importance 0.9^i,
    feature probability 20^(-linspace(0, 1, I)) per instance (1 down to 0.05)."""
    fields = dict(NOTEBOOK_DEFAULTS, model="relu_output")
    fields.update(
        importance=_decay(0.9, n_features),
        feature_probability=_per_instance(20.0 ** -np.linspace(0.0, 1.0, n_instances)),
    )
    fields.update(overrides)
    return TrainConfig(n_features=n_features, n_hidden=n_hidden, n_instances=n_instances, **fields)


#: The paper's density grid for linear vs ReLU (1 - S per instance).
LINEAR_VS_RELU_DENSITIES = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


def linear_vs_relu(*, n_features: int = 20, n_hidden: int = 5, n_instances: int | None = None,
                   model: str = "relu_output", **overrides) -> TrainConfig:
    """20 features → 5 hidden, importance 0.7^i, 1-S ∈ {1, .3, .1, .03, .01, .003, .001}.

    With ``n_instances`` other than 7, the densities are ``logspace(0, -3, n_instances)``
    (the same range, log-spaced).
    """
    if n_instances is None:
        n_instances = len(LINEAR_VS_RELU_DENSITIES)
    if n_instances == len(LINEAR_VS_RELU_DENSITIES):
        densities = _per_instance(LINEAR_VS_RELU_DENSITIES)
    elif isinstance(n_instances, int) and n_instances > 0:
        densities = _per_instance(np.logspace(0.0, -3.0, n_instances))
    else:
        densities = 1.0  # TrainConfig reports the bad n_instances
    fields = dict(NOTEBOOK_DEFAULTS, model=model)
    fields.update(importance=_decay(0.7, n_features), feature_probability=densities)
    fields.update(overrides)
    return TrainConfig(n_features=n_features, n_hidden=n_hidden, n_instances=n_instances, **fields)


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------
def _densities(config: TrainConfig) -> list[float]:
    """One density per instance for titles: the mean of p over features (exact when uniform)."""
    return config.probability().double().mean(dim=1).tolist()


def _density_titles(config: TrainConfig) -> list[str]:
    return [f"1-S = {p:.3f}" for p in _densities(config)]


def _norm_bars(results: Mapping[str, TrainResult], *, suptitle: str | None = None, ax_size: float = 1.8) -> Figure:
    """Rows = runs (models), columns = instances: horizontal bars of ‖W_i‖ per feature
    (feature 0 at the top), coloured by polysemanticity sqrt(superposition) clipped to [0, 1]
    (dark: orthogonal to the other features, yellow: in superposition), as the notebook's plots."""
    rows = list(results.items())
    n_cols = max(r.config.n_instances for _, r in rows)
    fig = Figure(figsize=(n_cols * ax_size + 1.0, len(rows) * ax_size * 1.3), layout="constrained")
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    cmap = colormaps["viridis"]
    for row, (label, result) in enumerate(rows):
        W = result.encoder.detach().double()
        norms = metrics.feature_norms(W).numpy()
        poly = metrics.superposition(W).sqrt().clamp(0.0, 1.0).numpy()
        n = norms.shape[1]
        xmax = max(1.2, 1.05 * float(np.nanmax(norms, initial=0.0)))
        titles = _density_titles(result.config)
        for k in range(n_cols):
            ax = axes[row, k]
            if k >= result.config.n_instances:
                fig.delaxes(ax)
                continue
            ax.barh(np.arange(n), norms[k], color=cmap(poly[k]), height=0.8)
            ax.set_ylim(n - 0.5, -0.5)
            ax.set_xlim(0.0, xmax)
            ax.axvline(1.0, color="0.8", lw=0.8, zorder=0)
            ax.set_yticks([])
            ax.set_xticks([0, 1])
            ax.tick_params(labelsize=7)
            ax.set_title(titles[k], fontsize=9)
            if k == 0:
                ax.set_ylabel(f"{label}\nfeatures (0 at top)", fontsize=9)
    fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=axes.ravel().tolist(), shrink=0.6,
                 label="polysemanticity √superposition")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _intro_figure(results: Mapping[str, TrainResult]) -> Figure:
    (result,) = results.values()
    config = result.config
    if config.n_hidden != 2:  # rescaled runs: fall back to norm bars
        return _norm_bars(results, suptitle=config.title())
    return plot_features_2d(result.encoder, titles=_density_titles(config), suptitle=config.title())


def _linear_vs_relu_figure(results: Mapping[str, TrainResult]) -> Figure:
    config = next(iter(results.values())).config
    return _norm_bars(
        results,
        suptitle=(f"linear vs ReLU: {config.n_features}→{config.n_hidden} × {config.n_instances} instances, "
                  f"{config.steps} steps — feature norms ‖W_i‖ per instance"),
    )


register(Experiment(
    "intro",
    "5 features → 2 hidden, importance 0.9^i, 1-S from 1 to 0.05 over 10 instances: "
    "2 orthogonal features when dense, antipodal pairs then a pentagon when sparse",
    intro,
    figure=_intro_figure,
))
register(Experiment(
    "linear_vs_relu",
    "20 → 5, importance 0.7^i, 1-S ∈ {1, .3, .1, .03, .01, .003, .001}, linear and ReLU-output models: "
    "linear keeps the top 5 features, ReLU represents more as sparsity grows",
    linear_vs_relu,
    figure=_linear_vs_relu_figure,
    variants={"linear": {"model": "linear"}, "relu_output": {"model": "relu_output"}},
))


# --------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------
def _plain(tensor: torch.Tensor):
    """A tensor as nested Python lists; NaN/inf become None (strict JSON)."""
    values = tensor.detach().cpu()
    if values.is_floating_point():
        values = values.double()
        out = values.tolist()
        if torch.isfinite(values).all():
            return out
        return _nonfinite_to_none(out)
    return values.tolist()


def _nonfinite_to_none(value):
    if isinstance(value, list):
        return [_nonfinite_to_none(v) for v in value]
    return value if math.isfinite(value) else None


def _per_instance_or_full(tensor: torch.Tensor):
    """``[I]`` when every instance has one value across features, else ``[I, n]``."""
    if bool((tensor == tensor[:, :1]).all()):
        return _plain(tensor[:, 0])
    return _plain(tensor)


def numbers(result: TrainResult, *, threshold: float = REPRESENTED_THRESHOLD) -> dict[str, Any]:
    """The measures of one run as plain JSON values.

    ``feature_probability`` and ``sparsity`` are ``[I]`` when each instance has a
    single density (``[I][n]`` otherwise); ``final_loss``, ``n_represented``,
    ``dimensions_per_feature`` are ``[I]`` (an all-zero instance has
    ``dimensions_per_feature`` null, i.e. +inf); ``feature_norms``,
    ``superposition``, ``feature_dimensionality`` are ``[I][n]``.  For the abs
    model the measures are of the encoder ``W1``.
    """
    config = result.config
    W = result.encoder.detach().cpu().double()
    p = config.probability().double()
    return {
        "config": config.to_dict(),
        "backend": result.backend,
        "n_instances": config.n_instances,
        "feature_probability": _per_instance_or_full(p),
        "sparsity": _per_instance_or_full(1.0 - p),
        "final_loss": _plain(result.final_loss),
        "represented_threshold": threshold,
        "feature_norms": _plain(metrics.feature_norms(W)),
        "n_represented": [None if math.isnan(v) else int(v) for v in metrics.n_represented(W, threshold).tolist()],
        "diverged": result.diverged.tolist(),
        "superposition": _plain(metrics.superposition(W)),
        "feature_dimensionality": _plain(metrics.feature_dimensionality(W)),
        "dimensions_per_feature": _plain(metrics.dimensions_per_feature(W)),
    }


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------
@dataclasses.dataclass
class ExperimentRun:
    """What :func:`run_experiment` produced: where the files are and the trained results.

    ``results``/``result_dirs`` map variant label → TrainResult / saved folder
    (single-run experiments have one entry, keyed by the experiment's name;
    ``.result`` and ``.result_dir`` give it directly).
    """

    name: str
    out_dir: Path
    figure_path: Path
    numbers_path: Path
    result_dirs: dict[str, Path]
    results: dict[str, TrainResult]

    def _single(self, mapping: dict):
        if len(mapping) != 1:
            raise ValueError(f"experiment {self.name!r} has several runs ({', '.join(mapping)}); index .results/.result_dirs by one")
        return next(iter(mapping.values()))

    @property
    def result(self) -> TrainResult:
        return self._single(self.results)

    @property
    def result_dir(self) -> Path:
        return self._single(self.result_dirs)

    def summary(self) -> str:
        """One line: sizes, steps, final loss and represented features per instance, per run."""
        parts = []
        for label, result in self.results.items():
            c = result.config
            loss = result.final_loss.double()
            rep = metrics.n_represented(result.encoder.detach().double(), REPRESENTED_THRESHOLD).tolist()
            shown = " ".join("nan" if math.isnan(v) else str(int(v)) for v in rep[:20]) + (" ..." if len(rep) > 20 else "")
            prefix = "" if len(self.results) == 1 else f"{label}: "
            parts.append(
                f"{prefix}{c.model} {c.n_features}→{c.n_hidden} × {c.n_instances}, {c.steps} steps, "
                f"final loss mean {loss.mean().item():.4g} (min {loss.min().item():.4g}, max {loss.max().item():.4g}), "
                f"represented features per instance {shown}"
            )
        return f"{self.name}: " + "; ".join(parts)


def run_experiment(
    name: str,
    out_dir,
    *,
    steps: int | None = None,
    n_instances: int | None = None,
    seed: int = 0,
    backend: str = "auto",
    device=None,
    progress: bool = True,
    compile: bool | None = None,
    instance_chunk: int | None = None,
    **overrides,
) -> ExperimentRun:
    """Train experiment ``name``, save its result(s), figure and numbers under ``out_dir``.

    ``steps``/``n_instances`` (None: the experiment's defaults), ``seed`` and
    ``overrides`` (any TrainConfig field, e.g. ``batch_size=64``) change the
    config of every run; ``backend``, ``device``, ``progress``, ``compile`` and
    ``instance_chunk`` go to :func:`fastsup.train`.  All configs are validated
    before anything trains.
    """
    experiment = get_experiment(name)
    if steps is not None:
        overrides["steps"] = steps
    if n_instances is not None:
        overrides["n_instances"] = n_instances
    configs = experiment.configs(seed=seed, **overrides)

    out_dir = Path(out_dir)
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise ValueError(f"out_dir {str(out_dir)!r} exists and is not a folder")
    single = len(configs) == 1
    targets = {label: out_dir / "result" if single else out_dir / "result" / label for label in configs}
    for target in targets.values():
        check_save_target(target)
    results = {label: train(config, backend=backend, device=device, progress=progress,
                            compile=compile, instance_chunk=instance_chunk)
               for label, config in configs.items()}
    figure = experiment.figure(results)
    if single:
        payload = numbers(next(iter(results.values())))
    else:
        payload = {"models": {label: numbers(result) for label, result in results.items()}}
    payload = {"experiment": experiment.name, "description": experiment.description, **payload}

    out_dir.mkdir(parents=True, exist_ok=True)
    figure_path, numbers_path = out_dir / f"{experiment.name}.png", out_dir / f"{experiment.name}.json"
    with io.folder_lock(out_dir):
        io.remove_stale_temporaries(out_dir)
        numbers_path.unlink(missing_ok=True)  # the record of a complete run goes first and comes back last
        result_dirs = {label: results[label].save(target) for label, target in targets.items()}
        with io.atomic_path(figure_path) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        io.write_json_atomic(numbers_path, payload)
    return ExperimentRun(experiment.name, out_dir, figure_path, numbers_path, result_dirs, results)
