"""Tests of fastsup.experiments: the runner and registry, and each experiment's science at the small scale."""
