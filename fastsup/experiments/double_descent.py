"""Experiment 14, double descent: a model trained on T fixed points memorises them while T is small, and learns
the features once T is large ([AR] L716–960; the paper's memorisation section).

A ReLU-output model n → 2 trains full-batch on T fixed data points, each
scaled to unit L2 norm (``TrainConfig(dataset_size=T, normalize_points=True)``:
drawn once from the randomness contract, the same on every backend).  Each T
is one variant: ``n_instances`` restarts on their own points, of which the
best by training loss is measured, as [AR] picks it.  Per T the table has the
training loss (on the T points), the test loss (on fresh points,
:func:`fastsup.evaluate`), the dimensionality D_i of every feature
(:func:`fastsup.metrics.feature_dimensionality`) and the dimensionality D_j of
every data point's hidden vector h = x W
(:func:`fastsup.metrics.data_dimensionality`).

While T is small the points take the two dimensions: their hidden vectors
spread evenly, D_j ≈ 2/T, and every feature has D_i near 0 (each point's
features point along its hidden vector together).  Once T is large, the model
keeps its dimensions for a few features (D_i of a polygon's vertex, 2/k) and
the points lose theirs.  In between, both are low and the test loss peaks.
Two summaries per T say which regime a model is in: ``data_share``, the median
D_j as a fraction of the even split m/T (≈ 1 memorising), and
``feature_dimensionality_top``, the mean D_i of the :data:`TOP_FEATURES` best
features (high once a polygon of features is learned, about 2/(T·np) while
the T·np features of the points share the dimensions).

Schedule: [AR]'s lr warms up linearly over 2,500 steps from 0 (``step / 2500``)
and then decays by cos(π/2 · (s − 2500)/(steps − 2501)); fastsup's
``warmup_cosine`` is the same but its warmup starts one step later,
``(s + 1) / 2500``, so its first update is not a zero step.  The points are
drawn from the randomness contract's dataset step by row, so instance k's
points for a smaller T are the first of its points for a larger T.

Full batch: a model's batch is its dataset, so these Settings have no batch
size (an override is an error naming ``dataset_sizes``).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from .. import metrics
from ..config import check_integer
from ..data import dataset
from ..evaluate import evaluate
from ..plots import plot_double_descent
from .base import Experiment, Outcome, Settings, check_density, register

#: [AR]'s dataset sizes (L716–960).
ARENA_DATASET_SIZES = (3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 3000)
#: [AR]'s optimiser: full-batch AdamW, linear warmup then a cosine decay to 0.
OPTIMIZER = dict(optimizer="adamw", lr=1e-3, weight_decay=1e-2, schedule="warmup_cosine")
#: The features whose mean D_i summarises the features' regime: a pentagon's worth (the single largest D_i
#: is an outlier's as often as not while the points are memorised).
TOP_FEATURES = 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class DoubleDescentSettings(Settings):
    #: full batch: a model's batch is its whole dataset of T points (``dataset_sizes``), so there is none to set
    batch_size: int | None = None  # must stay None
    n_features: int = 1000
    n_hidden: int = 2
    #: restarts per T, each on its own points; the one with the lowest training loss is measured
    n_instances: int = 10
    density: float = 0.01  # 1 - S
    dataset_sizes: tuple[int, ...] = ARENA_DATASET_SIZES
    #: the lr's linear warmup ([AR]'s 2,500), cut to a sixth of the steps when they are fewer than six times
    #: it ([AR]'s 15k steps have that ratio), so that an override of ``steps`` alone still trains
    warmup_steps: int = 2_500
    #: fresh points per instance for the test loss
    eval_samples: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        if self.batch_size is not None:
            raise ValueError(f"batch_size: double_descent trains full-batch (each model's batch is its whole "
                             f"dataset of T points; set the T values with dataset_sizes), got "
                             f"batch_size={self.batch_size!r}")
        if "dataset_size" in self.config_overrides:
            raise ValueError("dataset_size: double_descent trains one model per T value; set them with "
                             f"dataset_sizes, got dataset_size={self.config_overrides['dataset_size']!r}")
        for name in ("n_features", "n_hidden", "n_instances", "eval_samples", "warmup_steps"):
            check_integer(name, getattr(self, name), 1)
        check_density("density", self.density)
        if isinstance(self.dataset_sizes, (str, bytes)) or not hasattr(self.dataset_sizes, "__iter__"):
            raise TypeError(f"dataset_sizes must be a sequence of positive integers, got {self.dataset_sizes!r}")
        sizes = tuple(check_integer("dataset_sizes entries", T, 1) for T in self.dataset_sizes)
        if not sizes or any(b <= a for a, b in zip(sizes, sizes[1:])):
            raise ValueError(f"dataset_sizes must be a non-empty, strictly increasing sequence, got {list(sizes)}")
        object.__setattr__(self, "dataset_sizes", sizes)  # a list from the command line or JSON: a tuple

    def train_fields(self) -> dict:
        """Steps, seed and the overrides; no batch size, which each T's config sets to T itself."""
        return {k: v for k, v in super().train_fields().items() if k != "batch_size"}


SCALES = {
    # small: 100 features at 1-S = 0.1 keep [AR]'s 10 active features per point at a tenth of the features,
    # which moves the transition from T ~ 700 to T ~ 70; lr 1e-2 makes 1,200 steps enough.  The
    # seed-to-seed spread this gives is in tests/experiments/test_double_descent.py.
    "small": DoubleDescentSettings(steps=1_200, n_features=100, density=0.1, n_instances=5,
                                   dataset_sizes=(3, 5, 10, 30, 100, 300), warmup_steps=200, eval_samples=4_000,
                                   config_overrides={"lr": 1e-2}),
    # paper: the AR page's settings for the paper's figure (n = 10,000, S = 0.999, 50k steps); [AR]'s own run
    # is the default n = 1000, 1-S = 0.01 with 15k steps.
    "paper": DoubleDescentSettings(steps=50_000, n_features=10_000, density=0.001),
}


def label(T: int) -> str:
    return f"T={T}"


def spec(settings: DoubleDescentSettings) -> dict:
    return {label(T): settings.config(
        n_features=settings.n_features, n_hidden=settings.n_hidden, n_instances=settings.n_instances,
        model="relu_output", feature_probability=settings.density, importance=1.0, dataset_size=T,
        normalize_points=True, warmup_steps=min(settings.warmup_steps, max(1, settings.steps // 6)), **OPTIMIZER,
    ) for T in settings.dataset_sizes}


def analysis(outcome: Outcome) -> pd.DataFrame:
    """One row per T and instance: losses, every feature's and every data point's dimensionality, and whether
    the instance is the one measured (``best``: the lowest training loss of its T)."""
    settings = outcome.settings
    rows = []
    for T in settings.dataset_sizes:
        result = outcome.result(label(T))
        train_loss = evaluate(result, split="train", device=settings.device)
        test_loss = evaluate(result, n_samples=settings.eval_samples, device=settings.device)
        W = result.params["W"].double()
        points = dataset(result.config).double().transpose(-1, -2)  # [I, T, n]
        feature_D, data_D = metrics.feature_dimensionality(W), metrics.data_dimensionality(W, points)
        best = int(train_loss.argmin())
        for k in range(settings.n_instances):
            rows.append(dict(
                variant=label(T), dataset_size=T, instance=k, best=k == best,
                train_loss=float(train_loss[k]), test_loss=float(test_loss[k]),
                feature_dimensionality=feature_D[k].numpy(), data_dimensionality=data_D[k].numpy(),
                feature_dimensionality_top=float(feature_D[k].topk(min(TOP_FEATURES, len(feature_D[k]))).values.mean()),
                data_share=float(data_D[k].median()) * T / settings.n_hidden,
            ))
    return pd.DataFrame(rows)


def _best(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["best"]].sort_values("dataset_size")


def title(outcome: Outcome) -> str:
    """What was trained, from the configs: sizes, density, restarts, steps and the T values."""
    settings = outcome.settings
    config = next(iter(outcome.variants.values()))
    sizes = ", ".join(str(T) for T in settings.dataset_sizes)
    return (f"double_descent: {config.model} {config.n_features}→{config.n_hidden}, 1-S = {settings.density:g}, "
            f"unit-norm points, best of {config.n_instances} by training loss, {config.steps} full-batch steps, "
            f"T ∈ {{{sizes}}}")


def figures(outcome: Outcome, table: pd.DataFrame):
    best = _best(table)
    return {"double_descent": plot_double_descent(
        best["dataset_size"].tolist(), best["feature_dimensionality"].tolist(),
        best["data_dimensionality"].tolist(), best["train_loss"].tolist(), best["test_loss"].tolist(),
        n_hidden=outcome.settings.n_hidden, title=title(outcome))}


def numbers(outcome: Outcome, table: pd.DataFrame) -> dict:
    best = _best(table)
    return {"dataset_sizes": [int(T) for T in best["dataset_size"]],
            "best_instance": [int(k) for k in best["instance"]],
            **{name: [float(v) for v in best[name]]
               for name in ("train_loss", "test_loss", "feature_dimensionality_top", "data_share")}}


EXPERIMENT = register(Experiment(
    "double_descent",
    "relu_output n → 2 trained full-batch on T fixed unit-norm points: the points take the dimensions "
    "(D_j ≈ 2/T) when T is small, features when T is large, and the test loss peaks in between",
    number=14, scales=SCALES, spec=spec, analysis=analysis, figures=figures, numbers=numbers,
))
