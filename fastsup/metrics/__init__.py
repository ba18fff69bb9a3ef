"""The paper's measures of trained weights.

* :mod:`.weights`: norms, superposition, dimensionality ``D_i``, ``D*``, represented features.

Everything is importable from ``fastsup.metrics`` directly.
"""

from .weights import *  # noqa: F401,F403
from .weights import REPRESENTED_THRESHOLD, _as_weights  # noqa: F401  (plots validate W with the same check)
from .weights import __all__ as _weights_all

__all__ = [*_weights_all, "REPRESENTED_THRESHOLD"]
