"""fastsup: train thousands of toy models of superposition at once.

``fastsup.train(...)`` runs a sweep and returns a ``TrainResult``;
``fastsup.load(path)`` reads a saved one; ``fastsup.evaluate(result, ...)``
gives its loss under any data distribution; ``result.hidden_activations(n,
out)`` exports hidden activations for SAE training (``fastsup.load_activations``
reads them back).  ``fastsup.metrics`` has the paper's measures,
``fastsup.experiments`` the paper's experiments.
"""

__version__ = "0.1.0"

from . import metrics  # noqa: E402
from .activations import Activations, load_activations  # noqa: E402
from .config import TrainConfig  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .result import TrainResult, load  # noqa: E402
from .sweep import Sweep, SweepResult, load_sweep, run_sweep  # noqa: E402
from .train import DivergenceWarning, train  # noqa: E402

__all__ = ["Activations", "DivergenceWarning", "Sweep", "SweepResult", "TrainConfig", "TrainResult", "evaluate", "load",
           "load_activations", "load_sweep", "metrics", "run_sweep", "train"]
