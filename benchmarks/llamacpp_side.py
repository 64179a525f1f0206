"""llama.cpp's side of benchmarks/cpu_vs_llamacpp.py: a Hugging Face Llama directory written
as GGUF (f32 or q8_0) with llama.cpp's own `gguf` library, and greedy generation through
llama-cpp-python's C API with llama.cpp's continuous batching (one context, one sequence
per request, every request's next token in one `llama_decode` per step).

Both packages are optional (`pip install llama-cpp-python gguf`); `missing()` says which
are absent.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
from pathlib import Path

import numpy as np

GGUF_TYPES = ("f32", "q8_0")
_LAYER_NAMES = {  # Hugging Face name in a layer -> GGUF name in block i
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_TOP_NAMES = {"model.embed_tokens.weight": "token_embd.weight",
              "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}


def missing() -> list[str]:
    """The optional packages this side needs that are not installed."""
    return [pip for module, pip in (("llama_cpp", "llama-cpp-python"), ("gguf", "gguf"))
            if importlib.util.find_spec(module) is None]


def _gguf_name(hf_name: str) -> str:
    if hf_name in _TOP_NAMES:
        return _TOP_NAMES[hf_name]
    _, _, index, rest = hf_name.split(".", 3)  # model.layers.<i>.<rest>
    return f"blk.{index}.{_LAYER_NAMES[rest]}"


def _rope_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face keeps each head's rotary pairs as (first half, second half); GGUF's llama
    expects them interleaved: reorder q/k rows to match."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def write_gguf(hf_dir: Path, out: Path, gguf_type: str) -> Path:
    """`hf_dir`'s Llama weights as a GGUF file at `out` (kept if it exists). q8_0 quantizes
    every matrix (embedding included, as llama.cpp's converter does); norms stay f32. The
    vocabulary is placeholder text: both sides are fed token ids."""
    import gguf
    import torch
    from safetensors.torch import load_file

    if out.is_file():
        return out
    cfg = json.loads((hf_dir / "config.json").read_text())
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads",
                                                          cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(hf_dir.glob("*.safetensors")):
        tensors |= load_file(file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(hf_dir.name)
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    writer.add_vocab_size(cfg["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if gguf_type == "q8_0"
                         else gguf.LlamaFileType.ALL_F32)
    _add_placeholder_vocab(writer, cfg)
    for hf_name, tensor in tensors.items():
        if hf_name == "lm_head.weight" and cfg.get("tie_word_embeddings", False):
            continue
        w = tensor.float().numpy()
        if hf_name.endswith("q_proj.weight"):
            w = _rope_rows(w, heads)
        elif hf_name.endswith("k_proj.weight"):
            w = _rope_rows(w, kv_heads)
        name = _gguf_name(hf_name)
        if gguf_type == "q8_0" and w.ndim == 2:
            q8 = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(w, q8), raw_dtype=q8)
        else:
            writer.add_tensor(name, np.ascontiguousarray(w, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    return out


def _add_placeholder_vocab(writer, cfg: dict) -> None:
    import gguf

    size = cfg["vocab_size"]
    special = {"<unk>": gguf.TokenType.UNKNOWN, "<s>": gguf.TokenType.CONTROL,
               "</s>": gguf.TokenType.CONTROL}
    tokens = list(special) + [f"<0x{b:02X}>" for b in range(256)]
    types = list(special.values()) + [gguf.TokenType.BYTE] * 256
    tokens += [f"\u2581t{i}" for i in range(len(tokens), size)]
    types += [gguf.TokenType.NORMAL] * (size - len(types))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens[:size])
    writer.add_token_scores([0.0] * size)
    writer.add_token_types(types[:size])
    writer.add_bos_token_id(int(cfg.get("bos_token_id") or 1))
    writer.add_eos_token_id(int(cfg.get("eos_token_id") or 2))
    writer.add_add_bos_token(False)


class LlamaCpp:
    """One llama.cpp model and context with `num_seqs` sequences sharing a unified KV
    cache of `num_ctx` tokens; `generate` runs greedy continuous batching."""

    def __init__(self, path: Path, num_seqs: int, num_ctx: int, threads: int,
                 batch_tokens: int = 512) -> None:
        import llama_cpp

        self._lib = llama_cpp
        global _QUIET
        llama_cpp.llama_backend_init()
        if _QUIET is None:
            _QUIET = llama_cpp.llama_log_callback(_quiet)
        llama_cpp.llama_log_set(_QUIET, ctypes.c_void_p())
        self.model = llama_cpp.llama_model_load_from_file(
            str(path).encode(), llama_cpp.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = num_ctx, batch_tokens, batch_tokens
        params.n_seq_max, params.kv_unified, params.no_perf = num_seqs, True, True
        params.n_threads = params.n_threads_batch = threads
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not make a context of {num_ctx} tokens")
        self.vocab_size = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(
            self.model))
        self.batch_tokens = batch_tokens
        self.batch = llama_cpp.llama_batch_init(batch_tokens, 0, 1)

    def close(self) -> None:
        self._lib.llama_batch_free(self.batch)
        self._lib.llama_free(self.ctx)
        self._lib.llama_model_free(self.model)

    def generate(self, prompts: list[list[int]], output_lens: list[int]) -> list[list[int]]:
        """Greedy outputs of every prompt (request i is sequence i): prompts prefilled in
        batches of up to `batch_tokens` tokens, then one decode step for all running
        requests at a time, each leaving when its output is complete."""
        lib = self._lib
        lib.llama_memory_clear(lib.llama_get_memory(self.ctx), True)
        outputs: list[list[int]] = [[] for _ in prompts]
        pending = [(seq, pos, tok, pos == len(p) - 1)
                   for seq, p in enumerate(prompts) for pos, tok in enumerate(p)]
        for start in range(0, len(pending), self.batch_tokens):
            self._decode(pending[start:start + self.batch_tokens], outputs)
        while True:
            running = [seq for seq, out in enumerate(outputs) if len(out) < output_lens[seq]]
            if not running:
                return outputs
            self._decode([(seq, len(prompts[seq]) + len(outputs[seq]) - 1, outputs[seq][-1],
                           True) for seq in running], outputs)

    def _decode(self, items: list[tuple[int, int, int, bool]],
                outputs: list[list[int]]) -> None:
        batch = self.batch
        for i, (seq, pos, tok, wants_logits) in enumerate(items):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
            batch.seq_id[i][0], batch.logits[i] = seq, wants_logits
        batch.n_tokens = len(items)
        if self._lib.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed (KV cache full?)")
        for i, (seq, _, _, wants_logits) in enumerate(items):
            if wants_logits:
                logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self.ctx, i),
                                               shape=(self.vocab_size,))
                outputs[seq].append(int(logits.argmax()))


def _quiet(level, text, user_data) -> None:  # llama.cpp's log lines: dropped
    return None


_QUIET = None  # the ctypes callback, kept alive while llama.cpp may call it
