"""A plan built once per forward pass gives the same attention for every layer."""

from __future__ import annotations

import pytest
import torch

from sglc.kernels import AttentionShape, get_ops


@pytest.mark.parametrize("window", [None, 5])
def test_planned_equals_unplanned_across_layers(window):
    torch.manual_seed(0)
    ops = get_ops("torch")
    hq, hkv, d, slots = 4, 2, 16, 200
    req_to_token = torch.randperm(slots - 1)[:120].add(1).view(3, 40)
    rows, prefixes, extends = [2, 0, 1], [0, 7, 30], [9, 1, 4]
    shape = AttentionShape(hq, hkv, d)
    extend_plan = ops.plan_extend(req_to_token, rows, prefixes, extends, shape, sliding_window=window)
    seq_lens = [p + e for p, e in zip(prefixes, extends, strict=True)]
    decode_plan = ops.plan_decode(req_to_token, rows, seq_lens, shape, sliding_window=window)
    for _layer in range(2):  # fresh buffers per layer, one plan
        k_buf, v_buf = torch.randn(slots, hkv, d), torch.randn(slots, hkv, d)
        q = torch.randn(sum(extends), hq, d)
        args = (q, k_buf, v_buf, req_to_token, rows, prefixes, extends)
        plain = ops.extend_attention(*args, sm_scale=0.25, sliding_window=window)
        planned = ops.extend_attention(*args, sm_scale=0.25, sliding_window=window,
                                       plan=extend_plan)
        torch.testing.assert_close(planned, plain)
        qd = torch.randn(3, hq, d)
        dargs = (qd, k_buf, v_buf, req_to_token, rows, seq_lens)
        torch.testing.assert_close(
            ops.decode_attention(*dargs, sm_scale=0.25, sliding_window=window, plan=decode_plan),
            ops.decode_attention(*dargs, sm_scale=0.25, sliding_window=window),
        )


def test_plan_for_other_head_shape_is_rejected():
    ops = get_ops("torch")
    req_to_token = torch.arange(1, 41).view(2, 20)
    plan = ops.plan_decode(req_to_token, [0, 1], [5, 9], AttentionShape(4, 2, 16))
    q, kv = torch.randn(2, 8, 16), torch.randn(50, 2, 16)
    with pytest.raises(ValueError, match="plan made for"):
        ops.decode_attention(q, kv, kv, req_to_token, [0, 1], [5, 9], sm_scale=1.0, plan=plan)
