"""Continuous-batching scheduler and its policies."""
