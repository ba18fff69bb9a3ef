"""Plots of toy-model weights, one module per figure family.

Figures are :class:`matplotlib.figure.Figure` objects built without pyplot
state (see :mod:`fastsup.plots.features_2d`), so they work headless and are
freed when dropped.
"""

from .branches import plot_loss_branches
from .double_descent import plot_double_descent
from .dynamics import plot_learning_dynamics, plot_trajectories_3d
from .features_2d import plot_features_2d
from .geometry import POLYTOPE_FRACTIONS, plot_feature_geometry
from .gram_and_norms import plot_gram_and_norms
from .heatmaps import plot_gram_heatmaps
from .lines import plot_lines
from .neuron_stacks import plot_neuron_stacks
from .norm_bars import plot_norm_bars
from .phase import plot_phase_diagram

__all__ = ["POLYTOPE_FRACTIONS", "plot_double_descent", "plot_feature_geometry", "plot_features_2d",
           "plot_gram_and_norms", "plot_gram_heatmaps", "plot_learning_dynamics", "plot_lines", "plot_loss_branches",
           "plot_neuron_stacks", "plot_norm_bars", "plot_phase_diagram", "plot_trajectories_3d"]
