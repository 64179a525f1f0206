"""ModelConfig: the architecture facts our model code needs, read from an HF config.json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sglc.runtime.core import EngineError

# architecture name in config.json -> the feature flags it implies
SUPPORTED_ARCHITECTURES: dict[str, dict[str, bool]] = {
    "LlamaForCausalLM": {"qk_norm": False, "moe": False},
    "MistralForCausalLM": {"qk_norm": False, "moe": False},
    "Qwen2ForCausalLM": {"qk_norm": False, "moe": False},
    "Qwen3ForCausalLM": {"qk_norm": True, "moe": False},
    "MixtralForCausalLM": {"qk_norm": False, "moe": True},
    "Qwen2MoeForCausalLM": {"qk_norm": False, "moe": True},
    "Qwen3MoeForCausalLM": {"qk_norm": True, "moe": True},
}
# architectures whose q/k/v projections carry a bias unless config.json says otherwise
_QKV_BIAS_ARCHITECTURES = ("Qwen2ForCausalLM", "Qwen2MoeForCausalLM")


class UnsupportedModel(EngineError):
    """The model directory holds an architecture or option we do not implement."""


@dataclass(frozen=True)
class MoeConfig:
    """The mixture-of-experts facts: top-k routing over `num_experts` gated MLPs, an
    optional shared expert (Qwen2-MoE), and which layers are sparse (the others keep a
    dense MLP of the model's `intermediate_size`)."""

    num_experts: int
    top_k: int
    expert_intermediate_size: int
    norm_topk_prob: bool  # renormalise the top-k routing weights to sum to 1
    shared_expert_intermediate_size: int  # 0: no shared expert
    sparse_layers: tuple[bool, ...]  # per layer

    @classmethod
    def from_hf(cls, arch: str, hf: Mapping[str, Any], num_layers: int) -> MoeConfig:
        if arch == "MixtralForCausalLM":
            return cls(
                num_experts=int(hf["num_local_experts"]), top_k=int(hf["num_experts_per_tok"]),
                expert_intermediate_size=int(hf["intermediate_size"]), norm_topk_prob=True,
                shared_expert_intermediate_size=0, sparse_layers=(True,) * num_layers,
            )
        # Hub checkpoints say num_experts; transformers 5 writes num_local_experts for Qwen3
        num_experts = int(hf["num_experts"] if "num_experts" in hf else hf["num_local_experts"])
        step = int(hf.get("decoder_sparse_step", 1))
        dense = set(hf.get("mlp_only_layers") or ())
        return cls(
            num_experts=num_experts, top_k=int(hf["num_experts_per_tok"]),
            expert_intermediate_size=int(hf["moe_intermediate_size"]),
            norm_topk_prob=bool(hf.get("norm_topk_prob", False)),
            shared_expert_intermediate_size=int(hf.get("shared_expert_intermediate_size") or 0),
            sparse_layers=tuple(
                i not in dense and num_experts > 0 and (i + 1) % step == 0
                for i in range(num_layers)
            ),
        )


@dataclass(frozen=True)
class ModelConfig:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Mapping[str, Any] | None
    attention_bias: bool
    qk_norm: bool
    tie_word_embeddings: bool
    sliding_windows: tuple[int | None, ...]  # per layer; None = full attention
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    moe: MoeConfig | None = None  # None: a dense model
    # MixAttention: per layer, the earlier layer whose K/V it reads (None: it owns its K/V);
    # None for the whole field: every layer owns its K/V. config.json's `kv_source_layers`.
    kv_sources: tuple[int | None, ...] | None = None

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise UnsupportedModel(
                f"num_attention_heads ({self.num_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_kv_heads})"
            )
        if len(self.sliding_windows) != self.num_layers:
            raise UnsupportedModel("one sliding-window entry per layer is required")
        if self.moe is not None and not 1 <= self.moe.top_k <= self.moe.num_experts:
            raise UnsupportedModel(
                f"num_experts_per_tok ({self.moe.top_k}) must be in 1..{self.moe.num_experts}"
            )
        if self.kv_sources is not None:
            check_kv_sources(self.kv_sources, self.sliding_windows)

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def kv_source(self, layer_id: int) -> int | None:
        """The layer whose K/V layer `layer_id` reads, None when it computes and owns its own."""
        return None if self.kv_sources is None else self.kv_sources[layer_id]

    @property
    def num_kv_layers(self) -> int:
        """Layers that own K/V: what the KV pool allocates for."""
        return sum(self.kv_source(i) is None for i in range(self.num_layers))

    @property
    def sliding_kv_layers(self) -> frozenset[int]:
        """Layers whose K/V is read within a window only: the sliding-window layers that own
        K/V and the layers reading theirs (a full layer never reads a sliding one's). The KV
        pool keeps these in a slot space of their own, freed as positions leave the window."""
        owners = {i for i in range(self.num_layers)
                  if self.kv_source(i) is None and self.sliding_windows[i] is not None}
        return frozenset(i for i in range(self.num_layers)
                         if (self.kv_source(i) if self.kv_source(i) is not None else i) in owners)

    @property
    def kv_window(self) -> int | None:
        """The widest window over `sliding_kv_layers` (None when there are none): how many
        positions, counting the query, a token's sliding K/V must keep behind it."""
        windows = [self.sliding_windows[i] for i in self.sliding_kv_layers]
        return max(windows) if windows else None

    @classmethod
    def from_hf(cls, hf: Mapping[str, Any]) -> ModelConfig:
        """Build from a parsed config.json; raises UnsupportedModel naming the problem."""
        archs = hf.get("architectures") or []
        arch = next((a for a in archs if a in SUPPORTED_ARCHITECTURES), None)
        if arch is None:
            raise UnsupportedModel(
                f"unsupported architecture {archs or hf.get('model_type')!r}; "
                f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
            )
        try:
            return cls._from_hf(arch, hf)
        except KeyError as exc:
            raise UnsupportedModel(f"config.json lacks the field {exc.args[0]!r}") from None

    @classmethod
    def _from_hf(cls, arch: str, hf: Mapping[str, Any]) -> ModelConfig:
        num_heads = int(hf["num_attention_heads"])
        hidden = int(hf["hidden_size"])
        num_layers = int(hf["num_hidden_layers"])
        theta, scaling = _rope_params(hf)
        eos = hf.get("eos_token_id")
        return cls(
            architecture=arch,
            vocab_size=int(hf["vocab_size"]),
            hidden_size=hidden,
            intermediate_size=int(hf["intermediate_size"]),
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or num_heads),
            head_dim=int(hf.get("head_dim") or hidden // num_heads),
            max_position_embeddings=int(hf.get("max_position_embeddings", 2048)),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            rope_theta=theta,
            rope_scaling=scaling,
            attention_bias=bool(
                hf.get("attention_bias", hf.get("qkv_bias", arch in _QKV_BIAS_ARCHITECTURES))
            ),
            qk_norm=SUPPORTED_ARCHITECTURES[arch]["qk_norm"],
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            sliding_windows=_sliding_windows(arch, hf, num_layers),
            bos_token_id=hf.get("bos_token_id"),
            eos_token_ids=tuple(eos if isinstance(eos, list) else [] if eos is None else [eos]),
            moe=MoeConfig.from_hf(arch, hf, num_layers)
            if SUPPORTED_ARCHITECTURES[arch]["moe"] else None,
            kv_sources=_kv_sources(hf, num_layers),
        )


SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


def _rope_params(hf: Mapping[str, Any]) -> tuple[float, Mapping[str, Any] | None]:
    """(theta, scaling dict or None) from the v5 `rope_parameters` or the older
    `rope_theta` + `rope_scaling`; whichever names a scaling wins over a plain default."""
    candidates = [dict(hf.get("rope_parameters") or {}), dict(hf.get("rope_scaling") or {})]
    theta = float(
        candidates[0].get("rope_theta") or hf.get("rope_theta") or 10000.0
    )
    for params in candidates:
        rope_type = params.get("rope_type", params.get("type", "default"))
        if rope_type == "default":
            continue
        if rope_type not in SUPPORTED_ROPE_TYPES:
            raise UnsupportedModel(
                f"unsupported rope scaling {rope_type!r}; supported: {', '.join(SUPPORTED_ROPE_TYPES)}"
            )
        params.pop("rope_theta", None)
        return theta, {**params, "rope_type": rope_type}
    return theta, None


LAYER_TYPES = ("full_attention", "sliding_attention")


def _sliding_windows(arch: str, hf: Mapping[str, Any], num_layers: int) -> tuple[int | None, ...]:
    window = hf.get("sliding_window")
    layer_types = hf.get("layer_types")
    if layer_types:
        _check_layer_types(layer_types, num_layers, window)
        return tuple(window if t == "sliding_attention" else None for t in layer_types)
    if arch in ("MistralForCausalLM", "MixtralForCausalLM"):
        return (window,) * num_layers
    if arch.startswith("Qwen") and hf.get("use_sliding_window") and window:
        first = int(hf.get("max_window_layers", num_layers))
        return tuple(window if i >= first else None for i in range(num_layers))
    return (None,) * num_layers


def _check_layer_types(layer_types: Any, num_layers: int, window: Any) -> None:
    if not isinstance(layer_types, list) or len(layer_types) != num_layers:
        raise UnsupportedModel(
            f"layer_types must list one type per layer ({num_layers}, num_hidden_layers)"
        )
    for i, kind in enumerate(layer_types):
        if kind not in LAYER_TYPES:
            raise UnsupportedModel(
                f"layer_types[{i}] is {kind!r}; supported: {', '.join(LAYER_TYPES)}"
            )
    if "sliding_attention" in layer_types and (
        isinstance(window, bool) or not isinstance(window, int) or window < 1
    ):
        raise UnsupportedModel(
            f"sliding_window must be a positive number of tokens for layer_types' "
            f"sliding_attention layers; got {window!r}"
        )


def _kv_sources(hf: Mapping[str, Any], num_layers: int) -> tuple[int | None, ...] | None:
    """config.json's `kv_source_layers` (MixAttention KV sharing), checked for its shape;
    `check_kv_sources` checks what it points at."""
    sources = hf.get("kv_source_layers")
    if sources is None:
        return None
    if not isinstance(sources, list) or len(sources) != num_layers:
        raise UnsupportedModel(
            f"kv_source_layers must list one entry per layer ({num_layers}, "
            "num_hidden_layers): null for a layer that owns its KV, else the earlier layer "
            "whose KV it reads"
        )
    for i, src in enumerate(sources):
        if src is not None and (isinstance(src, bool) or not isinstance(src, int)):
            raise UnsupportedModel(
                f"kv_source_layers[{i}] is {src!r}; expected null or a layer index"
            )
    return tuple(sources)


def check_kv_sources(
    sources: tuple[int | None, ...], windows: tuple[int | None, ...]
) -> None:
    """UnsupportedModel unless each layer reads the KV of an earlier layer that owns its KV
    and keeps at least the reader's window of it (a full-attention layer cannot read a
    sliding-window layer's KV)."""
    num_layers = len(windows)
    if len(sources) != num_layers:
        raise UnsupportedModel(f"kv_source_layers must list one entry per layer ({num_layers})")
    for i, src in enumerate(sources):
        if src is None:
            continue
        where = f"kv_source_layers[{i}] = {src}"
        if not 0 <= src < num_layers:
            raise UnsupportedModel(
                f"{where}: there is no layer {src} (the model has layers 0..{num_layers - 1})"
            )
        if src >= i:
            raise UnsupportedModel(
                f"{where}: a layer can read only the KV of an earlier layer "
                f"(0..{i - 1}), since KV is written in layer order"
                if i else f"{where}: layer 0 has no earlier layer to read KV from"
            )
        if sources[src] is not None:
            raise UnsupportedModel(
                f"{where}: layer {src} reads layer {sources[src]}'s KV itself; "
                f"name {sources[src]}, the layer that owns it"
            )
        if windows[src] is not None and (windows[i] is None or windows[i] > windows[src]):
            mine = "full attention" if windows[i] is None else f"a {windows[i]}-token window"
            raise UnsupportedModel(
                f"{where}: layer {i} attends over {mine} but layer {src} is a "
                f"sliding-window layer ({windows[src]} tokens, layer_types/sliding_window); "
                "a layer may read only KV whose window covers its own"
            )
