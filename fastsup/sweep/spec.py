"""A sweep: fixed TrainConfig fields, axes of values, a map from a point to fields, and restarts.

Every (point, restart) is one model with a stable instance id,
``point_index * restarts + restart``, so its init and data (the randomness
contract) are the same whatever grouping, chunking or machine trains it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, check_integer

# Fields that may differ between the instances of one train call; any other
# field that differs between points puts them in separate calls.
PER_INSTANCE_FIELDS = ("feature_probability", "importance", "lr", "weight_decay")
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_RESERVED = {"n_instances", "instance_ids"}  # the sweep sets these


def _plain(value, where: str):
    """Axis and field values as JSON-able Python numbers, strings and lists."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where} holds {value}, which is not finite")
        return value
    raise TypeError(f"{where} must hold numbers, strings or lists of them, got {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """``Sweep(n_features=2, n_hidden=1, steps=4000, axes={...}, fields=fn, restarts=8)``.

    ``axes`` maps names to sequences; ``mode="grid"`` (default) takes their
    cartesian product, ``mode="zip"`` varies them together (equal lengths).
    An axis named like a TrainConfig field sets that field directly;
    ``fields(**point)`` returns further fields for a point (or, from TOML, a
    mapping whose string values name axes, also inside lists:
    ``importance = [1.0, "r"]``).  Every other keyword is a fixed TrainConfig
    field.
    """

    axes: Mapping[str, Sequence]
    fields: Callable[..., Mapping[str, Any]] | Mapping[str, Any] | None = None
    restarts: int = 1
    mode: str = "grid"
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __init__(self, *, axes, fields=None, restarts: int = 1, mode: str = "grid", **fixed):
        if not isinstance(axes, Mapping) or not axes:
            raise TypeError(f"axes must be a non-empty mapping of name -> sequence of values, got {axes!r}")
        plain_axes = {}
        for name, values in axes.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"axis name {name!r} must be an identifier (it is a column and a keyword)")
            if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
                raise TypeError(f"axis {name!r} must be a sequence of values (a list, array or tensor), got {values!r}")
            if len(values) == 0:
                raise ValueError(f"axis {name!r} is empty")
            plain_axes[name] = _plain(list(values), f"axis {name!r}")
        if mode not in ("grid", "zip"):
            raise ValueError(f"mode must be 'grid' or 'zip', got {mode!r}")
        if mode == "zip" and len({len(v) for v in plain_axes.values()}) > 1:
            lengths = {k: len(v) for k, v in plain_axes.items()}
            raise ValueError(f"mode='zip' needs axes of equal length, got {lengths}")
        if fields is not None and not callable(fields) and not isinstance(fields, Mapping):
            raise TypeError(f"fields must be a function of the axis values or a mapping, got {type(fields).__name__}")
        unknown = sorted(set(fixed) - _CONFIG_FIELDS)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown} given to Sweep")
        reserved = sorted((set(fixed) | set(plain_axes)) & _RESERVED)
        if reserved:
            raise ValueError(f"{reserved} are set by the sweep (one instance per point and restart); use restarts=")
        object.__setattr__(self, "axes", plain_axes)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "restarts", check_integer("restarts", restarts, 1))
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "fixed", {k: _plain(v, f"field {k!r}") for k, v in fixed.items()})

    @classmethod
    def from_toml(cls, path) -> "Sweep":
        """``[sweep]`` (restarts, mode), ``[fixed]`` fields, ``[axes]`` arrays, ``[fields]`` templates."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"sweep spec {str(path)!r} is not valid TOML: {err}") from None
        unknown = sorted(set(data) - {"sweep", "fixed", "axes", "fields"})
        if unknown:
            raise ValueError(f"sweep spec {str(path)!r} has unknown tables {unknown}; expected sweep, fixed, axes, fields")
        options = data.get("sweep", {})
        bad = sorted(set(options) - {"restarts", "mode"})
        if bad:
            raise ValueError(f"sweep spec {str(path)!r}: [sweep] takes restarts and mode, not {bad}")
        return cls(axes=data.get("axes", {}), fields=data.get("fields"), **options, **data.get("fixed", {}))

    # --- points ----------------------------------------------------------------------------------
    def points(self) -> list[dict[str, Any]]:
        """Every point as {axis name: value}, in a fixed order."""
        names = list(self.axes)
        combos = itertools.product(*self.axes.values()) if self.mode == "grid" else zip(*self.axes.values())
        return [dict(zip(names, combo)) for combo in combos]

    def point_fields(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """The TrainConfig fields of one point (without n_instances and instance_ids)."""
        fields = dict(self.fixed)
        fields.update({k: v for k, v in point.items() if k in _CONFIG_FIELDS})
        if callable(self.fields):
            extra = self.fields(**point)
            if not isinstance(extra, Mapping):
                raise TypeError(f"fields{_show(point)} must return a mapping of TrainConfig fields, "
                                f"got {type(extra).__name__}")
        else:
            extra = {k: _substitute(v, point) for k, v in (self.fields or {}).items()}
        unknown = sorted(set(extra) - _CONFIG_FIELDS)
        if unknown:
            raise ValueError(f"fields{_show(point)} returned unknown TrainConfig fields {unknown}")
        reserved = sorted(set(extra) & _RESERVED)
        if reserved:
            raise ValueError(f"fields{_show(point)} returned {reserved}, which the sweep sets")
        fields.update({k: _plain(v, f"field {k!r} at point {_show(point)}") for k, v in extra.items()})
        return fields

    def resolved(self) -> list[dict[str, Any]]:
        """Every point's fields, each checked by building its TrainConfig (errors name the point)."""
        out = []
        for point in self.points():
            fields = self.point_fields(point)
            try:
                TrainConfig(**fields, n_instances=1)  # per point; restarts repeat it
            except (TypeError, ValueError) as err:
                raise type(err)(f"sweep point {_show(point)}: {err}") from None
            out.append(fields)
        return out

    def to_dict(self) -> dict:
        """What the store records: the axes, mode, restarts, and every point's resolved fields."""
        return {"axes": self.axes, "mode": self.mode, "restarts": self.restarts, "fixed": self.fixed,
                "points": self.resolved()}


def fingerprint(spec_dict: Mapping) -> str:
    """A stable hex digest of a sweep's resolved description (same in every process and machine)."""
    return hashlib.sha256(json.dumps(spec_dict, sort_keys=True, allow_nan=False).encode()).hexdigest()


def _show(point: Mapping) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in point.items()) + ")"


def _substitute(template, point: Mapping):
    """A TOML field template: a string naming an axis becomes its value, inside lists too."""
    if isinstance(template, str) and template in point:
        return point[template]
    if isinstance(template, list):
        return [_substitute(v, point) for v in template]
    return template
