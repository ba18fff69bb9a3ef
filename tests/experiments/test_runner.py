"""fastsup.experiments: the registry, scales and overrides, run_experiment's files and their atomicity,
and a sweep variant end to end (an experiment registered by the test)."""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import fastsup  # noqa: E402
from fastsup import experiments, metrics  # noqa: E402
from fastsup.config import TrainConfig  # noqa: E402
from fastsup.experiments import (  # noqa: E402
    EXPERIMENTS,
    SCALES,
    Experiment,
    ExperimentRun,
    Settings,
    get_experiment,
    run_experiment,
)
from fastsup.experiments import runner  # noqa: E402
from fastsup.experiments.tables import result_numbers  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(scale="small", steps=50, batch_size=32, progress=False)
PER_INSTANCE_KEYS = ("feature_probability", "sparsity", "final_loss", "n_represented", "dimensions_per_feature")
PER_FEATURE_KEYS = ("feature_norms", "feature_dimensionality", "superposition")
INTRO_FILES = [".fastsup.lock", "intro.json", "intro.parquet", "intro.png", "intro.svg", "result"]


def _models(variant):
    """The field dicts of every model a variant trains (a TrainConfig's, or each sweep point's)."""
    if isinstance(variant, TrainConfig):
        return [variant.to_dict()]
    return [variant.point_fields(point) for point in variant.points()]


# --- registry, scales and overrides, for every registered experiment -----------------------------
def test_registry_has_the_experiments_with_descriptions_and_both_scales():
    assert {"intro", "linear_vs_relu", "larger"} <= set(EXPERIMENTS)
    for name, experiment in EXPERIMENTS.items():
        assert isinstance(experiment, Experiment)
        assert experiment.name == name
        assert experiment.description
        assert set(experiment.scales) == set(SCALES)


#: Experiments that train full-batch on fixed datasets: their batch is the dataset, and they refuse a batch_size.
FULL_BATCH = {"double_descent"}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_overrides_reach_every_model_of_every_variant(name):
    """steps, batch_size, seed and a TrainConfig field that no experiment sets (eps) reach every model (a
    full-batch experiment's batch is each model's dataset)."""
    experiment = get_experiment(name)
    full_batch = name in FULL_BATCH
    settings = experiment.settings("small", steps=7, seed=5, eps=3e-7, **({} if full_batch else {"batch_size": 9}))
    for label, variant in experiment.variants(settings).items():
        for fields in _models(variant):
            batch_size = fields["dataset_size"] if full_batch else 9
            assert (fields["steps"], fields["batch_size"], fields["seed"], fields["eps"]) == (7, batch_size, 5, 3e-7), \
                label


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_the_small_scale_is_smaller_than_the_paper_scale(name):
    experiment = get_experiment(name)

    def work(scale):
        return sum(f["steps"] * f.get("n_instances", 1) * getattr(v, "restarts", 1)
                   for v in experiment.variants(experiment.settings(scale)).values() for f in _models(v))

    assert work("small") < work("paper")


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


def test_unknown_scale_lists_the_scales(tmp_path):
    with pytest.raises(ValueError, match="unknown scale 'huge'.*small, paper"):
        run_experiment("intro", tmp_path / "out", scale="huge", progress=False)
    assert not (tmp_path / "out").exists()


def test_unknown_override_lists_settings_and_config_fields(tmp_path):
    with pytest.raises(TypeError) as info:
        run_experiment("intro", tmp_path, batchsize=3, **TINY)
    message = str(info.value)
    assert "batchsize" in message and "n_instances" in message and "min_density" in message and "lr" in message


def test_structural_fields_are_not_overrides():
    """instance_ids belongs to the spec; intro's n_instances is a setting (it respaces the densities)."""
    with pytest.raises(TypeError, match="instance_ids"):
        get_experiment("intro").settings("small", instance_ids=[0])
    assert get_experiment("intro").settings("small", n_instances=3).n_instances == 3


def test_bad_override_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="steps"):
        run_experiment("intro", tmp_path / "out", scale="small", steps=0, progress=False)
    with pytest.raises(ValueError, match="backend"):
        run_experiment("intro", tmp_path / "out", scale="small", backend="cuda", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_config_override_beats_the_spec_own_value():
    """intro sets lr 1e-3 (the notebook's); --set lr=0.01 must win."""
    experiment = get_experiment("intro")
    (config,) = experiment.variants(experiment.settings("small", lr=0.01)).values()
    assert config.lr_tensor().tolist() == pytest.approx([0.01] * config.n_instances)


def test_settings_with_a_tensor_override_are_json(tmp_path):
    run = run_experiment("intro", tmp_path, scale="small", steps=3, batch_size=8, progress=False,
                         importance=torch.full((1, 5), 0.5, dtype=torch.float64))
    data = json.loads(run.numbers_path.read_text())
    assert data["settings"]["config_overrides"]["importance"] == [[0.5] * 5]
    assert data["settings"]["config_overrides"]["lr"] == 1e-2  # the small scale's own recipe
    assert run.result.config.importance_tensor().tolist() == [[0.5] * 5] * 10


def test_register_refuses_duplicates_and_experiments_need_both_scales():
    with pytest.raises(ValueError, match="already registered"):
        experiments.register(EXPERIMENTS["intro"])
    intro = EXPERIMENTS["intro"]
    with pytest.raises(ValueError, match="small, paper"):
        dataclasses.replace(intro, scales={"paper": intro.scales["paper"]})


# --- run_experiment ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def intro_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("intro")
    return run_experiment("intro", out, **TINY)


def test_intro_run_writes_png_svg_parquet_json_and_result(intro_run):
    run = intro_run
    assert isinstance(run, ExperimentRun)
    assert run.figure_path == run.out_dir / "intro.png"
    assert run.numbers_path == run.out_dir / "intro.json"
    assert run.result_dir == run.out_dir / "result"
    assert run.figure_path.read_bytes()[:8] == PNG_MAGIC
    assert (run.out_dir / "intro.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in run.out_dir.iterdir()) == INTRO_FILES  # nothing temporary left behind
    assert "intro: small scale" in run.summary() and "5→2" in run.summary()


def test_intro_numbers_json(intro_run):
    data = json.loads(intro_run.numbers_path.read_text())
    assert (data["experiment"], data["scale"]) == ("intro", "small")
    assert data["settings"]["steps"] == 50 and data["settings"]["n_instances"] == 10
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


def test_intro_table_parquet_is_the_measures_per_instance(intro_run):
    table = pd.read_parquet(intro_run.table_path)
    W = intro_run.result.W.double()
    assert list(table["instance"]) == list(range(10))
    assert table["n_represented"].tolist() == metrics.n_represented(W).tolist()
    assert table["frobenius_sq"].to_numpy() == pytest.approx(W.square().sum(dim=(1, 2)).numpy())
    assert table["dimensions_per_feature"].to_numpy() == pytest.approx(2 / W.square().sum(dim=(1, 2)).numpy())
    assert np.stack(table["feature_norms"]) == pytest.approx(metrics.feature_norms(W).numpy())


def test_intro_result_round_trip(intro_run):
    loaded = fastsup.load(intro_run.result_dir)
    assert torch.equal(loaded.W, intro_run.result.W)
    assert torch.equal(loaded.b, intro_run.result.b)
    assert torch.equal(loaded.final_loss, intro_run.result.final_loss)
    assert loaded.config == intro_run.result.config
    assert loaded.W.shape == (10, 5, 2)


def test_intro_figure_titles_come_from_the_config(intro_run):
    experiment = EXPERIMENTS["intro"]
    (figure,) = experiment.figures(intro_run.outcome, intro_run.table).values()
    assert len(figure.axes) == 10
    assert figure.axes[0].get_title() == "1-S = 1.000"
    assert figure.axes[-1].get_title() == "1-S = 0.050"
    assert figure.get_suptitle() == "intro: relu_output 5→2 × 10 instances, 50 steps"


def test_rerun_replaces_files(tmp_path):
    first = run_experiment("intro", tmp_path, scale="small", steps=5, batch_size=8, progress=False)
    second = run_experiment("intro", tmp_path, scale="small", steps=6, batch_size=8, progress=False, seed=1)
    data = json.loads(second.numbers_path.read_text())
    assert data["config"]["steps"] == 6 and data["config"]["seed"] == 1
    assert fastsup.load(first.result_dir).config.steps == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == INTRO_FILES


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_a_rerun_interrupted_while_writing_leaves_no_numbers_of_another_run(tmp_path, monkeypatch):
    """The numbers file is removed before the new outputs are written and comes back last, so a folder
    never shows one run's numbers beside another run's result."""
    run_experiment("intro", tmp_path, scale="small", steps=5, batch_size=8, progress=False)
    monkeypatch.setattr(Figure, "savefig", _interrupt)  # after the new result is saved, before the numbers
    with pytest.raises(KeyboardInterrupt):
        run_experiment("intro", tmp_path, scale="small", steps=6, batch_size=8, progress=False)
    assert not (tmp_path / "intro.json").exists()
    assert fastsup.load(tmp_path / "result").config.steps == 6
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_run_interrupted_while_training_leaves_the_old_outputs(tmp_path, monkeypatch):
    first = run_experiment("intro", tmp_path, scale="small", steps=5, batch_size=8, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    monkeypatch.setattr(runner, "train", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_experiment("intro", tmp_path, scale="small", steps=6, batch_size=8, progress=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert fastsup.load(tmp_path / "result").config == first.result.config


def test_run_refuses_an_out_dir_whose_result_folder_is_not_a_result(tmp_path):
    (tmp_path / "result").mkdir()
    (tmp_path / "result" / "data.csv").write_text("1,2")
    with pytest.raises(ValueError, match="holds no fastsup result"):
        run_experiment("intro", tmp_path, scale="small", steps=5, batch_size=8, progress=False)
    assert not (tmp_path / "intro.json").exists()


def test_a_variant_experiment_saves_one_result_per_variant(tmp_path):
    run = run_experiment("linear_vs_relu", tmp_path, scale="small", steps=20, batch_size=16, progress=False)
    assert set(run.results) == {"linear", "relu_output"}
    for model in ("linear", "relu_output"):
        assert fastsup.load(run.result_dirs[model]).config.model == model
        assert run.result_dirs[model] == tmp_path / "result" / model
    with pytest.raises(ValueError, match="several"):
        run.result  # noqa: B018
    table = pd.read_parquet(run.table_path)
    assert sorted(table["variant"].unique()) == ["linear", "relu_output"] and len(table) == 14


def test_numbers_are_strict_json_for_a_dead_instance():
    config = TrainConfig(n_features=3, n_hidden=2, n_instances=2, steps=1, batch_size=4)
    result = fastsup.train(config, progress=False)
    result.params["W"] = result.params["W"].clone()
    result.params["W"][1] = 0.0  # nothing learned: D* = inf -> null
    block = result_numbers(result)
    assert block["dimensions_per_feature"][1] is None
    assert math.isfinite(block["dimensions_per_feature"][0])
    json.dumps(block, allow_nan=False)


# --- a sweep variant, through an experiment registered here --------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True)
class _TwoToOneSettings(Settings):
    restarts: int = 2
    grid: int = 2


def _two_to_one_spec(settings):
    return {"two_to_one": settings.sweep(
        axes={"density": [0.1, 1.0][:settings.grid], "r": [0.5, 2.0][:settings.grid]},
        fields=lambda density, r: dict(feature_probability=density, importance=[1.0, r]),
        restarts=settings.restarts, n_features=2, n_hidden=1, lr=1e-3)}


def _two_to_one_analysis(outcome):
    return outcome.sweep().best()


def _two_to_one_figures(outcome, table):
    figure = Figure()
    figure.add_subplot().scatter(table["density"], table["final_loss"])
    return {"two_to_one": figure}


@pytest.fixture
def sweep_experiment(monkeypatch):
    experiment = Experiment(
        "two_to_one", "a 2→1 sweep with restarts (test only)", number=99,
        scales={"small": _TwoToOneSettings(steps=20, batch_size=16),
                "paper": _TwoToOneSettings(steps=40, batch_size=16, restarts=3)},
        spec=_two_to_one_spec, analysis=_two_to_one_analysis, figures=_two_to_one_figures)
    monkeypatch.setitem(EXPERIMENTS, experiment.name, experiment)
    return experiment


def test_a_sweep_variant_trains_into_a_store_and_resumes(tmp_path, sweep_experiment):
    run = run_experiment("two_to_one", tmp_path, scale="small", steps=30, progress=False)
    assert run.sweep_dirs == {"two_to_one": tmp_path / "sweep"} and run.result_dirs == {}
    sweep = fastsup.load_sweep(tmp_path / "sweep")
    assert len(sweep.table) == 4 * 2 and sweep.restarts == 2
    data = json.loads(run.numbers_path.read_text())
    assert data["settings"]["restarts"] == 2 and len(data["best"]["point"]) == 4
    assert data["title"] == "two_to_one: relu_output 2→1, density × r on a 2 × 2 grid, best of 2 restarts, 30 steps"
    assert len(pd.read_parquet(run.table_path)) == 4
    # the same settings again: the store is complete, nothing trains
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "run_sweep", lambda *a, **k: fastsup.load_sweep(a[1]))
        again = run_experiment("two_to_one", tmp_path, scale="small", steps=30, progress=False)
    assert again.table.equals(run.table)


def test_a_sweep_store_of_other_settings_fails_before_training(tmp_path, sweep_experiment, monkeypatch):
    run_experiment("two_to_one", tmp_path, scale="small", steps=30, progress=False)
    monkeypatch.setattr(runner, "run_sweep", _interrupt)
    with pytest.raises(ValueError, match="another sweep"):
        run_experiment("two_to_one", tmp_path, scale="small", steps=31, progress=False)
    assert (tmp_path / "two_to_one.json").exists()


def test_overrides_reach_sweep_points_even_over_the_point_fields(sweep_experiment):
    """A TrainConfig override beats what the spec's fields function returns for a point."""
    settings = sweep_experiment.settings("small", importance=[1.0, 1.0], restarts=5)
    (sweep,) = sweep_experiment.variants(settings).values()
    assert sweep.restarts == 5
    assert all(point["importance"] == [1.0, 1.0] for point in (sweep.point_fields(p) for p in sweep.points()))
