"""Turn the conversation stream into padded training batches.

Each row of a batch is one whole conversation, so positions start at 0 and no conversation
sees another, exactly as at inference. Conversations are bucketed by length so rows of a
batch are nearly equally long and little compute goes to padding.

    input_ids  [B, T]  conversation tokens, right-padded with `pad_id`
    labels     [B, T]  labels[b, t] = input_ids[b, t + 1] where that token is trained
                       (assistant content and its <|im_end|>), else IGNORE_INDEX
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from sglc.training.data import iter_examples
from sglc.training.skills import Example
from sglc.training.tokenizer import ENDOFTEXT, encode_chats

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    labels: torch.Tensor
    num_tokens: int  # non-padding tokens

    @property
    def num_trained_tokens(self) -> int:
        return int((self.labels != IGNORE_INDEX).sum())


def make_batch(encoded: Sequence[tuple[list[int], list[bool]]], pad_id: int) -> Batch:
    """Pad encoded conversations (ids, loss mask) into one `Batch`."""
    seq_len = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), seq_len), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), seq_len), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, mask) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        targets = torch.tensor(ids[1:])
        trained = torch.tensor(mask[1:], dtype=torch.bool)
        labels[row, : len(ids) - 1] = torch.where(trained, targets, IGNORE_INDEX)
    return Batch(input_ids, labels, sum(len(ids) for ids, _ in encoded))


def bucket_batches(encoded: list[tuple[list[int], list[bool]]], max_batch_tokens: int,
                   pad_id: int, rng: random.Random) -> list[Batch]:
    """Sort by length, cut into batches of at most `max_batch_tokens` padded tokens, shuffle."""
    ordered = sorted(encoded, key=lambda item: len(item[0]))
    batches, start = [], 0
    while start < len(ordered):
        end = start + 1
        while end < len(ordered) and (end - start + 1) * len(ordered[end][0]) <= max_batch_tokens:
            end += 1
        batches.append(make_batch(ordered[start:end], pad_id))
        start = end
    rng.shuffle(batches)
    return batches


def encode_examples(tokenizer: Tokenizer, examples: Sequence[Example],
                    max_len: int) -> list[tuple[list[int], list[bool]]]:
    """Encoded conversations, dropping any longer than `max_len` tokens."""
    encoded = encode_chats(tokenizer, [e.messages for e in examples])
    return [item for item in encoded if len(item[0]) <= max_len]


def training_batches(tokenizer: Tokenizer, seed: int, max_batch_tokens: int, max_len: int,
                     chunk_size: int = 4096) -> Iterator[Batch]:
    """An endless, seeded stream of training batches, built `chunk_size` conversations at a time."""
    stream = iter_examples(seed, "train")
    rng = random.Random(seed)
    pad_id = tokenizer.token_to_id(ENDOFTEXT)
    while True:
        examples = [next(stream) for _ in range(chunk_size)]
        yield from bucket_batches(encode_examples(tokenizer, examples, max_len),
                                  max_batch_tokens, pad_id, rng)
