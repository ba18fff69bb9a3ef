"""Tests of fastsup.plots, one module per figure family."""
