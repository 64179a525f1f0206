"""Several models in one engine (Prism): one memory budget whose KV arena every model's
pool grows and shrinks in, weights dropped when idle and reloaded on demand, and one loop
that runs the model whose request is due first. `PrismEngine` is the entry point."""

from sglc.runtime.prism.config import PrismConfig
from sglc.runtime.prism.engine import PrismEngine
from sglc.runtime.prism.model import PrismModel

__all__ = ["PrismConfig", "PrismEngine", "PrismModel"]
