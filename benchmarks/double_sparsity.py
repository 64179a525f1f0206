"""Double Sparsity (issue 26): decode attention time against dense, and quality at 1/8 and
1/16 sparsity on the embedded default model.

    python benchmarks/double_sparsity.py [--quick] [--repeats 5] [--per-skill 10]

- attention op: one decode query per request over 4k, 16k and 32k tokens of context (random
  K/V in a pool, the default model's head shape: 8 query heads, 4 KV heads, dim 32, fp32),
  dense (the compiled CPU kernel and the PyTorch reference) against
  `sparse_decode_attention` at (token_ratio, channel_ratio) = (1/8, 1/8) and (1/16, 1/16)
  with the engine's default label cache (a quarter of the channels); interleaved, medians.
  The default model's context is 1024 positions, so the op runs on random tensors there.
- retrieval: the model's own key-value recall (facts stated, then one asked for; held-out
  `recall` conversations) decoded greedily through the engine, exact match of the reply.
  Its contexts are short (tens of tokens), so it runs with the engine's default floor of 16
  selected tokens and with a floor of 4 (where the ratio decides); the mean share of the
  context attended is reported. (Lines of "key=value" the model never saw score 0 even
  dense, so they measure nothing here.)
- held-out loss: reply tokens of held-out conversations of every skill, teacher-forced,
  each reply position attending as a decode step would (`SparseCausalAttention`).
Prints a table and writes benchmarks/out/double_sparsity.json.
"""

from __future__ import annotations

import argparse
import math
import time

import common

NAME = "double_sparsity"
SETTINGS = {"dense": None, "1/8": (1 / 8, 1 / 8), "1/16": (1 / 16, 1 / 16)}
FLOORS = (16, 4)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(p, repeats=5)
    p.add_argument("--contexts", type=int, nargs="+", default=[4096, 16384, 32768])
    p.add_argument("--batch", type=int, default=1, help="decode queries per op call")
    p.add_argument("--iters", type=int, default=20, help="op calls per repeat")
    p.add_argument("--per-skill", type=int, default=10, help="held-out conversations per skill")
    p.add_argument("--recall", type=int, default=100, help="held-out recall conversations")
    args = p.parse_args(argv)
    if args.quick:
        args.contexts, args.iters, args.per_skill, args.recall = [1024, 4096], 5, 2, 20
        args.repeats = min(args.repeats, 2)
    return args


# -- the attention op -----------------------------------------------------------------------
def op_systems(args, context: int) -> dict:
    """name -> callable(repeat) timing one decode attention variant over `context` keys."""
    import torch

    from sglc.kernels import AttentionShape, get_ops
    from sglc.kernels.cpu_build import cpu_kernels_available
    from sglc.kernels.sparse_attention import sparse_decode_attention, store_labels
    from sglc.runtime.sparsity.decode import NUM_RECENT_TOKENS, num_channels, num_selected

    hq, hkv, dim, width = 8, 4, 32, num_channels(0.25, 32)
    gen = torch.Generator().manual_seed(args.seed)
    batch, num_slots = args.batch, args.batch * context + 1
    k_buf, v_buf = torch.randn(num_slots, hkv, dim, generator=gen), torch.randn(
        num_slots, hkv, dim, generator=gen)
    channels = torch.stack([torch.randperm(dim, generator=gen)[:width] for _ in range(hkv)])
    labels = torch.empty(num_slots, hkv, width)
    store_labels(labels, channels, torch.arange(num_slots), k_buf)
    table = torch.arange(1, num_slots).view(batch, context)
    rows, lens = list(range(batch)), [context] * batch
    q = torch.randn(batch, hq, dim, generator=gen)
    scale = dim**-0.5
    systems = {}
    for backend in ("cpu", "torch") if cpu_kernels_available() else ("torch",):
        ops = get_ops(backend)
        plan = ops.plan_decode(table, rows, lens, AttentionShape(hq, hkv, dim))
        systems[f"dense ({backend})"] = lambda o=ops, p=plan: o.decode_attention(
            q, k_buf, v_buf, table, rows, lens, sm_scale=scale, plan=p)
    for name, ratio in SETTINGS.items():
        if ratio is None:
            continue
        selected = [num_selected(ratio[0], context, 16)] * batch
        used = [num_channels(ratio[1], dim)] * batch
        systems[f"sparse {name}"] = lambda s=selected, c=used: sparse_decode_attention(
            q, k_buf, v_buf, labels, channels, table, rows, lens, s, c, sm_scale=scale,
            num_recent=NUM_RECENT_TOKENS)
    return {name: (lambda rep, fn=fn: _time(fn, args.iters)) for name, fn in systems.items()}


def _time(fn, iters: int) -> dict:
    fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"ms": 1e3 * common.median(times)}


# -- quality on the default model -----------------------------------------------------------
def recall_accuracy(args, floor: int) -> dict:
    """Exact match on held-out recall conversations per setting, through the engine."""
    import sglc
    from sglc.training.data import generate, prompt_messages

    examples = generate(args.seed, args.recall, "heldout", ("recall",))
    prompts = [prompt_messages(ex) for ex in examples]
    results = {}
    with sglc.Engine(sparsity_calibration="auto", sparsity_min_tokens=floor,
                     max_total_tokens=16384) as engine:
        lens = [len(_encode(engine.tokenizer, p, True)) for p in prompts]
        for name, ratio in SETTINGS.items():
            outs = engine.generate(prompts, {"max_new_tokens": 24, "temperature": 0,
                                             "attention_sparsity": ratio})
            right = sum(o.text.strip() == ex.answer for o, ex in zip(outs, examples,
                                                                      strict=True))
            results[name] = {"exact_match": right / len(examples),
                             "attended_share": _attended_share(ratio, lens, floor)}
    results["mean_prompt_tokens"] = sum(lens) / len(lens)
    return results


def _encode(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)
    return tokenizer.encode(text, add_special_tokens=False)


def _attended_share(ratio, prompt_lens: list[int], floor: int) -> float:
    """Mean share of the context the first decode steps attend to (at the prompt length)."""
    if ratio is None:
        return 1.0
    return sum(min(n, max(floor, math.ceil(ratio[0] * n))) / n for n in prompt_lens) / len(
        prompt_lens)


def heldout_loss(args, floor: int) -> dict:
    """Mean NLL per reply token, teacher-forced, reply positions attending as decode would."""
    import torch

    from sglc.runtime.engine import default_model_path
    from sglc.runtime.models.loader import load_model_dir, read_hf_config
    from sglc.runtime.sparsity.calibration import load_calibration
    from sglc.runtime.sparsity.decode import LabelCache
    from sglc.runtime.sparsity.reference import SparseCausalAttention
    from sglc.training.data import SKILLS, generate, prompt_messages

    path = default_model_path()
    loaded = load_model_dir(path, dtype="float32")
    labels = LabelCache(load_calibration("auto", path, read_hf_config(path)), 0.25, 1,
                        torch.float32, torch.device("cpu"), floor)
    tok = loaded.tokenizer
    pairs = []
    for skill in SKILLS:
        for ex in generate(args.seed, args.per_skill, "heldout", (skill,)):
            prompt = _encode(tok, prompt_messages(ex), True)
            whole = _encode(tok, list(ex.messages), False)
            if whole[: len(prompt)] == prompt:
                pairs.append((prompt, whole))
    results = {}
    for name, ratio in SETTINGS.items():
        nll = count = 0.0
        for prompt, whole in pairs:
            ids = torch.tensor(whole)
            attn = SparseCausalAttention(labels, len(ids), len(prompt), ratio or (1.0, 1.0))
            with torch.inference_mode():
                logits = loaded.model.compute_logits(loaded.model(ids, torch.arange(len(ids)),
                                                                  attn))
            logp = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
            nll -= float(logp.gather(1, ids[len(prompt):, None]).sum())
            count += len(ids) - len(prompt)
        results[name] = {"heldout_loss": nll / count}
    results["num_conversations"] = len(pairs)
    return results


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_start = common.begin(args.threads)
    op: dict[int, dict] = {}
    for context in args.contexts:
        runs = common.interleave(op_systems(args, context), args.repeats)
        op[context] = {name: common.median([r["ms"] for r in rs]) for name, rs in runs.items()}
    quality = {floor: {"recall": recall_accuracy(args, floor),
                       "loss": heldout_loss(args, floor)} for floor in FLOORS}
    dense_name = "dense (cpu)" if "dense (cpu)" in op[args.contexts[0]] else "dense (torch)"
    print(f"\n== {NAME}: decode attention, batch {args.batch}, fp32 on CPU, "
          f"{args.repeats} repeat(s), medians (ms; x = {dense_name} / this) ==")
    names = list(op[args.contexts[0]])
    rows = [[f"{c}", *[op[c][n] for n in names],
             *[common.ratio(op[c][dense_name], op[c][n]) for n in names if "sparse" in n]]
            for c in args.contexts]
    print(common.format_table(["context", *names, *[f"x {n}" for n in names if "sparse" in n]],
                              rows))
    print(f"\n== {NAME}: default model quality (floor = sparsity_min_tokens) ==")
    rows = []
    for floor in FLOORS:
        q = quality[floor]
        for name in SETTINGS:
            rows.append([f"{name} (floor {floor})", q["recall"][name]["exact_match"],
                         q["recall"][name]["attended_share"], q["loss"][name]["heldout_loss"]])
    print(common.format_table(["setting", "recall exact", "share attended", "heldout loss"],
                              rows))
    return common.save_report(NAME, env_start, args, "sglc default model", op_ms=op,
                              quality=quality)


if __name__ == "__main__":
    main()
