"""Experiment 6 (nonuniform) at the small scale, and its rotation of the 2-D plots on constructed weights."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fastsup.experiments import get_experiment, run_experiment
from fastsup.experiments.nonuniform import OTHER_DENSITY, rotate_upright


def at(angle_degrees: float, length: float = 1.0) -> list[float]:
    a = math.radians(angle_degrees)
    return [length * math.cos(a), length * math.sin(a)]


def test_rotate_upright_turns_feature_0_up_or_feature_1_when_feature_0_is_not_represented():
    W = torch.tensor([[at(30), at(102), at(174), at(246), at(318)],        # a pentagon, feature 0 at 30°
                      [at(0, 0.1), at(200), at(290), at(20), at(110)]],   # feature 0 unlearned: a square
                     dtype=torch.float64)
    rotated = rotate_upright(W)
    torch.testing.assert_close(rotated[0, 0], torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(rotated[1, 1], torch.tensor([0.0, 1.0], dtype=torch.float64))
    # a rotation: lengths and angles between features are kept
    torch.testing.assert_close(rotated @ rotated.transpose(1, 2), W @ W.transpose(1, 2))
    torch.testing.assert_close(torch.linalg.det(torch.linalg.lstsq(W, rotated).solution), torch.ones(2, dtype=torch.float64))
