"""Hidden activations of trained models, with the true features behind them, exported for SAE training.

``result.hidden_activations(n_samples, out)`` writes, for each chosen
instance, the hidden layer h of ``n_samples`` data points and the feature
vector x that produced it (x W for ``linear`` and ``relu_output``; after the
ReLU for ``relu_hidden`` and ``abs``: ``functional.hidden``, the layer the
forward pass uses).  The export is a folder::

    manifest.json                  what was exported and its shards; written last
    shard-00000.safetensors, ...   ``hidden`` fp32 [I, rows, m], ``features`` fp32 [I, rows, n]

Shard k holds rows ``k * rows_per_shard …`` of every exported instance
(instance-major, so ``shard["hidden"][i]`` is one model's ``[rows, m]``
batch).  Rows are computed in pieces within the evaluation budget
(``backends.base.piece_sizes``, as ``fastsup.evaluate`` draws them) and each
shard is written as soon as its rows are done, so memory holds one piece and
one shard whatever ``n_samples`` is; ``load_activations`` reads the shards
back one at a time.

Data: rows ``0 … n_samples-1`` of the randomness contract's
``philox.ACTIVATIONS_STEP`` (2**32 - 2), a step no training batch, fixed
dataset or evaluation batch uses, under the training distribution or one
given like ``fastsup.evaluate``'s.  A row's features are a function of
(seed, instance id, row) only: the same on every device, for every
``rows_per_shard`` and every choice of instances.  Its hidden activations
are bit-identical for every ``rows_per_shard`` (the pieces do not depend on
the shards) and equal elsewhere to fp32 rounding (another device, or other
instances beside it, may sum the matmul in another order).

Atomicity: every shard and the manifest go through ``io.atomic_path``; an
export first removes a previous export's manifest, so a folder with a
manifest holds one complete export, and a killed one leaves no manifest
(``load_activations`` then refuses the folder).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__, io
from .backends.base import model_spec, piece_sizes
from .config import check_integer
from .data import DataSpec, sample_batch
from .evaluate import DISTRIBUTION_FIELDS, check_distribution_fields
from .functional import hidden
from .memory import FP32, available_bytes
from .philox import ACTIVATIONS_STEP, MAX_ROWS
from .train import resolve_device

MANIFEST = "manifest.json"
FORMAT_MARKER = "fastsup.activations"
FORMAT_VERSION = 1
# A shard of the default size holds this many fp32 values (hidden and features together): 64 MiB.
SHARD_ELEMENTS = 1 << 24
_SHARD_NAME = re.compile(r"^shard-\d{5,}\.safetensors$")
HIDDEN_LAYER = {"linear": "x W", "relu_output": "x W", "relu_hidden": "ReLU(x W)", "abs": "ReLU(x W1)"}


@dataclasses.dataclass(frozen=True)
class Shard:
    file: str
    first_row: int
    rows: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class Activations:
    """A complete export, read one shard at a time: ``for shard in activations`` yields
    ``{"hidden": [I, rows, m], "features": [I, rows, n]}`` (fp32, CPU).

    ``instances`` are the exported instances' positions in the result (``result.W[instances[i]]`` made
    ``shard["hidden"][i]``), ``instance_ids`` their ids in the randomness contract; ``manifest`` has the rest
    (the data distribution, the source config's fingerprint).
    """

    path: Path
    model: str
    n_features: int
    n_hidden: int
    n_samples: int
    instances: tuple[int, ...]
    instance_ids: tuple[int, ...]
    shards: tuple[Shard, ...]
    manifest: dict

    def __len__(self) -> int:
        return len(self.shards)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return (self.shard(k) for k in range(len(self.shards)))

    def shard(self, index: int) -> dict[str, torch.Tensor]:
        """Shard ``index``'s tensors, checked against the manifest."""
        shard = self.shards[index]
        try:
            tensors = load_file(self.path / shard.file)
        except (SafetensorError, OSError) as err:
            raise ValueError(f"activations export {str(self.path)!r} has an unreadable {shard.file}: {err}") from None
        I = len(self.instances)
        expected = {"hidden": (I, shard.rows, self.n_hidden), "features": (I, shard.rows, self.n_features)}
        for name, shape in expected.items():
            value = tensors.get(name)
            if value is None or value.dtype != torch.float32 or tuple(value.shape) != shape:
                got = None if value is None else f"{value.dtype} {list(value.shape)}"
                raise ValueError(f"activations export {str(self.path)!r} has {shard.file} with {name} {got}, "
                                 f"expected torch.float32 {list(shape)}")
        return {name: tensors[name] for name in expected}


def _is_owned_name(name: str) -> bool:
    """Files an export writes (or a killed one leaves) in its folder."""
    return (name in (MANIFEST, io.LOCK_FILE) or bool(_SHARD_NAME.match(name))
            or (name.startswith(".") and name.endswith(io.TEMP_SUFFIX)))


def check_export_target(out) -> Path:
    """``out`` as a Path, or a ValueError unless it is new, an empty folder or a previous export."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ValueError(f"out {str(out)!r} exists and is not a folder; activations are exported to a folder "
                         "(new, empty, or a previous export, which is replaced)")
    if out.exists():
        foreign = sorted(entry.name for entry in out.iterdir() if not _is_owned_name(entry.name))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise ValueError(f"out {str(out)!r} is not an activations export (it holds {shown}); an export replaces "
                             "only a previous export, so choose a new or empty folder")
    return out


def _instance_positions(instances, n_instances: int) -> list[int]:
    if instances is None:
        return list(range(n_instances))
    if isinstance(instances, (str, bytes)) or not hasattr(instances, "__iter__"):
        raise TypeError(f"instances must be a sequence of instance positions in [0, {n_instances}), got {instances!r}")
    positions = [check_integer("instances entries", k, 0) for k in instances]
    outside = [k for k in positions if k >= n_instances]
    if outside:
        raise ValueError(f"instances {outside[:5]} are not instances of this result: it has {n_instances} "
                         f"(positions 0 … {n_instances - 1})")
    if not positions or len(set(positions)) != len(positions):
        raise ValueError(f"instances must name at least one instance, each once; got {positions[:10]}")
    return positions


def _default_rows_per_shard(n_instances: int, width: int) -> int:
    return max(1, SHARD_ELEMENTS // (n_instances * width))


def _check_shard_fits(shard_bytes: int, rows_per_shard: int) -> None:
    """A MemoryError naming rows_per_shard when a shard, and the pieces cut into it, cannot fit in memory."""
    free = available_bytes(torch.device("cpu"))
    if free is not None and 2 * shard_bytes > free:
        raise MemoryError(f"rows_per_shard={rows_per_shard} makes shards of {shard_bytes / 2**30:.3g} GiB, held "
                          f"twice while written, but {free / 2**30:.3g} GiB is free; lower rows_per_shard")


def _pieces(params, config, spec: DataSpec, n_samples: int, device) -> Iterator[dict[str, torch.Tensor]]:
    """Rows 0 … n_samples-1 of every instance, in consecutive pieces on the CPU: hidden ``[I, rows, m]`` and
    features ``[I, rows, n]``.

    The pieces' rows and instance blocks depend on the sizes and device only, never on the shards, so
    every ``rows_per_shard`` computes each row in the same piece: bit-identical (a matmul over a batch of
    another length may round differently).
    """
    I, n, m = config.n_instances, config.n_features, config.n_hidden
    model = model_spec(config)
    piece_rows, block = piece_sizes(n_samples, max(n, m), device)
    with torch.no_grad():
        for start in range(0, n_samples, piece_rows):
            rows = min(piece_rows, n_samples - start)
            piece = {"hidden": torch.empty(I, rows, m), "features": torch.empty(I, rows, n)}
            for first in range(0, I, block):
                part = slice(first, first + block)
                x = sample_batch(spec.instances(part), ACTIVATIONS_STEP, rows, start)
                piece["features"][part] = x.transpose(1, 2).cpu()
                weights = {name: value[part] for name, value in params.items()}
                piece["hidden"][part] = hidden(weights, x, model).transpose(1, 2).cpu()
            yield piece


def _in_shards(pieces: Iterator[dict[str, torch.Tensor]], rows_per_shard: int) -> Iterator[dict[str, torch.Tensor]]:
    """The same rows regrouped into shards of ``rows_per_shard`` rows (the last one may be shorter)."""
    held, held_rows = [], 0
    for piece in pieces:
        used, rows = 0, next(iter(piece.values())).shape[1]
        while used < rows:
            take = min(rows_per_shard - held_rows, rows - used)
            held.append({name: value[:, used:used + take] for name, value in piece.items()})
            used, held_rows = used + take, held_rows + take
            if held_rows == rows_per_shard:
                yield {name: torch.cat([part[name] for part in held], 1) for name in piece}
                held, held_rows = [], 0
    if held:
        yield {name: torch.cat([part[name] for part in held], 1) for name in held[0]}


def export_activations(result, n_samples: int, out, *, instances=None, rows_per_shard: int | None = None,
                       device=None, **distribution) -> Activations:
    """Write the hidden activations and true features of ``n_samples`` rows per instance to the folder ``out``.

    See ``TrainResult.hidden_activations`` (this is it).
    """
    n_samples = check_integer("n_samples", n_samples, 1)
    if n_samples > MAX_ROWS:
        raise ValueError(f"n_samples must be at most 4 * 2**32 (the rows of one Philox step), got {n_samples}")
    check_distribution_fields("hidden_activations", distribution)
    positions = _instance_positions(instances, result.config.n_instances)
    n, m = result.config.n_features, result.config.n_hidden
    if rows_per_shard is None:
        rows_per_shard = _default_rows_per_shard(len(positions), n + m)
    rows_per_shard = check_integer("rows_per_shard", rows_per_shard, 1)
    _check_shard_fits(len(positions) * min(rows_per_shard, n_samples) * (n + m) * FP32, rows_per_shard)
    out = check_export_target(out)
    device = resolve_device(device)
    index = torch.tensor(positions)
    config = dataclasses.replace(result.config, **distribution).select(index)  # validates and broadcasts as training
    spec = DataSpec.from_config(config, device)
    params = {name: value[index].to(device=device, dtype=torch.float32) for name, value in result.params.items()}
    out.mkdir(parents=True, exist_ok=True)
    with io.folder_lock(out, blocking=False):
        check_export_target(out)  # another process may have changed it before we held the lock
        _remove_previous_export(out)
        shards, first_row = [], 0
        for k, tensors in enumerate(_in_shards(_pieces(params, config, spec, n_samples, device), rows_per_shard)):
            name, rows = f"shard-{k:05d}.safetensors", tensors["hidden"].shape[1]
            with io.atomic_path(out / name) as tmp:
                save_file(tensors, tmp)
            shards.append(Shard(name, first_row, rows, (out / name).stat().st_size))
            first_row += rows
        plain = config.to_dict()
        manifest = {
            "format": FORMAT_MARKER, "format_version": FORMAT_VERSION, "fastsup_version": __version__,
            "model": config.model, "hidden_layer": HIDDEN_LAYER[config.model],
            "n_features": n, "n_hidden": m, "n_samples": n_samples, "rows_per_shard": rows_per_shard,
            "data_step": ACTIVATIONS_STEP, "instances": positions, "instance_ids": config.instance_ids.tolist(),
            "source_fingerprint": result.config.fingerprint(),
            "distribution": {name: plain[name] for name in DISTRIBUTION_FIELDS},  # per exported instance
            "shards": [dataclasses.asdict(shard) for shard in shards],
        }
        io.write_json_atomic(out / MANIFEST, manifest)
    return load_activations(out)


def _remove_previous_export(out: Path) -> None:
    """The manifest first (from then on the folder is an incomplete export), then every shard."""
    (out / MANIFEST).unlink(missing_ok=True)
    io.fsync_folder(out)
    io.remove_stale_temporaries(out)
    for entry in out.iterdir():
        if _SHARD_NAME.match(entry.name):
            entry.unlink()


def _corrupt(path: Path, what: str) -> ValueError:
    return ValueError(f"activations export {str(path)!r} {what}")


def load_activations(path) -> Activations:
    """Open an export written by ``TrainResult.hidden_activations``; its shards are read when iterated."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"no complete activations export at {str(path)!r}: it has no {MANIFEST} "
                                "(an export that was interrupted leaves none)")
    manifest = io.read_json(path / MANIFEST, str(path / MANIFEST))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_MARKER:
        raise _corrupt(path, f"has a {MANIFEST} that is not an activations manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _corrupt(path, f"has format_version {manifest.get('format_version')!r}; this fastsup reads "
                             f"{FORMAT_VERSION}")
    try:
        shards = tuple(Shard(**entry) for entry in manifest["shards"])
        fields = {name: manifest[name] for name in ("model", "n_features", "n_hidden", "n_samples")}
        instances, instance_ids = tuple(manifest["instances"]), tuple(manifest["instance_ids"])
    except (KeyError, TypeError) as err:
        raise _corrupt(path, f"has a {MANIFEST} with a missing or malformed entry ({err})") from None
    row = 0
    for shard in shards:
        if shard.first_row != row or not _SHARD_NAME.match(shard.file):
            raise _corrupt(path, f"has a {MANIFEST} whose shards do not cover rows 0 … n_samples-1 in order")
        size = (path / shard.file).stat().st_size if (path / shard.file).is_file() else None
        if size != shard.bytes:
            raise _corrupt(path, f"has {shard.file} of {size} bytes; its {MANIFEST} records {shard.bytes}")
        row += shard.rows
    if row != fields["n_samples"]:
        raise _corrupt(path, f"has shards of {row} rows in all; its {MANIFEST} says n_samples={fields['n_samples']}")
    return Activations(path=path, instances=instances, instance_ids=instance_ids, shards=shards,
                       manifest=manifest, **fields)
