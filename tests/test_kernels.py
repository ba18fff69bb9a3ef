"""Triton kernels against the torch backend: interpreted on CPU tensors, or compiled on a GPU.

Under ``TRITON_INTERPRET=1`` (the default of ``conftest.py``) they run on
CPU tensors; with ``TRITON_INTERPRET=0`` on a CUDA machine the same tests
run the compiled kernels on the GPU (``benchmarks/gpu_check.sh``).
The interpreter runs ``tl.rand``-heavy code slowly, so every case is tiny:
I <= 3, B <= 64, steps <= 5.  Odd sizes (5→2, 3→6, 20→8, 70→9, B = 37) make
the feature, hidden and row masks do work; 70 features span two or three
feature tiles of the step kernel; with ``precision="tf32"`` 20→8 and 70→9
take the ``tl.dot`` path (computed in fp32 by the interpreter).  At B = 16 and 37 the warp kernel packs 8 and 2
instances per warp, more slots than BASE's three instances fill.
"""

from __future__ import annotations

import pytest
import torch
from conftest import INTERPRET, KERNEL_DEVICE, requires_triton

import fastsup
from fastsup.config import TrainConfig
from fastsup.data import DataSpec, sample_batch

pytestmark = requires_triton
DEVICE = KERNEL_DEVICE

BASE = dict(n_features=5, n_hidden=2, n_instances=3, feature_probability=[[1.0], [0.3], [0.1]],
            importance=[0.9**i for i in range(5)], batch_size=16, steps=3, log_every=1, progress=False)

VARIANTS = [
    pytest.param(dict(model="linear"), id="linear-5to2"),
    pytest.param(dict(model="relu_output"), id="relu_output-5to2"),
    pytest.param(dict(model="relu_output", activation="exrelu", activation_threshold=-0.25), id="exrelu-5to2"),
    pytest.param(dict(model="relu_hidden"), id="relu_hidden-5to2"),
    pytest.param(dict(model="abs", n_features=3, n_hidden=6, importance=[[0.7**i for i in range(3)]]), id="abs-3to6"),
    pytest.param(dict(model="relu_output", optimizer="adam", weight_decay=[0.1, 0.0, 0.2], schedule="cosine",
                      lr=[1e-3, 1e-2, 3e-2]), id="adam-cosine-per-instance"),
    pytest.param(dict(model="relu_output", n_features=20, n_hidden=8, importance=1.0, batch_size=37), id="20to8-B37"),
    pytest.param(dict(model="relu_output", seed=2**63 + 2**31 + 1, instance_ids=[2**32 - 1, 5, 2**31]),
                 id="seed64-ids32-5to2"),
    # tf32 selects the tl.dot path; the interpreter computes it in fp32, so it must still match
    pytest.param(dict(model="relu_output", n_features=20, n_hidden=8, importance=1.0, batch_size=37, precision="tf32"),
                 id="dot-20to8-B37"),
]
LARGE = [
    pytest.param(dict(model="relu_hidden", n_features=70, n_hidden=9, importance=1.0, batch_size=37, n_instances=2,
                      feature_probability=[[0.5], [0.05]], steps=2), id="70to9-two-feature-tiles"),
    pytest.param(dict(model="relu_hidden", n_features=70, n_hidden=9, importance=1.0, batch_size=37, n_instances=2,
                      feature_probability=[[0.5], [0.05]], steps=2, precision="tf32"), id="dot-70to9-three-feature-tiles"),
    pytest.param(dict(model="abs", n_features=70, n_hidden=9, importance=1.0, n_instances=2,
                      feature_probability=[[1.0], [0.1]], steps=2, precision="tf32"), id="dot-abs-70to9"),
]


# "persistent" trains the tiny shapes here on the warp kernel (kernels/warp.py);
# "persistent-tile" lowers the dispatcher's warp budget so that the same shapes
# take the tile kernel (kernels/persistent.py), which trains larger ones.
STRATEGIES = ["persistent", "persistent-tile", "step"]


def _strategy(strategy, monkeypatch):
    """The strategy to pass to ``fastsup.train``, the dispatcher patched for ``persistent-tile``."""
    if strategy == "persistent-tile":
        from fastsup.kernels import dispatch

        monkeypatch.setattr(dispatch, "WARP_REGISTER_WORDS", -1)
        return "persistent"
    return strategy


def _rel_rms(actual, expected):
    return (((actual - expected) ** 2).mean().sqrt() / (expected**2).mean().sqrt().clamp_min(1e-30)).item()


def _compare(overrides, strategy, tol=1e-5):
    kwargs = {**BASE, **overrides}
    precision = kwargs.pop("precision", "ieee")
    if precision == "tf32" and not INTERPRET:
        tol = 2e-3  # compiled tf32 MMA keeps 10 mantissa bits of each input (the interpreter computes fp32)
    expected = fastsup.train(backend="torch", device=DEVICE, **kwargs)
    actual = fastsup.train(backend="triton", device=DEVICE, strategy=strategy, precision=precision, **kwargs)
    assert actual.backend == "triton"
    for name in expected.params:
        assert _rel_rms(actual.params[name], expected.params[name]) < tol, name
    torch.testing.assert_close(actual.loss_history, expected.loss_history, rtol=tol, atol=1e-7)
    torch.testing.assert_close(actual.final_loss, expected.final_loss, rtol=tol, atol=1e-7)
    return actual


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("overrides", VARIANTS)
def test_short_run_matches_torch_backend(overrides, strategy, monkeypatch):
    strategy = _strategy(strategy, monkeypatch)
    if strategy == "persistent" and overrides.get("precision") == "tf32":
        with pytest.raises(ValueError, match="register path"):  # persistent mode has no dot path
            _compare(overrides, strategy)
        return
    _compare(overrides, strategy)


@pytest.mark.parametrize("overrides", LARGE)
def test_step_kernel_with_feature_tiles_matches_torch_backend(overrides):
    _compare(overrides, "step")


# 20→8 at B = 37 is 10 row-quads in batch blocks of 4: 16-row splits are one
# block each, the last one cut short (2 quads); 32-row splits are two blocks
# and two trips of the row loop, the last split one trip over half a block.
@pytest.mark.parametrize("split_rows", [16, 32], ids=["split16-three-splits", "split32-two-trips-each"])
def test_step_kernel_with_row_splits_matches_torch_backend(split_rows, monkeypatch):
    from fastsup.kernels import dispatch
    from fastsup.kernels.step import n_batch_blocks, n_row_splits

    monkeypatch.setattr(dispatch, "SPLIT_ROWS", split_rows)
    overrides = dict(model="relu_output", n_features=20, n_hidden=8, importance=1.0, batch_size=37)
    plan = dispatch.plan_for(20, 8, 37, "step", model="relu_output")
    assert (n_batch_blocks(37, plan), n_row_splits(37, plan), plan.split_quads) == (3, 3 if split_rows == 16 else 2,
                                                                                   split_rows // 4)
    _compare(overrides, "step")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_update_matches_torch_backend_to_fp32_rounding(strategy, monkeypatch):
    """After one step the weights differ from the torch backend's by rounding only."""
    strategy = _strategy(strategy, monkeypatch)
    kwargs = {**BASE, "steps": 1, "lr": 0.05}
    expected = fastsup.train(backend="torch", device=DEVICE, **kwargs)
    actual = fastsup.train(backend="triton", device=DEVICE, strategy=strategy, **kwargs)
    torch.testing.assert_close(actual.W, expected.W, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(actual.b, expected.b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("model", ["relu_output", "abs"])
def test_one_step_delta_w_matches_torch_optim_to_1e6(strategy, model, monkeypatch):
    """ΔW of one AdamW step equals torch.optim.AdamW's, given the torch backend's gradients, to 1e-6 relative.

    On a GPU this is what sees how the kernels round Adam's 1 - β: formed in
    the kernel from an fp32 β2 it is 1 - fp32(0.999), and ΔW comes out 3e-6
    too large.  The interpreter computes scalars in double, so there this
    holds either way.  lr 0.1 on small weights keeps ΔW large against the
    rounding of W itself (ulp(0.15) / 0.1 ≈ 1e-7).
    """
    from fastsup.backends.base import model_spec
    from fastsup.functional import loss_and_grads
    from fastsup.init import init_params

    strategy = _strategy(strategy, monkeypatch)
    kwargs = {**BASE, "steps": 1, "lr": 0.1, "weight_decay": 0.01, "model": model, "feature_probability": 0.5}
    config = TrainConfig(**{k: v for k, v in kwargs.items() if k != "progress"})
    init = {name: value * 0.05 if name != "b" else value for name, value in init_params(config, DEVICE).items()}
    result = fastsup.train(backend="triton", device=DEVICE, strategy=strategy, init=init, **kwargs)

    spec = DataSpec.from_config(config, DEVICE)
    x = sample_batch(spec, 0, config.batch_size)
    target = x.abs() if model == "abs" else x
    _, grads = loss_and_grads(init, x, target, config.importance_tensor().to(DEVICE), model_spec(config))
    params = {name: value.clone().requires_grad_() for name, value in init.items()}
    optimizer = torch.optim.AdamW(params.values(), lr=0.1, betas=config.betas, eps=config.eps, weight_decay=0.01)
    for name, value in params.items():
        value.grad = grads[name]
    optimizer.step()
    for name in init:
        expected = (params[name].detach() - init[name]).cpu()
        actual = result.params[name] - init[name].cpu()
        assert expected.abs().mean() > 0.05, name  # a real Adam step (|ΔW| ≈ lr), not the decay alone
        assert _rel_rms(actual, expected) < 1e-6, name


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(dict(), id="uniform-5-B16"),
        pytest.param(dict(model="abs", n_features=3, n_hidden=6, batch_size=37), id="signed-3-B37"),
        pytest.param(dict(n_features=9, feature_probability=[[0.23895961046218872], [1.0], [0.0]], batch_size=23,
                          seed=2**40 + 3, instance_ids=[2**32 - 1, 5, 2**31]), id="edge-p-big-seed-ids"),
    ],
)
def test_kernel_batches_are_bit_identical_to_the_cpu_torch_sampler(overrides):
    from fastsup.kernels.block import sample_batch as kernel_sample_batch

    config = TrainConfig(**{k: v for k, v in {**BASE, "importance": 1.0, **overrides}.items() if k != "progress"})
    spec, cpu_spec = DataSpec.from_config(config, DEVICE), DataSpec.from_config(config, "cpu")
    for step in (0, 7):
        expected = sample_batch(cpu_spec, step, config.batch_size)
        assert torch.equal(kernel_sample_batch(spec, step, config.batch_size).cpu(), expected)


# 20→5 at B = 64: the persistent kernel sums 8 blocks of 8 rows, the step
# kernel 4 blocks of 16, so the two strategies differ in the last bits; a
# hook that switched strategies would change the weights.
HOOKED = {**BASE, "n_features": 20, "n_hidden": 5, "n_instances": 2, "feature_probability": [[0.3], [0.1]],
          "importance": 1.0, "batch_size": 64}
# 5→2 at B = 37: the warp kernel sums each thread's rows and then across the
# warp, the step kernels in trips over their split; at B = 16, 64, 128 and
# 1024 the interpreter's sums agree bit for bit, so those shapes could not
# show a switch of strategy.
WARP_HOOKED = {**BASE, "batch_size": 37}


@pytest.mark.parametrize("strategy, shape", [
    pytest.param("auto", HOOKED, id="auto-tile"), pytest.param("persistent", HOOKED, id="persistent-tile"),
    pytest.param("step", HOOKED, id="step"), pytest.param("auto", WARP_HOOKED, id="auto-warp")])
def test_on_step_changes_nothing_and_sees_every_step(strategy, shape):
    plain = fastsup.train(backend="triton", device=DEVICE, strategy=strategy, **shape)
    seen = []
    hooked = fastsup.train(backend="triton", device=DEVICE, strategy=strategy,
                           on_step=lambda info: seen.append((info.step, info.loss)), **shape)
    for name in plain.params:
        assert torch.equal(hooked.params[name], plain.params[name]), name
    assert torch.equal(hooked.loss_history, plain.loss_history)
    assert torch.equal(hooked.final_loss, plain.final_loss)
    assert [step for step, _ in seen] == [0, 1, 2]
    # each step's own loss, kept by the hook (log_every=1: the history holds every step)
    assert torch.equal(torch.stack([loss for _, loss in seen]).cpu(), plain.loss_history)


@pytest.mark.parametrize("shape", [pytest.param(HOOKED, id="tile"), pytest.param(WARP_HOOKED, id="warp")])
def test_persistent_and_step_strategies_differ_at_this_shape(shape):
    """What makes the test above able to fail: the two strategies' sums round differently here."""
    persistent = fastsup.train(backend="triton", device=DEVICE, strategy="persistent", **shape)
    step = fastsup.train(backend="triton", device=DEVICE, strategy="step", **shape)
    assert not torch.equal(persistent.W, step.W)
    torch.testing.assert_close(persistent.W, step.W, rtol=1e-5, atol=1e-6)


def test_packed_instances_train_as_each_would_alone():
    """At B = 16 the warp kernel packs 8 instances per warp (dispatch.warp_pack): BASE's three share one program,
    whose other five slots repeat the last; alone, an instance fills its program's eight slots itself."""
    from fastsup.kernels.dispatch import plan_for

    assert plan_for(5, 2, BASE["batch_size"], model="relu_output").pack == 8
    together = fastsup.train(backend="triton", device=DEVICE, strategy="persistent", **BASE)
    for k, probability in enumerate(BASE["feature_probability"]):
        alone = fastsup.train(backend="triton", device=DEVICE, strategy="persistent",
                              **{**BASE, "n_instances": 1, "feature_probability": [probability], "instance_ids": [k]})
        assert torch.equal(alone.W[0], together.W[k]) and torch.equal(alone.b[0], together.b[k])
        assert torch.equal(alone.loss_history[:, 0], together.loss_history[:, k])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_chunked_kernel_run_equals_unchunked(strategy, monkeypatch):
    strategy = _strategy(strategy, monkeypatch)
    whole = fastsup.train(backend="triton", device=DEVICE, strategy=strategy, **BASE)
    chunked = fastsup.train(backend="triton", device=DEVICE, strategy=strategy, instance_chunk=2, **BASE)
    assert torch.equal(whole.W, chunked.W) and torch.equal(whole.final_loss, chunked.final_loss)


def test_unsupported_data_is_a_clear_error():
    with pytest.raises(ValueError, match="correlated sets"):
        fastsup.train(backend="triton", device=DEVICE, correlated_sets=[(0, 1)], **{**BASE, "feature_probability": 0.2})
    with pytest.raises(ValueError, match="strategy"):
        fastsup.train(backend="torch", strategy="step", **BASE)
