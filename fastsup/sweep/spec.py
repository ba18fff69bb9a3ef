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

from ..config import TrainConfig, _as_float64, check_integer

# Fields that may differ between the instances of one train call; any other
# field that differs between points puts them in separate calls.
PER_INSTANCE_FIELDS = ("feature_probability", "importance", "lr", "weight_decay")
PER_FEATURE_FIELDS = ("feature_probability", "importance")  # [P, n]; lr and weight decay are [P]
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
# Fields whose validation depends on the densities (DESIGN.md §3: an anticorrelated pair needs p <= 0.5).
GROUPED_FIELDS = ("correlated_sets", "anticorrelated_pairs")
_RESERVED = {"n_instances", "instance_ids"}  # the sweep sets these


def _plain(value, where: str):
    """Axis and field values as JSON-able Python numbers, strings and lists."""
    if type(value) is float and math.isfinite(value) or type(value) is int:  # the common case, first
        return value
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
        try:
            fields.update({k: _plain(v, f"field {k!r}") for k, v in extra.items()})
        except (TypeError, ValueError) as err:
            raise type(err)(f"{err} (at point {_show(point)})") from None
        return fields

    def axis_columns(self) -> dict[str, np.ndarray]:
        """Each axis's value at every point, in ``points()`` order (vectorised: no per-point dicts)."""
        columns = {name: _object_column(values) if _mixed(values) else np.asarray(values)
                   for name, values in self.axes.items()}
        if self.mode == "zip":
            return columns
        index = np.indices([len(v) for v in columns.values()]).reshape(len(columns), -1)
        return {name: values[i] for (name, values), i in zip(columns.items(), index)}

    def to_dict(self) -> dict:
        """The spec's description as the store records it (the resolved values are in its groups)."""
        return {"axes": self.axes, "mode": self.mode, "restarts": self.restarts, "fixed": self.fixed}

    def resolve(self) -> "ResolvedSweep":
        """Every point's fields, grouped by what must be shared within a train call, and validated.

        Validation builds one TrainConfig per group (its points as instances),
        so it costs milliseconds per 10**5 points; only when a group fails are
        its points checked one at a time, to name the point.
        """
        points = self.points()
        resolved = [self.point_fields(point) for point in points]
        by_shared: dict[str, list[int]] = {}
        for index, fields in enumerate(resolved):
            shared = {k: v for k, v in fields.items() if k not in PER_INSTANCE_FIELDS}
            by_shared.setdefault(json.dumps(shared, sort_keys=True), []).append(index)
        groups = [_group(points, resolved, members) for members in by_shared.values()]
        return ResolvedSweep(self.to_dict(), groups)


@dataclasses.dataclass(frozen=True)
class Group:
    """Points that can share one train call: common fields, and per point the per-instance values.

    ``values`` maps each of PER_INSTANCE_FIELDS to float64 ``[P, n]``
    (feature_probability, importance) or ``[P]`` (lr, weight_decay).
    """

    shared: dict[str, Any]
    points: np.ndarray  # int64 [P], indices into the sweep's points
    values: dict[str, torch.Tensor]

    def config(self, rows: np.ndarray, instance_ids: np.ndarray) -> TrainConfig:
        """The TrainConfig of the given rows (indices into ``points``), with the given instance ids."""
        rows = torch.from_numpy(rows)  # index_select: ~250x faster than v[rows] here (torch 2.13 CPU)
        return TrainConfig(**self.shared, n_instances=len(rows), instance_ids=torch.from_numpy(instance_ids),
                           **{name: value.index_select(0, rows) for name, value in self.values.items()})


@dataclasses.dataclass(frozen=True)
class ResolvedSweep:
    spec: dict
    groups: list[Group]

    def fingerprint(self) -> str:
        """A stable hex digest of everything the sweep trains (same in every process and machine)."""
        digest = hashlib.sha256(json.dumps({"spec": self.spec, "groups": [g.shared for g in self.groups]},
                                           sort_keys=True, allow_nan=False).encode())
        for g in self.groups:
            digest.update(g.points.astype("<i8").tobytes())
            for name in sorted(g.values):
                digest.update(name.encode())
                digest.update(g.values[name].numpy().astype("<f8").tobytes())
        return digest.hexdigest()


def _group(points: list[dict], resolved: list[dict], members: list[int]) -> Group:
    """Stack one group's per-instance values and validate the group as one TrainConfig."""
    first = resolved[members[0]]
    shared = {k: v for k, v in first.items() if k not in PER_INSTANCE_FIELDS}
    try:
        # the group's defaults (weight decay follows the optimizer); without its feature groups, whose checks
        # need the points' densities (an anticorrelated pair refuses the default density 1), checked just below
        base = TrainConfig(**{k: v for k, v in shared.items() if k not in GROUPED_FIELDS}, n_instances=1)
        values = {}
        for name in PER_INSTANCE_FIELDS:
            default = getattr(base, name)  # a number: the fields no point sets keep TrainConfig's defaults
            width = base.n_features if name in PER_FEATURE_FIELDS else 1
            column = [resolved[i].get(name) for i in members]
            values[name] = _stack(name, [default if v is None else v for v in column], width)
        TrainConfig(**shared, n_instances=len(members), **values)
    except (TypeError, ValueError) as err:
        for i in members:  # name the first point that fails on its own
            try:
                TrainConfig(**resolved[i], n_instances=1)
            except (TypeError, ValueError) as point_err:
                raise type(point_err)(f"sweep point {_show(points[i])}: {point_err}") from None
        raise type(err)(f"sweep points {_show(points[members[0]])} … (one train call): {err}") from None
    return Group(shared, np.asarray(members, dtype=np.int64), values)


def _stack(name: str, values: list, width: int) -> torch.Tensor:
    """Per-point values as float64 ``[P, width]`` (per-feature fields) or ``[P]`` (width 1)."""
    stacked = None
    if not any(isinstance(v, (bool, str)) for v in values):
        try:  # the common cases: every point a number, or every point a full row
            stacked = torch.tensor(values, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            pass
    if stacked is not None and stacked.ndim == 1:
        return stacked[:, None].expand(-1, width).contiguous() if name in PER_FEATURE_FIELDS else stacked
    if stacked is not None and stacked.shape[1:] == (width,) and name in PER_FEATURE_FIELDS:
        return stacked
    rows = []
    for v in values:
        row = None if isinstance(v, (bool, str)) else _as_float64(name, v)
        if row is None or tuple(row.shape) not in ((), (1,), (width,), (1, 1), (1, width)):
            expected = f"a number or n_features={width} numbers" if name in PER_FEATURE_FIELDS else "a number"
            raise ValueError(f"{name} must be {expected} at every point, got {v!r}")
        rows.append(row.reshape(-1).expand(width))
    out = torch.stack(rows)
    return out if name in PER_FEATURE_FIELDS else out[:, 0].contiguous()


def _mixed(values: list) -> bool:
    """An axis mixing types (or holding lists) becomes an object column."""
    return len({type(v) for v in values}) > 1 or any(isinstance(v, list) for v in values)


def _object_column(values: list) -> np.ndarray:
    """One entry per value, lists kept whole (``np.asarray`` would make equal-length lists a 2-D array)."""
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


def _show(point: Mapping) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in point.items()) + ")"


def _substitute(template, point: Mapping):
    """A TOML field template: a string naming an axis becomes its value, inside lists too."""
    if isinstance(template, str) and template in point:
        return point[template]
    if isinstance(template, list):
        return [_substitute(v, point) for v in template]
    return template
