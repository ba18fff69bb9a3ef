"""Experiment 11, computation in superposition: the untied ``abs`` model computes |x| with pairs of neurons
when dense, and with shared, polysemantic neurons when sparse.

The ``abs`` model (``h = ReLU(x W1)``, ``y = ReLU(h W2 + b)``, x uniform on
[−1, 1] where present, target |x|; W1 ``[n, m]``, W2 ``[m, n]``) trained as
in [KG] cells 122–133 (its ``train_weighted``: AdamW, lr 1e-2 decayed to 0
by a cosine, without the gradient clipping that would couple instances):

* ``dense``: 3 features → 6 neurons, S = 0, importance 0.7^i.  Expected
  (and asserted at the small scale): each feature uses two neurons, one
  reading it positively and one negatively, both writing it back positively,
  i.e. ``|x| = ReLU(x) + ReLU(−x)`` (:func:`fastsup.metrics.abs_pairs`).
  Some instances stop in a worse minimum (a feature left to one neuron and
  the bias, or not learned) with a loss over 100× higher; KG trains one model,
  so this trains several and the table says which.
* ``sparsity``: 100 → 40 at S ∈ {0, .7, .9, .97, .99, .997, .999},
  importance 0.8^i, weight decay 0.1: as features get sparse the
  neurons read more and more features at once.  Per density the table counts
  the polysemantic neurons (live neurons whose W1 column has monosemanticity
  ``max_i |W1_ik| / ‖W1_:k‖`` at or below the threshold,
  :func:`fastsup.metrics.n_polysemantic`), the abs pairs and the motif
  neurons below.
* ``motif``: 6 → 10 at S = 0.8, importance 0.7^i, where [KG] (5k iterations,
  seed 5) shows the **asymmetric superposition motif**: a neuron that two
  features share, reading feature a strongly and b weakly and writing them
  back the other way round, so x_a alone would leak a large false output
  into b, which other neurons firing with it on x_a cancel by writing
  negatively into b (inhibition).  [KG]'s seed is a ``torch.manual_seed``,
  which fastsup's Philox stream does not reproduce, so this trains several
  instances and counts the motif's neurons in each
  (:func:`fastsup.metrics.asymmetric_neurons`, and those whose leak is
  cancelled, :func:`fastsup.metrics.inhibited_neurons`).  Of 80 small-scale
  models (seeds 0–19) 45 held at least one motif neuron, every one of them
  inhibited; the cut between a motif neuron and an ordinary shared one is a
  choice (the weight ratios form a continuum from 1.1 to 6), see
  :data:`fastsup.metrics.ASYMMETRY_RATIO`.  [AR]'s bonus motif (10 → 10 at
  p = 0.35, Adam) is not trained here.

Figures: the counts against density (``computation``), and stacked bars of
W1 and W2ᵀ neuron by neuron (each neuron's weight on every feature, colour by
feature, neurons in index order so the two matrices line up) for the dense
models (``computation-dense``), per density (``computation-sparsity``) and
for the motif models (``computation-motif``).

``paper`` has [KG]'s sizes; [KG] trains 2k iterations at batch 128 (3 → 6),
2k at batch 1024 (100 → 40) and 5k at batch 128 (6 → 10), and here every
model shares one steps and batch size (so an override reaches them all):
the largest, 5k steps at batch 1024.  ``small`` shrinks the sparsity model
to 40 → 16 and trains [KG]'s 2k iterations at batch 128; its seed-to-seed
spread is in tests/experiments/test_computation.py.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from .. import metrics
from ..config import TrainConfig, check_integer
from ..plots import plot_lines, plot_neuron_stacks
from .base import CODE_COMPANION_OPTIMIZER, Experiment, Outcome, Settings, check_density, importance_decay, per_instance, register
from .tables import instance_table, json_values
from .titles import density_titles, variant_title

VARIANTS = ("dense", "sparsity", "motif")
#: [KG] cell 6's train_weighted (AdamW, lr 1e-2, cosine to 0, weight decay 1e-2), without its gradient clipping.
KG_OPTIMIZER = dict(optimizer="adamw", weight_decay=0.01, **CODE_COMPANION_OPTIMIZER)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ComputationSettings(Settings):
    dense_instances: int = 8
    sparse_features: int = 100
    sparse_hidden: int = 40
    #: densities 1-S of the sparsity models, one instance each
    densities: tuple[float, ...] = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
    sparse_weight_decay: float = 0.1
    motif_instances: int = 4
    motif_density: float = 0.2
    monosemantic_threshold: float = metrics.MONOSEMANTIC_THRESHOLD
    #: path gain from which a feature uses a neuron (:func:`fastsup.metrics.used_neurons`)
    min_gain: float = metrics.MIN_GAIN

    def __post_init__(self):
        super().__post_init__()
        for name in ("dense_instances", "sparse_features", "sparse_hidden", "motif_instances"):
            check_integer(name, getattr(self, name), 1)
        if not self.densities or not all(0.0 < p <= 1.0 for p in self.densities):
            raise ValueError(f"densities must be a non-empty sequence of densities 1-S in (0, 1], "
                             f"got {self.densities!r}")
        check_density("motif_density", self.motif_density)
        if not 0.0 <= self.monosemantic_threshold <= 1.0:
            raise ValueError(f"monosemantic_threshold must lie in [0, 1], got {self.monosemantic_threshold!r}")
        if not 0.0 < self.min_gain < float("inf"):
            raise ValueError(f"min_gain must be a positive finite path gain (1 computes |x| exactly), "
                             f"got {self.min_gain!r}")


SCALES = {
    # small: 40 → 16 for the sparsity models and [KG]'s 2k iterations at its default batch 128 for all; the
    # seed-to-seed spread it gives is in tests/experiments/test_computation.py.
    "small": ComputationSettings(steps=2_000, batch_size=128, sparse_features=40, sparse_hidden=16),
    # paper: [KG] cells 125 (3 → 6, 2k iterations, batch 128), 128 (100 → 40, 2k iterations, batch 1024, weight
    # decay 0.1) and 132 (6 → 10, 5k iterations, batch 128), with one steps and batch size for every model (so an
    # override reaches them all): the largest of KG's, 5k steps at batch 1024.
    "paper": ComputationSettings(steps=5_000, batch_size=1024),
}


def variant_densities(settings: ComputationSettings) -> dict[str, list[float]]:
    """Each variant's density 1-S per instance, as the settings give it (the configs hold it in fp32)."""
    return {"dense": [1.0] * settings.dense_instances, "sparsity": list(settings.densities),
            "motif": [settings.motif_density] * settings.motif_instances}


def spec(settings: ComputationSettings) -> dict[str, TrainConfig]:
    def abs_models(label, n_features, n_hidden, rate, **optimizer):
        densities = variant_densities(settings)[label]
        return settings.config(n_features=n_features, n_hidden=n_hidden, n_instances=len(densities), model="abs",
                               importance=importance_decay(rate, n_features),
                               feature_probability=per_instance(densities), **{**KG_OPTIMIZER, **optimizer})

    return {"dense": abs_models("dense", 3, 6, 0.7),
            "sparsity": abs_models("sparsity", settings.sparse_features, settings.sparse_hidden, 0.8,
                                   weight_decay=settings.sparse_weight_decay),
            "motif": abs_models("motif", 6, 10, 0.7)}


def _weights(outcome: Outcome, label: str) -> tuple[torch.Tensor, torch.Tensor]:
    result = outcome.result(label)
    return result.W1.detach().cpu().double(), result.W2.detach().cpu().double()


def analysis(outcome: Outcome) -> pd.DataFrame:
    """One row per instance of every variant: the abs pairs, motif neurons and polysemantic neurons."""
    settings = outcome.settings
    densities = variant_densities(settings)
    tables = []
    for label in VARIANTS:
        W1, W2 = _weights(outcome, label)
        tables.append(instance_table(label, outcome.result(label)).assign(
            density=densities[label],
            n_abs_pairs=metrics.n_abs_pairs(W1, W2, settings.min_gain).numpy(),
            n_asymmetric=metrics.asymmetric_neurons(W1, W2, settings.min_gain).sum(-1).double().numpy(),
            n_inhibited=metrics.inhibited_neurons(W1, W2, settings.min_gain).sum(-1).double().numpy(),
            n_polysemantic=metrics.n_polysemantic(W1, settings.monosemantic_threshold).numpy(),
            abs_pairs=list(metrics.abs_pairs(W1, W2, settings.min_gain).numpy()),
            neuron_monosemanticity=list(metrics.neuron_monosemanticity(W1).numpy()),
        ))
    return pd.concat(tables, ignore_index=True)


def _stacks(outcome: Outcome, label: str, titles: list[str], *, by_row: bool):
    """W1 and W2ᵀ of every instance of ``label`` as neuron stacks in index order: instance by instance, W1 then
    W2ᵀ, side by side (``by_row`` False), or a row of W1s over a row of W2ᵀs (``by_row`` True)."""
    W1, W2 = _weights(outcome, label)
    I = W1.shape[0]
    pairs = torch.stack([W1, W2.transpose(-1, -2)], dim=1)  # [I, 2, n, m]
    labels = [[f"{title}: W1", f"{title}: W2ᵀ"] for title in titles]
    if by_row:
        pairs, labels = pairs.transpose(0, 1), [list(row) for row in zip(*labels)]
    return plot_neuron_stacks(pairs.reshape(2 * I, *W1.shape[1:]), titles=[t for row in labels for t in row],
                              sort_neurons=False, columns=I if by_row else 2 * min(I, 3),
                              threshold=outcome.settings.monosemantic_threshold,
                              suptitle=f"computation, {label}: {variant_title(outcome.variants[label])}")


def figures(outcome: Outcome, table: pd.DataFrame):
    threshold = outcome.settings.monosemantic_threshold
    instances = {label: [f"model {k}" for k in range(outcome.variants[label].n_instances)]
                 for label in ("dense", "motif")}
    return {
        "computation": plot_lines(
            table[table["variant"] == "sparsity"], x="density", group="variant", group_label="model",
            panels={"n_polysemantic": f"polysemantic neurons (W1, ≤ {threshold:g})",
                    "n_abs_pairs": "features computed by an abs pair", "n_asymmetric": "asymmetric motif neurons"},
            xlabel="density 1-S", title=f"computation, sparsity: {variant_title(outcome.variants['sparsity'])}"),
        "computation-dense": _stacks(outcome, "dense", instances["dense"], by_row=False),
        "computation-sparsity": _stacks(outcome, "sparsity", density_titles(outcome.variants["sparsity"]),
                                        by_row=True),
        "computation-motif": _stacks(outcome, "motif", instances["motif"], by_row=False),
    }


def numbers(outcome: Outcome, table: pd.DataFrame) -> dict:
    def column(label, name):  # NaN (a diverged instance) as null: strict JSON
        return json_values(torch.tensor(table[table["variant"] == label][name].to_numpy(dtype=float)))

    measures = ("final_loss", "n_abs_pairs", "n_asymmetric", "n_inhibited", "n_polysemantic")
    return {"densities": list(outcome.settings.densities),
            "monosemantic_threshold": outcome.settings.monosemantic_threshold,
            "min_gain": outcome.settings.min_gain,
            **{label: {name: column(label, name) for name in measures} for label in VARIANTS}}


EXPERIMENT = register(Experiment(
    "computation",
    "the abs model (target |x|): 3 → 6 dense, each feature on two neurons with opposite-sign W1 and positive W2; "
    "100 → 40 over density, neurons turn polysemantic; 6 → 10 at S = 0.8, the asymmetric superposition motif",
    number=11, scales=SCALES, spec=spec, analysis=analysis, figures=figures, numbers=numbers,
))
