"""What a cached response is keyed by: the model's identity, the prompt's token ids, and every
sampling parameter that can change the output (the constraint among them).

A model's identity is a digest of its directory (config, tokenizer files, and for each
weight file its size and a sample of its bytes) plus the engine options that change outputs
(dtype, device type, kernel backend, KV policy, LoRA adapters), so a different checkpoint,
a retrained one saved in place or another dtype never reads another's answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from sglc.runtime.core import SamplingParams

_SAMPLED_CHUNKS = 16  # evenly spaced chunks of each weight file go into its digest
_CHUNK_BYTES = 1 << 16
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
# SamplingParams fields that never change a request's output
_NOT_IN_KEY = frozenset({"client"})
# float parameters, keyed as floats: temperature=0 and temperature=0.0 are one request
_FLOAT_FIELDS = frozenset(f.name for f in dataclasses.fields(SamplingParams)
                          if isinstance(f.default, float))


def is_deterministic(params: SamplingParams) -> bool:
    """Whether the request's output is a function of its key: greedy, or seeded sampling.
    Requests that generate nothing (`max_new_tokens=0`, a prefix warm-up) are not cached."""
    return params.max_new_tokens > 0 and (params.is_greedy or params.seed is not None)


def directory_digest(path: str | os.PathLike[str]) -> str:
    """A digest of a model (or adapter) directory: every file's name and size, the full
    bytes of small files (configs, tokenizers) and sampled chunks of weight files."""
    digest = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(root).as_posix()}\0{size}\0".encode())
        with file.open("rb") as f:
            if not file.name.endswith(_WEIGHT_SUFFIXES) or size <= _SAMPLED_CHUNKS * _CHUNK_BYTES:
                digest.update(f.read())
                continue
            step = (size - _CHUNK_BYTES) // (_SAMPLED_CHUNKS - 1)
            for k in range(_SAMPLED_CHUNKS):
                f.seek(k * step)
                digest.update(f.read(_CHUNK_BYTES))
    return digest.hexdigest()


def model_identity(model_dir: str | os.PathLike[str], options: Mapping[str, object],
                   adapters: Mapping[str, str] | None = None) -> str:
    """The identity of a served model: its directory's digest, the output-changing engine
    `options` and each LoRA adapter's digest by name."""
    record = {
        "model": directory_digest(model_dir),
        "options": {k: options[k] for k in sorted(options)},
        "adapters": {name: directory_digest(p) for name, p in sorted((adapters or {}).items())},
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def request_key(model_id: str, prompt_ids: list[int], params: SamplingParams) -> str:
    """The cache key of one request (all its `n` samples)."""
    fields = {k: float(v) if k in _FLOAT_FIELDS else v
              for k, v in dataclasses.asdict(params).items() if k not in _NOT_IN_KEY}
    record = [model_id, list(prompt_ids), fields]
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
