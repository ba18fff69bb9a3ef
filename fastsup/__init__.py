"""fastsup: train thousands of toy models of superposition at once.

``fastsup.train(...)`` runs a sweep and returns a ``TrainResult``;
``fastsup.load(path)`` reads a saved one.  ``fastsup.metrics`` has the
paper's measures, ``fastsup.experiments`` the paper's experiments.
"""

from . import metrics
from .config import TrainConfig
from .result import TrainResult, load
from .train import DivergenceWarning, train

__all__ = ["DivergenceWarning", "TrainConfig", "TrainResult", "load", "metrics", "train"]
__version__ = "0.1.0"
