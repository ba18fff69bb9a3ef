"""Sweeps at scale: a spec of axes and restarts, a chunk plan, a resumable on-disk store."""

from .run import SweepResult, load_sweep, run_sweep
from .spec import Sweep

__all__ = ["Sweep", "SweepResult", "load_sweep", "run_sweep"]
