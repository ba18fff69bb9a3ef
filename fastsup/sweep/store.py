"""A sweep's folder: the manifest, one safetensors file per finished chunk, and the Parquet table.

    manifest.json            the spec, each group's shared fields, the fingerprint, the chunk plan, versions
    points.safetensors       each group's points and per-point values (g000.points, g000.importance, ...)
    chunks/<chunk>.safetensors   params.*, final_loss, loss_history, instance_ids of one chunk, and
                                 checkpoints.* ([C, rows, ...]) when the manifest's checkpoint_steps has C steps
    table.parquet            one row per (point, restart), written when every chunk is done

Every file goes through :func:`fastsup.io.atomic_path`, so a chunk file is
complete or absent: a killed sweep loses no finished chunk, and resuming
trains only the chunks that have no file.  The manifest is written last: a
store without one holds nothing yet, and is started again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__, io
from .plan import Chunk
from .spec import Group

MANIFEST = "manifest.json"
POINTS = "points.safetensors"
CHUNKS = "chunks"
TABLE = "table.parquet"
FORMAT_MARKER = "fastsup.sweep"
FORMAT_VERSION = 2  # 1 (before 2026-12-01) listed every point's fields in the manifest


def check_store(path: Path) -> dict | None:
    """The manifest of the sweep store at ``path``; None when there is none yet (missing or empty folder)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ValueError(f"store {str(path)!r} exists and is not a folder")
    if not path.exists():
        return None
    if not (path / MANIFEST).is_file():
        if all(_left_before_the_manifest(entry.name) for entry in path.iterdir()):
            return None  # empty, or a first run killed before its plan was complete
        raise ValueError(f"store {str(path)!r} is a non-empty folder without a sweep manifest; "
                         "choose a new or empty folder")
    manifest = io.read_json(path / MANIFEST, f"{path / MANIFEST}")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_MARKER:
        raise ValueError(f"store {str(path)!r} has a {MANIFEST} that is not a fastsup sweep manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"store {str(path)!r} has format_version {manifest.get('format_version')!r}; "
                         f"this fastsup reads {FORMAT_VERSION}")
    return manifest


def write_plan(store: Path, spec: dict, fingerprint: str, groups: list[Group], chunks: list[Chunk],
               checkpoint_steps: tuple[int, ...] = ()) -> dict:
    """Write the points file, then the manifest (last: its presence marks a planned store); return it."""
    tensors = {}
    for g, group in enumerate(groups):
        tensors[f"g{g:03d}.points"] = torch.from_numpy(group.points)
        tensors.update({f"g{g:03d}.{name}": value for name, value in group.values.items()})
    with io.atomic_path(store / POINTS) as tmp:
        save_file(tensors, tmp)
    manifest = {
        "format": FORMAT_MARKER, "format_version": FORMAT_VERSION, "fastsup_version": __version__,
        "torch_version": torch.__version__, "fingerprint": fingerprint, "spec": spec,
        "groups": [{"shared": group.shared, "points": len(group.points)} for group in groups],
        "chunks": [dataclasses.asdict(c) for c in chunks],
        "checkpoint_steps": list(checkpoint_steps),  # absent in stores written before checkpoints: none
    }
    io.write_json_atomic(store / MANIFEST, manifest)
    return manifest


def read_groups(store: Path, manifest: dict) -> list[Group]:
    tensors = load_file(store / POINTS)
    groups = []
    for g, entry in enumerate(manifest["groups"]):
        prefix = f"g{g:03d}."
        values = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix) and k != prefix + "points"}
        groups.append(Group(entry["shared"], tensors[prefix + "points"].numpy(), values))
    return groups


def _left_before_the_manifest(name: str) -> bool:
    return name in (io.LOCK_FILE, POINTS) or (name.startswith(".") and name.endswith(io.TEMP_SUFFIX))


def planned_chunks(manifest: dict) -> list[Chunk]:
    return [Chunk(**c) for c in manifest["chunks"]]


def chunk_path(store: Path, chunk: Chunk) -> Path:
    return store / CHUNKS / f"{chunk.name}.safetensors"


def write_chunk(store: Path, chunk: Chunk, tensors: dict[str, torch.Tensor], backend: str) -> None:
    with io.atomic_path(chunk_path(store, chunk)) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata={"backend": backend})


def read_chunk(store: Path, chunk: Chunk) -> dict[str, torch.Tensor] | None:
    """A finished chunk's tensors; None when it has not been written (or is unreadable: train it again)."""
    path = chunk_path(store, chunk)
    if not path.is_file():
        return None
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, RuntimeError):
        return None
    if tensors.get("instance_ids") is None or len(tensors["instance_ids"]) != chunk.stop - chunk.start:
        return None
    return tensors


def finished(store: Path, chunks: list[Chunk]) -> list[bool]:
    return [chunk_path(store, c).is_file() for c in chunks]
