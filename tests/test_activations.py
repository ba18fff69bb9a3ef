"""Hidden activations exported for SAE training (``result.hidden_activations``, ``fastsup.load_activations``).

Oracles: the data the randomness contract gives for the export's step
(``sample_batch`` at ``philox.ACTIVATIONS_STEP``) pushed through an einsum
written here from the DESIGN table, in float64; one shard holding every row
(the reference for other shardings, compared bit for bit); the binomial
closed form for how often a feature is present.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import fastsup
from fastsup import activations as activations_module
from fastsup import philox
from fastsup.backends import base
from fastsup.config import TrainConfig
from fastsup.data import DataSpec, sample_batch
from fastsup.result import TrainResult
from utils import synthetic_result

MODELS = ["linear", "relu_output", "relu_hidden", "abs"]


def _result(model: str, *, n_features: int = 7, n_hidden: int = 3, n_instances: int = 3, **config) -> TrainResult:
    """Random weights (no training needed: the export reads weights, it does not judge them)."""
    synthetic = synthetic_result(11, n_instances=n_instances, n_features=n_features, n_hidden=n_hidden, model=model)
    config = TrainConfig(n_features=n_features, n_hidden=n_hidden, n_instances=n_instances, model=model, steps=1,
                         feature_probability=0.3, seed=11, **config)
    return TrainResult(config, synthetic.params, synthetic.loss_history, synthetic.loss_steps, synthetic.final_loss,
                       backend="torch")


def _rows(export) -> dict[str, torch.Tensor]:
    """Every shard's rows, concatenated: hidden ``[I, N, m]`` and features ``[I, N, n]``."""
    shards = list(export)
    return {name: torch.cat([shard[name] for shard in shards], 1) for name in ("hidden", "features")}


def _hidden_by_hand(params: dict, x: torch.Tensor, model: str) -> torch.Tensor:
    """h ``[I, N, m]`` from x ``[I, n, N]``: x W (linear, relu_output), ReLU(x W) (relu_hidden), ReLU(x W1) (abs)."""
    W = params["W1" if model == "abs" else "W"].double()
    h = torch.einsum("inb,inm->ibm", x.double(), W)
    return torch.relu(h) if model in ("relu_hidden", "abs") else h


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of 100 rows of one 7-feature instance, so a 1001-row export spans many pieces and instance blocks."""
    monkeypatch.setattr(base, "EVAL_ELEMENTS_CPU", 7 * 100)


@pytest.mark.parametrize("model", MODELS)
def test_activations_are_the_hidden_layer_of_the_export_step_data(tmp_path, model, small_pieces):
    result = _result(model, magnitude="signed" if model == "abs" else "uniform")
    export = result.hidden_activations(1001, tmp_path / "acts", rows_per_shard=250, device="cpu")
    rows = _rows(export)
    x = sample_batch(DataSpec.from_config(result.config, "cpu"), philox.ACTIVATIONS_STEP, 1001)  # [I, n, N]
    assert torch.equal(rows["features"], x.transpose(1, 2))  # the true features, unchanged (abs: signed, not |x|)
    assert (rows["features"] < 0).any() == (model == "abs")
    torch.testing.assert_close(rows["hidden"].double(), _hidden_by_hand(result.params, x, model),
                               rtol=1e-6, atol=1e-6)
    assert [s.rows for s in export.shards] == [250, 250, 250, 250, 1]


def test_the_export_step_is_one_no_training_batch_dataset_or_evaluation_uses():
    assert philox.DATASET_STEP < philox.ACTIVATIONS_STEP < philox.EVAL_STEP < philox.MAX_WORD
    with pytest.raises(ValueError, match="steps must be < 2"):  # training steps stay below the fixed dataset's
        TrainConfig(steps=philox.DATASET_STEP)


@pytest.mark.parametrize("rows_per_shard", [3, 7, 100, 1000, None], ids=lambda r: f"shard-{r}")
@pytest.mark.parametrize("shape", [pytest.param((7, 3, "relu_output"), id="7to3-broadcast"),
                                   pytest.param((23, 5, "abs"), id="23to5-abs-bmm")])
def test_any_rows_per_shard_gives_bit_identical_rows(tmp_path, rows_per_shard, shape, small_pieces):
    """The matmul path (n·m > 64) rounds differently on batches of other lengths; the pieces keep it out."""
    n, m, model = shape
    result = _result(model, n_features=n, n_hidden=m)
    one_shard = _rows(result.hidden_activations(301, tmp_path / "one", rows_per_shard=301, device="cpu"))
    export = result.hidden_activations(301, tmp_path / "many", rows_per_shard=rows_per_shard, device="cpu")
    rows = _rows(export)
    for name in rows:
        assert torch.equal(rows[name], one_shard[name]), name
    expected = rows_per_shard or activations_module.SHARD_ELEMENTS // (3 * (n + m))
    assert all(s.rows == expected for s in export.shards[:-1]) and 0 < export.shards[-1].rows <= expected


def test_chosen_instances_get_their_own_rows(tmp_path):
    result = _result("relu_hidden", n_instances=4, instance_ids=[10, 11, 12, 13])
    everyone = _rows(result.hidden_activations(301, tmp_path / "all", device="cpu"))
    export = result.hidden_activations(301, tmp_path / "two", instances=[3, 1], device="cpu")
    rows = _rows(export)
    assert export.instances == (3, 1) and export.instance_ids == (13, 11)
    assert torch.equal(rows["features"], everyone["features"][[3, 1]])
    torch.testing.assert_close(rows["hidden"], everyone["hidden"][[3, 1]], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("p", [0.05, 0.5])
def test_a_distribution_override_reaches_the_data(tmp_path, p):
    """Trained at p = 0.3; exported at p: each feature is present with probability p (within 5 binomial SE)."""
    result = _result("relu_output")
    export = result.hidden_activations(4000, tmp_path / "acts", feature_probability=p, seed=5, device="cpu")
    present = (_rows(export)["features"] > 0).double().mean().item()
    n_values = 3 * 4000 * 7
    assert abs(present - p) < 5 * math.sqrt(p * (1 - p) / n_values)
    assert export.manifest["distribution"]["seed"] == 5
    assert torch.tensor(export.manifest["distribution"]["feature_probability"]).eq(torch.tensor(p).float()).all()


def test_memory_is_one_piece_and_one_shard_whatever_n_samples(tmp_path, monkeypatch, small_pieces):
    """The largest batch drawn and the largest shard written do not grow with n_samples; the shard files of
    a 10x longer export are the same size, only more of them."""
    drawn, written = [], []

    def recording_sample(spec, step, batch_size, first_row=0):
        drawn.append(spec.p.shape[0] * spec.p.shape[1] * batch_size)
        return sample_batch(spec, step, batch_size, first_row)

    def recording_save(tensors, path, save=activations_module.save_file):
        written.append(sum(t.numel() for t in tensors.values()))
        save(tensors, path)

    monkeypatch.setattr(activations_module, "sample_batch", recording_sample)
    monkeypatch.setattr(activations_module, "save_file", recording_save)
    result = _result("relu_output")
    peaks, files = [], []
    for n_samples in (400, 4000):
        drawn.clear(), written.clear()
        export = result.hidden_activations(n_samples, tmp_path / f"n{n_samples}", rows_per_shard=64, device="cpu")
        peaks.append((max(drawn), max(written)))
        files.append({s.bytes for s in export.shards[:-1]})
    assert peaks[0] == peaks[1] == (7 * 100, 3 * 64 * (7 + 3))  # one piece of base.EVAL_ELEMENTS_CPU, one shard
    assert files[0] == files[1] and len(files[0]) == 1


def test_an_interrupted_export_leaves_no_export(tmp_path, monkeypatch):
    """A previous export in the folder is gone once a new one starts; the half-written one has no manifest."""
    result = _result("relu_output")
    out = tmp_path / "acts"
    result.hidden_activations(300, out, rows_per_shard=100, device="cpu")
    calls = []

    def failing_hidden(*args, hidden=activations_module.hidden):
        calls.append(1)
        if len(calls) == 5:  # pieces of 100 rows, one instance at a time: shard 0 is written, shard 1 is not
            raise KeyboardInterrupt  # what a killed process looks like from inside
        return hidden(*args)

    monkeypatch.setattr(activations_module, "hidden", failing_hidden)
    monkeypatch.setattr(base, "EVAL_ELEMENTS_CPU", 7 * 100)
    with pytest.raises(KeyboardInterrupt):
        result.hidden_activations(300, out, rows_per_shard=100, device="cpu")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["shard-00000.safetensors"]
    with pytest.raises(FileNotFoundError, match="no complete activations export"):
        fastsup.load_activations(out)
    monkeypatch.undo()
    assert len(result.hidden_activations(300, out, rows_per_shard=100, device="cpu")) == 3  # the folder is reusable


def test_a_shard_that_does_not_match_its_manifest_is_refused(tmp_path):
    export = _result("relu_output").hidden_activations(300, tmp_path / "acts", rows_per_shard=100, device="cpu")
    shard = tmp_path / "acts" / export.shards[1].file
    shard.write_bytes(shard.read_bytes()[:-8])
    with pytest.raises(ValueError, match="shard-00001.safetensors of .* bytes; its manifest.json records"):
        fastsup.load_activations(tmp_path / "acts")


@pytest.mark.parametrize("kwargs,error,match", [
    pytest.param(dict(n_samples=0), ValueError, "n_samples must be a positive integer", id="no-samples"),
    pytest.param(dict(n_samples=2.5), TypeError, "n_samples must be a positive integer", id="float-samples"),
    pytest.param(dict(n_samples=philox.MAX_ROWS + 1), ValueError, "n_samples must be at most", id="past-one-step"),
    pytest.param(dict(instances=[1, 5]), ValueError, r"instances \[5\] are not instances of this result",
                 id="unknown-instance"),
    pytest.param(dict(instances=[1, 1]), ValueError, "instances must name at least one instance, each once",
                 id="instance-twice"),
    pytest.param(dict(instances=[]), ValueError, "instances must name at least one", id="no-instances"),
    pytest.param(dict(instances=2), TypeError, "instances must be a sequence", id="instances-not-a-list"),
    pytest.param(dict(rows_per_shard=0), ValueError, "rows_per_shard must be a positive integer", id="shard-0"),
    pytest.param(dict(lr=0.1), ValueError, r"hidden_activations got unknown fields \['lr'\]", id="not-data"),
    pytest.param(dict(feature_probability=1.5), ValueError, r"feature_probability must lie in \[0, 1\]",
                 id="probability-above-one"),
])
def test_bad_input_names_the_argument(tmp_path, kwargs, error, match):
    kwargs = {"n_samples": 10, **kwargs}
    with pytest.raises(error, match=match):
        _result("relu_output").hidden_activations(out=tmp_path / "acts", device="cpu", **kwargs)
    assert not (tmp_path / "acts").exists()


def test_a_shard_too_large_for_memory_names_rows_per_shard(tmp_path, monkeypatch):
    """3 instances × 1000 rows × (7 + 3) fp32 = 120 000 bytes a shard, held twice: 200 000 free is too little."""
    monkeypatch.setattr(activations_module, "available_bytes", lambda device: 200_000)
    result = _result("relu_output")
    with pytest.raises(MemoryError, match="rows_per_shard=1000 makes shards of .* lower rows_per_shard"):
        result.hidden_activations(5000, tmp_path / "acts", rows_per_shard=1000, device="cpu")
    assert not (tmp_path / "acts").exists()
    assert len(result.hidden_activations(5000, tmp_path / "acts", rows_per_shard=800, device="cpu")) == 7


def test_a_target_that_is_not_an_export_is_refused_before_anything_is_written(tmp_path):
    result = _result("relu_output")
    result.save(tmp_path / "result")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "data.csv").write_text("1,2")
    for target, match in [("result", "is not an activations export .*result.json"),
                          ("notes.txt", "exists and is not a folder"),
                          ("mixed", r"is not an activations export \(it holds data.csv\)")]:
        before = sorted(p.name for p in (tmp_path / target).parent.rglob("*"))
        with pytest.raises(ValueError, match=f"out .*{target}.* {match}"):
            result.hidden_activations(10, tmp_path / target, device="cpu")
        assert sorted(p.name for p in (tmp_path / target).parent.rglob("*")) == before
    assert fastsup.load(tmp_path / "result").config == result.config


def test_loading_what_is_not_an_export(tmp_path):
    result = _result("relu_output")
    result.save(tmp_path / "result")
    with pytest.raises(FileNotFoundError, match="no complete activations export"):
        fastsup.load_activations(tmp_path / "result")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.json").write_text(json.dumps({"format": "fastsup.sweep"}))
    with pytest.raises(ValueError, match="not an activations manifest"):
        fastsup.load_activations(tmp_path / "other")


def test_the_manifest_says_what_was_exported(tmp_path):
    result = _result("abs", magnitude="signed")
    export = result.hidden_activations(50, tmp_path / "acts", instances=[2], rows_per_shard=20, device="cpu")
    manifest = json.loads((tmp_path / "acts" / "manifest.json").read_text())
    assert manifest == export.manifest
    assert (export.model, export.n_features, export.n_hidden, export.n_samples) == ("abs", 7, 3, 50)
    assert manifest["hidden_layer"] == "ReLU(x W1)" and manifest["data_step"] == philox.ACTIVATIONS_STEP
    assert manifest["source_fingerprint"] == result.config.fingerprint()
    assert manifest["distribution"]["magnitude"] == "signed"
    assert [(s["first_row"], s["rows"]) for s in manifest["shards"]] == [(0, 20), (20, 20), (40, 10)]
