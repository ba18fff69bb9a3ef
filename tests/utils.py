"""Helpers shared by test modules."""

from __future__ import annotations

import contextlib
import math

import torch

from fastsup.config import TrainConfig
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
