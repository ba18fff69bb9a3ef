"""Divergence is reported, runs that cannot fit are refused before training, chunking's exact
guarantee, and the command line turns every bad path or number into a one-line error."""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
import warnings

import pytest
import torch

import fastsup
from fastsup.cli import main
from fastsup.config import TrainConfig
from fastsup import backends
from fastsup.backends import base
from fastsup.memory import EVAL_BYTES_PER_BATCH_ELEMENT, STEP_BYTES_PER_BATCH_ELEMENT, check_fits, estimate

TRAIN_MODULE = importlib.import_module("fastsup.train")  # the attribute fastsup.train is the function
DIVERGING = dict(n_features=5, n_hidden=2, n_instances=3, steps=50, lr=1000.0, progress=False)


# --- divergence ----------------------------------------------------------------------------------
def test_divergence_is_recorded_and_warned_once():
    with pytest.warns(fastsup.DivergenceWarning, match="3 of 3 instances diverged") as record:
        result = fastsup.train(**DIVERGING)
    assert len(record) == 1
    assert result.diverged.tolist() == [True, True, True]
    first_bad = result.loss_steps[(~torch.isfinite(result.loss_history)).int().argmax(0)]
    assert result.diverged_at.tolist() == first_bad.tolist()
    assert torch.isnan(fastsup.metrics.n_represented(result.W)).all()


def test_only_the_diverged_instances_are_flagged():
    with pytest.warns(fastsup.DivergenceWarning, match="1 of 2 instances diverged"):
        result = fastsup.train(**{**DIVERGING, "n_instances": 2, "lr": [1e-3, 1000.0]})
    assert result.diverged.tolist() == [False, True]
    assert result.diverged_at[0] == -1 and 0 <= result.diverged_at[1] < 50


def test_a_healthy_run_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastsup.DivergenceWarning)
        result = fastsup.train(**{**DIVERGING, "lr": 1e-3})
    assert not result.diverged.any() and (result.diverged_at == -1).all()


def test_final_weights_that_are_not_finite_count_as_diverged_at_the_last_step():
    from tests.utils import synthetic_result
    result = synthetic_result(0)
    result.params["W"][1, 0, 0] = math.inf
    assert result.diverged_at.tolist() == [-1, 0, -1]


def test_the_cli_fails_when_every_instance_diverged(tmp_path, capsys):
    code = main(["train", "--features", "5", "--hidden", "2", "--instances", "3", "--steps", "50",
                 "--lr", "1000", "--out", str(tmp_path / "div"), "--no-progress"])
    assert code == 1
    assert "3 of 3 instances diverged" in capsys.readouterr().err


# --- memory is checked before training ----------------------------------------------------------
def test_a_run_that_cannot_fit_is_refused_before_training(monkeypatch):
    trained = []
    monkeypatch.setattr(TRAIN_MODULE, "run_backend", lambda *a, **k: trained.append(1))
    with pytest.raises(MemoryError, match=r"largest part: step.*batch_size \(now 1000000000\)"):
        fastsup.train(n_features=5, n_hidden=2, n_instances=10, steps=5, batch_size=10**9, progress=False)
    assert not trained


def test_a_huge_evaluation_batch_runs_in_bounded_memory():
    """The held-out batch is drawn in pieces of rows (EVAL_ELEMENTS_CPU), so its size costs time, not memory."""
    need = estimate(TrainConfig(n_features=5, n_hidden=2, n_instances=10, steps=5, eval_batch_size=10**9), 10,
                    torch.device("cpu"))
    assert need.evaluation <= base.EVAL_ELEMENTS_CPU * EVAL_BYTES_PER_BATCH_ELEMENT


def test_the_estimate_names_what_dominates():
    config = TrainConfig(n_features=100, n_hidden=20, n_instances=1000, steps=10, batch_size=4096, eval_batch_size=64)
    with pytest.raises(MemoryError, match=r"largest part: step.*reduce instance_chunk \(now 1000\) or batch_size"):
        check_fits(config, 1000, torch.device("cpu"), available=2**30)
    need = estimate(config, 10, torch.device("cpu"))
    assert need.step == 10 * 100 * 4096 * STEP_BYTES_PER_BATCH_ELEMENT  # chunk × max(n, m) × batch × bytes
    assert check_fits(config, 10, torch.device("cpu"), available=need.device_bytes) == need


def test_the_cli_reports_a_run_that_cannot_fit(tmp_path, capsys):
    code = main(["train", "--features", "5", "--hidden", "2", "--instances", "3", "--batch-size", str(10**9), "--steps", "5",
                 "--out", str(tmp_path / "x"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("fastsup: error: this run needs about") and "Traceback" not in err


# --- chunking ------------------------------------------------------------------------------------
CHUNKED = dict(n_features=20, n_hidden=5, n_instances=5, steps=120, feature_probability=[1, .3, .1, .03, .01],
               progress=False, compile=False, backend="torch")


def test_chunks_of_one_are_bit_identical_with_one_thread():
    """With one thread every contraction reduces in a fixed order, whatever the chunk size."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole, single = fastsup.train(**CHUNKED), fastsup.train(instance_chunk=1, **CHUNKED)
    finally:
        torch.set_num_threads(threads)
    for name in whole.params:
        assert torch.equal(whole.params[name], single.params[name]), name
    assert torch.equal(whole.loss_history, single.loss_history)


def test_chunks_agree_to_rounding_with_several_threads():
    """Multi-threaded BLAS may split a reduction differently at another chunk size: rounding-level
    differences only (measured here, 2 threads, 20→5 × 6 after 300 steps: at most 1.3e-7 in W)."""
    whole, single = fastsup.train(**CHUNKED), fastsup.train(instance_chunk=1, **CHUNKED)
    for name in whole.params:
        torch.testing.assert_close(whole.params[name], single.params[name], rtol=1e-5, atol=1e-6)



def test_cpu_chunks_keep_the_batch_in_cache_and_gpu_chunks_bound_memory():
    config = TrainConfig(n_features=2, n_hidden=1, n_instances=12_800, steps=10)  # batch 1024
    cpu = backends.default_chunk("torch", config, torch.device("cpu"))
    cuda = backends.default_chunk("torch", config, torch.device("cuda"))
    assert cpu == backends.CPU_BATCH_ELEMENTS // (1024 * 2) < cuda == backends.BATCH_ELEMENTS // (1024 * 2)


def test_a_chunked_call_decides_once_whether_to_compile(monkeypatch):
    """The whole call's work against one compile per chunk size (5 instances in chunks of 2: sizes 2 and 1)."""
    asked, passed = [], []
    run_backend = TRAIN_MODULE.run_backend

    def eager_run(name, config, device, options):
        passed.append(options.compile)
        return run_backend(name, config, device, dataclasses.replace(options, compile=False))

    monkeypatch.setattr(TRAIN_MODULE, "compile_pays", lambda config, compiles: asked.append(
        (config.n_instances, compiles)) or True)
    monkeypatch.setattr(TRAIN_MODULE, "run_backend", eager_run)
    fastsup.train(**{**CHUNKED, "compile": None}, instance_chunk=2)
    assert asked == [(5, 2)]
    assert passed == [True, True, True]

# --- the command line: bad paths and absurd numbers ----------------------------------------------
def test_cli_out_is_checked_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(TRAIN_MODULE, "run_backend", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "thesis.txt").write_text("x")
    code = main(["train", "--features", "5", "--hidden", "2", "--instances", "3", "--steps", "5",
                 "--out", str(tmp_path / "d"), "--no-progress"])
    assert code == 2 and "holds no fastsup result (thesis.txt)" in capsys.readouterr().err
    assert (tmp_path / "d" / "thesis.txt").read_text() == "x"


@pytest.mark.parametrize("argv,match", [
    pytest.param(["--out", "/proc/version/x"], "cannot save a result|Not a directory|No such file", id="out-under-a-file"),
    pytest.param(["--out", "/proc/fastsup-x"], "No such file|Permission denied|not permitted", id="unwritable"),
    pytest.param(["--seed", str(2**70)], "seed", id="huge-seed"),
    pytest.param(["--steps", str(2**40)], "steps", id="huge-steps"),
])
def test_cli_bad_paths_and_numbers_are_one_line_errors(tmp_path, capsys, argv, match):
    base = ["train", "--features", "5", "--hidden", "2", "--instances", "3", "--steps", "3", "--no-progress"]
    if "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "r")]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastsup: error:") and "Traceback" not in err
    assert re.search(match, err), err


# --- messages ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields,error,match", [
    pytest.param(dict(feature_probability=[[0.1] * 5, [0.3]]), TypeError, "rows have different lengths", id="ragged-p"),
    pytest.param(dict(lr=[[1e-3], [1e-3, 2e-3]]), TypeError, "lr must be .*rows have different lengths", id="ragged-lr"),
    pytest.param(dict(instance_ids=5), TypeError, "instance_ids must be a sequence of n_instances=10", id="ids-int"),
    pytest.param(dict(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\)", id="betas-scalar"),
    pytest.param(dict(betas=("a", "b")), TypeError, r"betas\[0\] must be a number", id="betas-strings"),
    pytest.param(dict(activation_threshold=0.5), ValueError, "used only by activation='exrelu'", id="threshold-relu"),
    pytest.param(dict(model="linear", activation_threshold=-1), ValueError, "model='linear'", id="threshold-linear"),
    pytest.param(dict(correlated_sets=5), TypeError, "correlated_sets must be a list of feature-index groups", id="sets-int"),
    pytest.param(dict(anticorrelated_pairs=[0, 1]), TypeError, "anticorrelated_pairs must be a list", id="pairs-flat"),
])
def test_clear_messages(fields, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**fields)


@pytest.mark.parametrize("bad", [None, 5, "x"], ids=["none", "int", "str"])
def test_from_dict_needs_a_dict(bad):
    with pytest.raises(TypeError, match="from_dict needs a dict of TrainConfig fields"):
        TrainConfig.from_dict(bad)


def test_train_of_a_dict_says_how_to_pass_it():
    with pytest.raises(TypeError, match=r"got dict \(pass its fields as keywords"):
        fastsup.train({"n_features": 3})
