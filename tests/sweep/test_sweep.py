"""Sweeps: the spec (Python and TOML), grouping and stable instance ids, the store, resume, SIGKILL,
best-of-N and params, bad input."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import fastsup
from fastsup.cli import main
from fastsup.sweep import store as stores

ROOT = Path(__file__).resolve().parents[2]
# 2→1 and 3→2 shapes reduce in a fixed order (broadcast sums), so results are bit-identical at any chunk size.
FIXED = dict(n_features=2, n_hidden=1, model="relu_output", steps=60, batch_size=32)


def phase_sweep(**changes) -> fastsup.Sweep:
    kwargs = dict(FIXED, axes={"density": np.logspace(-1, 0, 3), "r": [0.5, 2.0]},
                  fields=lambda density, r: dict(feature_probability=density, importance=[1.0, r]), restarts=3)
    kwargs.update(changes)
    return fastsup.Sweep(**kwargs)


def _tensors(out) -> dict[str, torch.Tensor]:
    return out.params(out.table)


def _same(a, b) -> None:
    columns = [c for c in a.table.columns if c not in ("chunk", "row_in_chunk")]
    assert a.table[columns].equals(b.table[columns])
    for name, value in _tensors(a).items():
        assert torch.equal(value, _tensors(b)[name]), name


def test_each_model_is_the_same_as_training_its_point_alone(tmp_path):
    """Row (point p, restart r) has instance id p·R + r: the model fastsup.train gives that id."""
    out = fastsup.run_sweep(phase_sweep(), tmp_path / "s", progress=False)
    table = out.table
    assert len(table) == 6 * 3 and list(table.index) == list(range(18))
    row = table.loc[13]  # point 4 (density 1.0, r 0.5), restart 1
    assert (row["point"], row["restart"], row["density"], row["r"]) == (4, 1, 1.0, 0.5)
    alone = fastsup.train(**FIXED, n_instances=1, instance_ids=[13], feature_probability=1.0,
                          importance=[[1.0, 0.5]], progress=False)
    assert torch.equal(out.params([13])["W"], alone.W)
    assert row["final_loss"] == alone.final_loss.item()


def test_chunk_size_changes_nothing(tmp_path):
    _same(fastsup.run_sweep(phase_sweep(), tmp_path / "a", progress=False),
          fastsup.run_sweep(phase_sweep(), tmp_path / "b", instance_chunk=4, progress=False))


def test_best_keeps_the_lowest_held_out_loss_per_point(tmp_path):
    out = fastsup.run_sweep(phase_sweep(), tmp_path / "s", progress=False)
    best = out.best()
    assert list(best["point"]) == list(range(6))
    for _, row in best.iterrows():
        losses = out.table[out.table["point"] == row["point"]]["final_loss"]
        assert row["final_loss"] == losses.min()
    params = out.params(best)
    assert params["W"].shape == (6, 2, 1) and params["b"].shape == (6, 2)
    assert torch.equal(params["W"][2], out.params([best.index[2]])["W"][0])


def test_the_table_is_parquet_readable_by_pandas(tmp_path):
    import pandas as pd
    out = fastsup.run_sweep(phase_sweep(), tmp_path / "s", progress=False)
    table = pd.read_parquet(tmp_path / "s" / "table.parquet")
    assert table.equals(out.table)
    assert {"density", "r", "restart", "instance_id", "seed", "final_loss", "diverged", "n_represented"} <= set(table)


def test_axes_that_name_fields_make_separate_train_calls(tmp_path):
    sweep = fastsup.Sweep(n_features=5, steps=20, batch_size=16, axes={"n_hidden": [1, 2]}, restarts=2)
    out = fastsup.run_sweep(sweep, tmp_path / "s", progress=False)
    assert [g["shared"]["n_hidden"] for g in out.manifest["groups"]] == [1, 2]
    assert out.table.groupby("n_hidden")["chunk"].agg(lambda c: sorted({name[:4] for name in c})).tolist() == \
        [["g000"], ["g001"]]
    assert out.params([0, 1])["W"].shape == (2, 5, 1) and out.params([2])["W"].shape == (1, 5, 2)
    with pytest.raises(ValueError, match="rows span models of different shapes"):
        out.params([0, 2])


def test_zipped_axes_vary_together(tmp_path):
    sweep = fastsup.Sweep(**FIXED, axes={"feature_probability": [0.1, 0.5], "lr": [1e-3, 1e-2]}, mode="zip")
    out = fastsup.run_sweep(sweep, tmp_path / "s", progress=False)
    assert out.table[["feature_probability", "lr"]].values.tolist() == [[0.1, 1e-3], [0.5, 1e-2]]


def test_resume_trains_only_the_missing_chunks(tmp_path, monkeypatch):
    full = fastsup.run_sweep(phase_sweep(), tmp_path / "s", instance_chunk=4, progress=False)
    chunk_files = sorted((tmp_path / "s" / "chunks").iterdir())
    assert len(chunk_files) == 5
    chunk_files[1].unlink()
    chunk_files[3].unlink()
    calls = []
    import fastsup.sweep.executors as executors
    real = executors.train_chunk
    monkeypatch.setattr(executors, "train_chunk",
                        lambda config, *args: calls.append(config.instance_ids.tolist()) or real(config, *args))
    again = fastsup.run_sweep(phase_sweep(), tmp_path / "s", progress=False)  # the stored plan, not a new one
    assert calls == [list(range(4, 8)), list(range(12, 16))]
    _same(full, again)


def test_a_changed_spec_is_refused(tmp_path):
    fastsup.run_sweep(phase_sweep(), tmp_path / "s", progress=False)
    with pytest.raises(ValueError, match="holds another sweep"):
        fastsup.run_sweep(phase_sweep(restarts=4), tmp_path / "s", progress=False)
    with pytest.raises(ValueError, match="resume=False"):
        fastsup.run_sweep(phase_sweep(), tmp_path / "s", resume=False, progress=False)


_RUNNER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    import fastsup
    from tests.sweep.test_sweep import phase_sweep
    fastsup.run_sweep(phase_sweep(steps=400), {store!r}, instance_chunk=2, progress=False)
""")


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    reference = fastsup.run_sweep(phase_sweep(steps=400), tmp_path / "ref", instance_chunk=2, progress=False)
    store = tmp_path / "killed"
    rng, partial = random.Random(1), 0

    def chunk_files() -> list[Path]:
        folder = store / "chunks"
        return [f for f in folder.iterdir() if f.suffix == ".safetensors"] if folder.is_dir() else []

    for _ in range(4):
        before = len(chunk_files())
        proc = subprocess.Popen([sys.executable, "-c", _RUNNER.format(root=str(ROOT), store=str(store))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        while len(chunk_files()) == before and proc.poll() is None:  # kill once it has made progress,
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))  # at a random moment after that
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        plan = {c.name: c for c in stores.planned_chunks(stores.check_store(store))}
        partial += len(chunk_files()) < len(plan)
        for f in chunk_files():  # every chunk file there is complete
            assert stores.read_chunk(store, plan[f.stem]) is not None
    assert partial >= 1  # at least one kill left the sweep unfinished
    _same(reference, fastsup.run_sweep(phase_sweep(steps=400), store, progress=False))


def test_group_configs_equal_each_points_own_config():
    """Resolution stacks per-point values in one tensor per group; oracle: a TrainConfig per point."""
    sweep = fastsup.Sweep(n_features=3, n_hidden=2, steps=10, restarts=2,
                          axes={"p": [0.1, 0.5, 1.0], "lr": [1e-3, 3e-3]},
                          fields=lambda p, lr: dict(feature_probability=p if lr < 2e-3 else [p, 0.2, 0.3],
                                                    importance=[[1.0, 0.5, 0.25]] if p < 1 else 2.0))
    (group,) = sweep.resolve().groups
    from fastsup.sweep.plan import Chunk, chunk_config
    config = chunk_config(group, 2, Chunk("all", 0, 0, 12))
    assert config.instance_ids.tolist() == list(range(12))
    for point_index, point in enumerate(sweep.points()):
        alone = fastsup.TrainConfig(**sweep.point_fields(point), n_instances=1)
        for row in (2 * point_index, 2 * point_index + 1):  # both restarts repeat the point
            assert torch.equal(config.probability()[row], alone.probability()[0])
            assert torch.equal(config.importance_tensor()[row], alone.importance_tensor()[0])
            assert torch.equal(config.lr_tensor()[row], alone.lr_tensor()[0])
            assert torch.equal(config.weight_decay_tensor()[row], alone.weight_decay_tensor()[0])  # AdamW's default



def test_a_density_axis_with_anticorrelated_pairs_resolves_and_trains(tmp_path):
    """An anticorrelated pair needs p <= 0.5, so the group's defaults (p = 1) must not be checked with it."""
    sweep = fastsup.Sweep(n_features=4, n_hidden=2, steps=3, batch_size=8, restarts=3,
                          axes={"feature_probability": [0.3, 0.1]}, anticorrelated_pairs=[[0, 1]],
                          correlated_sets=[[2, 3]])
    (group,) = sweep.resolve().groups
    assert group.values["feature_probability"][:, 0].tolist() == [0.3, 0.1]
    assert len(fastsup.run_sweep(sweep, tmp_path / "store", progress=False).table) == 2 * 3
    with pytest.raises(ValueError, match=r"sweep point \(feature_probability=0.7\).*needs feature_probability <= 0.5"):
        fastsup.Sweep(n_features=2, n_hidden=1, axes={"feature_probability": [0.3, 0.7]},
                      anticorrelated_pairs=[[0, 1]]).resolve()

def test_an_axis_of_lists_is_a_column_of_lists(tmp_path):
    sweep = fastsup.Sweep(**FIXED, axes={"importance": [[1.0, 0.5], [1.0, 2.0]]})
    out = fastsup.run_sweep(sweep, tmp_path / "s", progress=False)
    assert [list(v) for v in out.table["importance"]] == [[1.0, 0.5], [1.0, 2.0]]


def test_a_first_run_killed_before_its_manifest_starts_again(tmp_path):
    store = tmp_path / "s"
    store.mkdir()
    (store / ".fastsup.lock").touch()  # what a first run leaves when killed before its plan was written
    (store / stores.POINTS).write_bytes(b"partial")
    out = fastsup.run_sweep(phase_sweep(), store, progress=False)
    assert len(out.table) == 18


def test_a_sweep_compiles_when_its_whole_work_pays_though_no_chunk_does():
    from fastsup.backends.torch_backend import compile_pays
    from fastsup.sweep.plan import plan_chunks
    from fastsup.sweep.run import _compile_decisions, _group_config
    sweep = phase_sweep(axes={"density": np.logspace(-2, 0, 40), "r": np.logspace(-1, 1, 40)},
                        restarts=8, steps=200, batch_size=1024)
    groups = sweep.resolve().groups
    chunks = plan_chunks(groups, 8, [64])
    from fastsup.sweep.plan import chunk_config
    assert not compile_pays(chunk_config(groups[0], 8, chunks[0]))  # one chunk alone: eager
    configs = [_group_config(group, 8) for group in groups]
    assert _compile_decisions(configs, chunks, ["torch"], None) == [True]
    assert _compile_decisions(configs, chunks, ["torch"], False) == [False]


# --- the TOML form and the command line ------------------------------------------------------------
SPEC = """
[sweep]
restarts = 3
[fixed]
n_features = 2
n_hidden = 1
model = "relu_output"
steps = 60
batch_size = 32
[axes]
density = [0.1, 0.31622776601683794, 1.0]
r = [0.5, 2.0]
[fields]
feature_probability = "density"
importance = [1.0, "r"]
"""


def test_toml_spec_equals_the_python_spec(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    from_toml = fastsup.Sweep.from_toml(tmp_path / "spec.toml")
    python = phase_sweep(axes={"density": [0.1, 0.31622776601683794, 1.0], "r": [0.5, 2.0]})
    assert from_toml.resolve().fingerprint() == python.resolve().fingerprint()


def test_cli_sweep_resumes_and_reports(tmp_path, capsys):
    (tmp_path / "spec.toml").write_text(SPEC)
    argv = ["sweep", str(tmp_path / "spec.toml"), "--store", str(tmp_path / "s"), "--no-progress"]
    assert main(argv) == 0
    assert "18 models (6 points × 3 restarts)" in capsys.readouterr().out
    assert main(argv) == 0  # everything finished: nothing to train
    assert main(["sweep-status", str(tmp_path / "s")]) == 0
    assert "18 / 18 models finished" in capsys.readouterr().out


def test_the_shipped_example_spec_is_valid():
    sweep = fastsup.Sweep.from_toml(ROOT / "examples" / "phase_2to1.toml")
    assert len(sweep.points()) == 1600 and sweep.restarts == 8
    fields = sweep.point_fields(sweep.points()[-1])
    assert fields["importance"] == [1.0, 10.0] and fields["feature_probability"] == 1.0


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,error,match", [
    pytest.param(dict(axes={"density": 0.5}), TypeError, "axis 'density' must be a sequence", id="axis-scalar"),
    pytest.param(dict(axes={"density": "abc"}), TypeError, "axis 'density' must be a sequence", id="axis-string"),
    pytest.param(dict(axes={"density": []}), ValueError, "axis 'density' is empty", id="axis-empty"),
    pytest.param(dict(axes={}), TypeError, "axes must be a non-empty mapping", id="no-axes"),
    pytest.param(dict(restarts=0), ValueError, "restarts must be a positive integer", id="restarts-zero"),
    pytest.param(dict(mode="diagonal"), ValueError, "mode must be 'grid' or 'zip'", id="bad-mode"),
    pytest.param(dict(widht=3), ValueError, r"unknown TrainConfig fields \['widht'\]", id="unknown-fixed"),
    pytest.param(dict(n_instances=5), ValueError, "set by the sweep", id="n-instances"),
    pytest.param(dict(axes={"a": [1, 2], "b": [1]}, mode="zip"), ValueError, "equal length", id="zip-lengths"),
])
def test_bad_specs_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        phase_sweep(**kwargs)


@pytest.mark.parametrize("fields,error,match", [
    pytest.param(lambda density, r: dict(probability=density), ValueError,
                 r"fields\(density=0.1, r=0.5\) returned unknown TrainConfig fields \['probability'\]", id="unknown-field"),
    pytest.param(lambda density, r: dict(feature_probability=density * 20), ValueError,
                 r"sweep point \(density=0.1, r=0.5\): feature_probability must lie in \[0, 1\]", id="invalid-value"),
    pytest.param(lambda density, r: [density], TypeError, "must return a mapping", id="not-a-mapping"),
    pytest.param(lambda density, r: dict(importance=[1.0, r, 3.0]), ValueError,
                 r"sweep point \(density=0.1, r=0.5\): importance has shape \(3,\)", id="wrong-width"),
])
def test_bad_fields_name_the_point(tmp_path, fields, error, match):
    with pytest.raises(error, match=match):
        fastsup.run_sweep(phase_sweep(fields=fields), tmp_path / "s", progress=False)


def test_bad_stores_and_executors(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        fastsup.run_sweep(phase_sweep(), tmp_path / "file", progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("1")
    with pytest.raises(ValueError, match="without a sweep manifest"):
        fastsup.run_sweep(phase_sweep(), tmp_path / "other", progress=False)
    with pytest.raises(ValueError, match="executor must be one of 'local', 'ray'; got 'dask'"):
        fastsup.run_sweep(phase_sweep(), tmp_path / "s", executor="dask", progress=False)


def test_ray_gives_the_local_executors_bits(tmp_path):
    """A real local Ray cluster (2 CPUs), one task per chunk, against the local executor."""
    ray = pytest.importorskip("ray")
    local = fastsup.run_sweep(phase_sweep(), tmp_path / "local", instance_chunk=5, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = fastsup.run_sweep(phase_sweep(), tmp_path / "ray", executor="ray", instance_chunk=5, progress=False)
    finally:
        ray.shutdown()
    _same(local, remote)


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ValueError, match=r"pip install 'fastsup\[ray\]'"):
        fastsup.run_sweep(phase_sweep(), tmp_path / "s", executor="ray", progress=False)
