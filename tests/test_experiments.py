"""Tests for fastsup.experiments: the registry, run_experiment's files, and the intro's science (slow)."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import pytest
from matplotlib.figure import Figure  # noqa: E402
import torch  # noqa: E402

import fastsup  # noqa: E402
from fastsup import experiments, metrics  # noqa: E402
from fastsup.config import TrainConfig  # noqa: E402
from fastsup.experiments import (  # noqa: E402
    EXPERIMENTS,
    Experiment,
    ExperimentRun,
    experiment_config,
    experiment_configs,
    get_experiment,
    run_experiment,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(steps=50, batch_size=32, progress=False)
PER_INSTANCE_KEYS = ("feature_probability", "sparsity", "final_loss", "n_represented", "dimensions_per_feature")
PER_FEATURE_KEYS = ("feature_norms", "feature_dimensionality", "superposition")


# --- registry and configs ------------------------------------------------------------------------
def test_registry_has_the_experiments_with_descriptions():
    assert {"intro", "linear_vs_relu"} <= set(EXPERIMENTS)
    for name, experiment in EXPERIMENTS.items():
        assert isinstance(experiment, Experiment)
        assert experiment.name == name
        assert experiment.description


def test_intro_config_is_the_notebook_cell():
    config = experiment_config("intro")
    assert isinstance(config, TrainConfig)
    assert (config.n_features, config.n_hidden, config.n_instances) == (5, 2, 10)
    assert config.model == "relu_output"
    assert (config.steps, config.batch_size, config.optimizer, config.schedule) == (10_000, 1024, "adamw", "constant")
    assert config.lr_tensor().tolist() == pytest.approx([1e-3] * 10)
    assert config.weight_decay_tensor().tolist() == pytest.approx([0.01] * 10)
    p = config.probability()
    expected_p = 20.0 ** -torch.linspace(0, 1, 10, dtype=torch.float64)
    assert torch.allclose(p, expected_p[:, None].expand(10, 5).float())
    expected_imp = 0.9 ** torch.arange(5, dtype=torch.float64)
    assert torch.allclose(config.importance_tensor(), expected_imp[None, :].expand(10, 5).float())
    assert torch.allclose(config.sparsity, 1 - p)


def test_intro_overrides_rescale_the_grid():
    config = experiment_config("intro", n_instances=5, steps=7, seed=3, batch_size=16)
    # n_instances == n_features: the per-instance grid must still be per instance (no ambiguity error).
    assert (config.n_instances, config.steps, config.seed, config.batch_size) == (5, 7, 3, 16)
    p = config.probability()[:, 0].double()
    assert p[0].item() == pytest.approx(1.0) and p[-1].item() == pytest.approx(0.05)
    assert (p[1:] < p[:-1]).all()


def test_linear_vs_relu_configs():
    configs = experiment_configs("linear_vs_relu", steps=10)
    assert list(configs) == ["linear", "relu_output"]
    for model, config in configs.items():
        assert config.model == model
        assert (config.n_features, config.n_hidden, config.n_instances) == (20, 5, 7)
        assert config.probability()[:, 0].tolist() == pytest.approx([1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001])
        assert config.importance_tensor()[0].tolist() == pytest.approx([0.7 ** i for i in range(20)])
    with pytest.raises(ValueError, match="model"):
        experiment_configs("linear_vs_relu", model="linear")


def test_unknown_experiment_lists_known_names(tmp_path):
    with pytest.raises(ValueError) as info:
        run_experiment("no_such_experiment", tmp_path / "out", **TINY)
    message = str(info.value)
    assert "no_such_experiment" in message
    for name in EXPERIMENTS:
        assert name in message
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="intro"):
        get_experiment("intr")


def test_unknown_override_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="batchsize"):
        run_experiment("intro", tmp_path, batchsize=3, **TINY)


def test_bad_override_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="steps"):
        run_experiment("intro", tmp_path / "out", steps=0, progress=False)
    assert not (tmp_path / "out").exists()


def test_register_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        experiments.register(EXPERIMENTS["intro"])


# --- run_experiment ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def intro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("intro")
    return run_experiment("intro", out, **TINY)


def test_intro_run_writes_png_json_and_result(intro_run):
    run = intro_run
    assert isinstance(run, ExperimentRun)
    assert run.figure_path == run.out_dir / "intro.png"
    assert run.numbers_path == run.out_dir / "intro.json"
    assert run.result_dir == run.out_dir / "result"
    assert run.figure_path.read_bytes()[:8] == PNG_MAGIC
    # nothing temporary left behind
    assert sorted(p.name for p in run.out_dir.iterdir()) == [".fastsup.lock", "intro.json", "intro.png", "result"]
    assert "intro" in run.summary() and "5→2" in run.summary()


def test_intro_numbers_json(intro_run):
    data = json.loads(intro_run.numbers_path.read_text())
    assert data["experiment"] == "intro"
    config = TrainConfig.from_dict(data["config"])
    assert (config.n_instances, config.steps, config.batch_size) == (10, 50, 32)
    for key in PER_INSTANCE_KEYS:
        assert len(data[key]) == 10, key
    for key in PER_FEATURE_KEYS:
        assert len(data[key]) == 10 and all(len(row) == 5 for row in data[key]), key
    assert data["feature_probability"][0] == pytest.approx(1.0)
    assert data["feature_probability"][-1] == pytest.approx(0.05)
    assert [s + p for s, p in zip(data["sparsity"], data["feature_probability"])] == pytest.approx([1.0] * 10)
    result = intro_run.result
    assert data["final_loss"] == pytest.approx(result.final_loss.tolist())
    norms = torch.tensor(data["feature_norms"], dtype=torch.float64)
    assert torch.allclose(norms, metrics.feature_norms(result.W.double()), rtol=1e-6, atol=1e-7)
    assert data["n_represented"] == metrics.n_represented(result.W).tolist()
    assert all(isinstance(v, int) for v in data["n_represented"])


def test_intro_result_round_trip(intro_run):
    loaded = fastsup.load(intro_run.result_dir)
    assert torch.equal(loaded.W, intro_run.result.W)
    assert torch.equal(loaded.b, intro_run.result.b)
    assert torch.equal(loaded.final_loss, intro_run.result.final_loss)
    assert loaded.config == intro_run.result.config
    assert loaded.W.shape == (10, 5, 2)


def test_intro_figure_titles(intro_run):
    figure = experiments.EXPERIMENTS["intro"].figure(intro_run.results)
    assert len(figure.axes) == 10
    assert figure.axes[0].get_title() == "1-S = 1.000"
    assert figure.axes[-1].get_title() == "1-S = 0.050"
    assert figure.get_suptitle() == intro_run.result.config.title()


def test_rerun_replaces_files(tmp_path):
    first = run_experiment("intro", tmp_path, steps=5, batch_size=8, progress=False)
    second = run_experiment("intro", tmp_path, steps=6, batch_size=8, progress=False, seed=1)
    data = json.loads(second.numbers_path.read_text())
    assert data["config"]["steps"] == 6 and data["config"]["seed"] == 1
    assert fastsup.load(first.result_dir).config.steps == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fastsup.lock", "intro.json", "intro.png", "result"]


def test_a_rerun_interrupted_while_writing_leaves_no_numbers_of_another_run(tmp_path, monkeypatch):
    """The numbers file is removed before the new outputs are written and comes back last, so a folder
    never shows one run's numbers beside another run's result."""
    run_experiment("intro", tmp_path, steps=5, batch_size=8, progress=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)  # after the new result is saved, before the numbers
    with pytest.raises(KeyboardInterrupt):
        run_experiment("intro", tmp_path, steps=6, batch_size=8, progress=False)
    assert not (tmp_path / "intro.json").exists()
    assert fastsup.load(tmp_path / "result").config.steps == 6
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_run_interrupted_while_training_leaves_the_old_outputs(tmp_path, monkeypatch):
    first = run_experiment("intro", tmp_path, steps=5, batch_size=8, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_experiment("intro", tmp_path, steps=6, batch_size=8, progress=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert fastsup.load(tmp_path / "result").config == first.result.config


def test_run_refuses_an_out_dir_whose_result_folder_is_not_a_result(tmp_path):
    (tmp_path / "result").mkdir()
    (tmp_path / "result" / "data.csv").write_text("1,2")
    with pytest.raises(ValueError, match="holds no fastsup result"):
        run_experiment("intro", tmp_path, steps=5, batch_size=8, progress=False)
    assert not (tmp_path / "intro.json").exists()


def test_linear_vs_relu_run(tmp_path):
    run = run_experiment("linear_vs_relu", tmp_path, steps=20, batch_size=16, progress=False)
    assert set(run.results) == {"linear", "relu_output"}
    assert run.figure_path.read_bytes()[:8] == PNG_MAGIC
    data = json.loads(run.numbers_path.read_text())
    for model in ("linear", "relu_output"):
        block = data["models"][model]
        assert block["config"]["model"] == model
        assert len(block["n_represented"]) == 7
        assert len(block["feature_norms"][0]) == 20
        assert fastsup.load(run.result_dirs[model]).config.model == model
    with pytest.raises(ValueError, match="several runs"):
        run.result  # noqa: B018
    figure = EXPERIMENTS["linear_vs_relu"].figure(run.results)
    bar_axes = [ax for ax in figure.axes if ax.get_title().startswith("1-S")]
    assert len(bar_axes) == 14
    assert all(len(ax.patches) == 20 for ax in bar_axes)


def test_numbers_are_strict_json_for_a_dead_instance():
    config = TrainConfig(n_features=3, n_hidden=2, n_instances=2, steps=1, batch_size=4)
    result = fastsup.train(config, progress=False)
    result.params["W"] = result.params["W"].clone()
    result.params["W"][1] = 0.0  # nothing learned: D* = inf -> null
    block = experiments.numbers(result)
    assert block["dimensions_per_feature"][1] is None
    assert math.isfinite(block["dimensions_per_feature"][0])
    json.dumps(block, allow_nan=False)


# --- the science (slow) --------------------------------------------------------------------------
@pytest.mark.slow
def test_intro_shows_superposition(tmp_path):
    """Dense (1-S = 1): exactly the 2 most important features, orthogonal, norm ~1.
    Sparsest (1-S = 0.05): at least 4 features (the paper's pentagon).

    Run at the notebook's 10 000 steps: at 3 000 steps (batch 1024, lr 1e-3) the dense
    instance has not converged yet (norms ~[0.98, 0.42, 0.42, 0.64, 0.55], 3 "represented").
    compile=True: inductor makes this ~10 s plus compilation instead of minutes eager.
    """
    run = run_experiment("intro", tmp_path, steps=10_000, batch_size=1024, progress=False, compile=True)
    W = run.result.W.double()
    norms = metrics.feature_norms(W)
    n_rep = metrics.n_represented(W)
    dense, sparse = 0, W.shape[0] - 1
    assert run.result.config.probability()[dense, 0].item() == 1.0
    assert n_rep[dense].item() == 2, norms[dense]
    assert norms[dense, :2].tolist() == pytest.approx([1.0, 1.0], abs=0.05)
    assert norms[dense, 2:].max().item() < 0.1
    cosine = (W[dense, 0] @ W[dense, 1]) / (norms[dense, 0] * norms[dense, 1])
    assert abs(cosine.item()) < 0.1
    assert n_rep[sparse].item() >= 4, norms[sparse]
    data = json.loads(run.numbers_path.read_text())
    assert data["n_represented"][dense] == 2 and data["n_represented"][sparse] >= 4
