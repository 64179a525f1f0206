"""Sweep the Triton extend-attention launch shapes on a GPU, each next to SDPA.

    python benchmarks/gpu_extend_tune.py                 # on CUDA, about 2 minutes
    python benchmarks/gpu_extend_tune.py --cpu-smoke     # logic check under the interpreter

For every launch shape in `CONFIGS` (BLOCK_M, BLOCK_N, warps, pipeline stages) and every case
of `gpu_kernels`' extend benchmark (4 x 2k new tokens; 4 x 512 over a cached 1.5k prefix;
32 q / 8 kv heads, bf16) at head dims 128 and 64, `gpu_kernels.bench_extend` checks the output
against ``F.scaled_dot_product_attention`` and times both (``do_bench`` medians). Prints one
table, the best shape per case (among those within the error bound) and the current default
(`launch_config`), and writes benchmarks/out/gpu_extend_tune.json. The defaults in
kernels/triton_extend_attention.py come from this sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_setup  # noqa: E402  (first: sets TRITON_INTERPRET under --cpu-smoke)
import torch  # noqa: E402
from gpu_kernels import bench_extend  # noqa: E402

from sglc.kernels.triton_extend_attention import launch_config  # noqa: E402

# (block_m, block_n, num_warps, num_stages)
CONFIGS = ((64, 64, 4, 3), (64, 64, 4, 4), (64, 128, 4, 3), (128, 32, 4, 3), (128, 64, 4, 3),
           (128, 64, 8, 2), (128, 64, 8, 3), (128, 64, 8, 4), (128, 128, 8, 2), (128, 128, 8, 3))  # fmt: skip
SMOKE_CONFIGS = ((16, 16, 4, 1), (32, 16, 4, 1))
MAX_ERR = 2e-2  # bf16 outputs of O(1) values: a wrong kernel is off by far more


def sweep(run: gpu_setup.Run, configs, head_dims: tuple[int, ...]) -> list[dict[str, Any]]:
    hq, hkv, _ = run.sizes.heads
    rows = []
    for d in head_dims:
        for label, batch, prefix, new in run.sizes.extend_bench:
            for bm, bn, warps, stages in configs:
                config = dict(block_m=bm, block_n=bn, num_warps=warps, num_stages=stages)
                args = (run, f"{label}, d {d}", batch, prefix, new)
                kwargs = {"heads": (hq, hkv, d), "config": config}
                rows.extend(run.guarded(f"{args[1]} {config}", lambda a=args, k=kwargs: [
                    bench_extend(*a, **k)]))
            gpu_setup._free(run)
    return rows


def best_per_case(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["max_abs_err_vs_sdpa"] > MAX_ERR:
            continue
        if row["case"] not in best or row["triton_ms"] < best[row["case"]]["triton_ms"]:
            best[row["case"]] = row
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes under the interpreter")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "gpu_extend_tune.json")
    args = ap.parse_args()
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    sizes = gpu_setup.SMOKE if args.cpu_smoke else gpu_setup.FULL
    run = gpu_setup.Run(device, sizes, budget_s=1e9, peak=None)
    name = "cpu (interpreter)" if args.cpu_smoke else torch.cuda.get_device_name()
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    head_dims = (sizes.heads[2],) if args.cpu_smoke else (128, 64)
    rows = sweep(run, SMOKE_CONFIGS if args.cpu_smoke else CONFIGS, head_dims)
    cols = ["case", "block_m", "block_n", "warps", "stages", "triton ms", "TFLOP/s", "SDPA ms",
            "ratio", "err"]
    print(gpu_setup.common.format_table(cols, [
        [r["case"], *r["config"].values(), r["triton_ms"], r["triton_tflops"], r["sdpa_ms"],
         r["ratio_vs_sdpa"], f"{r['max_abs_err_vs_sdpa']:.1e}"] for r in rows]))  # fmt: skip
    best = best_per_case(rows)
    for case, row in best.items():
        print(f"best for {case}: {row['config']} ratio {row['ratio_vs_sdpa']:.2f}x SDPA")
    defaults = {d: launch_config(device, d)._asdict() for d in head_dims}
    print(f"current defaults: {defaults}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": name, "rows": rows, "best": best, "defaults": defaults,
              "errors": run.errors}
    args.out.write_text(json.dumps(report, indent=2))
    gpu_setup.common.plot_beside("gpu_extend_tune", report, args.out)
    print(f"wrote {args.out}")
    return 1 if run.errors or len(best) < len({r["case"] for r in rows}) else 0


if __name__ == "__main__":
    sys.exit(main())
