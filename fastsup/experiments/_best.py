"""A sweep's best restart per point as one TrainResult, for the measures that need weights *and* config
(:func:`fastsup.evaluate`, the adversarial attack)."""

from __future__ import annotations

import numpy as np
import torch

from ..result import TrainResult
from ..sweep import store as sweep_stores
from .base import Outcome


def best_result(outcome: Outcome, label: str | None = None) -> TrainResult:
    """The best restart of every point of sweep variant ``label``, in point order, as a TrainResult.

    Its config is the points' own (instance ids included, so its evaluation
    stream is the sweep's); ``final_loss`` is the held-out loss that ranked
    the restarts; there is no loss history (empty ``[0, I]``), and its backend reads ``"sweep"``.  The sweep's
    points must share one train call's fields (one group), as a density
    sweep's do.
    """
    trained = outcome.sweep(label)
    groups = sweep_stores.read_groups(trained.store, trained.manifest)  # what the sweep trained
    if len(groups) != 1:
        raise ValueError(f"best_result needs a sweep whose points train in one call; variant {label!r} has "
                         f"{len(groups)} groups (points that differ in more than the per-instance fields)")
    (group,) = groups
    best = trained.best().sort_values("point")
    rows = np.searchsorted(group.points, best["point"].to_numpy())
    config = group.config(rows, best["instance_id"].to_numpy(dtype=np.int64, copy=True))
    losses = torch.tensor(best["final_loss"].to_numpy(), dtype=torch.float32)
    return TrainResult(config, trained.params(best), torch.zeros(0, len(best)), torch.zeros(0, dtype=torch.int64),
                       losses, backend="sweep")
