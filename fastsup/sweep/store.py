"""A sweep's folder: the manifest, one safetensors file per finished chunk, and the Parquet table.

    manifest.json            the resolved spec, its fingerprint, the chunk plan, versions
    chunks/<chunk>.safetensors   params.*, final_loss, loss_history, instance_ids of one chunk
    table.parquet            one row per (point, restart), written when every chunk is done

Every file goes through :func:`fastsup.io.atomic_path`, so a chunk file is
complete or absent: a killed sweep loses no finished chunk, and resuming
trains only the chunks that have no file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__, io
from .plan import Chunk

MANIFEST = "manifest.json"
CHUNKS = "chunks"
TABLE = "table.parquet"
FORMAT_MARKER = "fastsup.sweep"
FORMAT_VERSION = 1


def check_store(path: Path) -> dict | None:
    """The manifest of the sweep store at ``path``; None when there is none yet (missing or empty folder)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ValueError(f"store {str(path)!r} exists and is not a folder")
    if not path.exists() or not any(path.iterdir()):
        return None
    if not (path / MANIFEST).is_file():
        raise ValueError(f"store {str(path)!r} is a non-empty folder without a sweep manifest; "
                         "choose a new or empty folder")
    manifest = io.read_json(path / MANIFEST, f"{path / MANIFEST}")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_MARKER:
        raise ValueError(f"store {str(path)!r} has a {MANIFEST} that is not a fastsup sweep manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"store {str(path)!r} has format_version {manifest.get('format_version')!r}; "
                         f"this fastsup reads {FORMAT_VERSION}")
    return manifest


def new_manifest(spec: dict, fingerprint: str, groups: list[list[int]], chunks: list[Chunk]) -> dict:
    return {
        "format": FORMAT_MARKER, "format_version": FORMAT_VERSION, "fastsup_version": __version__,
        "torch_version": torch.__version__, "fingerprint": fingerprint,
        "groups": groups, "chunks": [dataclasses.asdict(c) for c in chunks], "spec": spec,
    }


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
