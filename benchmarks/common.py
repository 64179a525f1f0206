"""Shared benchmark helpers: the random-weight model, seeded workloads, timing, tables, JSON.

Every benchmark runs the systems it compares interleaved in one process (A, B, A, B, ...),
because the machines these run on are shared and noisy; it quotes medians over repeats.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sglc.progress import progress

OUT_DIR = Path(__file__).resolve().parent / "out"  # gitignored
NUM_THREADS = 2
FIRST_TOKEN_ID = 3  # random prompts avoid the special ids 0 (pad), 1 (bos), 2 (eos)


def set_threads(num_threads: int = NUM_THREADS) -> None:
    """Pin torch (and OpenMP/MKL, for threads started later) to `num_threads` threads.

    NOTE: call before anything creates torch worker pools, i.e. first thing in main().
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(num_threads))
    import torch

    torch.set_num_threads(num_threads)


def add_common_args(parser: argparse.ArgumentParser, *, repeats: int) -> None:
    parser.add_argument("--repeats", type=int, default=repeats,
                        help=f"interleaved repeats; medians are quoted (default {repeats})")
    parser.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    parser.add_argument("--threads", type=int, default=NUM_THREADS,
                        help=f"torch threads (default {NUM_THREADS})")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output path (default benchmarks/out/<name>.json)")


# -- the model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A random-weight Llama; tied embeddings keep the 32k-vocab model near 40M parameters."""

    hidden_size: int = 512
    num_layers: int = 8
    num_heads: int = 8
    num_kv_heads: int = 4
    intermediate_size: int = 1408
    vocab_size: int = 32000
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = True
    seed: int = 0

    @property
    def name(self) -> str:
        return (
            f"llama-h{self.hidden_size}-l{self.num_layers}-a{self.num_heads}-kv{self.num_kv_heads}"
            f"-i{self.intermediate_size}-v{self.vocab_size}-p{self.max_position_embeddings}"
            f"-{'tied' if self.tie_word_embeddings else 'untied'}-s{self.seed}"
        )

    def hf_config(self):
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size, num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads, num_key_value_heads=self.num_kv_heads,
            max_position_embeddings=self.max_position_embeddings,
            tie_word_embeddings=self.tie_word_embeddings,
            bos_token_id=1, eos_token_id=2, pad_token_id=0,
        )


def model_dir(spec: ModelSpec) -> Path:
    """The HF-format directory of `spec`, built and saved once under benchmarks/out/models/."""
    path = OUT_DIR / "models" / spec.name
    if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
        return path
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(spec.hf_config()).eval()
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)  # a half-written directory from a killed run
    tmp.replace(path)
    return path


def count_params(model) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


# -- workloads ------------------------------------------------------------------------------
def random_prompts(
    rng: random.Random, lengths: Sequence[int], vocab_size: int
) -> list[list[int]]:
    return [[rng.randrange(FIRST_TOKEN_ID, vocab_size) for _ in range(n)] for n in lengths]


def greedy_params(max_new_tokens: int) -> dict[str, Any]:
    return {"max_new_tokens": max_new_tokens, "temperature": 0, "ignore_eos": True}


# -- timing ---------------------------------------------------------------------------------
class Stopwatch:
    seconds: float = 0.0


@contextmanager
def timed():
    """`with timed() as t: ...` then `t.seconds` (wall clock, perf_counter)."""
    watch = Stopwatch()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_in_thread(fn: Callable[[], Any]) -> Any:
    """Call `fn` on a fresh thread and return its result (or raise its exception).

    NOTE: every measured system runs on a fresh non-main thread, as sglc's engine loop
    does, so both sides of a comparison issue torch ops from the same kind of thread. With
    2 intra-op threads on 2 cores while another process kept one core busy, we saw the same
    ops run up to 10x slower on some threads than on others (a [64, 512] @ [512, 1408]
    matmul: 12 ms on the main thread, 1.1 ms on a worker; on an idle machine both 0.6 ms).
    The load average is recorded in the JSON; prefer `--threads 1` on a busy machine.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # re-raised on the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="bench-worker")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def interleave(
    systems: dict[str, Callable[[int], dict[str, Any]]], repeats: int, *, log: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Run every system once per repeat, rotating the order each repeat so no system is
    always first (warm caches, background load drifting). Each callable gets the repeat
    index and returns a dict of measurements; returns name -> list of those dicts. Each call
    runs on a fresh thread (see `run_in_thread`)."""
    names = list(systems)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with progress(desc="measuring", total=repeats * len(names), unit="run") as bar:
        for rep in range(repeats):
            shift = rep % len(names)
            for name in names[shift:] + names[:shift]:
                bar.set_postfix_str(f"repeat {rep + 1}/{repeats}: {name}")
                measured = run_in_thread(lambda name=name, rep=rep: systems[name](rep))
                results[name].append(measured)
                bar.update()
                if log:
                    brief = ", ".join(f"{k}={_fmt(v)}" for k, v in measured.items()
                                      if isinstance(v, (int, float)))
                    bar.write(f"  [repeat {rep + 1}/{repeats}] {name}: {brief}",
                              file=sys.stdout)
    return results


# -- reporting ------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(columns)] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = []
    for k, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either side is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def environment() -> dict[str, Any]:
    import torch
    import transformers

    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def write_json(name: str, payload: dict[str, Any], path: Path | None = None) -> Path:
    """Write the benchmark's JSON (default benchmarks/out/<name>.json) and its plot beside."""
    path = path or OUT_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    plot_beside(name, json.loads(path.read_text()), path)
    return path


def save_report(name: str, env_start: dict[str, Any], args: Any, model: str,
                file_name: str | None = None, **fields: Any) -> dict[str, Any]:
    """A benchmark's report: its name, the environment at the start and the load at the
    end, the model, the workload (its arguments) and `fields`; written as JSON (with its
    plot: `write_json`, under `file_name`, default `name`), announced, and returned."""
    report = {"benchmark": name, "env": env_start, "model": model,
              "workload": vars(args) | {"out": None}, **fields,
              "load_avg_1m_end": environment()["load_avg_1m"]}
    print(f"\nwrote {write_json(file_name or name, report, args.out)}")
    return report


def plot_beside(name: str, payload: dict[str, Any], json_path: Path) -> Path | None:
    """Draw benchmark `name`'s plot (plots.py) into the PNG beside `json_path`."""
    try:
        import plots
    except ImportError as exc:  # matplotlib: pip install -e ".[dev]"
        print(f"no plot: {exc}")
        return None
    written = plots.save_plot(name, payload, json_path.with_suffix(".png"))
    if written is not None:
        print(f"wrote {written}")
    return written


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def begin(num_threads: int) -> dict[str, Any]:
    """A benchmark's first step: threads set, the environment recorded and printed."""
    set_threads(num_threads)
    env_start = environment()
    print(f"{env_start['date_utc']}  load avg {env_start['load_avg_1m']:.2f}")
    return env_start


def start(num_threads: int) -> tuple[dict[str, Any], ModelSpec, Path]:
    """A benchmark's preamble: threads set, environment recorded and printed, the model
    built (once) and its directory returned."""
    env_start = begin(num_threads)
    spec = ModelSpec()
    return env_start, spec, model_dir(spec)
