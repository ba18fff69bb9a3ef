"""The run description every backend takes: ``TrainConfig``, validated on construction.

Names follow the paper: ``feature_probability`` is p (the chance a feature is
present), ``sparsity`` is S = 1 - p; the config stores p only and
``TrainConfig.sparsity`` derives S, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
from typing import Any, Sequence

import torch

from . import philox

MODELS = ("linear", "relu_output", "relu_hidden", "abs")
ACTIVATIONS = ("relu", "exrelu")
OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("constant", "linear", "cosine", "warmup_cosine", "custom")
MAGNITUDES = ("uniform", "signed", "clipped_normal")
BACKENDS = ("auto", "reference", "torch", "triton")
DEFAULT_WEIGHT_DECAY = {"adamw": 0.01, "adam": 0.0}
DEFAULT_BATCH_SIZE = 1024


def check_integer(name: str, value, minimum: int) -> int:
    """An int (numpy ints too; not bool, float or str) that is >= minimum."""
    expected = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    try:
        as_int = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {expected}, got {value!r}") from None
    if as_int < minimum:
        raise ValueError(f"{name} must be {expected}, got {as_int}")
    return as_int


def check_checkpoint_steps(value, steps: int) -> tuple[int, ...]:
    """Steps at which to keep the parameters: integers strictly increasing within ``[0, steps)``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"checkpoint_steps must be a sequence of step indices, got {value!r}")
    checked = tuple(check_integer("checkpoint_steps entries", s, 0) for s in value)
    outside = [s for s in checked if s >= steps]
    if outside:
        raise ValueError(f"checkpoint_steps must lie in [0, steps) = [0, {steps}), got {outside[:5]}")
    if any(b <= a for a, b in zip(checked, checked[1:])):
        raise ValueError(f"checkpoint_steps must be strictly increasing (sorted, no repeats), got {list(checked)[:10]}")
    return checked


def _positive_int(name: str, value) -> int:
    return check_integer(name, value, 1)


def _choice(name: str, value, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def _finite_float(name: str, value, *, minimum=None, strict=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return value


def _as_values(name: str, value):
    """Scalars stay Python floats; anything else becomes a float64 CPU tensor of its own shape."""
    if isinstance(value, bool) or isinstance(value, torch.Tensor) and value.dtype == torch.bool:
        raise TypeError(f"{name} must be a number, a sequence of numbers or a tensor, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    tensor = _as_float64(name, value)
    return tensor.item() if tensor.ndim == 0 else tensor.contiguous()


def _as_float64(name: str, value) -> torch.Tensor:
    try:
        return torch.as_tensor(value, dtype=torch.float64).cpu()
    except (TypeError, ValueError, RuntimeError):
        ragged = isinstance(value, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in value)
        why = "a nested list whose rows have different lengths" if ragged else f"a {type(value).__name__}"
        raise TypeError(f"{name} must be a number, a sequence of numbers or a tensor with equal-length rows; "
                        f"got {why}") from None


def broadcast_per_instance_feature(name: str, value, n_instances: int, n_features: int) -> torch.Tensor:
    """Broadcast ``value`` to fp32 ``[I, n]`` under strict rules.

    Accepted: a scalar, ``[n]``, ``[I]``, ``[I, 1]``, ``[1, n]``, ``[I, n]``.
    A 1-D value whose length is both I and n is ambiguous and refused.
    """
    tensor = _as_float64(name, value)
    shape = tuple(tensor.shape)
    I, n = n_instances, n_features
    if tensor.ndim == 0:
        out = tensor.expand(I, n)
    elif tensor.ndim == 1:
        if len(tensor) == n and len(tensor) == I and n != 1:
            raise ValueError(
                f"{name} has shape {shape}, which is ambiguous because n_instances == n_features == {n}: "
                f"reshape it to [{I}, 1] (per instance) or [1, {n}] (per feature)"
            )
        if len(tensor) == n:
            out = tensor.view(1, n).expand(I, n)
        elif len(tensor) == I:
            out = tensor.view(I, 1).expand(I, n)
        else:
            raise ValueError(
                f"{name} has shape {shape}; a 1-D {name} must have length n_features={n} or n_instances={I}"
            )
    elif tensor.ndim == 2 and shape[0] in (1, I) and shape[1] in (1, n):
        out = tensor.expand(I, n)
    else:
        raise ValueError(
            f"{name} has shape {shape}; expected a scalar, [{n}], [{I}], [{I}, 1], [1, {n}] or [{I}, {n}] "
            f"(n_instances={I}, n_features={n})"
        )
    if torch.isnan(out).any():
        raise ValueError(f"{name} contains NaN")
    return out.to(torch.float32).contiguous()


def broadcast_per_instance(name: str, value, n_instances: int, *, positive: bool) -> torch.Tensor:
    """Broadcast a scalar or ``[I]`` hyperparameter (lr, weight decay) to fp32 ``[I]``."""
    tensor = _as_float64(name, value)
    if tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.ndim == 0:
        tensor = tensor.expand(n_instances)
    elif tensor.shape != (n_instances,):
        raise ValueError(f"{name} must be a scalar or have shape [{n_instances}] (one per instance), got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if positive and (tensor <= 0).any():
        raise ValueError(f"{name} must be > 0, got min {tensor.min().item()}")
    if not positive and (tensor < 0).any():
        raise ValueError(f"{name} must be >= 0, got min {tensor.min().item()}")
    return tensor.to(torch.float32).contiguous()


def _feature_groups(name: str, groups, n_features: int, size: int | None) -> tuple[tuple[int, ...], ...]:
    example = "[[0, 1], [2, 3]]"
    if groups is None:
        groups = ()
    if isinstance(groups, (str, bytes)) or not isinstance(groups, (list, tuple)) or \
            any(isinstance(g, (str, bytes)) or not isinstance(g, (list, tuple)) for g in groups):
        raise TypeError(f"{name} must be a list of feature-index groups, e.g. {example}; got {groups!r}")
    out = []
    for group in groups:
        members = tuple(check_integer(f"{name} entry", i, 0) for i in group)
        if size is not None and len(members) != size:
            raise ValueError(f"each entry of {name} must have exactly {size} features, got {members}")
        if len(members) < 2:
            raise ValueError(f"each entry of {name} needs at least 2 features, got {members}")
        if any(not 0 <= i < n_features for i in members):
            raise ValueError(f"{name} entry {members} has a feature index outside [0, {n_features})")
        out.append(members)
    return tuple(out)


TENSOR_FIELDS = ("feature_probability", "importance", "lr", "weight_decay", "lr_multipliers", "instance_ids")


def _set(config, name: str, value) -> None:
    object.__setattr__(config, name, value)  # a frozen dataclass validates and normalises once, here


@dataclasses.dataclass(frozen=True, eq=False)
class TrainConfig:
    """Everything that determines a training run.  Same config, same numbers, on every backend.

    Immutable once validated.  Per-instance values (``feature_probability``,
    ``importance``, ``lr``, ``weight_decay``) are Python floats or float64
    tensors of the shape given; ``instance_ids`` an int64 tensor ``[I]``;
    ``lr_multipliers`` a float64 tensor ``[steps]``, so a config of 10^6
    instances builds, chunks and saves in well under a second.  Shapes after
    broadcasting: ``probability()``/``importance_tensor()`` are
    ``[n_instances, n_features]``; ``lr_tensor()``/``weight_decay_tensor()``
    are ``[n_instances]``.  ``fingerprint()`` is a content hash, the same in
    every process and on every machine; equal configs have equal fingerprints.
    """

    n_features: int = 5
    n_hidden: int = 2
    n_instances: int = 10
    model: str = "relu_output"
    activation: str = "relu"
    activation_threshold: float = 0.0
    feature_probability: Any = 1.0
    importance: Any = 1.0
    magnitude: str | None = None
    correlated_sets: Any = ()
    anticorrelated_pairs: Any = ()
    normalize_points: bool = False  # every data point scaled to unit L2 norm (zero points stay zero)
    dataset_size: int | None = None  # T: train full-batch on T fixed points (batch_size becomes T)
    steps: int = 10_000
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: Any = 1e-3
    weight_decay: Any = None
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "constant"
    warmup_steps: int = 0
    lr_multipliers: Any = None  # schedule="custom": the lr multiplier of every step, [steps]
    seed: int = 0
    instance_ids: Any = None
    log_every: int = 100
    eval_batch_size: int | None = None

    def __post_init__(self):
        if self.dataset_size is not None:
            _set(self, "dataset_size", _positive_int("dataset_size", self.dataset_size))
            if self.batch_size not in (self.dataset_size, DEFAULT_BATCH_SIZE):
                raise ValueError(f"dataset_size={self.dataset_size} trains full-batch on the fixed points, so "
                                 f"batch_size must be left out or equal it, got batch_size={self.batch_size!r}")
            _set(self, "batch_size", self.dataset_size)
        if not isinstance(self.normalize_points, bool):
            raise TypeError(f"normalize_points must be True or False, got {self.normalize_points!r}")
        for name in ("n_features", "n_hidden", "n_instances", "steps", "batch_size", "log_every"):
            _set(self, name, _positive_int(name, getattr(self, name)))
        _set(self, "model", _choice("model", self.model, MODELS))
        _set(self, "activation", _choice("activation", self.activation, ACTIVATIONS))
        if self.model == "linear" and self.activation != "relu":
            raise ValueError("activation applies to the output of nonlinear models; model='linear' has none")
        _set(self, "activation_threshold", _finite_float("activation_threshold", self.activation_threshold))
        if self.activation_threshold != 0.0 and self.activation != "exrelu":
            raise ValueError(f"activation_threshold={self.activation_threshold:g} is used only by activation='exrelu'; "
                             f"activation={self.activation!r} (model={self.model!r}) would ignore it")
        _set(self, "optimizer", _choice("optimizer", self.optimizer, OPTIMIZERS))
        _set(self, "schedule", _choice("schedule", self.schedule, SCHEDULES))
        if self.magnitude is None:
            _set(self, "magnitude", "signed" if self.model == "abs" else "uniform")
        _set(self, "magnitude", _choice("magnitude", self.magnitude, MAGNITUDES))
        _set(self, "warmup_steps", check_integer("warmup_steps", self.warmup_steps, 0))
        if self.schedule == "warmup_cosine" and not 0 < self.warmup_steps < self.steps:
            raise ValueError(f"schedule='warmup_cosine' needs 0 < warmup_steps < steps, got warmup_steps={self.warmup_steps}")
        if self.schedule == "custom":
            multipliers = _as_float64("lr_multipliers", self.lr_multipliers) if self.lr_multipliers is not None else None
            if multipliers is None or multipliers.shape != (self.steps,):
                got = None if multipliers is None else list(multipliers.shape)
                raise ValueError(f"schedule='custom' needs lr_multipliers with one value per step ([{self.steps}]), got {got}")
            if not torch.isfinite(multipliers).all() or (multipliers < 0).any():
                raise ValueError("lr_multipliers must be finite and >= 0")
            _set(self, "lr_multipliers", multipliers.contiguous())
        elif self.lr_multipliers is not None:
            raise ValueError(f"lr_multipliers is only used with schedule='custom', not schedule={self.schedule!r}")
        if self.eval_batch_size is None:  # a fixed dataset's test loss: fresh points, not just T of them
            _set(self, "eval_batch_size", DEFAULT_BATCH_SIZE if self.dataset_size is not None else self.batch_size)
        _set(self, "eval_batch_size", _positive_int("eval_batch_size", self.eval_batch_size))
        betas = self.betas
        if isinstance(betas, (str, bytes)) or not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
        _set(self, "betas", tuple(_finite_float(f"betas[{i}]", b) for i, b in enumerate(betas)))
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
        _set(self, "eps", _finite_float("eps", self.eps, minimum=0.0, strict=True))
        _set(self, "seed", philox.check_seed(self.seed))
        if self.weight_decay is None:
            _set(self, "weight_decay", DEFAULT_WEIGHT_DECAY[self.optimizer])

        for name in ("feature_probability", "importance", "lr", "weight_decay"):
            _set(self, name, _as_values(name, getattr(self, name)))
        p = self.probability()
        if ((p < 0) | (p > 1)).any():
            raise ValueError(f"feature_probability must lie in [0, 1], got values in [{p.min().item()}, {p.max().item()}]")
        imp = self.importance_tensor()
        if not torch.isfinite(imp).all() or (imp < 0).any():
            raise ValueError("importance must be finite and >= 0")
        self.lr_tensor()
        self.weight_decay_tensor()

        _set(self, "correlated_sets", _feature_groups("correlated_sets", self.correlated_sets, self.n_features, None))
        _set(self, "anticorrelated_pairs", _feature_groups("anticorrelated_pairs", self.anticorrelated_pairs, self.n_features, 2))
        members = [i for g in self.correlated_sets + self.anticorrelated_pairs for i in g]
        if len(members) != len(set(members)):
            raise ValueError("correlated_sets and anticorrelated_pairs overlap: a feature may belong to at most one set or pair")
        for group in self.correlated_sets + self.anticorrelated_pairs:
            if not (p[:, list(group)] == p[:, group[:1]]).all():
                raise ValueError(f"features {group} share presence draws, so they need equal feature_probability")
        for pair in self.anticorrelated_pairs:
            if (p[:, pair[0]] > 0.5).any():
                raise ValueError(f"anticorrelated pair {pair} needs feature_probability <= 0.5")

        ids = self.instance_ids
        if ids is None:
            ids = torch.arange(self.n_instances, dtype=torch.int64)
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
            raise TypeError(f"instance_ids must be a sequence of n_instances={self.n_instances} distinct "
                            f"non-negative integers (or None: 0 … n_instances-1), got {ids!r}")
        try:
            ids = torch.as_tensor(ids).cpu()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError("instance_ids must be a sequence of non-negative integers") from None
        if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex() or ids.ndim != 1:
            raise TypeError(f"instance_ids must be a 1-D sequence of integers, got dtype {ids.dtype} "
                            f"and shape {list(ids.shape)}")
        if len(ids) != self.n_instances:
            raise ValueError(f"instance_ids must have n_instances={self.n_instances} entries, got {len(ids)}")
        ids = ids.to(torch.int64).contiguous()
        if len(ids) and (ids.min() < 0 or ids.max() >= philox.MAX_WORD):
            raise ValueError("instance_ids must lie in [0, 2**32) (Philox counter layout)")
        increasing = bool((ids[1:] > ids[:-1]).all())  # the usual case (ranges, slices of them): distinct
        if not increasing and len(torch.unique(ids)) != len(ids):
            raise ValueError("instance_ids must be distinct (equal ids would train identical models)")
        _set(self, "instance_ids", ids)
        if self.n_features > philox.MAX_COLUMN:
            raise ValueError(f"n_features must be <= 2**24 (Philox counter layout), got {self.n_features}")
        if self.steps >= philox.DATASET_STEP:
            raise ValueError(f"steps must be < 2**31 (Philox counter layout), got {self.steps}")

    # --- derived tensors -------------------------------------------------
    def probability(self) -> torch.Tensor:
        """Feature probability p, fp32 ``[I, n]``."""
        return broadcast_per_instance_feature("feature_probability", self.feature_probability, self.n_instances, self.n_features)

    @property
    def sparsity(self) -> torch.Tensor:
        """Sparsity S = 1 - p, fp32 ``[I, n]``."""
        return 1.0 - self.probability()

    def importance_tensor(self) -> torch.Tensor:
        return broadcast_per_instance_feature("importance", self.importance, self.n_instances, self.n_features)

    def lr_tensor(self) -> torch.Tensor:
        return broadcast_per_instance("lr", self.lr, self.n_instances, positive=True)

    def weight_decay_tensor(self) -> torch.Tensor:
        return broadcast_per_instance("weight_decay", self.weight_decay, self.n_instances, positive=False)

    def instance_id_tensor(self) -> torch.Tensor:
        return self.instance_ids

    @property
    def tied(self) -> bool:
        return self.model != "abs"

    def select(self, index: slice) -> "TrainConfig":
        """The config of a contiguous subset of instances (for chunked training)."""
        ids = self.instance_ids[index]
        per_inst = lambda t: t[index]  # noqa: E731
        return dataclasses.replace(
            self,
            n_instances=len(ids),
            instance_ids=ids,
            feature_probability=per_inst(self.probability()),
            importance=per_inst(self.importance_tensor()),
            lr=per_inst(self.lr_tensor()),
            weight_decay=per_inst(self.weight_decay_tensor()),
        )

    # --- serialisation ---------------------------------------------------
    def to_parts(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """JSON-able scalar fields, and the tensor fields by name (a saved result stores them in its
        tensors file, so ``result.json`` stays small whatever the number of instances)."""
        plain, tensors = {}, {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, torch.Tensor):
                tensors[field.name] = value
            elif field.name == "betas":
                plain[field.name] = list(value)
            elif field.name in ("correlated_sets", "anticorrelated_pairs"):
                plain[field.name] = [list(g) for g in value]
            else:
                plain[field.name] = value
        return plain, tensors

    def to_dict(self) -> dict:
        """Every field as plain JSON values (tensors as nested lists)."""
        plain, tensors = self.to_parts()
        return {**plain, **{name: value.tolist() for name, value in tensors.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """The inverse of ``to_dict`` (values may also be tensors, as ``to_parts`` gives them)."""
        if not isinstance(data, dict):
            raise TypeError(f"TrainConfig.from_dict needs a dict of TrainConfig fields (as to_dict gives), "
                            f"got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        data = dict(data)
        if isinstance(data.get("betas"), list):
            data["betas"] = tuple(data["betas"])
        return cls(**data)

    def fingerprint(self) -> str:
        """A SHA-256 hex digest of everything that determines the run (stable across processes and machines)."""
        plain, tensors = self.to_parts()
        digest = hashlib.sha256(json.dumps(plain, sort_keys=True, allow_nan=False).encode())
        for name in sorted(tensors):
            value = tensors[name]
            digest.update(f"{name}:{value.dtype}:{list(value.shape)}".encode())
            digest.update(value.numpy().tobytes())
        return digest.hexdigest()

    def __eq__(self, other) -> bool:
        if not isinstance(other, TrainConfig):
            return NotImplemented
        return self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def title(self) -> str:
        """A short human title generated from the config (for plots and logs)."""
        act = "" if self.model == "linear" or self.activation == "relu" else f", ExReLU(t={self.activation_threshold:g})"
        data = f", {self.dataset_size} fixed points" if self.dataset_size is not None else ""
        return (f"{self.model}{act} {self.n_features}→{self.n_hidden} × {self.n_instances} instances{data}, "
                f"{self.steps} steps")
