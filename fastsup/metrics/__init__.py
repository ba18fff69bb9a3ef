"""The paper's measures of trained weights, the phases of a feature, and the polytopes features form.

* :mod:`.weights`: norms, superposition, dimensionality ``D_i``, ``D*``, represented features;
* :mod:`.phases`: a feature's phase (not represented / dedicated / superposition) on
  trained weights, and the n→n−1 theory's candidate losses and closed-form phase;
* :mod:`.polytopes`: the polytope a small group of features forms;
* :mod:`.pairs`: how the two features of a pair relate (orthogonal, antipodal, collapsed);
* :mod:`.attacks`: adversarial loss and vulnerability along a model's own interference directions;
* :mod:`.neurons`: how monosemantic each hidden neuron of a privileged basis is;
* :mod:`.absolute_value`: which neurons each feature of the ``abs`` model uses, and its abs pairs;
* :mod:`.data_points`: the hidden vectors of data points and their dimensionality (memorisation).

Everything is importable from ``fastsup.metrics`` directly.
"""

from .absolute_value import *  # noqa: F401,F403
from .absolute_value import __all__ as _absolute_value_all
from .attacks import *  # noqa: F401,F403
from .attacks import __all__ as _attacks_all
from .data_points import *  # noqa: F401,F403
from .data_points import __all__ as _data_points_all
from .neurons import *  # noqa: F401,F403
from .neurons import __all__ as _neurons_all
from .pairs import *  # noqa: F401,F403
from .pairs import __all__ as _pairs_all
from .phases import *  # noqa: F401,F403
from .phases import __all__ as _phases_all
from .polytopes import *  # noqa: F401,F403
from .polytopes import __all__ as _polytopes_all
from .weights import *  # noqa: F401,F403
from .weights import REPRESENTED_THRESHOLD, _as_weights  # noqa: F401  (plots validate W with the same check)
from .weights import __all__ as _weights_all

__all__ = [*_weights_all, "REPRESENTED_THRESHOLD", *_phases_all, *_polytopes_all, *_pairs_all, *_attacks_all,
           *_neurons_all, *_absolute_value_all, *_data_points_all]
