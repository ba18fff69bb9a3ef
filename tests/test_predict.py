"""The instruction model (fastsup.kernels.instruction_model), the time model (fastsup.kernels.predict) and the
backend choice ``backend="auto"`` makes from them on CUDA.

The instruction model's fit against the compiled SASS is checked in
``tests/test_kernel_compile.py`` (it needs the compile check's report).
"""

from __future__ import annotations

import pytest
import torch
from conftest import requires_triton

from fastsup.backends import resolve_backend
from fastsup.config import TrainConfig

pytestmark = requires_triton
CUDA = torch.device("cuda")  # a device object only: nothing here runs on it


def test_warp_kernel_features_are_the_work_a_thread_is_handed():
    from fastsup.kernels.dispatch import plan_for
    from fastsup.kernels.instruction_model import features

    # B = 1024: 256 quads, 8 chunks of 32; each chunk draws 5 feature quads and trains 4 rows of 5x2
    plan = plan_for(5, 2, 1024, model="relu_output")
    assert features("warp_run", 5, 2, 1024, "relu_output", plan) == [8 * 5, 8 * 4 * 10, 8 * 4 * 2, 10 + 5, 1]
    assert features("warp_run", 3, 6, 1024, "abs", plan_for(3, 6, 1024, model="abs"))[3] == 2 * 18 + 3
    # B = 37, packed 2 per warp: 10 quads, one chunk of 16 per instance
    assert features("warp_run", 5, 2, 37, "relu_output", plan_for(5, 2, 37, model="relu_output")) == \
        [5, 4 * 10, 4 * 2, 10 + 5, 1]


def test_weight_gradient_features_count_the_row_sums_of_every_trip():
    from fastsup.kernels.dispatch import plan_for
    from fastsup.kernels.instruction_model import features

    # 2→1 at B = 1024: 4 trips of 16 quads (64 rows) over 128 threads; each trip sums 64 rows of
    # h gᵀ [1, 2], x ghᵀ [2, 1] and g [2]: 6 x 64 products, 3 per thread, in log2(64) = 6 butterfly steps
    plan = plan_for(2, 1, 1024, "step", model="relu_output")
    assert (plan.split_quads, plan.grads_block_q, plan.grads_block_n, plan.m_pad, plan.num_warps) == (64, 16, 2, 1, 4)
    assert features("step_grads", 2, 1, 1024, "relu_output", plan) == [4, 3 * 4, 4, 4 * 3 * 6, 1, 1]
    # B = 32: one split of 8 quads, 2 trips of 4 quads (16 rows); 6 x 16 products are fewer than the
    # threads, so every thread still runs each of the log2(16) = 4 steps
    small = plan_for(2, 1, 32, "step", model="relu_output")
    assert (small.split_quads, small.grads_block_q) == (8, 4)
    assert features("step_grads", 2, 1, 32, "relu_output", small)[3] == 2 * 1 * 4


def test_packed_instances_share_a_warp_in_the_time_model():
    from fastsup.kernels import predict
    from fastsup.kernels.dispatch import plan_for
    from fastsup.kernels.instruction_model import thread_instructions, threads_and_programs

    # B = 32: four 2→1 instances per warp, 8 threads each, one chunk of 8 quads per step
    plan = plan_for(2, 1, 32, model="relu_output")
    assert threads_and_programs("warp_run", 2, plan, 32) == (32, 1 / 4)
    per_thread = thread_instructions("warp_run", 2, 1, 32, "relu_output", plan)
    config = TrainConfig(n_features=2, n_hidden=1, n_instances=10**6 + 1, batch_size=32)
    seconds = predict.predictions(config)["triton_persistent"].seconds
    warps = 250_001  # cdiv(10**6 + 1, 4): the last warp's other slots repeat its one instance
    assert seconds == pytest.approx(per_thread * warps / (predict.H100_SXM_SMS * predict.ISSUE_PER_SM_CLOCK
                                                          * predict.H100_SXM_CLOCK_HZ))


def test_fit_recovers_known_coefficients_and_drops_negative_ones():
    from fastsup.kernels.instruction_model import errors, fit

    true = [3.0, 0.5, 100.0]
    rows = [([a, b, 1.0], sum(c * x for c, x in zip(true, [a, b, 1.0])), "") for a in (10, 40, 90) for b in (7, 300)]
    assert fit(rows) == pytest.approx(true, rel=1e-3)
    assert max(map(abs, errors(rows, fit(rows)))) < 1e-6
    # a feature that only hurts gets 0, not a negative coefficient
    anti = [([a, b, 1.0], 2 * a + 50 - 0.01 * b, "") for a in (10, 40, 90) for b in (7, 300)]
    fitted = fit(anti)
    assert fitted[1] == 0 and min(fitted) >= 0


def test_a_lone_warp_bounds_small_runs_and_the_issue_rate_large_ones():
    from fastsup.kernels import predict
    from fastsup.kernels.dispatch import plan_for
    from fastsup.kernels.instruction_model import thread_instructions

    plan = plan_for(5, 2, 1024, model="relu_output")
    per_thread = thread_instructions("warp_run", 5, 2, 1024, "relu_output", plan)
    lone = per_thread * predict.LONE_WARP_CLOCKS_PER_INSTRUCTION / predict.H100_SXM_CLOCK_HZ
    few = predict.predictions(TrainConfig(n_features=5, n_hidden=2, n_instances=10))["triton_persistent"]
    assert few.seconds == pytest.approx(lone)
    many = predict.predictions(TrainConfig(n_features=5, n_hidden=2, n_instances=10**6))["triton_persistent"]
    issue = per_thread * 10**6 / (predict.H100_SXM_SMS * predict.ISSUE_PER_SM_CLOCK * predict.H100_SXM_CLOCK_HZ)
    assert many.seconds == pytest.approx(issue) and issue > lone


def test_eager_torch_pays_its_dispatch_time_per_op():
    from fastsup.kernels import cost_model, predict

    config = TrainConfig(n_features=5, n_hidden=2, n_instances=10)
    ops = cost_model.cost(config, "torch").launches
    assert predict.predictions(config)["torch"].seconds == pytest.approx(ops * predict.TORCH_OP_SECONDS)  # tiny ops
    big = TrainConfig(n_features=400, n_hidden=30, n_instances=10**4)
    assert predict.predictions(big)["torch"].seconds > cost_model.cost(big, "torch").launches * predict.TORCH_OP_SECONDS


# A grid on which the prediction goes both ways: tiny models (the kernels), and wide step-path models over
# many instances (compiled torch).
GRID = [(n, m, instances, steps) for n, m in [(5, 2), (20, 5), (100, 10), (200, 20), (400, 30)]
        for instances in (10, 1000) for steps in (100, 30_000)]


def test_auto_backend_on_cuda_takes_the_kernels_exactly_where_they_are_predicted_no_slower():
    from fastsup.kernels.predict import kernels_are_faster

    chosen = {}
    for n, m, instances, steps in GRID:
        config = TrainConfig(n_features=n, n_hidden=m, n_instances=instances, steps=steps)
        chosen[n, m, instances, steps] = resolve_backend("auto", CUDA, config)
        assert (chosen[n, m, instances, steps] == "triton") == kernels_are_faster(config)[0], (n, m, instances, steps)
    assert {"triton", "torch"} <= set(chosen.values())  # the grid exercises both outcomes
    assert chosen[5, 2, 10, 100] == "triton"
    assert chosen[200, 20, 1000, 30_000] == "torch"


def test_asking_for_a_kernel_option_gets_the_kernels_even_where_predicted_slower():
    config = TrainConfig(n_features=200, n_hidden=20, n_instances=1000, steps=30_000)
    assert resolve_backend("auto", CUDA, config) == "torch"
    assert resolve_backend("auto", CUDA, config, strategy="step") == "triton"
    assert resolve_backend("auto", CUDA, config, precision="tf32") == "triton"
    assert resolve_backend("auto", torch.device("cpu"), config) == "torch"


def test_the_prediction_says_what_it_compared():
    from fastsup.kernels.predict import kernels_are_faster

    faster, why = kernels_are_faster(TrainConfig(n_features=5, n_hidden=2, n_instances=10))
    assert faster
    assert "triton_persistent" in why and "warp_run" in why and "not measured" in why
