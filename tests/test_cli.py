"""Tests for the ``fastsup`` command (fastsup.cli.main and python -m fastsup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

import fastsup  # noqa: E402
from fastsup.cli import main  # noqa: E402
from fastsup.experiments import EXPERIMENTS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_list_prints_the_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in out
    assert any(line.startswith("intro ") for line in out.splitlines())


def test_run_intro_writes_files(tmp_path, capsys):
    out_dir = tmp_path / "intro"
    code = main(["run", "intro", "--steps", "30", "--batch-size", "64", "--out", str(out_dir), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    for name in ("intro.png", "intro.json", "result"):
        assert (out_dir / name).exists(), name
        assert str(out_dir / name) in printed
    assert "intro:" in printed and "30 steps" in printed
    data = json.loads((out_dir / "intro.json").read_text())
    assert data["config"]["steps"] == 30 and len(data["final_loss"]) == 10
    assert fastsup.load(out_dir / "result").W.shape == (10, 5, 2)


def test_run_options_reach_the_config(tmp_path, capsys):
    code = main(["run", "intro", "--steps", "3", "--instances", "4", "--seed", "7", "--batch-size", "8",
                 "--backend", "reference", "--device", "cpu", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    result = fastsup.load(tmp_path / "result")
    assert (result.config.steps, result.config.n_instances, result.config.seed, result.config.batch_size) == (3, 4, 7, 8)
    assert result.backend == "reference"


def test_run_scale_and_set_reach_the_settings(tmp_path, capsys):
    code = main(["run", "intro", "--scale", "small", "--set", "steps=4", "--set", "n_instances=3",
                 "--set", "lr=0.02", "--set", "min_density=0.1", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    data = json.loads((tmp_path / "intro.json").read_text())
    assert data["scale"] == "small" and data["settings"]["batch_size"] == 256  # the small scale's batch
    config = fastsup.load(tmp_path / "result").config
    assert (config.steps, config.n_instances) == (4, 3)
    assert config.lr_tensor().tolist() == pytest.approx([0.02] * 3)
    assert config.probability()[:, 0].tolist() == pytest.approx([1.0, 0.1 ** 0.5, 0.1])


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param(["--set", "steps"], "argument --set: must be FIELD=VALUE", id="set-without-equals"),
        pytest.param(["--set", "stepz=3"], "unknown override(s) stepz", id="set-unknown-field"),
        pytest.param(["--scale", "huge"], "argument --scale: invalid choice", id="unknown-scale"),
    ],
)
def test_run_bad_scale_or_override_exits_2(tmp_path, capsys, args, message):
    assert main(["run", "intro", "--out", str(tmp_path / "x"), "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_run_unknown_experiment(tmp_path, capsys):
    assert main(["run", "nope", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastsup: error: unknown experiment 'nope'")
    assert "intro" in err and "Traceback" not in err


def test_train_saves_result_and_prints_losses(tmp_path, capsys):
    out_dir = tmp_path / "sweep"
    code = main(["train", "--features", "5", "--hidden", "2", "--instances", "3", "--feature-probability",
                 "1", "0.1", "0.01", "--importance-decay", "0.9", "--steps", "20", "--batch-size", "32",
                 "--lr", "0.01", "--weight-decay", "0", "--optimizer", "adam", "--schedule", "cosine",
                 "--seed", "2", "--out", str(out_dir), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    result = fastsup.load(out_dir)
    config = result.config
    assert (config.n_features, config.n_hidden, config.n_instances, config.steps, config.batch_size) == (5, 2, 3, 20, 32)
    assert (config.optimizer, config.schedule, config.seed) == ("adam", "cosine", 2)
    assert config.probability()[:, 0].tolist() == pytest.approx([1, 0.1, 0.01])
    assert config.importance_tensor()[0].tolist() == pytest.approx([0.9 ** i for i in range(5)])
    assert config.lr_tensor().tolist() == pytest.approx([0.01] * 3)
    assert config.weight_decay_tensor().tolist() == [0.0] * 3
    assert str(out_dir) in printed
    loss_line = next(line for line in printed.splitlines() if line.startswith("final loss per instance"))
    losses = [float(v) for v in loss_line.split(":")[1].split()]
    assert losses == pytest.approx(result.final_loss.tolist(), rel=1e-5)


def test_train_per_instance_probability_when_instances_equal_features(tmp_path):
    code = main(["train", "--features", "3", "--hidden", "2", "--instances", "3", "--feature-probability",
                 "1", "0.5", "0.25", "--steps", "2", "--batch-size", "4", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    p = fastsup.load(tmp_path).config.probability()
    assert torch.equal(p[:, 0], torch.tensor([1, 0.5, 0.25]))
    assert torch.equal(p[:, 0:1].expand(3, 3), p)


def test_train_saves_the_checkpoints_asked_for(tmp_path):
    argv = ["train", "--features", "3", "--hidden", "2", "--instances", "2", "--steps", "5", "--batch-size", "4",
            "--checkpoint-steps", "1", "4", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    result = fastsup.load(tmp_path)
    assert result.checkpoint_steps.tolist() == [1, 4]
    assert torch.equal(result.checkpoints[4]["W"], result.W)  # the last step's update gives the final weights


@pytest.mark.parametrize(
    "args, names",
    [
        pytest.param(["--features", "0"], "--features", id="features-0"),
        pytest.param(["--hidden", "x"], "--hidden", id="hidden-not-int"),
        pytest.param(["--feature-probability", "1.5"], "--feature-probability", id="p-above-1"),
        pytest.param(["--feature-probability", "0.1", "0.2"], "--feature-probability", id="p-wrong-count"),
        pytest.param(["--lr", "-1"], "--lr", id="negative-lr"),
        pytest.param(["--lr", "nan"], "--lr", id="nan-lr"),
        pytest.param(["--model", "mlp"], "--model", id="unknown-model"),
        pytest.param(["--steps", "0"], "--steps", id="steps-0"),
        pytest.param(["--checkpoint-steps", "1", "2"], "checkpoint_steps", id="checkpoint-past-the-end"),
        pytest.param(["--checkpoint-steps", "1", "0"], "checkpoint_steps", id="checkpoints-unsorted"),
    ],
)
def test_train_bad_input_exits_2(tmp_path, capsys, args, names):
    base = {"--features": "5", "--hidden": "2", "--instances": "3", "--steps": "2", "--out": str(tmp_path / "r")}
    for flag in args:
        base.pop(flag, None)
    argv = ["train", "--no-progress", *[x for kv in base.items() for x in kv], *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "fastsup: error:" in err and names in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_warmup_cosine(tmp_path, capsys):
    argv = ["train", "--features", "3", "--hidden", "2", "--instances", "2", "--steps", "4", "--batch-size", "4",
            "--schedule", "warmup_cosine", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main(argv) == 2
    assert "warmup_steps" in capsys.readouterr().err
    assert main([*argv, "--warmup-steps", "2"]) == 0
    assert fastsup.load(tmp_path / "r").config.warmup_steps == 2


def test_missing_required_argument(capsys):
    assert main(["train", "--features", "5", "--hidden", "2", "--out", "x"]) == 2
    assert "--instances" in capsys.readouterr().err
    assert main([]) == 2


def test_no_cuda_is_a_clear_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    code = main(["train", "--features", "5", "--hidden", "2", "--instances", "2", "--device", "cuda",
                 "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err.startswith("fastsup: error: device 'cuda'")


def test_help_returns_0(capsys):
    assert main(["run", "--help"]) == 0
    assert "--steps" in capsys.readouterr().out


def test_python_dash_m(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "fastsup", "list"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert done.returncode == 0 and "intro" in done.stdout
    done = subprocess.run([sys.executable, "-m", "fastsup", "train", "--features", "0", "--hidden", "1",
                           "--instances", "1", "--out", "x"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert done.returncode == 2
    assert "fastsup: error: argument --features" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def saved_result(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "result"
    assert main(["train", "--features", "5", "--hidden", "2", "--instances", "3", "--steps", "20", "--batch-size",
                 "32", "--feature-probability", "0.2", "--out", str(path), "--no-progress"]) == 0
    return path


def test_export_activations_round_trip(saved_result, tmp_path, capsys):
    """The command writes what result.hidden_activations writes with the same arguments, bit for bit."""
    out = tmp_path / "acts"
    assert main(["export-activations", str(saved_result), "--samples", "301", "--out", str(out), "--instances",
                 "2", "0", "--rows-per-shard", "100", "--feature-probability", "0.5", "--seed", "4",
                 "--device", "cpu"]) == 0
    assert f"activations: {out} (301 rows × 2 instances, shard files: 4" in capsys.readouterr().out
    by_command = fastsup.load_activations(out)
    by_api = fastsup.load(saved_result).hidden_activations(301, tmp_path / "api", instances=[2, 0],
                                                           rows_per_shard=100, feature_probability=0.5, seed=4,
                                                           device="cpu")
    assert by_command.instances == (2, 0) and [s.rows for s in by_command.shards] == [100, 100, 100, 1]
    for from_command, from_api in zip(by_command, by_api, strict=True):
        for name in ("hidden", "features"):
            assert torch.equal(from_command[name], from_api[name]), name


@pytest.mark.parametrize("args, names", [
    pytest.param(["--samples", "0"], "--samples", id="no-samples"),
    pytest.param(["--rows-per-shard", "0"], "--rows-per-shard", id="shard-0"),
    pytest.param(["--instances", "3"], "instances [3] are not instances", id="unknown-instance"),
    pytest.param(["--feature-probability", "2"], "--feature-probability", id="p-above-1"),
])
def test_export_activations_bad_input_exits_2(saved_result, tmp_path, capsys, args, names):
    base = {"--samples": "10", "--out": str(tmp_path / "acts")}
    for flag in args:
        base.pop(flag, None)
    assert main(["export-activations", str(saved_result), *[x for kv in base.items() for x in kv], *args]) == 2
    err = capsys.readouterr().err
    assert "fastsup: error:" in err and names in err and "Traceback" not in err
    assert not (tmp_path / "acts").exists()


def test_export_activations_refuses_a_target_that_is_not_an_export(saved_result, tmp_path, capsys):
    assert main(["export-activations", str(saved_result), "--samples", "10", "--out", str(saved_result)]) == 2
    assert "is not an activations export" in capsys.readouterr().err
    assert fastsup.load(saved_result).config.n_instances == 3  # untouched
    assert main(["export-activations", str(tmp_path), "--samples", "10", "--out", str(tmp_path / "acts")]) == 2
    assert "missing result.json" in capsys.readouterr().err
