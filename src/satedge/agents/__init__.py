"""Learners and references. The heuristics here are numpy-only; learning agents need torch."""

from __future__ import annotations

from satedge.agents.heuristics import GreedyPolicy, RandomPolicy, make_policy

__all__ = ["GreedyPolicy", "RandomPolicy", "make_policy"]
