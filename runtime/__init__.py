"""The sglc runtime: engine, scheduler, caches, models, executor."""
