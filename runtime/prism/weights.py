"""Dropping an idle model's weights and bringing them back when a request needs them.

The weights are freed (the runner keeps no reference) and reloaded from the model's
safetensors files on activation: the disk tier. Each activation's latency is recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from torch import nn

from sglc.runtime.model_runner import ModelRunner


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters (a tied one counted once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


class ModelWeights:
    """Whether a model's weights are resident; `drop` frees them, `activate` reloads them
    with `load` (a fresh model from disk) into the runner."""

    def __init__(self, runner: ModelRunner, load: Callable[[], nn.Module]) -> None:
        self.runner = runner
        self._load = load
        self.num_bytes = weight_bytes(runner.model)
        self.activation_s: list[float] = []  # each reload's wall time
        self.num_drops = 0

    @property
    def is_resident(self) -> bool:
        return self.runner.model is not None

    @property
    def model(self) -> nn.Module | None:
        return self.runner.model

    def drop(self) -> None:
        if not self.is_resident:
            return
        self.runner.model = None
        # NOTE: the runner's cache of lm_head rows would keep part of the weights alive
        self.runner._column_weights.clear()
        self.num_drops += 1

    def activate(self) -> float | None:
        """Reload the weights if dropped; the seconds it took, or None if resident."""
        if self.is_resident:
            return None
        started = time.perf_counter()
        self.runner.model = self._load()
        seconds = time.perf_counter() - started
        self.activation_s.append(seconds)
        return seconds
