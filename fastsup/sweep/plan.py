"""From a resolved sweep to train calls: cut each group into chunks of consecutive (point, restart) rows.

A group's rows are point-major, then restart: row ``r`` is the group's point
``r // restarts`` and restart ``r % restarts``, with instance id
``point * restarts + restart``.  The plan is stored with the sweep, so a
resumed sweep trains exactly the chunks the first run planned.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import TrainConfig
from .spec import Group


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One train call: rows ``[start, stop)`` of group ``group``."""

    name: str
    group: int
    start: int
    stop: int


def plan_chunks(groups: list[Group], restarts: int, chunk_sizes: list[int]) -> list[Chunk]:
    chunks = []
    for g, (group, size) in enumerate(zip(groups, chunk_sizes)):
        rows = len(group.points) * restarts
        for start in range(0, rows, size):
            chunks.append(Chunk(f"g{g:03d}-c{len(chunks):06d}", g, start, min(start + size, rows)))
    return chunks


def chunk_rows(group: Group, restarts: int, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    """The sweep point and the restart of every row of ``chunk``."""
    rows = np.arange(chunk.start, chunk.stop, dtype=np.int64)
    return group.points[rows // restarts], rows % restarts


def chunk_config(group: Group, restarts: int, chunk: Chunk) -> TrainConfig:
    """The TrainConfig of one chunk: the group's shared fields, its rows' per-instance values, stable ids."""
    rows = np.arange(chunk.start, chunk.stop, dtype=np.int64)
    point, restart = chunk_rows(group, restarts, chunk)
    return group.config(rows // restarts, point * restarts + restart)
