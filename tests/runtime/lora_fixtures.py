"""PEFT-format LoRA adapters with random weights, and the reference they must match:
the transformers model with the adapter merged by hand (W + scaling * B @ A)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


def _shape(hf_config, module: str) -> tuple[int, int]:
    """(in_features, out_features) of a projection of the transformers config."""
    hidden, inter = hf_config.hidden_size, hf_config.intermediate_size
    head_dim = getattr(hf_config, "head_dim", None) or hidden // hf_config.num_attention_heads
    q, kv = hf_config.num_attention_heads * head_dim, hf_config.num_key_value_heads * head_dim
    return {"q_proj": (hidden, q), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
            "o_proj": (q, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
            "down_proj": (inter, hidden)}[module]


def make_adapter(path: Path, hf_model, modules: tuple[str, ...], rank: int, alpha: float,
                 seed: int, *, rslora: bool = False, layers: tuple[int, ...] | None = None
                 ) -> dict[str, torch.Tensor]:
    """Write a PEFT LoRA directory for `hf_model`; returns its tensors by key."""
    cfg = hf_model.config
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in layers if layers is not None else range(cfg.num_hidden_layers):
        for module in modules:
            in_f, out_f = _shape(cfg, module)
            part = "self_attn" if module in ATTENTION else "mlp"
            key = f"base_model.model.model.layers.{layer}.{part}.{module}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(rank, in_f, generator=gen) / math.sqrt(in_f)
            tensors[f"{key}.lora_B.weight"] = torch.randn(out_f, rank, generator=gen) * 0.5
    path.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path / "adapter_model.safetensors"))
    (path / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
        "target_modules": list(modules), "bias": "none", "use_rslora": rslora,
        "lora_dropout": 0.0, "fan_in_fan_out": False, "modules_to_save": None,
    }))
    return tensors


def merged(hf_model, adapter_dir: Path):
    """A copy of `hf_model` with the adapter merged into its weights (fp32)."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    from safetensors.torch import load_file

    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    model = copy.deepcopy(hf_model)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, a in tensors.items():
            if ".lora_A." not in key:
                continue
            b = tensors[key.replace(".lora_A.", ".lora_B.")]
            rank = a.shape[0]
            scaling = cfg["lora_alpha"] / (math.sqrt(rank) if cfg.get("use_rslora") else rank)
            name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
            params[name] += scaling * (b @ a)
    return model


def hf_greedy(model, prompt: list[int], num: int) -> list[int]:
    out = model.generate(torch.tensor([prompt]), max_new_tokens=num, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    return out[0, len(prompt):].tolist()
