"""Offloading (FlexGen, issue 26): a random-weight Llama larger than the RAM budget given
to the engine decodes, its layers streamed from the mapped checkpoint (and host copies),
placed by the policy search; tokens/s and the process's anonymous memory next to the fully
resident engine, greedy outputs compared.

Each configuration runs in a fresh process (so its memory is its own), interleaved over
repeats. `RssAnon` is the process's anonymous memory above what it held before the engine
was built (torch and the rest imported): its peak while loading (the probe, the KV pool
allocated in RAM before its disk layers move to files) and its peak while decoding, after
`malloc_trim` hands back what loading freed. The mapped checkpoint's pages are
file-backed and counted apart (`RssFile`, at the end). With `drop page cache` the disk tier's pages are evicted after
every read, so every step reads the storage again.

    python benchmarks/offload.py            # 16 layers of hidden 768: ~450 MB of fp32 weights
    python benchmarks/offload.py --quick
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (the script runs from any directory)

NAME = "offload"


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def run_one(model: str, options: dict, prompts: list[list[int]], max_new_tokens: int,
            threads: int) -> dict:
    """One configuration in this process: build, decode, measure."""
    common.set_threads(threads)
    from sglc.runtime.engine import Engine

    base = _status("RssAnon")
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _status("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    with Engine(model, **options) as engine:
        build_s = time.perf_counter() - start
        engine.generate(prompts[:1], common.greedy_params(2))  # warm-up
        build_peak = peak[0]
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # what loading freed goes back to the OS
        peak[0] = _status("RssAnon")
        start = time.perf_counter()
        outs = engine.generate(prompts, common.greedy_params(max_new_tokens))
        decode_s = time.perf_counter() - start
        policy = engine.offloaded.describe() if engine.offloaded else "all resident"
        streamer = engine.offloaded.streamer if engine.offloaded else None
        loads = streamer.num_loads if streamer else 0
    done.set()
    sampler.join()
    return {"tokens": [o.token_ids for o in outs], "build_s": build_s,
            "tokens_per_s": len(prompts) * max_new_tokens / decode_s,
            "peak_rss_anon_mib": (peak[0] - base) / 2**20,
            "build_peak_rss_anon_mib": (build_peak - base) / 2**20,
            "rss_file_mib": _status("RssFile") / 2**20, "layer_loads": loads,
            "policy": policy}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(p, repeats=3)
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--num-requests", type=int, default=4)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--device-share", type=float, default=0.3,
                   help="max_device_memory as a share of the model's bytes (default 0.3)")
    p.add_argument("--host-share", type=float, default=0.2,
                   help="max_host_memory, same (the host configuration; default 0.2)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.layers, args.hidden, args.vocab, args.max_new_tokens = 6, 256, 512, 8
        args.repeats, args.device_share = 1, 0.75
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(run_one(**job)))
        return {}
    import random

    env_start, spec, _ = common.start(args.threads)
    spec = replace(spec, hidden_size=args.hidden, num_layers=args.layers,
                   num_heads=args.hidden // 64, num_kv_heads=args.hidden // 128,
                   intermediate_size=args.hidden * 11 // 4, vocab_size=args.vocab)
    model = common.model_dir(spec)
    model_bytes = sum(f.stat().st_size for f in model.glob("*.safetensors"))
    rng = random.Random(args.seed)
    prompts = common.random_prompts(rng, [args.prompt_len] * args.num_requests,
                                    spec.vocab_size)
    small = {"max_total_tokens": 1024, "chunked_prefill_size": 128, "max_running_requests": 8}
    device = int(model_bytes * args.device_share)
    host = int(model_bytes * args.host_share)
    configs = {
        "resident": small,
        "disk (page cache kept)": {**small, "max_device_memory": device},
        "disk (page cache dropped)": {**small, "max_device_memory": device,
                                      "offload_drop_page_cache": True},
        "host + disk": {**small, "max_device_memory": device, "max_host_memory": host},
    }

    def child(options: dict) -> dict:
        job = {"model": str(model), "options": options, "prompts": prompts,
               "max_new_tokens": args.max_new_tokens, "threads": args.threads}
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(job)],
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{options}: {done.stderr.strip().splitlines()[-1]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    runs = common.interleave({name: (lambda rep, o=o: child(o)) for name, o in configs.items()},
                             args.repeats)
    want = runs["resident"][0]["tokens"]
    results, rows = {}, []
    for name, measured in runs.items():
        r = {"tokens_per_s": common.median([m["tokens_per_s"] for m in measured]),
             "peak_rss_anon_mib": common.median([m["peak_rss_anon_mib"] for m in measured]),
             "build_peak_rss_anon_mib": common.median([m["build_peak_rss_anon_mib"]
                                                       for m in measured]),
             "rss_file_mib": common.median([m["rss_file_mib"] for m in measured]),
             "build_s": common.median([m["build_s"] for m in measured]),
             "layer_loads": measured[0]["layer_loads"],
             "identical_outputs": all(m["tokens"] == want for m in measured),
             "budget_mib": (configs[name].get("max_device_memory", 0)
                            + configs[name].get("max_host_memory", 0)) / 2**20 or None,
             "policy": measured[0]["policy"]}
        results[name] = r
        rows.append([name, r["budget_mib"], r["peak_rss_anon_mib"],
                     r["build_peak_rss_anon_mib"], r["rss_file_mib"],
                     r["tokens_per_s"],
                     common.ratio(r["tokens_per_s"], common.median(
                         [m["tokens_per_s"] for m in runs["resident"]])),
                     r["build_s"], r["identical_outputs"]])
    for name, r in results.items():
        print(f"\n-- {name} --\n{r['policy']}")
    print(f"\n== {NAME}: {spec.name} ({model_bytes / 2**20:.0f} MiB of fp32 safetensors), "
          f"{args.num_requests} requests x {args.max_new_tokens} tokens, {args.repeats} "
          f"repeat(s), medians ==")
    print(common.format_table(
        ["config", "RAM budget MiB", "decode RssAnon MiB", "build RssAnon MiB",
         "RssFile MiB", "tokens/s",
         "x resident", "build s", "identical"], rows))
    return common.save_report(NAME, env_start, args, spec.name,
                              model_mib=model_bytes / 2**20, results=results)


if __name__ == "__main__":
    main()
