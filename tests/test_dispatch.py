"""The dispatcher's register budgets, as the full compile table set them (``kernels/dispatch.py``)."""

from __future__ import annotations

import pytest
from conftest import requires_triton

pytestmark = requires_triton


def plan(n, m, model="relu_output", batch_size=1024):
    from fastsup.kernels.dispatch import plan_for

    return plan_for(n, m, batch_size, "persistent", model=model)


@pytest.mark.parametrize("n, m", [pytest.param(n, m, id=f"{n}to{m}") for n, m in [(6, 3), (10, 5), (20, 1), (20, 5)]])
def test_abs_keeps_two_gradient_sums_so_it_gets_half_the_rows(n, m):
    tied, two_matrices = plan(n, m), plan(n, m, "abs")
    assert (two_matrices.n_pad, two_matrices.m_pad) == (tied.n_pad, tied.m_pad)
    assert two_matrices.block_q * 2 == tied.block_q


@pytest.mark.parametrize("n, m", [pytest.param(3, 6, id="3to6"), pytest.param(100, 1, id="100to1")])
def test_abs_outside_8_to_32_features_keeps_the_full_budget(n, m):
    assert plan(n, m, "abs").block_q == plan(n, m).block_q


def test_a_two_wide_hidden_layer_counts_twice_from_32_features():
    assert plan(20, 2).block_q * 2 == plan(20, 1).block_q  # 32x2 and 32x1: same width floor of 4
    assert plan(100, 2).block_q * 2 == plan(100, 1).block_q


def test_eight_features_on_the_quad_per_thread_path_pad_the_hidden_layer_to_two():
    for model in ("relu_output", "relu_hidden", "abs"):
        assert (plan(5, 1, model).n_pad, plan(5, 1, model).m_pad, plan(5, 1, model).block_q) == (8, 2, 128)
    assert (plan(5, 1, "linear").m_pad, plan(5, 1, "linear").block_q) == (1, 64)  # the spread path
    assert plan(3, 1).m_pad == 1  # 4x1 compiled clean


def test_the_model_must_be_named():
    from fastsup.kernels.dispatch import plan_for

    with pytest.raises(TypeError, match="model"):
        plan_for(5, 2, 1024)
