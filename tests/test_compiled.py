"""The torch backend's compiled step: one compile per key, kept as a package for later processes, every per-run
tensor an input, fallbacks where torch lacks the package loader or the private compilers."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

import fastsup
from fastsup.backends import compiled, torch_backend
from fastsup.backends.torch_backend import TorchTrainer
from fastsup.config import TrainConfig
from fastsup.train import _compiling

SHAPE = dict(n_features=5, n_hidden=2, n_instances=3, batch_size=32, steps=6, log_every=1)


@pytest.fixture(scope="module")
def module_records(tmp_path_factory):
    return tmp_path_factory.mktemp("records")


@pytest.fixture
def fresh_cache(monkeypatch, module_records):
    """A fresh process over this module's disk cache: packages compiled by earlier tests here are loaded (each
    compile costs ~25 s on this machine)."""
    cache = compiled.StepCache(record_dir=module_records)
    monkeypatch.setattr(compiled, "STEPS", cache)
    return cache


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """A fresh process over an empty disk cache."""
    cache = compiled.StepCache(record_dir=tmp_path / "records")
    monkeypatch.setattr(compiled, "STEPS", cache)
    return cache


def _run(config: TrainConfig, compile: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], TorchTrainer]:
    trainer = TorchTrainer(config, "cpu", compile=compile)
    losses = torch.stack([trainer.step(s, 1.0) for s in range(config.steps)])
    return losses, trainer.params, trainer


def _assert_same_run(a, b):
    torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-7)
    for name in a[1]:
        torch.testing.assert_close(a[1][name], b[1][name], rtol=1e-5, atol=1e-7, msg=name)


def _intro_saved_per_step() -> float:
    """Seconds a compiled step saves per intro step (5→2 × 10, batch 1024: 10 · 5 · 256 Philox calls), by the model
    of the compile decision."""
    return (torch_backend.EAGER_STEP_SECONDS - torch_backend.COMPILED_STEP_SECONDS
            + (torch_backend.EAGER_SECONDS_PER_CALL - torch_backend.COMPILED_SECONDS_PER_CALL) * 10 * 5 * 256)


def _key_never_run(config: TrainConfig, cache: compiled.StepCache):
    """The step's key, without the note that building its trainer leaves (a step run before weighs two runs)."""
    key = TorchTrainer(config, "cpu", compile=False).key
    cache._record(key, ".ran").unlink()
    return key


def test_a_second_run_of_the_same_shape_reuses_the_step_with_its_own_constants(fresh_cache):
    """Other p, importance, lr, weight decay, instance ids and seed (one from 2**63 on, a negative int64 inside the
    step): no new compile, and the numbers are the new run's."""
    first = TrainConfig(**SHAPE, feature_probability=[1.0, 0.3, 0.1], importance=[0.9**i for i in range(5)])
    second = TrainConfig(**SHAPE, feature_probability=[0.05, 0.5, 0.02], importance=[1.0, 0.5, 0.2, 0.1, 0.05],
                         lr=[3e-3, 1e-2, 1e-3], weight_decay=[0.0, 0.1, 0.03], instance_ids=[9, 4, 2],
                         seed=2**63 + 977)
    _, _, trainer_one = _run(first, compile=True)
    seconds = fresh_cache.last_compile_seconds
    compiled_second = _run(second, compile=True)
    assert compiled_second[2].step_fn is trainer_one.step_fn
    assert fresh_cache.last_compile_seconds == seconds  # nothing compiled for the second run
    _assert_same_run(compiled_second, _run(second, compile=False))


def test_another_shape_or_static_fact_is_another_key(fresh_cache):
    base = TrainConfig(**SHAPE)
    keys = {TorchTrainer(config, "cpu", compile=False).key for config in (
        base,
        TrainConfig(**{**SHAPE, "n_instances": 4}),
        TrainConfig(**{**SHAPE, "batch_size": 64}),
        TrainConfig(**SHAPE, model="relu_hidden"),
        TrainConfig(**SHAPE, optimizer="adam"),
    )}
    assert len(keys) == 5
    assert TorchTrainer(TrainConfig(**SHAPE, lr=1e-2, feature_probability=0.1, seed=7), "cpu", compile=False).key in {
        TorchTrainer(base, "cpu", compile=False).key}


def test_train_calls_share_the_compiled_step_across_calls_and_chunks(empty_cache, monkeypatch):
    compiles = []
    real = compiled.compile_package
    monkeypatch.setattr(compiled, "compile_package", lambda *args: compiles.append(1) or real(*args))
    config = dict(n_features=5, n_hidden=2, n_instances=4, steps=4, batch_size=32, progress=False, compile=True)
    fastsup.train(**config, instance_chunk=2)  # two chunks of 2: one compile
    fastsup.train(**config, instance_chunk=2, feature_probability=0.3)
    assert len(compiles) == 1


def test_without_the_package_loader_the_step_compiles_in_the_process(empty_cache, monkeypatch):
    compiles = []
    real = compiled.compile_graph
    monkeypatch.setattr(compiled, "_package_loader", lambda: None)
    monkeypatch.setattr(compiled, "compile_graph", lambda *args: compiles.append(1) or real(*args))
    config = TrainConfig(**SHAPE, feature_probability=[1.0, 0.3, 0.1])
    _assert_same_run(_run(config, compile=True), _run(config, compile=False))
    assert len(compiles) == 1
    assert not list(empty_cache.record_dir.glob("*.pt2"))


def test_without_the_private_compiler_the_step_goes_through_torch_compile(empty_cache, monkeypatch):
    calls = []
    real_compile = torch.compile
    monkeypatch.setattr(compiled, "_package_loader", lambda: None)
    monkeypatch.setattr(compiled, "_private_compilers", lambda: None)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(kw) or real_compile(fn, **kw))
    config = TrainConfig(**SHAPE, feature_probability=[1.0, 0.3, 0.1])
    _assert_same_run(_run(config, compile=True), _run(config, compile=False))
    assert calls == [dict(fullgraph=True, dynamic=False)]


def test_package_loader_and_private_compiler_are_found_on_the_tested_torch():
    """On the torch of constraints.txt the preferred paths are the ones that run (the fallbacks are for other releases)."""
    assert compiled._package_loader() is not None
    assert compiled._private_compilers() is not None


def test_a_later_process_loads_the_package_instead_of_compiling(fresh_cache, monkeypatch):
    """A new cache over the same folder stands for a new process: it compiles nothing and trains the same numbers."""
    config = TrainConfig(**SHAPE, feature_probability=[1.0, 0.3, 0.1])
    trainer = TorchTrainer(config, "cpu", compile=True)
    assert fresh_cache.on_disk(trainer.key, torch.device("cpu")) == "package"
    later = compiled.StepCache(record_dir=fresh_cache.record_dir)
    monkeypatch.setattr(compiled, "STEPS", later)
    monkeypatch.setattr(compiled, "compile_package", lambda *args: pytest.fail("compiled again"))
    assert torch_backend.compile_pays(dataclasses.replace(config, steps=100), trainer.key, device="cpu")
    _assert_same_run(_run(config, compile=True), _run(config, compile=False))
    assert later.last_compile_seconds is None


def test_a_package_that_no_longer_loads_is_compiled_again(fresh_cache):
    config = TrainConfig(**SHAPE)
    package = fresh_cache._record(TorchTrainer(config, "cpu", compile=True).key, ".pt2")
    package.write_bytes(b"not a package")
    fresh_cache.clear()  # a new process
    _assert_same_run(_run(config, compile=True), _run(config, compile=False))
    assert package.stat().st_size > 1000


def test_a_package_belongs_to_the_source_and_threads_that_built_it(empty_cache, monkeypatch):
    key = TorchTrainer(TrainConfig(**SHAPE), "cpu", compile=False).key
    cpu = torch.device("cpu")
    records = {empty_cache._record(key, ".pt2")}
    monkeypatch.setattr(compiled, "_source_digest", lambda: "other step code")
    records.add(empty_cache._record(key, ".pt2"))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 97)
    records.add(empty_cache._record(key, ".pt2"))
    assert len(records) == 3


def test_the_step_runs_only_code_of_the_step_sources():
    """The fastsup files whose functions a step calls (as export traces it: the whole batch at once) are the files the
    package digest reads, so no edit of step code can leave a stale package loadable.  Two configs between them reach
    every branch of the step: grouped features, abs and its signed magnitudes; a fixed dataset, a hidden-ReLU
    model, normalised points, Adam."""
    root = Path(compiled.__file__).resolve().parents[1]
    configs = [TrainConfig(**SHAPE, model="abs", correlated_sets=[(0, 1)], anticorrelated_pairs=[(2, 3)],
                           feature_probability=0.3),
               TrainConfig(**{**SHAPE, "batch_size": 16}, model="relu_hidden", dataset_size=16, normalize_points=True,
                           optimizer="adam", magnitude="clipped_normal")]
    ran = set()

    def note(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(str(root)):
            ran.add(Path(frame.f_code.co_filename).relative_to(root).as_posix())

    for config in configs:
        trainer = TorchTrainer(config, "cpu", compile=False)
        step = torch_backend.step_function(torch_backend._statics(config, tuple(trainer.params)))
        example = trainer.inputs(0, 1.0)
        sys.setprofile(note)
        try:
            with torch.no_grad():
                step(*example)
        finally:
            sys.setprofile(None)
    assert {"philox.py", "functional.py", "data.py"} <= ran  # the calls were seen
    assert ran <= set(compiled.STEP_SOURCES), ran - set(compiled.STEP_SOURCES)


def test_a_step_that_ran_before_is_compiled_for_two_runs(empty_cache):
    intro = TrainConfig(n_features=5, n_hidden=2, n_instances=10, batch_size=1024, steps=10)
    saved = _intro_saved_per_step()
    three_quarters = dataclasses.replace(intro, steps=int(0.75 * torch_backend.FIRST_COMPILE_SECONDS / saved))
    cpu = torch.device("cpu")
    trainer = TorchTrainer(intro, "cpu")  # 10 steps: uncompiled, and noted
    assert trainer.key not in empty_cache
    assert empty_cache.ran_before(trainer.key)
    assert torch_backend.compile_pays(three_quarters, trainer.key, device=cpu)
    empty_cache._record(trainer.key, ".ran").unlink()  # without the note, one run's saving does not pay
    assert not torch_backend.compile_pays(three_quarters, trainer.key, device=cpu)


def test_a_package_that_cannot_be_written_beside_the_cache_goes_to_a_private_temporary_folder(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    where = compiled.write_package(b"package bytes", blocked / "step.pt2")
    assert where.read_bytes() == b"package bytes" and where.name == "step.pt2"
    assert not (tmp_path / "file").is_dir()


_LOAD_IN_A_FRESH_PROCESS = """
import json, sys
import torch
from fastsup.backends import compiled
from fastsup.backends.torch_backend import TorchTrainer
from fastsup.config import TrainConfig
compiled.STEPS.record_dir = __import__("pathlib").Path(sys.argv[1])
trainer = TorchTrainer(TrainConfig(**json.loads(sys.argv[2])), "cpu")
loss = trainer.step(0, 1.0)
print(json.dumps({"compiled": compiled.STEPS.last_compile_seconds is not None, "loaded": trainer.key in compiled.STEPS,
                  "dynamo": "torch._dynamo" in sys.modules, "inductor": "torch._inductor" in sys.modules,
                  "loss": loss.tolist()}))
"""


def test_a_fresh_process_loads_the_package_without_importing_the_compilers(fresh_cache):
    fields = dict(**{**SHAPE, "steps": 200}, feature_probability=0.4)  # long enough that loading pays
    eager = TorchTrainer(TrainConfig(**fields), "cpu", compile=False).step(0, 1.0)
    TorchTrainer(TrainConfig(**fields), "cpu", compile=True)
    proc = subprocess.run([sys.executable, "-c", _LOAD_IN_A_FRESH_PROCESS, str(fresh_cache.record_dir),
                           json.dumps(fields)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["loaded"] and not result["compiled"]
    assert not result["dynamo"] and not result["inductor"]
    torch.testing.assert_close(torch.tensor(result["loss"]), eager, rtol=1e-5, atol=1e-7)


def test_the_sliced_eager_step_equals_the_whole_batch_step(monkeypatch):
    """Slices of 5 instances (12 in all, the last slice short) against one step over all of them."""
    config = TrainConfig(n_features=7, n_hidden=3, n_instances=12, batch_size=20, steps=4, correlated_sets=[(0, 1)],
                         feature_probability=torch.linspace(0.05, 1, 12), model="relu_hidden")
    whole = _run(config, compile=False)
    monkeypatch.setattr(torch_backend, "EAGER_SLICE_CALLS", 5 * 7 * 5)
    assert torch_backend.eager_slice_width(config) == 5
    sliced = _run(config, compile=False)
    assert torch.equal(sliced[0], whole[0])
    for name in whole[1]:
        assert torch.equal(sliced[1][name], whole[1][name]), name


def _draw(seed, step, ids):
    from fastsup import philox

    return (philox.uniform(seed, ids, step, 1022, 5, philox.Stream.MAGNITUDE_NORMAL),)


@pytest.fixture(scope="module")
def compiled_draw():
    from fastsup import philox

    return compiled.compile_graph(_draw, [philox.seed_tensor(1), torch.tensor(5), torch.tensor([0, 7, 2**32 - 1])])


# Steps whose first-round products overflow int64 (the top of the step range), with a nonzero
# stream (its bits sit at the top of the column word), and seeds of either half of the range (a
# seed tensor from 2**63 on holds a negative int64): compiled by inductor, with the seed as an
# input, the sampler must still draw the eager bits of the Python-int seed.
@pytest.mark.parametrize("seed", [0, 2**32 + 5, 2**63 + 12345, 2**64 - 1])
@pytest.mark.parametrize("step", [0, 3, 2**31 - 1, 2**31, 3_000_000_000, 2**32 - 3, 2**32 - 1])
def test_the_compiled_sampler_draws_the_eager_bits(compiled_draw, seed, step):
    from fastsup import philox

    ids = torch.tensor([0, 7, 2**32 - 1])
    assert torch.equal(compiled_draw(philox.seed_tensor(seed), torch.tensor(step), ids)[0], _draw(seed, step, ids)[0])


def test_compile_decision_weighs_the_eager_time_saved_against_the_compile_cost(empty_cache, monkeypatch):
    def decides(compile_seconds, **fields):
        monkeypatch.setattr(empty_cache, "last_compile_seconds", compile_seconds)
        config = TrainConfig(**{**SHAPE, **fields})
        return torch_backend.compile_pays(config, _key_never_run(config, empty_cache))

    intro = dict(n_features=5, n_hidden=2, n_instances=10, batch_size=1024)
    saved = _intro_saved_per_step()
    break_even = torch_backend.FIRST_COMPILE_SECONDS / saved
    assert not decides(None, **intro, steps=int(break_even * 0.9))
    assert decides(None, **intro, steps=int(break_even * 1.1))
    # a compile measured in this process replaces the first-compile estimate
    assert decides(1.0, **intro, steps=int(break_even * 0.9))
    # more work per step: compiling pays sooner
    assert decides(None, n_features=200, n_hidden=20, n_instances=20, batch_size=1024, steps=int(break_even * 0.1))


def test_a_step_this_process_has_compiled_is_always_used(fresh_cache):
    config = TrainConfig(**SHAPE)
    trainer = TorchTrainer(config, "cpu", compile=True)
    assert TorchTrainer(dataclasses.replace(config, steps=1), "cpu").step_fn is trainer.step_fn


def test_progress_bar_says_while_the_step_compiles(empty_cache, capsys):
    fastsup.train(**SHAPE, progress=True, compile=True)
    err = capsys.readouterr().err
    assert "compiling the step" in err
    assert "step compiled in" in err


def test_progress_rate_and_elapsed_leave_the_compile_out():
    bar = tqdm(total=100, file=io.StringIO())
    with _compiling(bar):
        time.sleep(0.5)  # stands for the compile
    bar.update(50)
    assert bar.format_dict["elapsed"] < 0.25  # an elapsed time with the compile in it would be >= 0.5 s
    assert "step compiled in" in bar.postfix


def test_a_step_compiled_by_an_earlier_process_is_expected_to_load(empty_cache, monkeypatch):
    """A package on disk (CPU) costs a load; a marker of inductor's cache (CUDA, or no loader) a warm compile."""
    intro = TrainConfig(n_features=5, n_hidden=2, n_instances=10, batch_size=1024, steps=10)
    key = _key_never_run(intro, empty_cache)
    saved = _intro_saved_per_step()
    cpu = torch.device("cpu")
    between_load_and_warm = dataclasses.replace(intro, steps=int(
        (torch_backend.PACKAGE_LOAD_SECONDS + torch_backend.WARM_COMPILE_SECONDS) / 2 / saved))
    between_warm_and_first = dataclasses.replace(intro, steps=int(
        (torch_backend.WARM_COMPILE_SECONDS + torch_backend.FIRST_COMPILE_SECONDS) / 2 / saved))
    assert empty_cache.on_disk(key, cpu) is None
    assert not torch_backend.compile_pays(between_warm_and_first, key, device=cpu)
    empty_cache._record(key, ".pt2").touch()  # what a compile in another process leaves behind
    assert empty_cache.on_disk(key, cpu) == "package"
    assert torch_backend.compile_pays(between_load_and_warm, key, device=cpu)
    monkeypatch.setattr(compiled, "_package_loader", lambda: None)
    assert empty_cache.on_disk(key, cpu) is None  # a package is of no use without the loader
    empty_cache._record(key).touch()
    assert empty_cache.on_disk(key, cpu) == "inductor cache"
    assert not torch_backend.compile_pays(between_load_and_warm, key, device=cpu)
    assert torch_backend.compile_pays(between_warm_and_first, key, device=cpu)


def test_compiling_leaves_the_package(fresh_cache):
    trainer = TorchTrainer(TrainConfig(**SHAPE), "cpu", compile=True)
    cpu = torch.device("cpu")
    assert fresh_cache.on_disk(trainer.key, cpu) == "package"
    assert fresh_cache._record(trainer.key, ".pt2").stat().st_size > 0
    assert fresh_cache.on_disk(TorchTrainer(TrainConfig(**SHAPE, model="abs"), "cpu", compile=False).key, cpu) is None
