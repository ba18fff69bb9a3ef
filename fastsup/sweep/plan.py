"""From a sweep's points to train calls: group points that can share one call, cut groups into chunks.

Points whose fields differ only in per-instance values (feature probability,
importance, lr, weight decay) share a group; each group is cut into chunks
of at most ``chunk_size`` consecutive (point, restart) rows.  The plan is
stored with the sweep, so a resumed sweep trains exactly the chunks the
first run planned.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import torch

from ..config import TrainConfig
from .spec import PER_INSTANCE_FIELDS


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One train call: rows ``[start, stop)`` of group ``group`` (rows are point-major, then restart)."""

    name: str
    group: int
    start: int
    stop: int


def group_points(points: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of the points in each group, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, fields in enumerate(points):
        shared = {k: v for k, v in fields.items() if k not in PER_INSTANCE_FIELDS}
        groups.setdefault(json.dumps(shared, sort_keys=True), []).append(index)
    return list(groups.values())


def plan_chunks(groups: list[list[int]], restarts: int, chunk_sizes: list[int]) -> list[Chunk]:
    chunks = []
    for g, (members, size) in enumerate(zip(groups, chunk_sizes)):
        rows = len(members) * restarts
        for start in range(0, rows, size):
            chunks.append(Chunk(f"g{g:03d}-c{len(chunks):06d}", g, start, min(start + size, rows)))
    return chunks


def chunk_config(points: list[dict[str, Any]], members: list[int], restarts: int, chunk: Chunk) -> TrainConfig:
    """The TrainConfig of one chunk: the group's shared fields, per-instance values stacked, stable ids."""
    rows = range(chunk.start, chunk.stop)
    point_of_row = [members[r // restarts] for r in rows]
    ids = [p * restarts + r % restarts for p, r in zip(point_of_row, rows)]
    first = points[point_of_row[0]]
    shared = {k: v for k, v in first.items() if k not in PER_INSTANCE_FIELDS}
    per_point = {}
    for p in sorted(set(point_of_row)):
        one = TrainConfig(**points[p], n_instances=1)  # resolves defaults and broadcasting per point
        per_point[p] = (one.probability()[0], one.importance_tensor()[0], one.lr_tensor()[0], one.weight_decay_tensor()[0])
    stacked = [torch.stack([per_point[p][i] for p in point_of_row]) for i in range(4)]
    return TrainConfig(**shared, n_instances=len(ids), instance_ids=ids,
                       feature_probability=stacked[0], importance=stacked[1], lr=stacked[2], weight_decay=stacked[3])
