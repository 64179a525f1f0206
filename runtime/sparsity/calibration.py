"""The calibration file: each layer's and KV head's channels ranked by how much of q . k they
carry, and the identity of the model they were measured on.

    double_sparsity.json  (written next to the model by `sglc calibrate`)
    {"format": "sglc-double-sparsity", "version": 1,
     "model": {"num_layers": L, "num_heads": Hq, "num_kv_heads": Hkv, "head_dim": D,
               "config_sha256": ..., "weights_sha256": ...},
     "num_tokens": N, "data": "where the calibration text came from",
     "channels": [L][Hkv][D]    channel indices, most important first
     "importance": [L][Hkv][D]  their scores, in the same order}

A file whose model identity differs from the model an engine loads is refused before the
model loads (`check_identity`), naming the `sparsity_calibration` option.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from sglc.runtime.core import InvalidRequest

CALIBRATION_FILE = "double_sparsity.json"
FORMAT, VERSION = "sglc-double-sparsity", 1
OPTION = "sparsity_calibration"
# config.json keys that do not change what the model computes from its weights
_VOLATILE_KEYS = frozenset({"torch_dtype", "dtype", "transformers_version", "use_cache",
                            "_name_or_path"})
_PROBE_WEIGHT = "model.layers.0.self_attn.k_proj.weight"


@dataclass(frozen=True)
class ModelIdentity:
    """What a calibration must match: the attention shape, the config's hash and the hash of
    layer 0's k_proj weight bytes as stored (None where the weights hold no such tensor)."""

    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    config_sha256: str
    weights_sha256: str | None

    @classmethod
    def of(cls, model_path: Path, hf_config: dict) -> ModelIdentity:
        num_heads = int(hf_config["num_attention_heads"])
        head_dim = int(hf_config.get("head_dim") or hf_config["hidden_size"] // num_heads)
        kept = {k: v for k, v in hf_config.items() if k not in _VOLATILE_KEYS}
        config_hash = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
        return cls(int(hf_config["num_hidden_layers"]), num_heads,
                   int(hf_config.get("num_key_value_heads") or num_heads), head_dim,
                   config_hash, _weights_hash(model_path))

    def differences(self, other: ModelIdentity) -> list[str]:
        """The fields that differ, as `name file-value != model-value`."""
        return [f"{name} {getattr(self, name)} != {getattr(other, name)}"
                for name in self.__dataclass_fields__ if getattr(self, name) != getattr(other, name)]


def _weights_hash(model_path: Path) -> str | None:

    for file in sorted(model_path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt", device="cpu") as f:
            if _PROBE_WEIGHT in f.keys():
                tensor = f.get_tensor(_PROBE_WEIGHT).contiguous().view(-1)
                return hashlib.sha256(tensor.view(torch.uint8).numpy().tobytes()).hexdigest()
    return None


@dataclass(frozen=True)
class Calibration:
    """Ranked channels `channels[layer][kv_head]` (all head_dim of them, best first)."""

    model: ModelIdentity
    channels: tuple[tuple[tuple[int, ...], ...], ...]
    importance: tuple[tuple[tuple[float, ...], ...], ...]
    num_tokens: int
    data: str

    def to_json(self) -> str:
        """The file's text: indented, each head's list on one line."""
        text = json.dumps({
            "format": FORMAT, "version": VERSION, "model": vars(self.model),
            "num_tokens": self.num_tokens, "data": self.data,
            "channels": self.channels,
            "importance": [[[round(x, 6) for x in head] for head in layer]
                           for layer in self.importance],
        }, indent=1)
        return re.sub(r"\[\s+([^\[\]]*?)\s+\]", lambda m: f"[{' '.join(m[1].split())}]", text)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n", encoding="utf-8")


def calibration_path(option: str, model_path: Path) -> Path:
    """The file `sparsity_calibration=option` names: "auto" is the one next to the model."""
    return model_path / CALIBRATION_FILE if option == "auto" else Path(option)


def load_calibration(option: str, model_path: Path, hf_config: dict) -> Calibration:
    """The calibration `sparsity_calibration=option` names, checked against the model;
    InvalidRequest naming the option when it is missing, unreadable or for another model."""
    path = calibration_path(option, model_path)
    fix = (f"run `sglc calibrate {model_path}` (it writes {model_path / CALIBRATION_FILE}) "
           f"or pass {OPTION}=PATH of a file made for this model")
    if not path.is_file():
        raise InvalidRequest(f"{OPTION}={option!r}: no calibration file at {path}; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} version {VERSION} file")
        calibration = _parse(data)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"{OPTION}={option!r}: cannot read {path}: {exc}; {fix}") from None
    differences = calibration.model.differences(ModelIdentity.of(model_path, hf_config))
    if differences:
        raise InvalidRequest(f"{OPTION}={option!r}: {path} was calibrated for another model "
                             f"({'; '.join(differences)}); {fix}")
    return calibration


def _parse(data: dict) -> Calibration:
    model = ModelIdentity(**data["model"])
    channels = tuple(tuple(tuple(int(c) for c in head) for head in layer)
                     for layer in data["channels"])
    importance = tuple(tuple(tuple(float(x) for x in head) for head in layer)
                       for layer in data["importance"])
    shape = (model.num_layers, model.num_kv_heads, model.head_dim)
    for name, table in (("channels", channels), ("importance", importance)):
        if (len(table), *(len(x) for x in table[:1]), *(len(x) for x in table[0][:1])) != shape:
            raise ValueError(f"{name} is not [{']['.join(map(str, shape))}]")
    if any(sorted(head) != list(range(model.head_dim)) for layer in channels for head in layer):
        raise ValueError("each head's channels must rank every channel once")
    return Calibration(model, channels, importance, int(data["num_tokens"]), str(data["data"]))
