"""The dispatcher's register budgets, as the full compile table set them (``kernels/dispatch.py``)."""

from __future__ import annotations

import pytest
from conftest import requires_triton

pytestmark = requires_triton


def plan(n, m, model="relu_output", batch_size=1024):
    from fastsup.kernels.dispatch import plan_for

    return plan_for(n, m, batch_size, "persistent", model=model)


# shapes past the warp kernel's register budget, on the tile kernel
@pytest.mark.parametrize("n, m", [pytest.param(n, m, id=f"{n}to{m}") for n, m in [(12, 4), (10, 5), (20, 1), (20, 5)]])
def test_abs_keeps_two_gradient_sums_so_it_gets_half_the_rows(n, m):
    tied, two_matrices = plan(n, m), plan(n, m, "abs")
    assert tied.kernels == two_matrices.kernels == ("persistent_run",)
    assert (two_matrices.n_pad, two_matrices.m_pad) == (tied.n_pad, tied.m_pad)
    assert two_matrices.block_q * 2 == tied.block_q


@pytest.mark.parametrize("n, m", [pytest.param(64, 1, id="64to1"), pytest.param(100, 1, id="100to1")])
def test_abs_outside_8_to_32_features_keeps_the_full_budget(n, m):
    assert plan(n, m, "abs").kernels == ("persistent_run",)
    assert plan(n, m, "abs").block_q == plan(n, m).block_q


@pytest.mark.parametrize("n", [pytest.param(n, id=f"{n}to2") for n in (65, 100, 128)])
def test_abs_at_128x2_takes_twice_the_rows_on_8_warps(n):
    # the 4-warp tile spilled under triton's --regAllocOptLevel=2 (PERSISTENT_ABS_WIDE)
    wide, one_hidden = plan(n, 2, "abs"), plan(n, 1, "abs")
    assert (wide.n_pad, wide.m_pad, wide.block_q, wide.num_warps) == (128, 2, 2 * one_hidden.block_q, 8)
    assert wide.launch_options() == dict(num_warps=8)
    assert plan(n, 2).num_warps == 4  # the tied model at the same tile is unchanged
    assert plan(n, 2, "abs", batch_size=8).block_q == 2  # never more quads than the batch has


def test_a_two_wide_hidden_layer_counts_twice_from_32_features():
    assert plan(20, 2).block_q * 2 == plan(20, 1).block_q  # 32x2 and 32x1: same width floor of 4
    assert plan(100, 2).block_q * 2 == plan(100, 1).block_q


@pytest.mark.parametrize("n, m, model", [(2, 1, "relu_output"), (5, 2, "relu_output"), (3, 2, "linear"),
                                         (6, 3, "relu_hidden"), (3, 6, "abs"), (6, 3, "abs"), (12, 1, "relu_output")])
def test_tiny_models_take_the_warp_kernel_at_their_exact_size(n, m, model):
    from fastsup.kernels.dispatch import WARP_REGISTER_WORDS, warp_words

    chosen = plan_for_auto(n, m, model)
    assert warp_words(n, m, model) <= WARP_REGISTER_WORDS
    assert (chosen.kernels, chosen.strategy, chosen.n_pad, chosen.m_pad, chosen.num_warps) == (("warp_run",), "persistent",
                                                                                               n, m, 1)
    assert plan(n, m, model).kernels == ("warp_run",)  # forced persistent: the same
    assert plan_for_auto(n, m, model, "step").kernels == ("step_hidden", "step_grads", "reduce_update")  # forced step


# pack = 32 / next_pow2(cdiv(B, 4)), at least 1: every thread of the warp holds one row-quad of its instance
@pytest.mark.parametrize("batch_size, pack", [(1024, 1), (128, 1), (100, 1), (64, 2), (37, 2), (32, 4), (16, 8),
                                              (5, 16), (4, 32), (1, 32)])
def test_small_batches_pack_instances_into_the_warp(batch_size, pack):
    from fastsup.kernels.dispatch import QUADS_PER_WARP

    packed = plan(5, 2, batch_size=batch_size)
    assert packed.warp and (packed.pack, packed.block_q, packed.num_warps) == (pack, QUADS_PER_WARP // pack, 1)
    assert plan(20, 5, batch_size=batch_size).pack == 1  # the tile kernel trains one instance per program


@pytest.mark.parametrize("n, m, model", [(13, 1, "relu_output"), (11, 1, "abs"), (10, 5, "relu_hidden"),
                                         (20, 5, "linear")])
def test_past_the_warp_register_budget_the_tile_kernel_trains(n, m, model):
    from fastsup.kernels.dispatch import WARP_REGISTER_WORDS, warp_words

    assert warp_words(n, m, model) > WARP_REGISTER_WORDS
    assert plan_for_auto(n, m, model).kernels == ("persistent_run",)


STEP_SHAPES = [(400, 30, "relu_output", "ieee"), (100, 10, "abs", "ieee"), (5, 2, "linear", "ieee"),
               (1000, 100, "relu_hidden", "ieee"), (400, 100, "relu_output", "tf32"), (100, 10, "relu_hidden", "tf32")]


@pytest.mark.parametrize("n, m, model, precision", [pytest.param(*s, id=f"{s[0]}to{s[1]}-{s[2]}-{s[3]}")
                                                    for s in STEP_SHAPES])
@pytest.mark.parametrize("batch_size", [1024, 100, 4])
def test_step_grads_take_half_the_product_and_whole_batch_blocks_per_split(n, m, model, precision, batch_size):
    from fastsup.kernels.dispatch import MIN_DOT, SPLIT_ROWS, plan_for
    from fastsup.kernels.step import n_row_splits

    p = plan_for(n, m, batch_size, "step", precision, model=model)
    assert p.grads_block_n * p.grads_block_q * 2 == p.block_n * p.block_q  # STEP_GRADS_HALVED
    if p.use_dot:
        assert min(p.grads_block_n, 4 * p.grads_block_q) >= MIN_DOT
    # reduce_update sums the losses of split_quads // block_q batch blocks per split, and
    # step_grads' row loop must end on a split's boundary
    assert p.split_quads % p.block_q == 0 and p.split_quads % p.grads_block_q == 0
    # one copy of the weight gradients per SPLIT_ROWS rows, not one per batch block
    assert n_row_splits(batch_size, p) == {1024: 1024 // SPLIT_ROWS, 100: 1, 4: 1}[batch_size]


def plan_for_auto(n, m, model, strategy="auto"):
    from fastsup.kernels.dispatch import plan_for

    return plan_for(n, m, 1024, strategy, model=model)


def test_the_model_must_be_named():
    from fastsup.kernels.dispatch import plan_for

    with pytest.raises(TypeError, match="model"):
        plan_for(5, 2, 1024)


def test_only_the_wide_abs_warp_kernel_caps_its_registers():
    from fastsup.kernels.dispatch import WARP_WIDE_ABS_MAX_REGISTERS

    wide_abs = plan_for_auto(3, 6, "abs")
    assert wide_abs.launch_options() == dict(num_warps=1, maxnreg=WARP_WIDE_ABS_MAX_REGISTERS)
    for n, m, model in [(6, 3, "abs"), (3, 6, "relu_output"), (5, 2, "relu_output"), (20, 5, "abs")]:
        assert "maxnreg" not in plan_for_auto(n, m, model).launch_options(), (n, m, model)


@pytest.mark.parametrize("n, m, model, precision, halved", [
    (20, 5, "relu_hidden", "ieee", True), (20, 5, "relu_output", "ieee", False),
    (20, 2, "abs", "ieee", True), (20, 2, "relu_output", "ieee", False),
    (100, 10, "relu_hidden", "tf32", True), (100, 10, "relu_output", "tf32", False)])
def test_step_tiles_that_spilled_take_half_the_rows(n, m, model, precision, halved):
    from fastsup.kernels.dispatch import plan_for

    chosen = plan_for(n, m, 1024, "step", precision, model=model)
    other = plan_for(n, m, 1024, "step", precision, model="linear")  # the same tile, full rows
    assert (chosen.block_n, chosen.m_pad) == (other.block_n, other.m_pad)
    assert chosen.block_q * (2 if halved else 1) == other.block_q


@pytest.mark.parametrize("n", [100, 400, 1000])
def test_step_tile_that_spilled_at_four_rows_takes_half_the_features(n):
    from fastsup.kernels.dispatch import plan_for

    chosen = plan_for(n, 5, 1024, "step", model="abs")
    other = plan_for(n, 5, 1024, "step", model="linear")  # the same shape, 128x8 at 4 rows
    assert (other.block_n, other.m_pad, other.block_q) == (128, 8, 1)
    assert (chosen.block_n, chosen.m_pad, chosen.block_q) == (64, 8, 1)
