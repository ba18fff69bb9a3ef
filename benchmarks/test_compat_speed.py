"""``fastsup.compat.optimize`` (fast mode) against ``fastsup.train`` on the same work, CPU.

The drop-in layer must cost nothing: ``optimize(model, ...)`` evaluates the
lr schedule on the host, broadcasts the model's feature probability and
importance, hands the model's weights to ``fastsup.train`` and copies the
result back.  A hook that reads only the loss must not cost more than that
either (the weights are synced into the model only for hooks that read it).
All sides here train the same case (``benchmarks/cases.py``) for the same
number of steps per call, each continuing from its own weights, with
torch's default thread count.  Whole first calls in fresh processes, against
the notebook trainer, are ``benchmarks/compat_whole_calls.py``.

Run alone on a quiet machine (both cores idle):

    python -m pytest benchmarks/test_compat_speed.py --benchmark-enable

With ``--benchmark-disable`` (the default) each benchmark runs once, 2 steps,
as a smoke test, and the overhead check is skipped.
"""

from __future__ import annotations

import pytest
import torch

import fastsup
import fastsup.compat as compat
from benchmarks.cases import CASES, Case
from benchmarks.conftest import time_block

# Steps per call: enough that a call lasts ~0.5-2 s on the 2-core machine.  Both sides reach the
# same compile decision (same config, same process), so they run the same step.
BLOCK = {"a-intro-5to2x10": 500, "b-100to20x20": 40, "c-200to20x20": 20}
# compat's fastest call may take this factor of train's fastest (the minimum over rounds is the
# statistic least disturbed by other load on the machine).
MAX_OVERHEAD = 1.15

SECONDS: dict[str, dict[str, float]] = {}  # case -> trainer -> fastest round, seconds


class CompatRunner:
    """The notebook way: a compat Model, ``optimize`` called for each block of steps."""

    def __init__(self, case: Case):
        torch.manual_seed(0)
        self.model = compat.Model(
            compat.Config(case.n_features, case.n_hidden, case.n_instances),
            feature_probability=case.probability(case.n_instances),
            importance=case.importance(case.n_instances),
            device="cpu",
        )
        self.batch_size = case.batch_size

    hooks: tuple = ()  # the notebook way: no hooks

    def run(self, steps: int) -> None:
        compat.optimize(self.model, n_batch=self.batch_size, steps=steps, progress=False, seed=0, hooks=self.hooks)


class LossHookRunner(CompatRunner):
    """The notebook way with a hook that records the loss of every step (a loss curve)."""

    def __init__(self, case: Case):
        super().__init__(case)
        self.losses = []
        self.hooks = [lambda data: self.losses.append(data["loss"])]


class TrainRunner:
    """``fastsup.train`` directly, each call starting from the previous call's weights."""

    def __init__(self, case: Case):
        self.case = case
        self.params = None

    def run(self, steps: int) -> None:
        config = self.case.config(steps)
        result = fastsup.train(config, device="cpu", progress=False, init=self.params)
        self.params = result.params


def _time(benchmark, runner, case, trainer):
    stats = time_block(benchmark, runner.run, BLOCK[case.name], case.name, trainer)
    if stats is not None:
        SECONDS.setdefault(case.name, {})[trainer] = stats.min


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_compat_optimize(benchmark, case):
    benchmark.group = f"compat-{case.name}"
    _time(benchmark, CompatRunner(case), case, "compat.optimize")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fastsup_train(benchmark, case):
    benchmark.group = f"compat-{case.name}"
    _time(benchmark, TrainRunner(case), case, "fastsup.train")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_compat_optimize_with_a_loss_hook(benchmark, case):
    benchmark.group = f"compat-{case.name}"
    _time(benchmark, LossHookRunner(case), case, "compat.optimize + loss hook")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("trainer, reference", [("compat.optimize", "fastsup.train"), ("compat.optimize + loss hook", "compat.optimize")])
def test_compat_costs_nothing_over_train(case, trainer, reference):
    times = SECONDS.get(case.name, {})
    if trainer not in times or reference not in times:
        pytest.skip("needs both benchmarks of this case timed (--benchmark-enable)")
    ratio = times[trainer] / times[reference]
    assert ratio <= MAX_OVERHEAD, f"{trainer} takes {ratio:.2f}x the time of {reference} on {case.name}"


def test_whole_call_script_times_every_trainer_in_fresh_processes():
    # A smoke run of benchmarks/compat_whole_calls.py (3 steps): every column is a real timing.
    from benchmarks.compat_whole_calls import measure

    (row,) = measure("intro", steps=3, rounds=1, threads=1)
    assert set(row) == {"notebook", "cold", "warm", "second", "load"}
    assert all(row[name] > 0 for name in ("notebook", "cold", "warm", "second"))
