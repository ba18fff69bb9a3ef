"""Saving never loses a user's data: what a save may replace, crashes at any point, concurrent
readers and writers, SIGKILL at random moments, and what ``load`` refuses."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import fastsup
from fastsup import io
from fastsup.result import check_save_target
from tests.utils import assert_same_result, synthetic_result

ROOT = Path(__file__).resolve().parents[1]


def _owned_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


# --- what a save may replace -------------------------------------------------------------------
def test_save_refuses_a_folder_of_other_files(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    with pytest.raises(ValueError, match="not empty and holds no fastsup result.*thesis.txt"):
        synthetic_result(0).save(folder)
    assert _owned_files(folder) == ["thesis.txt"]


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_save_refuses_a_file_or_link(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("keep me")
    else:
        (tmp_path / "real").mkdir()
        target.symlink_to(tmp_path / "real")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        synthetic_result(0).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["target"] if kind == "file" else ["real", "target"])
    if kind == "file":
        assert target.read_text() == "keep me"


def test_save_refuses_a_device_node():
    with pytest.raises(ValueError, match="exists and is not a folder"):
        check_save_target("/dev/null")


def test_save_replaces_a_result_and_keeps_other_files(tmp_path):
    path = synthetic_result(1).save(tmp_path / "run")
    (path / "notes.txt").write_text("mine")
    synthetic_result(2).save(path)
    assert_same_result(fastsup.load(path), synthetic_result(2))
    names = _owned_files(path)
    assert "notes.txt" in names and sum(n.startswith("tensors-") for n in names) == 1


def test_save_into_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_same_result(fastsup.load(synthetic_result(3).save(tmp_path / "empty")), synthetic_result(3))


def test_saved_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = synthetic_result(0).save(tmp_path / "run")
    finally:
        os.umask(old)
    for entry in path.iterdir():
        assert entry.stat().st_mode & 0o777 == 0o644, entry.name


def test_a_format_1_result_still_loads_and_is_replaced(tmp_path):
    """Format 1 (fastsup 0.1): tensors.safetensors beside result.json, no checksum."""
    result = synthetic_result(4)
    path = tmp_path / "old"
    path.mkdir()
    tensors = {f"params.{k}": v for k, v in result.params.items()}
    tensors.update(loss_history=result.loss_history, loss_steps=result.loss_steps, final_loss=result.final_loss)
    save_file(tensors, path / "tensors.safetensors")
    (path / "result.json").write_text(json.dumps({"format_version": 1, "backend": "torch",
                                                  "config": result.config.to_dict()}))
    assert_same_result(fastsup.load(path), result)
    synthetic_result(5).save(path)
    assert "tensors.safetensors" not in _owned_files(path)
    assert_same_result(fastsup.load(path), synthetic_result(5))


# --- a crash between any two steps of a save -----------------------------------------------------
class _Crash(Exception):
    pass


def _crash_at(monkeypatch, k: int) -> list[int]:
    """Make the k-th file-system step of a save (write, fsync, chmod, rename, unlink) raise."""
    calls = [0]

    def wrap(fn):
        def step(*args, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                raise _Crash(f"crash at step {k}")
            return fn(*args, **kwargs)
        return step

    monkeypatch.setattr(io.os, "replace", wrap(os.replace))
    monkeypatch.setattr(io.os, "fsync", wrap(os.fsync))
    monkeypatch.setattr(io.os, "chmod", wrap(os.chmod))
    monkeypatch.setattr(Path, "unlink", wrap(Path.unlink))
    monkeypatch.setattr(fastsup.result, "save_file", wrap(fastsup.result.save_file))
    return calls


def test_a_crash_at_any_step_leaves_the_old_or_the_new_result(tmp_path, monkeypatch):
    old, new = synthetic_result(10), synthetic_result(11)
    path = old.save(tmp_path / "run")
    k = 1
    while True:
        with monkeypatch.context() as patch:
            calls = _crash_at(patch, k)
            try:
                new.save(path)
                crashed = False
            except _Crash:
                crashed = True
        loaded = fastsup.load(path)
        assert loaded.config.seed in (10, 11), k
        assert_same_result(loaded, old if loaded.config.seed == 10 else new)
        if not crashed:
            break
        old.save(path)  # start the next trial from the old result; also clears the crash's leftovers
        assert not [n for n in _owned_files(path) if n.endswith(".tmp")]
        k += 1
    assert k == calls[0] + 1 and k > 8  # every step of the save was tried
    assert _owned_files(path) == sorted([".fastsup.lock", "result.json", *[n for n in _owned_files(path)
                                                                           if n.startswith("tensors-")]])


def test_a_crash_on_the_first_save_leaves_a_folder_the_next_save_accepts(tmp_path, monkeypatch):
    path = tmp_path / "run"
    with monkeypatch.context() as patch:
        _crash_at(patch, 3)
        with pytest.raises(_Crash):
            synthetic_result(0).save(path)
    with pytest.raises(FileNotFoundError, match="missing result.json"):
        fastsup.load(path)
    synthetic_result(1).save(path)
    assert_same_result(fastsup.load(path), synthetic_result(1))


# --- concurrent writers and readers, and SIGKILL ------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.utils import synthetic_result
    results = [synthetic_result(s, n_instances={instances}) for s in {seeds!r}]
    print("ready", flush=True)
    i = 0
    deadline = time.time() + {seconds}
    while time.time() < deadline:
        results[i % len(results)].save({path!r})
        i += 1
""")


def _start_writer(path: Path, seeds, seconds: float, instances: int = 3) -> subprocess.Popen:
    code = _WRITER.format(root=str(ROOT), path=str(path), seeds=list(seeds), seconds=seconds, instances=instances)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def test_concurrent_saves_and_loads_never_mix_or_fail(tmp_path):
    """Two writers alternate three results on one path while this process loads it again and again."""
    path = tmp_path / "run"
    expected = {s: synthetic_result(s) for s in (1, 2, 3)}
    expected[1].save(path)
    writers = [_start_writer(path, (1, 2), 4.0), _start_writer(path, (3, 1), 4.0)]
    loads, seen = 0, set()
    while any(w.poll() is None for w in writers):
        loaded = fastsup.load(path)
        assert_same_result(loaded, expected[loaded.config.seed])
        loads, seen = loads + 1, seen | {loaded.config.seed}
    for w in writers:
        assert w.wait() == 0, w.stderr.read()
    assert loads > 20 and len(seen) >= 2, (loads, seen)
    assert sum(n.startswith("tensors-") for n in _owned_files(path)) == 1


def test_sigkill_at_random_moments_leaves_a_loadable_result(tmp_path):
    """Kill a saving process at random moments; each time a complete result loads and the next save
    cleans up what the killed one left."""
    path = tmp_path / "run"
    big = dict(n_instances=20_000)  # ~1 MB of tensors: a save takes long enough to be hit mid-way
    expected = {s: synthetic_result(s, **big) for s in (1, 2)}
    expected[1].save(path)
    rng, mid_save = random.Random(0), 0
    for _ in range(6):
        proc = _start_writer(path, (1, 2), 30.0, instances=big["n_instances"])
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        names = _owned_files(path)
        mid_save += any(n.endswith(".tmp") for n in names) or sum(n.startswith("tensors-") for n in names) > 1
        loaded = fastsup.load(path)
        assert_same_result(loaded, expected[loaded.config.seed])
    assert mid_save >= 1  # measured here: 5 of 6 kills land inside a save
    expected[2].save(path)
    names = _owned_files(path)
    assert not [n for n in names if n.endswith(".tmp")] and sum(n.startswith("tensors-") for n in names) == 1


# --- what load refuses ---------------------------------------------------------------------------
def _rewrite_manifest(path: Path, change) -> None:
    meta = json.loads((path / "result.json").read_text())
    change(meta)
    (path / "result.json").write_text(json.dumps(meta))


def _rewrite_tensors(path: Path, change) -> None:
    from safetensors.torch import load_file
    meta = json.loads((path / "result.json").read_text())
    name = meta["tensors"]["file"]
    tensors = load_file(path / name)
    change(tensors)
    save_file(tensors, path / name)
    data = (path / name).read_bytes()
    import hashlib
    meta["tensors"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (path / "result.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("change,match", [
    pytest.param(lambda t: t.update({"params.W": t["params.W"].double()}), "params.W of dtype torch.float64", id="float64-W"),
    pytest.param(lambda t: t.update({"params.b": t["params.b"].int()}), "params.b of dtype torch.int32", id="int-b"),
    pytest.param(lambda t: t.update({"final_loss": t["final_loss"] > 0}), "final_loss", id="bool-final-loss"),
    pytest.param(lambda t: t.update({"loss_history": t["loss_history"][:, :2]}), "loss_history of dtype torch.float32 and shape \\[1, 2\\]", id="loss-history-shape"),
    pytest.param(lambda t: t.update({"loss_steps": torch.tensor([5])}), "loss_steps that are not the logged steps", id="loss-steps"),
    pytest.param(lambda t: t.pop("params.b"), "parameters \\['W'\\]", id="missing-b"),
])
def test_load_refuses_tensors_that_do_not_match(tmp_path, change, match):
    path = synthetic_result(0).save(tmp_path / "run")
    _rewrite_tensors(path, change)
    with pytest.raises(ValueError, match=match):
        fastsup.load(path)


@pytest.mark.parametrize("change,match", [
    pytest.param(lambda m: m["config"].pop("seed"), "without the fields \\['seed'\\]", id="missing-seed"),
    pytest.param(lambda m: m["config"].pop("model"), "without the fields \\['model'\\]", id="missing-model"),
    pytest.param(lambda m: m["config"].update(n_instances=30_000_000), "n_instances=30000000", id="huge-n-instances"),
    pytest.param(lambda m: m["config"].update(n_instances="3"), "n_instances='3'", id="string-n-instances"),
    pytest.param(lambda m: m["config"].update(model="mlp"), "invalid config: model must be one of", id="bad-model"),
    pytest.param(lambda m: m.update(config=[1, 2]), "'config' must be an object", id="config-list"),
    pytest.param(lambda m: m.update(backend=None), "'backend' must be a string", id="no-backend"),
    pytest.param(lambda m: m.update(format_version=7), "format_version 7", id="future-format"),
    pytest.param(lambda m: m["tensors"].update(sha256="0" * 64), "size or SHA-256 differs", id="checksum"),
    pytest.param(lambda m: m["tensors"].update(file="../../etc/passwd"), "no valid 'tensors' entry", id="path-escape"),
])
def test_load_refuses_manifests_that_do_not_match(tmp_path, change, match):
    path = synthetic_result(0).save(tmp_path / "run")
    _rewrite_manifest(path, change)
    with pytest.raises(ValueError, match=match):
        fastsup.load(path)


def test_load_refuses_deeply_nested_json(tmp_path):
    path = synthetic_result(0).save(tmp_path / "run")
    (path / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="corrupt result.json is not valid JSON: nested too deeply"):
        fastsup.load(path)


def test_load_refuses_a_truncated_tensors_file(tmp_path):
    path = synthetic_result(0).save(tmp_path / "run")
    name = json.loads((path / "result.json").read_text())["tensors"]["file"]
    (path / name).write_bytes((path / name).read_bytes()[:-10])
    with pytest.raises(ValueError, match="size or SHA-256 differs"):
        fastsup.load(path)


def test_a_tiny_manifest_claiming_many_instances_allocates_nothing(tmp_path, monkeypatch):
    """570 bytes claiming 3·10^7 instances used to build [I, n] tensors before noticing."""
    path = synthetic_result(0).save(tmp_path / "run")
    _rewrite_manifest(path, lambda m: m["config"].update(n_instances=30_000_000, feature_probability=0.5))

    def no_config(*args, **kwargs):
        raise AssertionError("load built the config before checking its sizes against the tensors")

    monkeypatch.setattr(fastsup.result.TrainConfig, "from_dict", no_config)
    with pytest.raises(ValueError, match="final_loss of shape \\[3\\], but its config says n_instances=30000000"):
        fastsup.load(path)
