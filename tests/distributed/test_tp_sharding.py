"""The sharded model (two ranks as two threads of one process, gloo) computes the logits of
the whole model, for each dense architecture, GQA with fewer KV heads than ranks included;
and each rank reads only its slices of the checkpoint."""

from __future__ import annotations

import threading

import pytest
import torch
from model_fixtures import make_model_dir

from sglc.runtime.distributed.comm import Communicator, join_store, open_store
from sglc.runtime.distributed.sharding import TPShard, check_shardable
from sglc.runtime.models.attention import DenseCausalAttention
from sglc.runtime.models.config import ModelConfig, UnsupportedModel
from sglc.runtime.models.loader import load_model_dir, read_hf_config

CASES = {
    "llama": ("llama", {}),
    "mistral": ("mistral", {}),
    "qwen2-bias-tied": ("qwen2", {}),
    "qwen3-qknorm": ("qwen3", {}),
    "one-kv-head": ("llama", {"num_key_value_heads": 1}),
    "odd-vocab": ("llama", {"vocab_size": 301}),
}


def sharded_logits(path, ids: torch.Tensor, size: int = 2) -> torch.Tensor:
    """Rank 0's logits of the model sharded over `size` threads."""
    cfg = ModelConfig.from_hf(read_hf_config(path))
    store = open_store(size)
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def rank_main(rank: int) -> None:
        try:
            shard = TPShard(cfg, rank, size)
            loaded = load_model_dir(path, dtype="float32", load_tokenizer=False, shard=shard)
            s = store if rank == 0 else join_store(store.port, size)
            model = shard.wrap(loaded.model, Communicator(s, rank, size, torch.device("cpu")))
            positions = torch.arange(ids.numel())
            with torch.inference_mode():
                hidden = model(ids, positions, DenseCausalAttention(1, ids.numel()))
                results[rank] = model.compute_logits(hidden)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    assert torch.equal(results[0], results[1])  # every rank gets the gathered logits
    return results[0]


@pytest.mark.parametrize("case", list(CASES))
def test_sharded_logits_equal_the_whole_models(tmp_path, case):
    arch, overrides = CASES[case]
    make_model_dir(tmp_path, arch, **overrides)
    whole = load_model_dir(tmp_path, dtype="float32", load_tokenizer=False).model
    ids = torch.tensor([1, 17, 42, 99, 5, 250, 7, 8, 9, 10, 11, 12, 13, 200, 3, 4, 60, 61])
    with torch.inference_mode():
        expected = whole.compute_logits(whole(ids, torch.arange(len(ids)),
                                              DenseCausalAttention(1, len(ids))))
    got = sharded_logits(tmp_path, ids)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def test_each_rank_reads_only_its_slices(tmp_path):
    make_model_dir(tmp_path, "llama")
    cfg = ModelConfig.from_hf(read_hf_config(tmp_path))
    shards = [TPShard(cfg, r, 2) for r in range(2)]
    local = shards[1].local_config(cfg)
    assert (local.num_heads, local.num_kv_heads) == (2, 1)
    assert local.intermediate_size == cfg.intermediate_size // 2
    model = load_model_dir(tmp_path, dtype="float32", load_tokenizer=False, fuse=False,
                           shard=shards[1]).model
    whole = load_model_dir(tmp_path, dtype="float32", load_tokenizer=False, fuse=False).model
    attn, whole_attn = model.model.layers[0].self_attn, whole.model.layers[0].self_attn
    d = cfg.head_dim
    assert torch.equal(attn.q_proj.weight, whole_attn.q_proj.weight[2 * d:])
    assert torch.equal(attn.k_proj.weight, whole_attn.k_proj.weight[d:])
    assert torch.equal(attn.o_proj.weight, whole_attn.o_proj.weight[:, 2 * d:])
    assert torch.equal(model.lm_head.weight, whole.lm_head.weight[150:])


def test_unshardable_models_are_refused_by_name(tmp_path):
    make_model_dir(tmp_path, "llama")
    cfg = ModelConfig.from_hf(read_hf_config(tmp_path))
    with pytest.raises(UnsupportedModel, match="tp_size=3 must divide num_attention_heads"):
        check_shardable(cfg, 3)
    make_model_dir(tmp_path / "moe", "mixtral")
    moe = ModelConfig.from_hf(read_hf_config(tmp_path / "moe"))
    with pytest.raises(UnsupportedModel, match="mixture-of-experts"):
        check_shardable(moe, 2)
