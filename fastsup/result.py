"""The result of a run, and how it is saved and loaded.

A saved result is a folder with a manifest, ``result.json`` (the config, the
backend, and the name, size and SHA-256 of its tensors file), and that
tensors file, ``tensors-<token>.safetensors``, whose name is new at every
save.  A save writes the new tensors file first and then swaps the manifest
in with one rename (:mod:`fastsup.io`), so at every moment the folder holds
one complete result, old or new, and a load never pairs one save's config
with another's tensors.  A save replaces only a previous fastsup result (or
an empty folder); it leaves any other file in the folder alone, and writers
of one folder take turns under a lock.

The tensors file holds ``params.<name>``, ``loss_history``, ``loss_steps``,
``final_loss``, the config's tensor-valued fields as ``config.<name>``, and,
when the run kept checkpoints, ``checkpoint_steps`` (int64 ``[C]``) with
``checkpoints.<name>`` (fp32 ``[C, *params[name].shape]``).  Results saved
before checkpoints existed (format 1, and format 2 without those tensors)
load with none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors_bytes
from safetensors.torch import save_file

from . import io
from .backends.base import logged_steps
from .config import TrainConfig, check_checkpoint_steps
from .init import param_shapes

META_FILE = "result.json"
FORMAT_MARKER = "fastsup.result"
FORMAT_VERSION = 2
LEGACY_TENSORS_FILE = "tensors.safetensors"  # format 1: one fixed name, no checksum
_TENSORS_NAME = re.compile(r"^tensors(-[0-9a-f]{32})?\.safetensors$")
_LOAD_ATTEMPTS = 5  # a concurrent save may remove the tensors file a manifest just named: read again


@dataclasses.dataclass
class TrainResult:
    """Trained weights and losses, on the CPU.

    ``params``: ``W`` ``[I, n, m]`` (abs: ``W1`` ``[I, n, m]``, ``W2`` ``[I, m, n]``) and ``b`` ``[I, n]``;
    ``loss_history`` ``[R, I]`` is the training-batch loss at ``loss_steps`` ``[R]``;
    ``final_loss`` ``[I]`` is the loss of the final weights on an evaluation batch
    never used in training.  ``checkpoint_steps`` ``[C]`` are the steps asked
    for with ``train(checkpoint_steps=...)`` and ``checkpoint_params[name]``
    ``[C, ...]`` the parameters after each one's update (``checkpoints`` gives
    them by step; both empty when none were asked for).
    """

    config: TrainConfig
    params: dict[str, torch.Tensor]
    loss_history: torch.Tensor
    loss_steps: torch.Tensor
    final_loss: torch.Tensor
    backend: str
    checkpoint_steps: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    checkpoint_params: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    @property
    def checkpoints(self) -> dict[int, dict[str, torch.Tensor]]:
        """``{step: params}``: each checkpoint's parameters, shaped like ``params`` (views, not copies)."""
        return {step: {name: value[row] for name, value in self.checkpoint_params.items()}
                for row, step in enumerate(self.checkpoint_steps.tolist())}

    def _param(self, name: str) -> torch.Tensor:
        if name not in self.params:
            raise AttributeError(f"model {self.config.model!r} has no {name} (its parameters: {sorted(self.params)})")
        return self.params[name]

    @property
    def W(self) -> torch.Tensor:
        return self._param("W")

    @property
    def W1(self) -> torch.Tensor:
        return self._param("W1")

    @property
    def W2(self) -> torch.Tensor:
        return self._param("W2")

    @property
    def b(self) -> torch.Tensor:
        return self._param("b")

    @property
    def encoder(self) -> torch.Tensor:
        """The ``[I, n, m]`` matrix whose rows are feature directions (W, or W1 for abs)."""
        return self.params["W1" if self.config.model == "abs" else "W"]

    @property
    def diverged(self) -> torch.Tensor:
        """``[I]`` bool: the instance's logged loss, final loss or final weights are not finite."""
        return self.diverged_at >= 0

    @property
    def diverged_at(self) -> torch.Tensor:
        """``[I]`` int64: the first logged step whose training loss was not finite, -1 if none.

        An instance whose logged losses are finite but whose final weights or
        final loss are not gets the last step.
        """
        bad_history = ~torch.isfinite(self.loss_history)  # [R, I]
        first = torch.where(bad_history.any(0), self.loss_steps[bad_history.int().argmax(0)], -1)
        return torch.where((first < 0) & nonfinite_at_end(self.params, self.final_loss), self.config.steps - 1, first)

    def hidden_activations(self, n_samples: int, out, *, instances=None, rows_per_shard: int | None = None,
                           device=None, **distribution):
        """Export the hidden activations of ``n_samples`` fresh data points, with their true features, to the
        folder ``out`` (for training sparse autoencoders); return the export (``fastsup.load_activations``).

        ``instances``: positions of the instances to export (default all); ``rows_per_shard``: rows per
        shard file (default: 64 MiB shards), which bounds memory whatever ``n_samples`` is (a shard that
        cannot fit is a MemoryError before anything is written);
        ``distribution``: data fields as in ``fastsup.evaluate`` (default the training distribution).
        ``out`` must be new, empty, or a previous export (replaced).  Layout and data: ``fastsup.activations``.
        """
        from .activations import export_activations  # it imports train, which imports this module

        return export_activations(self, n_samples, out, instances=instances, rows_per_shard=rows_per_shard,
                                  device=device, **distribution)

    def save(self, path) -> Path:
        """Write the result to the folder ``path``: created, or replaced if it holds a fastsup result.

        Anything else at ``path`` (a file, a link, a folder of other files) is
        refused with a ValueError before anything is written.
        """
        path = Path(path)
        check_save_target(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {f"params.{k}": v.detach().cpu().contiguous() for k, v in self.params.items()}
        tensors.update(loss_history=self.loss_history.contiguous(), loss_steps=self.loss_steps.contiguous(),
                       final_loss=self.final_loss.contiguous())
        if len(self.checkpoint_steps):
            tensors["checkpoint_steps"] = self.checkpoint_steps.contiguous()
            tensors.update({f"checkpoints.{k}": v.contiguous() for k, v in self.checkpoint_params.items()})
        config_fields, config_tensors = self.config.to_parts()
        tensors.update({f"config.{name}": value.contiguous() for name, value in config_tensors.items()})
        config_fields.update({name: {"tensor": f"config.{name}"} for name in config_tensors})
        with io.folder_lock(path):
            check_save_target(path)  # another process may have changed it before we held the lock
            io.remove_stale_temporaries(path)
            tensors_name = f"tensors-{io.new_token()}.safetensors"
            with io.atomic_path(path / tensors_name) as tmp:
                save_file(tensors, tmp)
            with open(path / tensors_name, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            manifest = {
                "format": FORMAT_MARKER, "format_version": FORMAT_VERSION, "backend": self.backend,
                "tensors": {"file": tensors_name, "bytes": (path / tensors_name).stat().st_size, "sha256": digest},
                "config": config_fields,  # tensor-valued fields are in the tensors file: result.json stays small
            }
            io.write_json_atomic(path / META_FILE, manifest)
            for entry in path.iterdir():  # the tensors files of earlier saves, now unreferenced
                if _TENSORS_NAME.match(entry.name) and entry.name != tensors_name:
                    entry.unlink(missing_ok=True)
        return path


def nonfinite_at_end(params: dict[str, torch.Tensor], final_loss: torch.Tensor) -> torch.Tensor:
    """``[I]`` bool: the instance's final loss or any of its final weights is NaN or inf."""
    bad = ~torch.isfinite(final_loss)
    for value in params.values():
        bad = bad | ~torch.isfinite(value).flatten(1).all(1)
    return bad


def _is_owned_name(name: str) -> bool:
    """Files a save writes (or a killed save leaves) inside a result folder."""
    return (name in (META_FILE, io.LOCK_FILE) or bool(_TENSORS_NAME.match(name))
            or (name.startswith(".") and name.endswith(io.TEMP_SUFFIX)))


def _has_result_manifest(path: Path) -> bool:
    try:
        meta = io.read_json(path / META_FILE, "result.json")
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict):
        return False
    return meta.get("format") == FORMAT_MARKER or (meta.get("format_version") == 1 and "config" in meta)


def check_save_target(path) -> None:
    """Raise a ValueError unless a result may be saved at ``path``.

    Allowed: nothing there yet, an empty folder, a folder holding a fastsup
    result (its files are replaced, other files are kept), or a folder that
    holds only what an interrupted save leaves.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ValueError(f"cannot save a result to {str(path)!r}: it exists and is not a folder "
                         "(a save replaces only a previous fastsup result); choose another path")
    if not path.exists():
        return
    names = [entry.name for entry in path.iterdir()]
    if _has_result_manifest(path) or all(_is_owned_name(name) for name in names):
        return
    shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
    raise ValueError(f"cannot save a result to {str(path)!r}: the folder is not empty and holds no fastsup "
                     f"result ({shown}); a save replaces only a previous fastsup result, so choose an empty "
                     "or new folder")


def _corrupt(path: Path, what: str) -> ValueError:
    return ValueError(f"saved result {str(path)!r} {what}")


def _read_manifest(path: Path) -> dict:
    if not (path / META_FILE).is_file():
        raise FileNotFoundError(f"saved result {str(path)!r} is missing {META_FILE}")
    try:
        meta = io.read_json(path / META_FILE, META_FILE)
    except ValueError as err:
        raise _corrupt(path, f"has a corrupt {err}") from None
    if not isinstance(meta, dict):
        raise _corrupt(path, f"has a corrupt {META_FILE}: expected a JSON object")
    version = meta.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise _corrupt(path, f"has format_version {version!r}; this fastsup reads 1 and {FORMAT_VERSION}")
    return meta


def _read_tensors(path: Path, meta: dict) -> dict[str, torch.Tensor]:
    """The tensors the manifest names, checked against its size and SHA-256 (format 2)."""
    if meta["format_version"] == 1:
        name, expected = LEGACY_TENSORS_FILE, None
    else:
        expected = meta.get("tensors")
        if not (isinstance(expected, dict) and isinstance(expected.get("file"), str)
                and _TENSORS_NAME.match(expected["file"])):
            raise _corrupt(path, f"has a corrupt {META_FILE}: no valid 'tensors' entry")
        name = expected["file"]
    data = (path / name).read_bytes()  # FileNotFoundError: the caller reads the manifest again
    if expected is not None and (len(data) != expected.get("bytes")
                                 or hashlib.sha256(data).hexdigest() != expected.get("sha256")):
        raise _corrupt(path, f"has a corrupt {name}: its size or SHA-256 differs from what {META_FILE} records")
    try:
        return load_tensors_bytes(data)
    except (SafetensorError, RuntimeError, ValueError) as err:
        raise _corrupt(path, f"has a corrupt {name}: {err}") from None


# Config fields added after results were first saved, with the value that
# means what a result saved without them trained: no such option existed.
ADDED_CONFIG_FIELDS = {"normalize_points": False, "dataset_size": None}


def _check_config_dict(path: Path, data) -> dict:
    if not isinstance(data, dict):
        raise _corrupt(path, f"has a corrupt {META_FILE}: 'config' must be an object")
    data = {**{k: v for k, v in ADDED_CONFIG_FIELDS.items() if k not in data}, **data}
    missing = sorted({f.name for f in dataclasses.fields(TrainConfig)} - set(data))
    if missing:
        raise _corrupt(path, f"has a config without the fields {missing} (not filled with defaults: a saved "
                             "config must say everything that determined the run)")
    return data


def _config_tensor(path: Path, tensors: dict, name: str, value):
    """A config field stored in the tensors file (``{"tensor": "config.<name>"}``), or the JSON value."""
    if not (isinstance(value, dict) and set(value) == {"tensor"}):
        return value
    if value["tensor"] != f"config.{name}" or value["tensor"] not in tensors:
        raise _corrupt(path, f"has config field {name} pointing to {value['tensor']!r}, which its tensors file lacks")
    return tensors[value["tensor"]]


def _check_tensor(path: Path, tensors: dict, name: str, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    if name not in tensors:
        raise _corrupt(path, f"lacks tensor {name!r}")
    value = tensors[name]
    if value.dtype != dtype or tuple(value.shape) != tuple(shape):
        raise _corrupt(path, f"has {name} of dtype {value.dtype} and shape {list(value.shape)}, "
                             f"expected {dtype} and {list(shape)}")
    return value


def _check_dims(path: Path, data: dict, tensors: dict) -> None:
    """The config's sizes agree with the tensors before anything is built from them (a tiny
    manifest claiming 10^7 instances must not allocate them)."""
    for name in ("n_instances", "n_features", "n_hidden", "steps", "log_every"):
        if isinstance(data[name], bool) or not isinstance(data[name], int) or data[name] < 1:
            raise _corrupt(path, f"has config {name}={data[name]!r}; expected a positive integer")
    final = tensors.get("final_loss")
    if final is None or tuple(final.shape) != (data["n_instances"],):
        got = None if final is None else list(final.shape)
        raise _corrupt(path, f"has final_loss of shape {got}, but its config says n_instances={data['n_instances']}")


def load(path) -> TrainResult:
    """Read a result written by ``TrainResult.save``; anything missing, damaged or inconsistent is a clear error."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no saved fastsup result at {str(path)!r} (expected a folder written by .save)")
    for attempt in range(_LOAD_ATTEMPTS):
        meta = _read_manifest(path)
        try:
            tensors = _read_tensors(path, meta)
            break
        except FileNotFoundError:
            if attempt == _LOAD_ATTEMPTS - 1:
                raise FileNotFoundError(f"saved result {str(path)!r} is missing the tensors file its "
                                        f"{META_FILE} names") from None
    data = _check_config_dict(path, meta.get("config"))
    backend = meta.get("backend")
    if not isinstance(backend, str):
        raise _corrupt(path, f"has a corrupt {META_FILE}: 'backend' must be a string")
    _check_dims(path, data, tensors)
    data = {name: _config_tensor(path, tensors, name, value) for name, value in data.items()}
    try:
        config = TrainConfig.from_dict(data)
    except (TypeError, ValueError) as err:
        raise _corrupt(path, f"has an invalid config: {err}") from None
    expected = param_shapes(config)
    found = sorted(k.removeprefix("params.") for k in tensors if k.startswith("params."))  # config.* are the config's
    if found != sorted(expected):
        raise _corrupt(path, f"has parameters {found}, expected {sorted(expected)} for model {config.model!r}")
    steps = logged_steps(config)
    loss_steps = _check_tensor(path, tensors, "loss_steps", (len(steps),), torch.int64)
    if loss_steps.tolist() != steps:
        raise _corrupt(path, "has loss_steps that are not the logged steps of its config")
    return TrainResult(
        config=config,
        params={name: _check_tensor(path, tensors, f"params.{name}", shape, torch.float32)
                for name, shape in expected.items()},
        loss_history=_check_tensor(path, tensors, "loss_history", (len(steps), config.n_instances), torch.float32),
        loss_steps=loss_steps,
        final_loss=_check_tensor(path, tensors, "final_loss", (config.n_instances,), torch.float32),
        backend=backend,
        **_load_checkpoints(path, tensors, config, expected),
    )


def _load_checkpoints(path: Path, tensors: dict, config: TrainConfig, shapes: dict) -> dict:
    """``checkpoint_steps`` and ``checkpoint_params`` of a saved result (none in results saved without them)."""
    names = [k for k in tensors if k.startswith("checkpoints.")]
    if "checkpoint_steps" not in tensors:
        if names:
            raise _corrupt(path, f"has {names[0]} but no checkpoint_steps")
        return {}
    steps = tensors["checkpoint_steps"]
    if steps.dtype != torch.int64 or steps.dim() != 1:
        raise _corrupt(path, f"has checkpoint_steps of dtype {steps.dtype} and shape {list(steps.shape)}, "
                             "expected int64 and one dimension")
    try:
        check_checkpoint_steps(steps.tolist(), config.steps)
    except (TypeError, ValueError) as err:
        raise _corrupt(path, f"has invalid {err}") from None
    found = sorted(k.removeprefix("checkpoints.") for k in names)
    if found != sorted(shapes):
        raise _corrupt(path, f"has checkpoints of {found}, expected {sorted(shapes)} for model {config.model!r}")
    return {"checkpoint_steps": steps, "checkpoint_params": {
        name: _check_tensor(path, tensors, f"checkpoints.{name}", (len(steps), *shape), torch.float32)
        for name, shape in shapes.items()}}
