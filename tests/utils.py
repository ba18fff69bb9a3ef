"""Helpers shared by test modules."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch
from matplotlib.figure import Figure

from fastsup.config import TrainConfig
from fastsup.experiments import EXPERIMENTS, Experiment, Settings
from fastsup.experiments.tables import instance_table
from fastsup.result import TrainResult

DTYPE = torch.float64  # constructed geometries are exact in float64


def regular_polygon(k: int) -> torch.Tensor:
    """k unit vectors at angles 2πj/k in 2-D, shape [k, 2]."""
    angles = 2 * math.pi * torch.arange(k, dtype=DTYPE) / k
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)


def tetrahedron() -> torch.Tensor:
    """Four unit vectors of a regular tetrahedron in 3-D (pairwise dot -1/3)."""
    v = torch.tensor(
        [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=DTYPE
    )
    return v / math.sqrt(3)


def synthetic_result(seed: int, *, n_instances: int = 3, n_features: int = 5, n_hidden: int = 2,
                     model: str = "relu_output") -> TrainResult:
    """A TrainResult with random tensors, built without training (its config's seed identifies it)."""
    config = TrainConfig(n_features=n_features, n_hidden=n_hidden, n_instances=n_instances, model=model,
                         steps=1, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    I, n, m = n_instances, n_features, n_hidden
    shapes = {"W1": (I, n, m), "W2": (I, m, n)} if model == "abs" else {"W": (I, n, m)}
    params = {name: torch.randn(*shape, generator=gen) for name, shape in {**shapes, "b": (I, n)}.items()}
    return TrainResult(config, params, torch.rand(1, I, generator=gen), torch.zeros(1, dtype=torch.int64),
                       torch.rand(I, generator=gen), backend="torch")


def assert_same_result(a: TrainResult, b: TrainResult) -> None:
    assert a.config == b.config and a.backend == b.backend
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name]), name
    for name in ("loss_history", "loss_steps", "final_loss"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


@dataclasses.dataclass(frozen=True, kw_only=True)
class TinySettings(Settings):
    n_instances: int = 3


def tiny_experiment(name: str, number: int) -> Experiment:
    """A registered-experiment stand-in that trains 4→2 × 3 instances for 3 steps, with two figures."""
    def spec(settings):
        return {name: settings.config(n_features=4, n_hidden=2, n_instances=settings.n_instances)}

    def figures(outcome, table):
        main_figure, second = Figure(figsize=(3, 2)), Figure(figsize=(3, 2))
        main_figure.add_subplot().plot(table["final_loss"])
        second.add_subplot().plot(table["n_represented"])
        return {name: main_figure, f"{name}-represented": second}

    return Experiment(name, f"{name}: a tiny experiment (test only)", number=number,
                      scales={"small": TinySettings(steps=3, batch_size=8), "paper": TinySettings(steps=6)},
                      spec=spec, analysis=lambda outcome: instance_table(name, outcome.result()), figures=figures)


def only_experiments(monkeypatch, experiments) -> None:
    """Make the registry hold just ``experiments`` for one test."""
    for key in list(EXPERIMENTS):
        monkeypatch.delitem(EXPERIMENTS, key)
    for experiment in experiments:
        monkeypatch.setitem(EXPERIMENTS, experiment.name, experiment)


@contextlib.contextmanager
def one_thread():
    """Train with one intra-op thread.  On a CPU shared with other jobs, two threads on tiny models spend their time waiting for each other: a 5 → 2 run of 24
    instances × 1000 steps took 40 s with two threads and 5 s with one (2-core machine, Dec 2026)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
