"""The serving engine: `Engine` (the public, thread-safe API) over `EngineCore` (one step).

Modules:
    engine       Engine: requests in, outputs out; a loop thread runs the core
    engine_core  EngineCore: admit, schedule, plan logits, forward, sample, process outputs
"""

from sglc.runtime.engine.engine import Engine, ScoreResult, default_model_path

__all__ = ["Engine", "ScoreResult", "default_model_path"]
