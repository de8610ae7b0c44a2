"""Experiments: evaluation of policies, figure specs, the sweep runner and results storage."""
