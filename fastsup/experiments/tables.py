"""The paper's measures of trained weights as tables (one row per instance) and as JSON values."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch

from .. import metrics
from ..result import TrainResult

__all__ = ["instance_table", "json_values", "result_numbers"]


def json_values(tensor: torch.Tensor):
    """A tensor as nested Python lists; NaN/inf become None (strict JSON)."""
    values = tensor.detach().cpu()
    if not values.is_floating_point():
        return values.tolist()
    values = values.double()
    out = values.tolist()
    return out if torch.isfinite(values).all() else _nonfinite_to_none(out)


def _nonfinite_to_none(value):
    if isinstance(value, list):
        return [_nonfinite_to_none(v) for v in value]
    return value if math.isfinite(value) else None


def _per_instance_or_full(tensor: torch.Tensor):
    """``[I]`` when every instance has one value across features, else ``[I, n]``."""
    if bool((tensor == tensor[:, :1]).all()):
        return json_values(tensor[:, 0])
    return json_values(tensor)


def instance_table(label: str, result: TrainResult, *, threshold: float = metrics.REPRESENTED_THRESHOLD) -> pd.DataFrame:
    """One row per instance of ``result``: its density, loss and the paper's measures.

    Columns: ``variant``, ``instance``, ``feature_probability`` (mean over
    features: the density 1-S), ``final_loss``, ``diverged``,
    ``n_represented`` (features with ‖W_i‖ > ``threshold``),
    ``dimensions_per_feature`` (m/‖W‖_F², inf for all-zero weights),
    ``frobenius_sq`` (‖W‖_F²), and per feature (lists of length n):
    ``feature_norms``, ``superposition`` (Σ_{j≠i}(Ŵ_i·W_j)²),
    ``feature_dimensionality`` (D_i).  For the abs model, of the encoder W1.
    """
    W = result.encoder.detach().cpu().double()
    p = result.config.probability().double()
    return pd.DataFrame({
        "variant": label,
        "instance": range(result.config.n_instances),
        "feature_probability": p.mean(dim=1).numpy(),
        "final_loss": result.final_loss.double().numpy(),
        "diverged": result.diverged.numpy(),
        "n_represented": metrics.n_represented(W, threshold).numpy(),
        "dimensions_per_feature": metrics.dimensions_per_feature(W).numpy(),
        "frobenius_sq": W.square().sum(dim=(-2, -1)).numpy(),
        "feature_norms": list(metrics.feature_norms(W).numpy()),
        "superposition": list(metrics.superposition(W).numpy()),
        "feature_dimensionality": list(metrics.feature_dimensionality(W).numpy()),
    })


def result_numbers(result: TrainResult, *, threshold: float = metrics.REPRESENTED_THRESHOLD) -> dict[str, Any]:
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
        "final_loss": json_values(result.final_loss),
        "represented_threshold": threshold,
        "feature_norms": json_values(metrics.feature_norms(W)),
        "n_represented": [None if math.isnan(v) else int(v) for v in metrics.n_represented(W, threshold).tolist()],
        "diverged": result.diverged.tolist(),
        "superposition": json_values(metrics.superposition(W)),
        "feature_dimensionality": json_values(metrics.feature_dimensionality(W)),
        "dimensions_per_feature": json_values(metrics.dimensions_per_feature(W)),
    }
