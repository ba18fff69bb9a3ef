"""The CPU speed cases (the trainers timed on them are in ``peers.py``).

Each case is the notebook's setting for its size: importance decays as in the
notebook cell (0.9^i for the intro, 100^(-i/n) otherwise) and feature
probability 20^(-linspace(0, 1, I)) per instance, batch 1024.  ``GRID`` is a
2→1 phase diagram: 40 densities × 40 importances of the second feature.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from fastsup.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class Case:
    """A benchmark shape: sizes, importance and feature probability as functions of the instance count."""

    name: str
    n_features: int
    n_hidden: int
    n_instances: int
    importance: Callable[[int], torch.Tensor]  # I -> [1, n] or [I, n]
    probability: Callable[[int], torch.Tensor]  # I -> [I, 1]
    description: str = ""
    batch_size: int = 1024

    def scaled(self, factor: float) -> "Case":
        return dataclasses.replace(self, n_instances=max(1, round(self.n_instances * factor)))

    def config(self, steps: int) -> TrainConfig:
        return TrainConfig(
            n_features=self.n_features, n_hidden=self.n_hidden, n_instances=self.n_instances, model="relu_output",
            importance=self.importance(self.n_instances), feature_probability=self.probability(self.n_instances),
            batch_size=self.batch_size, steps=steps, log_every=max(1, min(100, steps // 10)),
        )


def decay(rate: float, n: int) -> Callable[[int], torch.Tensor]:
    """Importance rate^i, ``[1, n]``."""
    return lambda I: (rate ** torch.arange(n, dtype=torch.float32)).view(1, n)


def notebook_decay(n: int) -> Callable[[int], torch.Tensor]:
    """The notebook's 100→20 importance 100^(-linspace(0, 1, n)), ``[1, n]``."""
    return lambda I: (100 ** (-torch.linspace(0, 1, n))).view(1, n)


def log_probability(low_exp: float, high_exp: float) -> Callable[[int], torch.Tensor]:
    """Densities 10^linspace(high_exp, low_exp, I) per instance, ``[I, 1]``."""
    return lambda I: torch.logspace(high_exp, low_exp, I).view(I, 1)


NOTEBOOK_DENSITY = log_probability(-math.log10(20), 0.0)  # 20^(-linspace(0, 1, I))

CASES = [
    Case("a-intro-5to2x10", 5, 2, 10, decay(0.9, 5), NOTEBOOK_DENSITY),
    Case("b-100to20x20", 100, 20, 20, notebook_decay(100), NOTEBOOK_DENSITY),
    Case("c-200to20x20", 200, 20, 20, notebook_decay(200), NOTEBOOK_DENSITY),
]


def phase_grid(side: int) -> tuple[Callable[[int], torch.Tensor], Callable[[int], torch.Tensor]]:
    """A side x side 2->1 grid: density 10^linspace(0, -2, side) by second-feature importance 10^linspace(-1, 1, side)."""
    density = torch.logspace(0, -2, side).repeat_interleave(side)
    second = torch.logspace(-1, 1, side).repeat(side)
    importance = lambda I: torch.stack([torch.ones(side * side), second], dim=1)  # noqa: E731
    probability = lambda I: density.view(-1, 1)  # noqa: E731
    return importance, probability


GRID = Case("d-2to1-grid-1600", 2, 1, 1600, *phase_grid(40), description="2->1 phase grid, 40 x 40")
SPEED_CASES = [*CASES, GRID]
