"""Experiment 7, correlated and anticorrelated features in 2 hidden dimensions.

Data as DESIGN.md §3 (ARENA's definition): the features of a correlated set
share one presence draw and take independent U[0, 1] magnitudes; the two
features of an anticorrelated pair never fire together.  Three arrangements,
one sweep over the density each, with restarts (best by held-out loss):

* ``correlated``: two correlated pairs, 4 → 2, 1-S = 400^(-linspace(.5, 1, 5))
  ([AR] L430–480).  Expected: each pair orthogonal ("local orthogonal bases").
* ``anticorrelated``: two anticorrelated pairs, 4 → 2,
  1-S = 10^(-linspace(.5, 1, 5)) ([AR]).  Expected: each pair antipodal.
* ``collapse``: three correlated pairs, 6 → 2, S ∈ {.25, .75, .85, .9, .99}
  ([KG] cells 63–64).  Too many correlated features for orthogonal bases:
  pairs sit side by side (neighbours in the angular order,
  :func:`fastsup.metrics.sets_side_by_side`) or collapse onto one direction,
  their principal component.  A collapsed pair that interferes with no other
  has norms 1/√2: both features read x_i + x_j, and the least-squares weight
  of x_i on it is 1/2 (the figure draws circles at 1/√2 and 1).  Collapse is
  for dense pairs: fewer pairs collapse as the density falls.

Paper scale: [AR]'s 10k steps per run and [KG]'s 3 trials, with the
notebook's AdamW as every experiment here ([AR] uses Adam without weight decay).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch
from matplotlib.patches import Circle

from .. import metrics
from ..config import check_integer
from ..plots import plot_features_2d
from ..sweep import Sweep
from .base import NOTEBOOK_OPTIMIZER, Experiment, Outcome, Settings, register
from .tables import json_values
from .titles import experiment_title


@dataclasses.dataclass(frozen=True)
class Arrangement:
    """One variant: which features are correlated or anticorrelated, on which densities, and the
    relation its pairs are expected to take (a name in :data:`fastsup.metrics.PAIR_RELATIONS`)."""

    n_features: int
    densities: tuple[float, ...]
    expected: str
    correlated_sets: tuple[tuple[int, int], ...] = ()
    anticorrelated_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(self.correlated_sets + self.anticorrelated_pairs)

    @property
    def pair_labels(self) -> list[str]:
        """A legend label per pair, in the order of :attr:`pairs`: "correlated 0, 1", "anticorrelated 2, 3"."""
        def label(kind, pair):
            return f"{kind} {', '.join(map(str, pair))}"

        return [label("correlated", p) for p in self.correlated_sets] + \
            [label("anticorrelated", p) for p in self.anticorrelated_pairs]


ARRANGEMENTS = {
    "correlated": Arrangement(4, tuple(400.0 ** -np.linspace(0.5, 1.0, 5)), "orthogonal",
                              correlated_sets=((0, 1), (2, 3))),
    "anticorrelated": Arrangement(4, tuple(10.0 ** -np.linspace(0.5, 1.0, 5)), "antipodal",
                                  anticorrelated_pairs=((0, 1), (2, 3))),
    "collapse": Arrangement(6, (0.75, 0.25, 0.15, 0.1, 0.01), "collapsed",
                            correlated_sets=((0, 1), (2, 3), (4, 5))),
}


#: Held-out batch that ranks the restarts.  At 1-S = 0.0025 a training-sized batch (256 rows) often
#: holds no active pair at all, so every restart scores a loss of 0 and the "best" is arbitrary;
#: 2^15 rows hold ~160 active pairs there, for the cost of one forward pass.
EVAL_BATCH_SIZE = 2**15


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorrelatedSettings(Settings):
    #: which of ARRANGEMENTS to train
    variants: tuple[str, ...] = tuple(ARRANGEMENTS)
    #: models per density; the one with the lowest held-out loss is analysed
    restarts: int = 3

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.variants, list):
            object.__setattr__(self, "variants", tuple(self.variants))
        if not isinstance(self.variants, tuple) or not self.variants or \
                any(v not in ARRANGEMENTS for v in self.variants):
            raise ValueError(f"variants must be a non-empty tuple of {', '.join(map(repr, ARRANGEMENTS))}; "
                             f"got {self.variants!r}")
        check_integer("restarts", self.restarts, 1)


# small: lr 1e-2 (as [KG]) so 1000 steps of batch 256 settle; see tests/experiments/test_correlated.py
# for the seed spread at this scale.
SCALES = {
    "small": CorrelatedSettings(steps=1_000, batch_size=256, restarts=3, config_overrides={"lr": 1e-2}),
    "paper": CorrelatedSettings(steps=10_000, batch_size=1024, restarts=3),
}


def spec(settings: CorrelatedSettings) -> dict[str, Sweep]:
    variants = {}
    for label in settings.variants:
        arrangement = ARRANGEMENTS[label]
        variants[label] = settings.sweep(
            axes={"density": [float(p) for p in arrangement.densities]},
            fields=lambda density: dict(feature_probability=density),
            restarts=settings.restarts, n_features=arrangement.n_features, n_hidden=2, model="relu_output",
            correlated_sets=[list(s) for s in arrangement.correlated_sets],
            anticorrelated_pairs=[list(p) for p in arrangement.anticorrelated_pairs],
            eval_batch_size=EVAL_BATCH_SIZE, **NOTEBOOK_OPTIMIZER,
        )
    return variants


def _best_weights(outcome: Outcome, label: str):
    sweep = outcome.sweep(label)
    best = sweep.best()
    return best, sweep.params(best)["W"].double()


def analysis(outcome: Outcome) -> pd.DataFrame:
    """One row per (variant, density): the best restart's loss, norms, and per pair its cosine, relation and
    whether it sits side by side."""
    tables = []
    for label in outcome.variants:
        best, W = _best_weights(outcome, label)
        pairs = ARRANGEMENTS[label].pairs
        relations = metrics.pair_relations(W, pairs).tolist()
        tables.append(pd.DataFrame({
            "variant": label,
            "density": best["density"].to_numpy(),
            "restart": best["restart"].to_numpy(),
            "final_loss": best["final_loss"].to_numpy(),
            "diverged": best["diverged"].to_numpy(),
            "n_represented": best["n_represented"].to_numpy(),
            "feature_norms": list(metrics.feature_norms(W).numpy()),
            "pairs": [[list(p) for p in pairs]] * len(best),
            "pair_cosines": list(metrics.pair_cosines(W, pairs).numpy()),
            "pair_relations": [[metrics.PAIR_RELATIONS[code] for code in row] for row in relations],
            "pairs_side_by_side": list(metrics.sets_side_by_side(W, pairs).numpy()),
        }))
    return pd.concat(tables, ignore_index=True)


def expected_fraction(table: pd.DataFrame, label: str) -> float | None:
    """Of the variant's pairs whose two features are represented, the fraction in its expected relation
    (None when no pair is represented)."""
    relations = [r for row in table.loc[table["variant"] == label, "pair_relations"] for r in row]
    represented = [r for r in relations if r not in ("not represented", "diverged")]
    if not represented:
        return None
    return sum(r == ARRANGEMENTS[label].expected for r in represented) / len(represented)


def numbers(outcome: Outcome, table: pd.DataFrame) -> dict:
    def of(label):
        rows = table[table["variant"] == label]
        return {
            "expected_relation": ARRANGEMENTS[label].expected,
            "fraction_of_represented_pairs_in_expected_relation": expected_fraction(table, label),
            "densities": rows["density"].tolist(),
            "pair_cosines": json_values(torch.tensor(np.stack(rows["pair_cosines"].to_numpy()))),
            "pair_relations": rows["pair_relations"].tolist(),
            "pairs_side_by_side": [row.tolist() for row in rows["pairs_side_by_side"]],
            "best_final_loss": json_values(torch.tensor(rows["final_loss"].to_numpy())),
        }

    return {"variants": {label: of(label) for label in outcome.variants}}


def figures(outcome: Outcome, table: pd.DataFrame):
    out = {}
    for label in outcome.variants:
        _, W = _best_weights(outcome, label)
        rows = table[table["variant"] == label]
        titles = [f"1-S = {density:.3g}\n{', '.join(relations)}"
                  for density, relations in zip(rows["density"], rows["pair_relations"])]
        arrangement = ARRANGEMENTS[label]
        figure = plot_features_2d(W, titles=titles, suptitle=experiment_title(label, {label: outcome.variants[label]}),
                                  ax_size=3.0,  # room for a relation per pair under each title
                                  groups=arrangement.pairs, group_labels=arrangement.pair_labels)
        if label == "collapse":  # a collapsed pair's features have norm 1/√2 ([KG] draws both circles)
            for ax in figure.axes:
                for radius in (1 / math.sqrt(2), 1.0):
                    ax.add_patch(Circle((0, 0), radius, fill=False, color="0.8", lw=0.8, ls="--", zorder=0))
        out["correlated" if label == "correlated" else f"correlated-{label}"] = figure
    return out


EXPERIMENT = register(Experiment(
    "correlated",
    "pairs of correlated features in 2-D come out orthogonal, anticorrelated pairs antipodal, and "
    "three correlated pairs in 2-D sit side by side or collapse",
    number=7, scales=SCALES, spec=spec, analysis=analysis, figures=figures, numbers=numbers,
))
