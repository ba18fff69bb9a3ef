"""What an experiment is: its settings per scale, its variants (train configs or sweeps), its analysis.

An experiment module defines a :class:`Settings` subclass (the knobs a user
may override), one instance of it per scale in :data:`SCALES`, a ``spec``
function (settings → variant label → :class:`~fastsup.TrainConfig` or
:class:`~fastsup.Sweep`), an ``analysis`` (→ a pandas table of the paper's
measures, one row per instance or sweep point), and ``figures`` (→ file stem
→ matplotlib Figure), and registers one :class:`Experiment`.  The runner
(:mod:`fastsup.experiments.runner`) trains, analyses and writes the outputs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, Union

from ..config import BACKENDS, TrainConfig
from ..result import TrainResult
from ..sweep import Sweep, SweepResult
from .tables import result_numbers

__all__ = ["CODE_COMPANION_OPTIMIZER", "EXPERIMENTS", "NOTEBOOK_OPTIMIZER", "SCALES", "Experiment", "Outcome",
           "Settings", "Variant", "get_experiment", "importance_decay", "measures_per_result", "ordered_names",
           "per_instance", "register"]

#: Every experiment runs at these scales: ``small`` takes seconds on a laptop CPU (tests, CI, the
#: gallery), ``paper`` has the sizes, steps and restarts of the sources in EXPERIMENTS.md.
SCALES = ("small", "paper")

#: A variant is trained as one call (a TrainConfig) or as a resumable sweep with restarts.
Variant = Union[TrainConfig, Sweep]
#: What training a variant gives back.
Trained = Union[TrainResult, SweepResult]

# TrainConfig fields a user may not override: the experiment's spec decides how many instances
# there are and which ids they have (an experiment that varies n_instances declares it in its Settings).
_STRUCTURAL_FIELDS = ("n_instances", "instance_ids")
OVERRIDABLE_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in _STRUCTURAL_FIELDS)


#: The notebook's optimiser (AdamW with torch's weight decay 0.01, constant lr 1e-3); steps and
#: batch size come from the Settings.
NOTEBOOK_OPTIMIZER: dict[str, Any] = dict(lr=1e-3, optimizer="adamw", weight_decay=0.01, schedule="constant")
#: The code companion's faster recipe ([KG] cell 6: AdamW, lr 1e-2 decayed to 0 by a cosine; without its
#: gradient clipping, which would couple the instances): what ``small`` scales use to converge in
#: 1–2k steps, passed as the scale's ``config_overrides``.
CODE_COMPANION_OPTIMIZER: dict[str, Any] = dict(lr=1e-2, schedule="cosine")


def check_density(name: str, value) -> None:
    """A density 1 - S of a Settings field: a number in (0, 1], or a ValueError naming the field."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value!r}")


def importance_decay(rate: float, n_features: int) -> list[list[float]]:
    """Importance ``rate**i`` as ``[1, n]`` (2-D, so it never collides with a per-instance ``[I]``)."""
    return [[rate ** i for i in range(n_features)]]


def per_instance(values) -> list[list[float]]:
    """Per-instance values as ``[I, 1]`` (unambiguous even when n_instances == n_features)."""
    return [[float(v)] for v in values]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """The knobs of an experiment; a scale is one value of its Settings subclass.

    Subclasses add their own fields (``n_instances``, ``restarts``,
    ``grid``, ...), each with a default, and may check them in
    ``__post_init__`` (call ``super().__post_init__()``).  The spec builds
    every variant through :meth:`config` or :meth:`sweep`, which apply
    ``steps``, ``batch_size``, ``seed`` and the TrainConfig fields the user
    overrode on top of the spec's own fields, so they reach every model;
    ``backend`` and ``device`` go to the trainer.
    """

    steps: int
    batch_size: int = 1024
    seed: int = 0
    backend: str = "auto"
    device: str | None = None
    #: TrainConfig fields applied to every model on top of the spec's own: the scale's (e.g.
    #: CODE_COMPANION_OPTIMIZER) and those the user overrides that are not Settings fields (e.g. ``lr``).
    config_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}; got {self.backend!r}")

    def train_fields(self) -> dict[str, Any]:
        """The TrainConfig fields these settings fix for every model of the experiment."""
        return dict(steps=self.steps, batch_size=self.batch_size, seed=self.seed, **self.config_overrides)

    def config(self, **fields) -> TrainConfig:
        """A TrainConfig of the spec's ``fields`` with :meth:`train_fields` on top."""
        return TrainConfig(**{**fields, **self.train_fields()})

    def sweep(self, *, axes, fields=None, restarts: int = 1, mode: str = "grid", **fixed) -> Sweep:
        """A Sweep (see :class:`fastsup.Sweep`) with :meth:`train_fields` on top of the fixed fields and of
        what ``fields`` gives each point."""
        forced = self.train_fields()
        if callable(fields):
            point_fields = fields
            fields = lambda **point: {**point_fields(**point), **forced}  # noqa: E731
        elif fields is not None:
            fields = {**fields, **forced}
        return Sweep(axes=axes, fields=fields, restarts=restarts, mode=mode, **{**fixed, **forced})

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "config_overrides")

    def with_overrides(self, experiment: str, overrides: Mapping[str, Any]) -> "Settings":
        """These settings with ``overrides`` applied: a Settings field replaces its value, another
        TrainConfig field joins ``config_overrides``; anything else is an error listing what is known."""
        own = self.field_names()
        unknown = sorted(set(overrides) - set(own) - set(OVERRIDABLE_CONFIG_FIELDS))
        if unknown:
            config_only = [name for name in OVERRIDABLE_CONFIG_FIELDS if name not in own]
            raise TypeError(
                f"experiment {experiment!r} got unknown override(s) {', '.join(unknown)}; it knows its settings "
                f"{', '.join(own)}, and the TrainConfig fields {', '.join(config_only)}"
            )
        settings_part = {k: v for k, v in overrides.items() if k in own}
        config_part = {k: v for k, v in overrides.items() if k not in own}
        return dataclasses.replace(self, **settings_part,
                                   config_overrides={**self.config_overrides, **config_part})

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON values (tensors and arrays an override may hold become lists)."""
        def plain(value):
            if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars
                return value.tolist()
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One experiment trained at one setting: what ``analysis``, ``numbers`` and ``figures`` receive.

    ``variants`` and ``trained`` map the same labels (in the spec's order) to
    the spec (TrainConfig / Sweep) and to what training it gave
    (TrainResult / SweepResult: for a sweep, ``.best()`` picks the best
    restart per point and ``.params(rows)`` loads their tensors).
    """

    experiment: "Experiment"
    scale: str
    settings: Settings
    variants: Mapping[str, Variant]
    trained: Mapping[str, Trained]

    def result(self, label: str | None = None) -> TrainResult:
        """The TrainResult of variant ``label`` (None: the only variant)."""
        return self._get(label, TrainResult)

    def sweep(self, label: str | None = None) -> SweepResult:
        """The SweepResult of variant ``label`` (None: the only variant)."""
        return self._get(label, SweepResult)

    def _get(self, label, kind):
        if label is None:
            if len(self.trained) != 1:
                raise ValueError(f"experiment {self.experiment.name!r} has several variants "
                                 f"({', '.join(self.trained)}); name one")
            label = next(iter(self.trained))
        value = self.trained[label]
        if not isinstance(value, kind):
            raise TypeError(f"variant {label!r} of {self.experiment.name!r} is a {type(value).__name__}, "
                            f"not a {kind.__name__}")
        return value


def measures_per_result(outcome: Outcome, table) -> dict[str, Any]:
    """The default numbers: every TrainResult's measures (:func:`~fastsup.experiments.tables.result_numbers`),
    flat for a single-variant experiment, else under ``"variants"`` by label (sweep variants: their
    best-restart table under ``"best"``)."""
    def measures(trained):
        if isinstance(trained, TrainResult):
            return result_numbers(trained)
        best = trained.best().drop(columns=["chunk", "row_in_chunk"])
        # by column; pandas writes NaN as null (strict JSON)
        by_column = json.loads(best.to_json(orient="columns"))
        return {"best": {column: list(values.values()) for column, values in by_column.items()}}

    if len(outcome.trained) == 1:
        return measures(next(iter(outcome.trained.values())))
    return {"variants": {label: measures(trained) for label, trained in outcome.trained.items()}}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment.

    Attributes:
        name: registry key, the file stem of its outputs, and the module's name.
        description: one line (``fastsup list``, the gallery).
        number: its section in EXPERIMENTS.md (orders the list and the gallery).
        scales: scale name → Settings, one per name in :data:`SCALES`.
        spec: ``spec(settings) -> {label: TrainConfig | Sweep}`` (at least one variant).
        analysis: ``analysis(outcome) -> pandas.DataFrame`` of the paper's measures, one row per
            instance (or sweep point), with a ``variant`` column; saved as ``NAME.parquet``.
        figures: ``figures(outcome, table) -> {stem: Figure}``; each is saved as ``stem.png`` and
            ``stem.svg`` (use the experiment's name as the stem of its main figure).
        numbers: ``numbers(outcome, table) -> dict`` of JSON values: the headline numbers, saved in
            ``NAME.json`` beside the scale, settings and variant specs.
        train_options: optional ``train_options(settings, variants) -> {label: keywords}``: what a
            variant's training needs beyond its config, ``checkpoint_steps`` (configs and sweeps)
            and ``init`` (configs); the runner passes them to ``train`` / ``run_sweep``.
    """

    name: str
    description: str
    number: int
    scales: Mapping[str, Settings]
    spec: Callable[[Settings], Mapping[str, Variant]]
    analysis: Callable[[Outcome], Any]
    figures: Callable[[Outcome, Any], Mapping[str, Any]]
    numbers: Callable[[Outcome, Any], dict] = measures_per_result
    train_options: Callable[[Settings, Mapping[str, Variant]], Mapping[str, dict]] | None = None

    def __post_init__(self):
        if set(self.scales) != set(SCALES):
            raise ValueError(f"experiment {self.name!r} must define exactly the scales {', '.join(SCALES)}; "
                             f"got {', '.join(self.scales) or 'none'}")
        kinds = {type(s) for s in self.scales.values()}
        if len(kinds) != 1 or not issubclass(kinds.pop(), Settings):
            raise TypeError(f"experiment {self.name!r}: every scale must be an instance of one Settings subclass")

    def settings(self, scale: str = "paper", **overrides) -> Settings:
        """The settings of ``scale`` with ``overrides`` (Settings fields or TrainConfig fields)."""
        if scale not in self.scales:
            raise ValueError(f"unknown scale {scale!r} for experiment {self.name!r}; known scales: {', '.join(SCALES)}")
        return self.scales[scale].with_overrides(self.name, overrides)

    def variants(self, settings: Settings) -> dict[str, Variant]:
        """The spec's variants, each checked to be a TrainConfig or a Sweep."""
        variants = dict(self.spec(settings))
        if not variants:
            raise ValueError(f"experiment {self.name!r}: spec returned no variants")
        for label, variant in variants.items():
            if not isinstance(variant, (TrainConfig, Sweep)):
                raise TypeError(f"experiment {self.name!r}: variant {label!r} must be a TrainConfig or a Sweep, "
                                f"got {type(variant).__name__}")
        return variants


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
        known = ", ".join(ordered_names()) or "(none)"
        raise ValueError(f"unknown experiment {name!r}; known experiments: {known}") from None


def ordered_names() -> list[str]:
    """Registered names in the order of EXPERIMENTS.md (then by name)."""
    return sorted(EXPERIMENTS, key=lambda name: (EXPERIMENTS[name].number, name))
