"""Plots of toy-model weights, one module per figure family.

Figures are :class:`matplotlib.figure.Figure` objects built without pyplot
state (see :mod:`fastsup.plots.features_2d`), so they work headless and are
freed when dropped.
"""

from .features_2d import plot_features_2d
from .lines import plot_lines
from .neuron_stacks import plot_neuron_stacks
from .norm_bars import plot_norm_bars
from .phase import plot_phase_diagram

__all__ = ["plot_features_2d", "plot_lines", "plot_neuron_stacks", "plot_norm_bars", "plot_phase_diagram"]
