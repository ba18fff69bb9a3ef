"""The one step loop (``backends.base.run_steps``): windows, replays, history, checkpoints, hooks, progress."""

from __future__ import annotations

import dataclasses

import torch

from fastsup.backends.base import ReplaysWindows, RunOptions, run_steps, step_windows
from fastsup.config import TrainConfig
from fastsup.data import DataSpec

CONFIG = TrainConfig(n_features=2, n_hidden=1, n_instances=3, steps=250, log_every=100, batch_size=8)


def options(**fields) -> RunOptions:
    return RunOptions(scales=[1.0] * CONFIG.steps, progress=lambda steps: None, **fields)


def test_windows_end_at_logged_and_checkpoint_steps():
    # logged: 0, 100, 200 and the last, 249
    assert step_windows(CONFIG, options()) == [(0, 1), (1, 101), (101, 201), (201, 250)]
    assert step_windows(CONFIG, options(checkpoint_steps=(0, 50, 100, 120))) == [
        (0, 1), (1, 51), (51, 101), (101, 121), (121, 201), (201, 250)]


def test_a_hook_makes_every_step_a_window():
    assert step_windows(CONFIG, options(on_step=lambda info: None)) == [(s, s + 1) for s in range(CONFIG.steps)]


class Counter:
    """A step trainer whose W counts the steps trained and whose loss is the step index."""

    def __init__(self):
        self.params = {"W": torch.zeros(CONFIG.n_instances, 2, 1), "b": torch.zeros(CONFIG.n_instances, 2)}
        self.trained = 0

    def step(self, step: int, lr_scale: float) -> torch.Tensor:
        assert step == self.trained, "steps must come in order, each once"
        self.trained += 1
        self.params["W"] += 1
        return torch.full((CONFIG.n_instances,), float(step))


class ReplayingCounter(Counter):
    """Replays a window length from its second coming, like ``FusedStepTrainer`` on CUDA."""

    def __init__(self):
        super().__init__()
        self.seen, self.replayed = set(), []

    def replay_window(self, count: int):
        if count not in self.seen:
            self.seen.add(count)
            return None
        self.replayed.append(count)
        for _ in range(count):
            loss = self.step(self.trained, 1.0)
        return loss


def run(trainer, **fields):
    """``run_steps`` on ``trainer``, and what it reported to the progress bar."""
    reports = []
    opts = dataclasses.replace(options(**fields), progress=reports.append)
    return run_steps(trainer, CONFIG, DataSpec.from_config(CONFIG, "cpu"), opts), reports


def test_replayed_windows_give_what_stepping_gives():
    assert isinstance(ReplayingCounter(), ReplaysWindows) and not isinstance(Counter(), ReplaysWindows)
    stepped, stepped_reports = run(Counter(), checkpoint_steps=(50, 120))
    replaying = ReplayingCounter()
    replayed, replayed_reports = run(replaying, checkpoint_steps=(50, 120))
    assert replaying.replayed == [50]  # window lengths 1, 50, 50, 20, 80, 49: only 50 comes twice
    assert replaying.trained == CONFIG.steps
    for out in (stepped, replayed):
        assert out.loss_steps == [0, 100, 200, 249]
        assert out.loss_history[:, 0].tolist() == [0.0, 100.0, 200.0, 249.0]
        assert out.checkpoints["W"][:, 0, 0, 0].tolist() == [51.0, 121.0]  # after the update of steps 50, 120
        assert out.params["W"][0, 0, 0].item() == CONFIG.steps
    assert sum(stepped_reports) == sum(replayed_reports) == CONFIG.steps
    assert stepped_reports == [100, 100, 50]
    assert replayed_reports == [101, 100, 49]  # a replayed window reports when it ends


def test_a_hook_sees_every_step_and_its_own_loss():
    seen = []
    run(ReplayingCounter(), on_step=lambda info: seen.append((info.step, info.loss)))
    assert [step for step, _ in seen] == list(range(CONFIG.steps))
    assert [loss[0].item() for _, loss in seen] == [float(step) for step in range(CONFIG.steps)]
