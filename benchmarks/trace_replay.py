"""Trace replay: an LMSYS-Chat-1M-shaped synthetic chat trace on the default model, with the
radix cache on/off and lpm vs fcfs scheduling.

The trace (seeded, `make_trace`): `--conversations` conversations. Each picks one of
`--system-prompts` system prompts by Zipf popularity (rank^-1.1: a few prompts serve most
conversations, as deployed chat front ends share theirs); its number of turns is Zipf over
1..`--max-turns` (exponent 1.6: most conversations are short, a few long); each user message
is Zipf-long in words (exponent 1.3, 4..`--max-user-words`) and each reply Zipf-long in
tokens (exponent 1.3, 4..`--max-output-tokens`). System prompts are 40..160 words. Words
are drawn from a fixed vocabulary with the same seed.

Replay: every conversation runs as its own client thread, sending its turns one after
another (each turn's prompt is the whole conversation so far, chat template applied, the
model's earlier replies included); all conversations start together, so the engine's queue
mixes first turns and follow-ups. Greedy decoding with `ignore_eos`, so every system
decodes the same number of tokens. Reported per system: wall time, tokens/s (prompt +
output), output tokens/s, requests/s and the cache hit rate, cached prompt tokens / prompt
tokens (from each output's usage). `python benchmarks/trace_replay.py --help` for options.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "trace_replay"
# name -> (disable_radix_cache, policy)
SYSTEMS = {
    "radix on, lpm": (False, "lpm"),
    "radix on, fcfs": (False, "fcfs"),
    "radix off, lpm": (True, "lpm"),
    "radix off, fcfs": (True, "fcfs"),
}
WORDS = ("the a of to and in is it you that he was for on are with as his they be at one "
         "have this from or had by word but what some we can out other were all there when up "
         "use your how said an each she which do their time if will way about many then them "
         "write would like so these her long make thing see him two has look more day could "
         "go come did number sound no most people my over know water than call first who may "
         "down side been now find any new work part take get place made live where after back "
         "little only round man year came show every good me give our under name very through "
         "just form sentence great think say help low line differ turn cause much mean before "
         "move right boy old too same tell does set three want air well also play small end "
         "put home read hand port large spell add even land here must big high such follow act "
         "why ask men change went light kind off need house picture try us again animal point "
         "mother world near build self earth father head stand own page should country found "
         "answer school grow study still learn plant cover food sun four between state keep "
         "eye never last let thought city tree cross farm hard start might story saw far sea "
         "draw left late run while press close night real life few north open seem together "
         "next white children begin got walk example ease paper group always music those both "
         "mark often letter until mile river car feet care second book carry took science eat "
         "room friend began idea fish mountain stop once base hear horse cut sure watch color "
         "face wood main enough plain girl usual young ready above ever red list though feel "
         "talk bird soon body dog family direct pose leave song measure door product black "
         "short numeral class wind question happen complete ship area half rock order fire "
         "south problem piece told knew pass since top whole king space heard best hour better "
         "true during hundred five remember step early hold west ground interest reach fast "
         "verb sing listen six table travel less morning ten simple several vowel toward war "
         "lay against pattern slow center love person money serve appear road map rain rule "
         "govern pull cold notice voice unit power town fine certain fly fall lead cry dark "
         "machine note wait plan figure star box noun field rest correct able pound done "
         "beauty drive stood contain front teach week final gave green oh quick develop ocean "
         "warm free minute strong special mind behind clear tail produce fact street inch "
         "multiply nothing course stay wheel full force blue object decide surface deep moon "
         "island foot system busy test record boat common gold possible plane stead dry wonder "
         "laugh thousand ago ran check game shape equate hot miss brought heat snow tire bring "
         "yes distant fill east paint language among").split()


# -- the trace ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Conversation:
    system: str
    user_turns: tuple[str, ...]
    output_lens: tuple[int, ...]  # max_new_tokens of each reply (ignore_eos: exactly this)


def zipf(rng: random.Random, low: int, high: int, exponent: float) -> int:
    """A draw from the Zipf law k^-exponent truncated to [low, high]."""
    values = range(low, high + 1)
    return rng.choices(values, weights=[(k - low + 1) ** -exponent for k in values])[0]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_trace(args: argparse.Namespace) -> list[Conversation]:
    rng = random.Random(args.seed)
    systems = [f"You are assistant {i}. " + _words(rng, rng.randint(40, 160))
               for i in range(args.system_prompts)]
    conversations = []
    for _ in range(args.conversations):
        system = systems[zipf(rng, 1, len(systems), 1.1) - 1]
        num_turns = zipf(rng, 1, args.max_turns, 1.6)
        users = tuple(_words(rng, zipf(rng, 4, args.max_user_words, 1.3))
                      for _ in range(num_turns))
        outputs = tuple(zipf(rng, 4, args.max_output_tokens, 1.3) for _ in range(num_turns))
        conversations.append(Conversation(system, users, outputs))
    return conversations


def describe(trace: list[Conversation]) -> dict:
    turns = [len(c.user_turns) for c in trace]
    return {"conversations": len(trace), "requests": sum(turns),
            "distinct_system_prompts": len({c.system for c in trace}),
            "mean_turns": sum(turns) / len(trace), "max_turns": max(turns),
            "output_tokens": sum(sum(c.output_lens) for c in trace)}


# -- replay -------------------------------------------------------------------------------------
def replay(trace: list[Conversation], options: dict) -> dict:
    """One cold run: a fresh engine, every conversation on its own thread."""
    import sglc

    engine = sglc.Engine(**options)
    usages: list = []
    errors: list[str] = []
    lock = threading.Lock()

    def converse(conv: Conversation) -> None:
        messages = [{"role": "system", "content": conv.system}]
        for text, output_len in zip(conv.user_turns, conv.output_lens, strict=True):
            messages.append({"role": "user", "content": text})
            (out,) = engine.generate([list(messages)], {"max_new_tokens": output_len,
                                                        "temperature": 0, "ignore_eos": True})
            with lock:
                usages.append(out.usage)
                if out.error:
                    errors.append(out.error)
            messages.append({"role": "assistant", "content": out.text})

    try:
        threads = [threading.Thread(target=converse, args=(c,)) for c in trace]
        with common.timed() as t:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        stats = engine.stats()
    finally:
        engine.shutdown()
    prompt = sum(u.prompt_tokens for u in usages)
    output = sum(u.completion_tokens for u in usages)
    cached = sum(u.cached_tokens for u in usages)
    return {"seconds": t.seconds, "requests": len(usages), "errors": len(errors),
            "prompt_tokens": prompt, "output_tokens": output, "cached_prompt_tokens": cached,
            "cache_hit_rate": cached / prompt if prompt else 0.0,
            "tokens_per_s": (prompt + output) / t.seconds,
            "output_tokens_per_s": output / t.seconds, "requests_per_s": len(usages) / t.seconds,
            "num_prefill_tokens": stats["num_prefill_tokens"]}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(parser, repeats=2)
    parser.add_argument("--conversations", type=int, default=32)
    parser.add_argument("--system-prompts", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-user-words", type=int, default=120)
    parser.add_argument("--max-output-tokens", type=int, default=48)
    parser.add_argument("--max-running-requests", type=int, default=8,
                        help="engine batch limit: small, so requests queue and the policy "
                             "decides their order (default 8)")
    parser.add_argument("--max-total-tokens", type=int, default=16384)
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations, args.max_turns, args.repeats = 8, 3, 1
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    env_start = common.begin(args.threads)
    trace = make_trace(args)
    shape = describe(trace)
    print(f"model: the embedded default model, fp32, CPU, {args.threads} torch threads")
    print("trace (seed {seed}): {conversations} conversations, {requests} requests, "
          "{distinct_system_prompts} distinct system prompts, {mean_turns:.2f} turns on "
          "average (max {max_turns}), {output_tokens} output tokens".format(seed=args.seed, **shape))
    base = dict(dtype="float32", max_total_tokens=args.max_total_tokens,
                max_running_requests=args.max_running_requests)
    systems = {name: (lambda rep, off=off, policy=policy: replay(
        trace, base | {"disable_radix_cache": off, "policy": policy}))
        for name, (off, policy) in SYSTEMS.items()}
    results = common.interleave(systems, args.repeats)
    summary = {}
    for name, runs in results.items():
        best = {k: common.median([r[k] for r in runs])
                for k in ("seconds", "tokens_per_s", "output_tokens_per_s", "requests_per_s")}
        summary[name] = best | {k: runs[0][k] for k in ("requests", "errors", "prompt_tokens",
                                                         "cached_prompt_tokens", "cache_hit_rate",
                                                         "num_prefill_tokens")} | {"runs": runs}
    rows = [[name, s["seconds"], s["tokens_per_s"], s["output_tokens_per_s"], s["requests_per_s"],
             s["cache_hit_rate"], s["num_prefill_tokens"]] for name, s in summary.items()]
    print("\n" + common.format_table(["system", "seconds", "tok/s", "out tok/s", "req/s",
                                      "cache hit rate", "prefill tokens"], rows))
    reference = summary["radix off, fcfs"]["tokens_per_s"]
    print("\nthroughput vs radix off, fcfs: " + ", ".join(
        f"{name} {common.ratio(s['tokens_per_s'], reference):.2f}x" for name, s in summary.items()))
    report = {"benchmark": NAME, "args": vars(args), "environment": env_start,
              "trace": shape, "systems": summary}
    out = common.write_json(NAME, report, args.out)
    print(f"\nwrote {out}")
    return report


if __name__ == "__main__":
    main()
