"""The static cost model (fastsup.kernels.cost_model): closed forms, scaling facts, traced cross-checks, CLI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from fastsup.config import TrainConfig
from fastsup.kernels.cost_model import (
    STRATEGIES,
    NotApplicable,
    Shape,
    cost,
    main,
    math_flops,
    table,
)

HAS_TRITON = importlib.util.find_spec("triton") is not None
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _plan(strategy, n_pad, m_pad, block_n, block_q, use_dot=False, split_quads=64):
    """A dispatcher Plan stand-in, so the Triton counts are checked without triton."""
    return SimpleNamespace(strategy=strategy, n_pad=n_pad, m_pad=m_pad, block_n=block_n, block_q=block_q,
                           use_dot=use_dot, reduce_block_n=block_n, split_quads=split_quads, grads_block_n=block_n,
                           grads_block_q=block_q)


TINY = Shape(n_features=5, n_hidden=2, n_instances=1, batch_size=4, steps=10, log_every=5)


# ---------------------------------------------------------------------------
# closed forms for n=5, m=2, B=4, I=1, written out by hand
# ---------------------------------------------------------------------------
# E = B·I·n = 20 batch elements, H = B·I·m = 8 hidden, P = I·n·m = 10 weights, V = I·n = 5 biases.


def test_math_flops_by_hand():
    # five contractions of 2·B·n·m = 2·4·5·2 = 80 FLOPs: a, z forward; gh, dW_dec, dW_enc backward
    assert math_flops(TINY) == 400


def test_notebook_forward_by_hand():
    fwd = cost(TINY, "notebook").phase("forward")
    # x W: 80, h Wᵀ: 80 (contractions); + b: 20; ReLU: 20
    assert fwd.contraction_flops == 160
    assert fwd.flops == 200
    # bytes (fp32): bmm1 reads x (80) + W (40), writes h (32); bmm2 reads h (32) + W (40), writes out (80);
    # add reads out (80) + b (20), writes 80; relu reads 80, writes 80
    assert fwd.bytes_read == (80 + 40) + (32 + 40) + (80 + 20) + 80
    assert fwd.bytes_written == 32 + 80 + 80 + 80
    assert fwd.launches == 4


def test_notebook_sampling_and_backward_by_hand():
    c = cost(TINY, "notebook")
    sample = c.phase("sample")
    # rand, rand: 80 B each; le reads 80 + p [I,1] (4), writes 20 bools; zeros(()) 4; where reads 20 + 80 + 4, writes 80
    assert sample.bytes_written == 80 + 80 + 20 + 4 + 80
    assert sample.bytes_read == (80 + 4) + (20 + 80 + 4)
    # two uniforms per element, 4 per Philox call on CUDA: 2 · 20 / 4
    assert c.philox_calls == 10
    bwd = c.phase("backward")
    # three bmm: hᵀg, gW, xᵀgh at 80 FLOPs each
    assert bwd.contraction_flops == 240
    # elementwise: div, mul, pow, mul, mul, neg, threshold, sum over batch (20 each) + add dW parts (10)
    assert bwd.flops - bwd.contraction_flops == 8 * 20 + 10


def test_torch_backend_by_hand():
    c = cost(TINY, "torch")
    assert c.contraction_flops == math_flops(TINY)
    # one Philox call per (instance, feature, row-quad): 1 · 5 · 1
    assert c.philox_calls == 5
    # n·m = 10 <= 64: each contraction is a broadcast multiply into [I, n, m, B] (40 elements, 160 B) and a sum
    fwd = c.phase("forward")
    products = [op for op in fwd.ops if "broadcast" in op.name]
    assert [op.written for op in products] == [160, 160]
    # AdamW on W (10) and b (5): per parameter 10 ops on the tensor, decay reads lr·wd [I]
    opt = c.phase("optimizer")
    assert sum(op.launches for op in opt.ops) == 7 + 2 * (2 + 10)


def test_triton_persistent_by_hand():
    plan = _plan("persistent", n_pad=8, m_pad=2, block_n=8, block_q=1)
    c = cost(TINY, "triton_persistent", plan=plan)
    # executed: 1 chunk of 4 rows on an 8x2 tile, 5 contractions of 2·4·8·2
    assert c.contraction_flops == 10 * 4 * 8 * 2
    # Philox: one call per (padded feature, row quad)
    assert c.philox_calls == 8
    # per step: W, b and both moments read and written (3 · 4 · (10 + 5) each way) and the three
    # schedule-table entries; one launch per run
    assert c.bytes == 2 * 3 * 4 * 15 + 12
    assert c.launches == 0 and c.launches_per_run == 1
    # per run: load p/inv_p/imp (3·20), lr, wd (8), ids (8); store the loss history
    n_logged = 3  # steps 0 and 5 (log_every 5), and the last step, 9
    assert TINY.n_logged == n_logged
    run_bytes = (60 + 8 + 8) + 4 * n_logged
    assert c.bytes_per_run == TINY.steps * c.bytes + run_bytes


def test_triton_step_by_hand():
    plan = _plan("step", n_pad=8, m_pad=2, block_n=8, block_q=1, split_quads=1)
    c = cost(TINY, "triton_step", plan=plan)
    assert c.launches == 4  # hidden, grads, reduce/update, step_index += 1
    assert c.contraction_flops == 2 * 6 * 4 * 8 * 2  # a, z, gh; z again, h gᵀ, x ghᵀ: 4 rows x 8 x 2 each
    assert c.philox_calls == 3 * 8  # x drawn in both feature passes of the hidden kernel and in the grads kernel
    written = lambda kernel: sum(op.written for op in c.ops if op.name.startswith(kernel))  # noqa: E731
    assert written("hidden kernel") == 4 * (2 * 2 * 4 + 1)  # a and gh [I, m, B], the block's loss
    partials = 4 * 1 * 1 * (10 + 5)  # [I, S, n, m] + [I, S, n], S = 1: tied, one matrix
    assert written("grads kernel") == partials
    reduce = c.phase("reduce")
    assert reduce.bytes_read == partials + 4  # and the loss
    # update reads and writes W, b and their moments: 3 · 4 · (10 + 5) each way
    opt = c.phase("optimizer")
    assert opt.bytes_written == 3 * 4 * 15 + 4  # + the step's loss [I]
    assert opt.bytes_read == 3 * 4 * 15 + 8 + 8 + 12  # + lr, wd, step index, schedule tables


# ---------------------------------------------------------------------------
# scaling facts
# ---------------------------------------------------------------------------


def _persistent(I, B=1024, n=5, m=2, steps=10_000):
    plan = _plan("persistent", n_pad=8, m_pad=2, block_n=8, block_q=64)
    return cost(Shape(n, m, I, B, steps=steps), "triton_persistent", plan=plan)


def test_persistent_step_bytes_do_not_depend_on_the_batch_and_are_linear_in_instances():
    ref = _persistent(10)
    for other in (_persistent(10, B=4096), _persistent(10, B=64)):  # the batch never leaves the chip
        assert other.bytes == ref.bytes and other.bytes_per_run == ref.bytes_per_run
    # parameters and moments per instance, plus the schedule tables shared by all
    assert _persistent(10_000).bytes - 12 == pytest.approx(1000 * (ref.bytes - 12))


@pytest.mark.parametrize("strategy", ["notebook", "torch"])
def test_batch_sized_traffic_scales_with_batch_and_instances(strategy):
    base = cost(Shape(5, 2, 100, 1024), strategy)
    assert cost(Shape(5, 2, 100, 2048), strategy).bytes / base.bytes == pytest.approx(2.0, rel=0.01)
    assert cost(Shape(5, 2, 200, 1024), strategy).bytes / base.bytes == pytest.approx(2.0, rel=0.01)
    assert cost(Shape(5, 2, 200, 1024), strategy).flops / base.flops == pytest.approx(2.0, rel=1e-6)


def test_step_partials_scale_with_row_splits_not_batch_blocks():
    plan = _plan("step", n_pad=8, m_pad=2, block_n=8, block_q=16, split_quads=64)  # 4 batch blocks per split
    one_split = cost(Shape(5, 2, 100, 256), "triton_step", plan=plan)
    four_splits = cost(Shape(5, 2, 100, 1024), "triton_step", plan=plan)
    stores = lambda c: sum(op.written for op in c.ops if "store partial" in op.name)  # noqa: E731
    assert stores(four_splits) == 4 * stores(one_split) == 4 * 100 * (5 * 2 + 5) * 4


def test_every_strategy_does_at_least_the_math():
    for strategy in STRATEGIES:
        plan = _plan("persistent" if strategy.endswith("persistent") else "step", 8, 2, 8, 64)
        c = cost(Shape(5, 2, 10, 1000), strategy, plan=plan)
        assert c.contraction_flops >= math_flops(Shape(5, 2, 10, 1000))
        if strategy in ("notebook", "torch", "torch_compiled"):
            assert c.contraction_flops == math_flops(Shape(5, 2, 10, 1000))


def test_ordering_on_the_intro_shape():
    """fused < compiled < eager/notebook in bytes per step; persistent touches almost nothing."""
    s = Shape(5, 2, 10_000, 1024)
    step = cost(s, "triton_step", plan=_plan("step", 8, 2, 8, 64))
    persistent = cost(s, "triton_persistent", plan=_plan("persistent", 8, 2, 8, 64))
    notebook, eager, compiled = (cost(s, k) for k in ("notebook", "torch", "torch_compiled"))
    assert persistent.bytes_per_step_amortised < step.bytes < compiled.bytes < notebook.bytes < eager.bytes
    # the notebook draws twice as many uniforms as fastsup's torch backend
    assert notebook.philox_calls == 2 * eager.philox_calls
    for c in (notebook, eager, step, persistent):
        seconds, bound = c.roofline_seconds()
        assert seconds > 0 and bound in ("FP32", "HBM", "Philox")


def test_not_applicable():
    with pytest.raises(NotApplicable, match="relu_output"):
        cost(Shape(3, 6, 4, 64, model="abs"), "notebook")
    with pytest.raises(ValueError, match="strategy"):
        cost(TINY, "cuda")
    with pytest.raises(TypeError, match="n_features"):
        cost(object(), "torch")


def test_accepts_a_train_config():
    config = TrainConfig(n_features=20, n_hidden=5, n_instances=7, batch_size=256, model="relu_hidden", steps=50)
    assert Shape.of(config) == Shape(20, 5, 7, 256, "relu_hidden", "relu", 50, 100, "adamw")
    assert cost(config, "torch").flops == cost(Shape.of(config), "torch").flops


# ---------------------------------------------------------------------------
# cross-check: the eager counts against a trace of the aten ops torch really runs
# ---------------------------------------------------------------------------

_FREE = {"view", "_unsafe_view", "permute", "expand", "unsqueeze", "transpose", "t", "slice", "select",
         "as_strided", "detach", "alias", "squeeze", "reshape", "_reshape_alias", "lift_fresh", "split",
         "unbind", "new_empty_strided", "empty", "empty_strided", "_record_function_enter_new",
         "_record_function_exit", "_local_scalar_dense", "zeros_like"}


class _Traffic(TorchDispatchMode):
    """Bytes each aten op reads (distinct inputs, broadcast inputs at storage size) and writes."""

    def __init__(self):
        super().__init__()
        self.read = self.written = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket.__name__ in _FREE:
            return out
        inputs = {}
        for a in tree_flatten((args, kwargs))[0]:
            if isinstance(a, torch.Tensor):
                inputs[(a.data_ptr(), tuple(a.shape), a.stride())] = min(
                    a.numel() * a.element_size(), a.untyped_storage().nbytes())
        self.read += sum(inputs.values())
        self.written += sum(o.numel() * o.element_size() for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor))
        return out


@pytest.mark.parametrize("fields", [
    dict(n_features=5, n_hidden=2),  # broadcast-sum contractions
    dict(n_features=20, n_hidden=5),  # bmm contractions
    dict(n_features=3, n_hidden=6, model="abs", batch_size=62),
    dict(n_features=20, n_hidden=5, model="relu_hidden", activation="exrelu", activation_threshold=-0.25),
    dict(n_features=20, n_hidden=5, model="linear", optimizer="adam"),
], ids=["5to2", "20to5", "abs", "relu_hidden-exrelu", "linear-adam"])
def test_torch_eager_matches_traced_traffic(fields):
    from fastsup.backends.torch_backend import TorchTrainer

    config = TrainConfig(n_instances=4, batch_size=fields.pop("batch_size", 64), steps=10, **fields)
    trainer = TorchTrainer(config, "cpu", compile=False)
    trainer.step(0, 1.0)
    traffic = _Traffic()
    with traffic:
        trainer.step(1, 1.0)
    c = cost(config, "torch")
    # the model also counts the two host->device scalar copies (16 bytes) the trace cannot see
    assert c.bytes_read == pytest.approx(traffic.read, rel=1e-3)
    assert c.bytes_written == pytest.approx(traffic.written, rel=1e-3)


def test_notebook_matches_traced_traffic():
    from benchmarks import notebook_baseline as nb

    I, n, m, B = 4, 5, 2, 64
    torch.manual_seed(0)
    model = nb.Model(nb.Config(n, m, I), feature_probability=torch.rand(I, 1), importance=torch.rand(1, n))
    nb.optimize(model, n_batch=B, steps=1, progress=False)
    traffic = _Traffic()
    with traffic:  # one step (a fresh AdamW's zero state, zeros_like, is not traced)
        nb.optimize(model, n_batch=B, steps=1, progress=False)
    c = cost(Shape(n, m, I, B), "notebook")
    assert c.bytes_read == pytest.approx(traffic.read, rel=3e-3)
    assert c.bytes_written == pytest.approx(traffic.written, rel=3e-3)


@pytest.mark.skipif(not HAS_TRITON, reason="needs triton (the dispatcher and the step launcher)")
def test_step_stores_match_the_launcher_buffers():
    from fastsup.backends.triton_backend import kernel_inputs
    from fastsup.init import init_params
    from fastsup.kernels.dispatch import plan_for
    from fastsup.kernels.step import FusedStepTrainer

    config = TrainConfig(n_features=20, n_hidden=5, n_instances=3, batch_size=1000, steps=4, model="abs")
    plan = plan_for(20, 5, 1000, "step", model="abs")
    inputs = kernel_inputs(config, init_params(config, "cpu"), [1.0] * config.steps, "cpu")
    b = FusedStepTrainer(inputs, plan).buffers
    assert b.n_splits > 1 and b.n_blocks > b.n_splits  # the sizes are not the same count twice
    c = cost(config, "triton_step")
    written = lambda kernel: sum(op.written for op in c.ops if op.name.startswith(kernel))  # noqa: E731
    nbytes = lambda *tensors: sum(t.numel() * t.element_size() for t in tensors)  # noqa: E731
    assert written("hidden kernel") == nbytes(b.a, b.gh, b.loss_part)
    assert written("grads kernel") == nbytes(b.d_enc_part, b.d_dec_part, b.db_part)
    assert c.plan == plan


# ---------------------------------------------------------------------------
# the table and the CLI
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_TRITON, reason="the dispatcher needs triton")
def test_table_reports_the_dispatchers_choice():
    from fastsup.kernels.dispatch import plan_for

    text = table(5, 2, 10_000, 1024)
    plan = plan_for(5, 2, 1024, model="relu_output")
    assert f"dispatcher picks {plan.strategy}" in text and plan.reason in text
    for strategy in STRATEGIES:
        assert strategy in text
    assert "roofline bound, not measured" in text
    big = table(400, 30, 20, 1024)
    assert "dispatcher picks step" in big
    assert "triton_persistent: n/a" in big


@pytest.mark.skipif(not HAS_TRITON, reason="the dispatcher needs triton")
def test_cli_prints_the_dispatchers_choice():
    from fastsup.kernels.dispatch import plan_for

    out = subprocess.run(
        [sys.executable, "-m", "fastsup.kernels.cost_model", "--n", "5", "--m", "2", "--instances", "10000",
         "--batch", "1024"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    plan = plan_for(5, 2, 1024, model="relu_output")
    assert plan.strategy == "persistent"
    assert "dispatcher picks persistent (plan_for): " + plan.reason in out.stdout
    assert "FLOP/byte" in out.stdout and "Philox/step" in out.stdout


def test_cli_rejects_bad_shapes(capsys):
    with pytest.raises(SystemExit):
        main(["--n", "0", "--m", "2", "--instances", "10"])
    assert "n_features" in capsys.readouterr().err


def test_imports_and_counts_without_triton():
    """The arithmetic needs neither triton nor a GPU; the Triton rows then say why they are missing."""
    script = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "triton" or name.startswith("triton."):
                    raise ImportError("triton blocked for this test")
        sys.meta_path.insert(0, Block())
        from fastsup.kernels import cost_model
        from fastsup.kernels.cost_model import cost, table, Shape
        assert cost(Shape(5, 2, 10), "notebook").flops > 0
        assert cost(Shape(5, 2, 10), "torch").bytes > 0
        text = table(5, 2, 10, 1024)
        assert "dispatcher unavailable" in text, text
        assert "triton_step: n/a" in text and "triton_persistent: n/a" in text, text
        assert "triton" not in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("ok")
