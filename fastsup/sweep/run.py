"""``run_sweep``: plan, train every unfinished chunk, write the table; ``SweepResult`` reads a store back."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import io, metrics
from ..backends import default_chunk, resolve_backend
from ..backends.torch_backend import compile_pays
from ..config import TrainConfig, check_checkpoint_steps, check_integer
from ..result import nonfinite_at_end
from ..train import resolve_device
from . import store as stores
from .executors import executor_for
from .plan import Chunk, chunk_config, chunk_rows, plan_chunks
from .spec import Group, Sweep

def _chunk_sizes(group_configs: list[TrainConfig], backends: list[str], device, instance_chunk) -> list[int]:
    """Rows per train call in each group: ``instance_chunk``, or what the group's backend bounds memory to."""
    if instance_chunk is not None:
        return [check_integer("instance_chunk", instance_chunk, 1)] * len(group_configs)
    return [default_chunk(name, config, device) for name, config in zip(backends, group_configs)]


def _group_config(group: Group, restarts: int) -> TrainConfig:
    """All of a group's rows as one config (for decisions that depend on the total work)."""
    return chunk_config(group, restarts, Chunk("group", 0, 0, len(group.points) * restarts))


def _compile_decisions(group_configs, chunks, backends: list[str], compile) -> list[bool | None]:
    """Per group: compile the torch step when the group's whole work pays for it.

    ``train`` decides per call, so alone it would never compile for a sweep
    of many short chunks, though one compile serves every chunk of a shape
    (at most two shapes per group: the full chunks and the last).
    """
    if compile is not None:
        return [compile] * len(group_configs)
    decisions = []
    for g, config in enumerate(group_configs):
        if backends[g] != "torch":
            decisions.append(None)
            continue
        shapes = len({c.stop - c.start for c in chunks if c.group == g})
        decisions.append(compile_pays(config, key=None, compiles=shapes))
    return decisions


def run_sweep(sweep: Sweep, store, *, executor: str = "local", address: str | None = None, resume: bool = True,
              backend: str = "auto", device=None, instance_chunk: int | None = None, compile: bool | None = None,
              progress: bool = True, checkpoint_steps=()) -> "SweepResult":
    """Train every (point, restart) of ``sweep`` into the folder ``store`` and return its table.

    An existing store of the same sweep is continued (``resume=True``): only
    chunks without a file are trained, with the chunk plan the store already
    has.  A store of another sweep is an error; so is ``resume=False`` on a
    store that has any finished chunk.  ``executor="ray"`` runs one Ray task
    per chunk (``ray.init(address=address)`` unless Ray is already
    initialised: None starts a local cluster); results are bit-identical to
    ``"local"``.  ``compile`` (torch backend): None compiles the step when the
    sweep's work pays for the compile, whatever the chunk size.
    ``checkpoint_steps`` (as in ``train``, within every point's steps) keeps
    every model's parameters at those steps: ``SweepResult.checkpoints(rows)``;
    a store remembers them, and resuming it with other steps is an error.
    """
    if not isinstance(sweep, Sweep):
        raise TypeError(f"sweep must be a fastsup.Sweep, got {type(sweep).__name__}")
    run_chunks = executor_for(executor)
    store = Path(store)
    torch_device = resolve_device(device)
    manifest = stores.check_store(store)
    resolved = sweep.resolve()
    digest = resolved.fingerprint()
    if manifest is not None and manifest["fingerprint"] != digest:
        raise ValueError(f"store {str(store)!r} holds another sweep (fingerprint {manifest['fingerprint'][:12]}…, "
                         f"this one {digest[:12]}…); use a new store, or the spec it was made with")
    groups, restarts = resolved.groups, sweep.restarts
    group_configs = [_group_config(group, restarts) for group in groups]  # every row of a group: its total work
    # one backend per group, chosen for the whole group: its chunks, the last included, never differ
    backends = [resolve_backend(backend, torch_device, config) for config in group_configs]
    steps = [g.shared.get("steps", TrainConfig.steps) for g in groups]  # not a TrainConfig: its default p may not suit the groups
    checkpoint_steps = check_checkpoint_steps(checkpoint_steps, min(steps))
    if manifest is not None and manifest.get("checkpoint_steps", []) != list(checkpoint_steps):
        raise ValueError(f"store {str(store)!r} was trained with checkpoint_steps={manifest.get('checkpoint_steps', [])}"
                         f", not {list(checkpoint_steps)}; resume it with those, or use a new store")
    store.mkdir(parents=True, exist_ok=True)
    with io.folder_lock(store, blocking=False):
        io.remove_stale_temporaries(store)
        if manifest is None:
            sizes = _chunk_sizes(group_configs, backends, torch_device, instance_chunk)
            manifest = stores.write_plan(store, resolved.spec, digest, groups, plan_chunks(groups, restarts, sizes),
                                         checkpoint_steps)
        chunks = stores.planned_chunks(manifest)
        (store / stores.CHUNKS).mkdir(exist_ok=True)
        io.remove_stale_temporaries(store / stores.CHUNKS)
        done = stores.finished(store, chunks)
        if any(done) and not resume:
            raise ValueError(f"store {str(store)!r} already has {sum(done)} finished chunks and resume=False; "
                             "use a new store to start over")
        compiles = _compile_decisions(group_configs, chunks, backends, compile)
        work_of = lambda chunk: (chunk.stop - chunk.start) * steps[chunk.group]  # noqa: E731
        with tqdm(total=sum(map(work_of, chunks)), disable=not progress, unit="model·step", unit_scale=True,
                  desc=f"sweep {sum(len(g.points) for g in groups)} points × {restarts} restarts") as bar:
            bar.update(sum(work_of(c) for c, d in zip(chunks, done) if d))
            work = [(chunk, chunk_config(groups[chunk.group], restarts, chunk), backends[chunk.group],
                     compiles[chunk.group]) for chunk, is_done in zip(chunks, done) if not is_done]
            for chunk, tensors, backend_name in run_chunks(work, torch_device, address=address,
                                                           checkpoint_steps=checkpoint_steps):
                stores.write_chunk(store, chunk, tensors, backend_name)
                bar.update(work_of(chunk))
        out = SweepResult(store)
        out.write_table()
    return out


class SweepResult:
    """A sweep store read back: ``table`` (one row per point and restart), ``best()``, ``params(rows)``."""

    def __init__(self, store):
        self.store = Path(store)
        manifest = stores.check_store(self.store)
        if manifest is None:
            raise FileNotFoundError(f"no sweep store at {str(self.store)!r}")
        self.manifest = manifest
        self.chunks = stores.planned_chunks(manifest)
        self._table = None

    @property
    def restarts(self) -> int:
        return self.manifest["spec"]["restarts"]

    def status(self) -> tuple[int, int]:
        """(models finished, models planned)."""
        done = stores.finished(self.store, self.chunks)
        return sum(c.stop - c.start for c, d in zip(self.chunks, done) if d), sum(c.stop - c.start for c in self.chunks)

    def build_table(self):
        import numpy as np
        import pandas as pd

        spec = self.manifest["spec"]
        axis_columns = Sweep(axes=spec["axes"], mode=spec["mode"]).axis_columns()
        groups = stores.read_groups(self.store, self.manifest)
        parts = []
        for chunk in self.chunks:
            tensors = stores.read_chunk(self.store, chunk)
            if tensors is None:
                raise ValueError(f"sweep in {str(self.store)!r} is not finished: chunk {chunk.name} has no file "
                                 "(run the sweep again to resume)")
            params = {k.removeprefix("params."): v for k, v in tensors.items() if k.startswith("params.")}
            encoder = params["W1" if "W1" in params else "W"].double()
            diverged = nonfinite_at_end(params, tensors["final_loss"]) | ~torch.isfinite(tensors["loss_history"]).all(0)
            group = groups[chunk.group]
            point, restart = chunk_rows(group, self.restarts, chunk)
            parts.append(pd.DataFrame({
                "point": point, "restart": restart, **{name: v[point] for name, v in axis_columns.items()},
                "instance_id": tensors["instance_ids"].numpy(),
                "seed": np.full(len(point), group.shared.get("seed", TrainConfig.seed)),
                "final_loss": tensors["final_loss"].double().numpy(), "diverged": diverged.numpy(),
                "n_represented": metrics.n_represented(encoder).numpy(),
                "dimensions_per_feature": metrics.dimensions_per_feature(encoder).numpy(),
                "chunk": chunk.name, "row_in_chunk": np.arange(len(point)),
            }))
        table = pd.concat(parts, ignore_index=True)
        return table.set_index("instance_id", drop=False).rename_axis("row").sort_index()

    def write_table(self) -> Path:
        table = self.build_table()
        path = self.store / stores.TABLE
        with io.atomic_path(path) as tmp:
            table.to_parquet(tmp)
        self._table = table
        return path

    @property
    def table(self):
        """pandas DataFrame, one row per (point, restart), labelled by instance id."""
        if self._table is None:
            import pandas as pd

            path = self.store / stores.TABLE
            self._table = pd.read_parquet(path) if path.is_file() else self.build_table()
        return self._table

    def best(self):
        """One row per point: the restart with the lowest held-out loss (diverged restarts last)."""
        table = self.table
        ranked = table.assign(_loss=table["final_loss"].where(~table["diverged"], math.inf))
        return ranked.sort_values(["point", "_loss", "restart"], kind="stable").groupby("point").head(1).drop(
            columns="_loss")

    def params(self, rows) -> dict[str, torch.Tensor]:
        """The trained tensors of ``rows`` (a DataFrame of this table, or row labels), first dim following rows."""
        return self._gather(rows, "params.")

    @property
    def checkpoint_steps(self) -> list[int]:
        """The steps ``run_sweep(checkpoint_steps=...)`` kept (none in stores written without)."""
        return list(self.manifest.get("checkpoint_steps", []))

    def checkpoints(self, rows) -> dict[int, dict[str, torch.Tensor]]:
        """``{step: tensors}`` of ``rows`` at each checkpoint step, each shaped like ``params(rows)``."""
        stacked = self._gather(rows, "checkpoints.", row_dim=1)
        return {step: {name: value[c] for name, value in stacked.items()} for c, step in enumerate(self.checkpoint_steps)}

    def _gather(self, rows, prefix: str, row_dim: int = 0) -> dict[str, torch.Tensor]:
        """The chunk tensors named ``prefix<name>`` of ``rows``, whose rows lie along ``row_dim``, stacked there."""
        labels = list(rows.index) if hasattr(rows, "index") and hasattr(rows, "columns") else list(rows)
        table = self.table
        missing = [label for label in labels if label not in table.index]
        if missing:
            raise KeyError(f"rows {missing[:5]} are not in this sweep's table (labels are instance ids)")
        selected = table.loc[labels]
        by_chunk = {c.name: c for c in self.chunks}
        loaded: dict[str, dict[str, torch.Tensor]] = {}
        out: dict[str, list[torch.Tensor]] = {}
        for name, i in zip(selected["chunk"], selected["row_in_chunk"]):
            if name not in loaded:
                loaded[name] = stores.read_chunk(self.store, by_chunk[name])
            for key, value in loaded[name].items():
                if key.startswith(prefix):
                    out.setdefault(key.removeprefix(prefix), []).append(value.select(row_dim, int(i)))
        shapes = {k: {tuple(t.shape) for t in v} for k, v in out.items()}
        if any(len(s) > 1 for s in shapes.values()) or len({len(v) for v in out.values()}) > 1:
            raise ValueError(f"rows span models of different shapes ({shapes}); select rows of one shape")
        return {k: torch.stack(v, dim=row_dim) for k, v in out.items()}


def load_sweep(store) -> SweepResult:
    return SweepResult(store)
