"""``fastsup.evaluate``: the loss of trained weights on data from any distribution, in bounded memory.

The data come from the randomness contract's evaluation stream
(``philox.EVAL_STEP``, never used in training), drawn in pieces of rows and
instances (``backends.base.squared_error``, the loop the backends' own
held-out loss uses), so ``n_samples`` can be 10**7 without holding the batch.  With the training distribution and
``n_samples = config.eval_batch_size`` it is the held-out batch that gave
``result.final_loss``.
"""

from __future__ import annotations

import dataclasses

import torch

from .backends.base import loss_from_error, squared_error
from .config import check_integer
from .data import DataSpec
from .philox import DATASET_STEP, EVAL_STEP
from .train import resolve_device

#: The TrainConfig fields that describe the data, and so may differ from training.
DISTRIBUTION_FIELDS = ("feature_probability", "importance", "magnitude", "correlated_sets", "anticorrelated_pairs",
                       "normalize_points", "seed")
SPLITS = ("test", "train")


def check_distribution_fields(caller: str, distribution: dict) -> None:
    """Refuse fields that do not describe the data (the rest of the config is the training one)."""
    unknown = sorted(set(distribution) - set(DISTRIBUTION_FIELDS))
    if unknown:
        raise ValueError(f"{caller} got unknown fields {unknown}; the distribution is set by {list(DISTRIBUTION_FIELDS)}")


def evaluate(result, *, n_samples: int | None = None, per_feature: bool = False, split: str = "test", device=None,
             **distribution):
    """Per-instance loss ``[I]`` (fp32) of ``result``'s weights on ``n_samples`` fresh samples per instance.

    ``distribution``: any of ``feature_probability``, ``importance``,
    ``magnitude``, ``correlated_sets``, ``anticorrelated_pairs`` (broadcast
    and validated as in TrainConfig) and ``seed`` (another draw); the rest is
    the training config's.  ``n_samples`` defaults to the config's
    ``eval_batch_size``.  ``per_feature=True`` also returns the mean squared
    error of every feature, ``[I, n]``, unweighted by importance.
    ``split="train"`` (a fixed-dataset config only) is the loss on its T
    training points instead of fresh ones.
    """
    params, config = getattr(result, "params", None), getattr(result, "config", None)
    if not isinstance(params, dict) or config is None:
        raise TypeError(f"result must be a TrainResult (weights and config), got {type(result).__name__}")
    check_distribution_fields("evaluate", distribution)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}; got {split!r}")
    if split == "train":
        if config.dataset_size is None or distribution or n_samples is not None:
            raise ValueError("split='train' is the loss on a fixed dataset's training points: it needs a config "
                             "with dataset_size, and takes no n_samples or distribution fields")
        n_samples, step = config.dataset_size, DATASET_STEP
    else:
        n_samples = config.eval_batch_size if n_samples is None else check_integer("n_samples", n_samples, 1)
        step = EVAL_STEP
    device = resolve_device(device)
    config = dataclasses.replace(config, **distribution)  # validates, and broadcasts against [I, n]
    spec = DataSpec.from_config(config, device)
    total = squared_error(params, config, spec, n_samples, step)
    loss = loss_from_error(total, config.importance_tensor().to(device), n_samples).cpu()
    return (loss, (total / n_samples).float().cpu()) if per_feature else loss
