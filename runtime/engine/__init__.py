"""The serving engine: `Engine` (the public, thread-safe API) over `EngineCore` (one step).

    Engine ──(add, abort, abort_all, step, is_idle, stats, prebuild, close)──► EngineCore
                                                                                 │
        Scheduler · ModelRunner · sampling · OutputProcessor · ConstraintStage

Modules:
    engine       Engine: requests in, outputs out; a loop thread runs the core
    engine_core  EngineCore: admit, schedule, plan logits, forward, sample, process outputs
    build        options checked, kernels built, an EngineCore assembled and sized
    requests     RequestBuilder: prompts, params and constraints into Reqs (caller's thread)
    delivery     Sink, Receivers: where results go; the caller's callbacks run guarded
    cached_responses  the response cache on a request's way in (hits answered) and out
    stats        StepCounters, EngineStats
"""

from sglc.runtime.engine.engine import Engine, ScoreResult, default_model_path

__all__ = ["Engine", "ScoreResult", "default_model_path"]
