"""Padded, length-bucketed batches: shifted labels on assistant tokens only, token budget kept."""

from __future__ import annotations

import random

import torch

from sglc.training.batching import IGNORE_INDEX, bucket_batches, make_batch


def test_labels_are_next_tokens_where_trained_and_padding_is_ignored():
    batch = make_batch([([5, 6, 7, 8], [False, False, True, True]), ([9, 10], [False, True])],
                       pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8], [9, 10, 0, 0]]
    assert batch.labels.tolist() == [[IGNORE_INDEX, 7, 8, IGNORE_INDEX],
                                     [10, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch.num_tokens == 6 and batch.num_trained_tokens == 3


def test_buckets_keep_the_budget_and_every_conversation():
    rng = random.Random(0)
    encoded = [([1] * n, [True] * n) for n in (rng.randint(3, 40) for _ in range(200))]
    batches = bucket_batches(encoded, max_batch_tokens=128, pad_id=0, rng=random.Random(1))
    assert all(b.input_ids.numel() <= 128 for b in batches)
    assert sum(b.num_tokens for b in batches) == sum(len(ids) for ids, _ in encoded)
    padding = sum(int((b.input_ids == 0).sum()) for b in batches)
    assert padding < 0.1 * sum(b.input_ids.numel() for b in batches)
    assert all(b.input_ids.dtype == torch.long for b in batches)
