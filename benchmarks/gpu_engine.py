"""The engine on an accelerator: correctness against transformers, then decode throughput.

    python benchmarks/gpu_engine.py                 # on a CUDA machine (~3 minutes)
    python benchmarks/gpu_engine.py --device cpu --quick   # logic check on CPU

1. Parity: tiny random-weight models of each architecture on the device. fp32: greedy
   tokens must equal transformers' `generate`. bf16/fp16: first-step logits close to
   transformers in the same dtype, and the share of greedy tokens that agree.
2. Throughput: a random-weight ~1B Llama (bf16 on CUDA): decode tokens/s at batch 1, 16, 64
   (prompt 128, 128 new tokens, ignore_eos), sglc vs transformers `generate` side by side.
Prints tables and writes benchmarks/out/gpu_engine.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

import sglc

OUT = Path(__file__).parent / "out"
TINY = dict(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
ARCHS = {
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM, {}),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM,
                {"sliding_window": 24, "head_dim": 32}),
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, {"tie_word_embeddings": True}),
    "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM, {"head_dim": 32}),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def save_random(arch: str, path: Path, dtype: torch.dtype, **overrides) -> None:
    cfg_cls, model_cls, extra = ARCHS[arch]
    torch.manual_seed(0)
    model = model_cls(cfg_cls(**{**TINY, **extra, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(3.0)
    model.to(dtype).save_pretrained(path)


def parity(device: str, dtypes: list[str]) -> list[dict]:
    rows = []
    prompts = [[1] + list(range(10, 10 + n)) for n in (5, 40, 90)]
    for arch in ARCHS:
        for dname in dtypes:
            dtype = DTYPES[dname]
            with tempfile.TemporaryDirectory() as d:
                save_random(arch, Path(d), dtype)
                hf = ARCHS[arch][1].from_pretrained(d, dtype=dtype).to(device).eval()
                with sglc.Engine(d, device=device, dtype=dname, max_total_tokens=8192) as eng:
                    outs = eng.generate(prompts, {"max_new_tokens": 32, "temperature": 0,
                                                  "ignore_eos": True})
                    ours_logits = eng.loaded.model.forward_dense(torch.tensor([prompts[1]], device=device))
                with torch.no_grad():
                    ref_logits = hf(torch.tensor([prompts[1]], device=device)).logits.float()
                    refs = [hf.generate(torch.tensor([p], device=device), max_new_tokens=32,
                                        do_sample=False, eos_token_id=None, pad_token_id=0)[0, len(p):].tolist()
                            for p in prompts]
            agree = [_agree_len(o.token_ids, r) for o, r in zip(outs, refs, strict=True)]
            err = (ours_logits - ref_logits).abs().max().item() / ref_logits.abs().max().item()
            rows.append({"arch": arch, "dtype": dname, "greedy_equal": all(a == 32 for a in agree),
                         "agree_tokens": agree, "rel_logit_err": err})
            print(f"{arch:8s} {dname:9s} greedy equal: {rows[-1]['greedy_equal']!s:5s} "
                  f"agreeing prefix {agree}  max rel logit err {err:.2e}", flush=True)
    return rows


def _agree_len(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def throughput(device: str, quick: bool) -> list[dict]:
    size = dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=16,
                num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=2048)
    if quick:
        size = dict(size, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    prompt_len, new = (128, 128) if not quick else (16, 8)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        with torch.device(device):
            hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**size)).to(dtype).eval()
        hf.save_pretrained(d)
        nparams = sum(p.numel() for p in hf.parameters())
        print(f"\nthroughput model: Llama {nparams / 1e9:.2f}B params, {dtype}, {device}", flush=True)
        engine = sglc.Engine(d, device=device, dtype=str(dtype).split(".")[1])
        for batch in (1, 16, 64):
            g = torch.Generator().manual_seed(batch)
            prompts = torch.randint(3, 32000, (batch, prompt_len), generator=g).tolist()
            params = {"max_new_tokens": new, "temperature": 0, "ignore_eos": True}
            engine.generate(prompts[:1], {**params, "max_new_tokens": 4})  # warm-up
            ours = _timed(lambda p=prompts, s=params: engine.generate(p, s), device)
            ids = torch.tensor(prompts, device=device)
            hf.generate(ids[:1], max_new_tokens=4, do_sample=False, pad_token_id=0)
            theirs = _timed(lambda i=ids: hf.generate(i, max_new_tokens=new, min_new_tokens=new,
                                                      do_sample=False, pad_token_id=0), device)
            toks = batch * new
            row = {"batch": batch, "sglc_tok_s": toks / ours, "hf_tok_s": toks / theirs,
                   "ratio": theirs / ours}
            rows.append(row)
            print(f"batch {batch:3d}: sglc {row['sglc_tok_s']:9.1f} tok/s   transformers "
                  f"{row['hf_tok_s']:9.1f} tok/s   ratio {row['ratio']:.2f}x", flush=True)
        engine.shutdown()
    return rows


def _timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device: {name}; torch {torch.__version__}; transformers {transformers.__version__}")
    dtypes = ["float32", "bfloat16", "float16"] if args.device.startswith("cuda") else ["float32"]
    result = {"device": name, "parity": parity(args.device, dtypes),
              "throughput": throughput(args.device, args.quick)}
    OUT.mkdir(exist_ok=True)
    (OUT / "gpu_engine.json").write_text(json.dumps(result, indent=2))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    common.plot_beside("gpu_engine", result, OUT / "gpu_engine.json")
    ok = all(r["greedy_equal"] for r in result["parity"] if r["dtype"] == "float32")
    print("fp32 greedy parity:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
