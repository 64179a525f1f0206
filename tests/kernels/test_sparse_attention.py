"""Double Sparsity decode attention against a plain reference: label scores computed per
query head from full K, top tokens picked per kv head, dense attention masked to them."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels.decode_attention import decode_attention
from sglc.kernels.kv_quant import allocate, store_quantized
from sglc.kernels.sparse_attention import sparse_decode_attention, store_labels

HQ, HKV, D, R = 4, 2, 16, 4


def _pool(seed: int, num_slots: int = 80):
    gen = torch.Generator().manual_seed(seed)
    k = torch.randn(num_slots, HKV, D, generator=gen)
    v = torch.randn(num_slots, HKV, D, generator=gen)
    channels = torch.stack([torch.randperm(D, generator=gen)[:R] for _ in range(HKV)])
    labels = torch.zeros(num_slots, HKV, R)
    store_labels(labels, channels, torch.arange(num_slots), k)
    # two requests in scattered slots: row 0 has 50 tokens, row 1 has 23
    perm = torch.randperm(num_slots - 1, generator=gen) + 1
    req_to_token = torch.zeros(2, 64, dtype=torch.int64)
    req_to_token[0, :50] = perm[:50]
    req_to_token[1, :23] = perm[50:73]
    q = torch.randn(2, HQ, D, generator=gen)
    return q, k, v, labels, channels, req_to_token


def _reference(q, k, v, channels, req_to_token, rows, lens, selected, num_channels, recent,
               window=None):
    """Per request and kv head: approximate scores from full K's channels, the chosen set,
    then masked dense attention over the whole context."""
    group = HQ // HKV
    out = torch.empty_like(q)
    for b, (row, seq_len) in enumerate(zip(rows, lens, strict=True)):
        start = 0 if window is None else max(0, seq_len - window)
        slots = req_to_token[row, start:seq_len]
        for h in range(HQ):
            kv = h // group
            keys, values = k[slots, kv], v[slots, kv]
            if selected[b] < len(slots):
                approx = torch.stack([
                    (q[b, g, channels[kv, :num_channels[b]]]
                     * keys[:, channels[kv, :num_channels[b]]]).sum(-1)
                    for g in range(kv * group, (kv + 1) * group)]).amax(0)
                approx[len(slots) - recent:] = float("inf")
                keep = torch.zeros(len(slots), dtype=torch.bool)
                keep[approx.topk(selected[b]).indices] = True
            else:
                keep = torch.ones(len(slots), dtype=torch.bool)
            scores = (keys @ q[b, h]) * D**-0.5
            probs = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=0)
            out[b, h] = probs @ values
    return out


@pytest.mark.parametrize("num_channels", [1, 4])
@pytest.mark.parametrize("window", [None, 20])
def test_matches_the_masked_dense_reference(num_channels, window):
    q, k, v, labels, channels, req_to_token = _pool(num_channels)
    args = ([0, 1], [50, 23], [12, 8], [num_channels, num_channels])
    got = sparse_decode_attention(q, k, v, labels, channels, req_to_token, *args,
                                  sm_scale=D**-0.5, num_recent=3, sliding_window=window)
    want = _reference(q, k, v, channels, req_to_token, *args, recent=3, window=window)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_selection_differs_from_dense_and_all_tokens_equal_dense():
    q, k, v, labels, channels, req_to_token = _pool(7)
    dense = decode_attention(q, k, v, req_to_token, [0, 1], [50, 23], sm_scale=D**-0.5)
    every = sparse_decode_attention(q, k, v, labels, channels, req_to_token, [0, 1], [50, 23],
                                    [50, 23], [R, R], sm_scale=D**-0.5, num_recent=4)
    torch.testing.assert_close(every, dense, rtol=1e-5, atol=1e-5)
    few = sparse_decode_attention(q, k, v, labels, channels, req_to_token, [0, 1], [50, 23],
                                  [5, 5], [R, R], sm_scale=D**-0.5, num_recent=2)
    assert not torch.allclose(few, dense, atol=1e-3)


def test_labels_hold_the_calibrated_channels():
    q, k, v, labels, channels, _ = _pool(3)
    for h in range(HKV):
        assert torch.equal(labels[:, h], k[:, h][:, channels[h]])


def test_quantized_pool_reads_the_dequantized_values():
    q, k, v, labels, channels, req_to_token = _pool(5)
    kq, vq = allocate(80, HKV, D, 8, "cpu"), allocate(80, HKV, D, 8, "cpu")
    store_quantized(kq, torch.arange(80), k)
    store_quantized(vq, torch.arange(80), v)
    from sglc.kernels.kv_quant import gather_rows

    k_deq, v_deq = gather_rows(kq, torch.arange(80)), gather_rows(vq, torch.arange(80))
    args = ([0, 1], [50, 23], [10, 9], [2, 3])
    got = sparse_decode_attention(q, kq, vq, labels, channels, req_to_token, *args,
                                  sm_scale=D**-0.5, num_recent=2)
    want = sparse_decode_attention(q, k_deq, v_deq, labels, channels, req_to_token, *args,
                                   sm_scale=D**-0.5, num_recent=2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
