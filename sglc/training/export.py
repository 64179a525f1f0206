"""Build the model from its shape, and save it as a Hugging Face format directory."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from torch import nn

from sglc.runtime.models.config import ModelConfig
from sglc.runtime.models.llama import LlamaForCausalLM
from sglc.training.tokenizer import ENDOFTEXT, IM_END, save_tokenizer

SAVE_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class ModelShape:
    """The architecture hyperparameters of the default model."""

    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 8
    num_kv_heads: int = 4
    intermediate_size: int = 704
    max_position_embeddings: int = 1024
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError("hidden_size must divide by num_heads, num_heads by num_kv_heads")


def hf_config(shape: ModelShape, tokenizer: Tokenizer, dtype: str = "bfloat16") -> dict:
    """The config.json of a tied-embedding LlamaForCausalLM with `tokenizer`'s vocabulary."""
    pad_id, eos_id = tokenizer.token_to_id(ENDOFTEXT), tokenizer.token_to_id(IM_END)
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": tokenizer.get_vocab_size(), "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size, "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads, "num_key_value_heads": shape.num_kv_heads,
        "head_dim": shape.hidden_size // shape.num_heads, "hidden_act": "silu",
        "max_position_embeddings": shape.max_position_embeddings,
        "rms_norm_eps": shape.rms_norm_eps, "initializer_range": 0.02,
        "rope_theta": shape.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": shape.rope_theta},
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
        "tie_word_embeddings": True, "use_cache": True,
        "bos_token_id": pad_id, "eos_token_id": eos_id, "pad_token_id": pad_id,
        "torch_dtype": dtype, "dtype": dtype,
    }


def build_model(config: dict, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model: N(0, 0.02) weights, residual outputs scaled by depth."""
    model = LlamaForCausalLM(ModelConfig.from_hf(config))
    generator = torch.Generator().manual_seed(seed)
    residual_std = 0.02 / math.sqrt(2 * config["num_hidden_layers"])
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)) and name != "lm_head":
            is_residual_out = name.endswith(("o_proj", "down_proj"))
            std = residual_std if is_residual_out else 0.02
            with torch.no_grad():
                module.weight.normal_(0.0, std, generator=generator)
    return model


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def save_model_dir(model: LlamaForCausalLM, config: dict, tokenizer: Tokenizer,
                   out_dir: str | Path, dtype: str = "bfloat16") -> Path:
    """Write config.json, generation_config.json, model.safetensors and the tokenizer files."""
    if dtype not in SAVE_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(SAVE_DTYPES)}, got {dtype!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # NOTE: the tied lm_head shares storage with embed_tokens; HF omits it from checkpoints.
    state = {
        name: tensor.detach().to("cpu", SAVE_DTYPES[dtype]).contiguous()
        for name, tensor in model.state_dict().items()
        if not (config["tie_word_embeddings"] and name == "lm_head.weight")
    }
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)
    _write_json(out / "config.json", {**config, "torch_dtype": dtype, "dtype": dtype})
    _write_json(out / "generation_config.json", {
        "bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
        "pad_token_id": config["pad_token_id"], "do_sample": False,
    })
    save_tokenizer(tokenizer, out, config["max_position_embeddings"])
    return out


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
