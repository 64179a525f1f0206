"""Tiny random-weight models of each supported architecture, saved in HF format, for tests.

A module of its own, not a conftest: `from conftest import ...` finds whichever conftest.py
pytest imported last."""

from __future__ import annotations

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    MistralConfig,
    MixtralConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2MoeConfig,
    Qwen3Config,
    Qwen3MoeConfig,
)

TINY = dict(
    vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
    bos_token_id=1, eos_token_id=2,
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Question: What is 12*7? Answer: 84",
    "héllo wörld 世界 🙂 — caffè crème",
    "def f(x):\n    return x + 1\n",
] * 20

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer trained on CORPUS (ids 0-2 are special)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "<|im_end|>", "<|im_start|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


ARCHS = {
    "llama": (LlamaConfig, transformers.LlamaForCausalLM, {}),
    "llama3-rope": (
        LlamaConfig, transformers.LlamaForCausalLM,
        {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}},
    ),
    "mistral": (MistralConfig, transformers.MistralForCausalLM, {"sliding_window": 16, "head_dim": 16}),
    "qwen2": (Qwen2Config, transformers.Qwen2ForCausalLM, {"tie_word_embeddings": True}),
    "qwen3": (Qwen3Config, transformers.Qwen3ForCausalLM, {"head_dim": 32}),
}

# mixture-of-experts members: 4 experts, top-2; Qwen2-MoE with a shared expert and one dense
# layer, Qwen3-MoE with renormalised top-k weights
_EXPERTS = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)
MOE_ARCHS = {
    "mixtral": (MixtralConfig, transformers.MixtralForCausalLM,
                {"num_local_experts": 4, "num_experts_per_tok": 2, "intermediate_size": 32}),
    "qwen2-moe": (Qwen2MoeConfig, transformers.Qwen2MoeForCausalLM,
                  {**_EXPERTS, "shared_expert_intermediate_size": 48, "mlp_only_layers": [1]}),
    "qwen3-moe": (Qwen3MoeConfig, transformers.Qwen3MoeForCausalLM,
                  {**_EXPERTS, "head_dim": 32, "norm_topk_prob": True}),
}


def make_model_dir(path, arch: str = "llama", seed: int = 0, **overrides):
    """Save a random-weight HF model + tokenizer to `path`; returns the HF model (fp32)."""
    cfg_cls, model_cls, extra = {**ARCHS, **MOE_ARCHS}[arch]
    torch.manual_seed(seed)
    cfg = cfg_cls(**{**TINY, **extra, **overrides})
    model = model_cls(cfg).eval()
    with torch.no_grad():  # larger weights make logits spread out, so greedy ties are rare
        for p in model.parameters():
            p.mul_(3.0) if p.dim() > 1 else None
    model.save_pretrained(path)
    build_tokenizer(cfg.vocab_size).save_pretrained(path)
    return model
