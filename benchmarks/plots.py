"""One plot per benchmark, drawn from the JSON it writes (matplotlib, no display needed).

Every benchmark saves its PNG beside its JSON (`common.write_json` calls `save_plot`); to
redraw from JSON already written:

    python benchmarks/plots.py benchmarks/out/*.json

Each `draw_<benchmark>(report)` returns a Figure; `PLOTS` maps the benchmark's name (its
JSON file's stem, or a prefix of it: gpu_kernels_cpu_smoke is gpu_kernels) to it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_kit import (  # noqa: E402  (the script runs from any directory)
    DPI,
    Axes,
    Figure,
    Report,
    bar_chart,
    grouped_bars,
    line_chart,
    new_figure,
    plt,
    ratio_title,
    two_bar_panels,
)


# -- one function per benchmark -----------------------------------------------------------
def draw_engine_throughput(report: Report) -> Figure:
    """Output tokens per second of sglc and transformers at each batch size."""
    results = report["results"]
    fig, (ax,) = new_figure(title="engine throughput (CPU, offline, medians)")
    bar_chart(ax, list(results), [r["median_tokens_per_s"] for r in results.values()],
              "output tokens / s")
    return fig


def draw_prefix_sharing(report: Report) -> Figure:
    """Prefill tokens and wall time with the radix cache on and off."""
    results = report["results"]
    fig, (left, right) = new_figure(2, "prefix sharing: radix cache on vs off")
    bar_chart(left, list(results), [r["num_prefill_tokens"] for r in results.values()],
              "prefill tokens")
    bar_chart(right, list(results), [r["median_seconds"] for r in results.values()], "wall s")
    return fig


def draw_program_throughput(report: Report) -> Figure:
    """Wall time of each workload for sglc, sglc without the prefix pass, and transformers."""
    workloads = report["workloads"]
    systems = list(next(iter(workloads.values()))["results"])
    series = {s: [w["results"].get(s, {}).get("median_seconds") for w in workloads.values()]
              for s in systems}
    fig, (ax,) = new_figure(title="SGL program throughput (lower is better)")
    grouped_bars(ax, list(workloads), series, "wall s")
    return fig


def draw_json_decode(report: Report) -> Figure:
    """Forward passes per system (jump-forward on/off, outlines) and index build times."""
    fig, (left, right) = new_figure(2, "constrained decoding")
    decoding = report.get("decoding") or report.get("decoding_default_model")
    if decoding:
        results = decoding["results"]
        bar_chart(left, list(results), [r["median_forward_passes"] for r in results.values()],
                  "forward passes", "JSON schema decoding")
    builds = report.get("constraint_costs", {}).get("index_build", {})
    if builds:
        vocabs = sorted({label for per in builds.values() for label in per})
        series = {v: [builds[s].get(v, {}).get("median_seconds") for s in builds]
                  for v in vocabs}
        grouped_bars(right, list(builds), series, "index build s", "token index builds")
    return fig


def _service_lines(ax: Axes, timelines: dict[str, list[dict[str, float]]], title: str) -> None:
    for policy, timeline in timelines.items():
        clients = sorted({c for point in timeline for c in point})
        for client in clients:
            ax.plot(range(1, len(timeline) + 1), [p.get(client, 0.0) for p in timeline],
                    marker="o", markersize=3, label=f"{policy}: {client}")
    ax.set_xlabel("sample")
    ax.set_ylabel("service (weighted tokens)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)


def draw_fairness(report: Report) -> Figure:
    """Each client's service over time under each policy (simulation and engine)."""
    parts = [(key, title) for key, title in (("sim", "scheduler simulation"),
                                             ("engine", "sglc.Engine"))
             if report.get(key)]
    fig, axes = new_figure(max(len(parts), 1), "fairness: service over time")
    for ax, (key, title) in zip(axes, parts, strict=False):
        timelines = {p: (r["timeline"] if key == "sim" else r["runs"][0]["timeline"])
                     for p, r in report[key].items()}
        _service_lines(ax, timelines, title)
    return fig


def draw_kv_policies(report: Report) -> Figure:
    """KV memory per request and agreement with exact attention, per eviction config."""
    results = report["results"]
    fig, (left, right) = new_figure(2, "KV eviction: memory per request vs agreement")
    bar_chart(left, list(results), [r.get("peak_kv_kib_per_request") for r in results.values()],
              "peak KV KiB / request")
    bar_chart(right, list(results), [r.get("token_agreement") for r in results.values()],
              "token agreement with exact")
    return fig


def draw_multi_lora(report: Report) -> Figure:
    """Output tokens per second against the number of adapters, per system."""
    results = report["results"]
    counts = sorted(results, key=int)
    systems = [k for k, v in results[counts[0]].items() if isinstance(v, dict)]
    fig, (ax,) = new_figure(title="multi-LoRA throughput")
    for system in systems:
        ax.plot([int(c) for c in counts], [results[c][system]["tokens_per_s"] for c in counts],
                marker="o", label=system)
    ax.set_xlabel("adapters")
    ax.set_ylabel("output tokens / s")
    ax.legend(fontsize=8)
    return fig


def draw_serve_load(report: Report) -> Figure:
    """Throughput and time to first token, server against in-process engine."""
    summary = report["summary"]
    fig, (left, right) = new_figure(2, f"serving load ({report.get('num_requests', '?')} requests)")
    bar_chart(left, list(summary), [s["output_tokens_per_s"] for s in summary.values()],
              "output tokens / s")
    grouped_bars(right, list(summary), {
        "TTFT p50": [s["ttft_p50_ms"] for s in summary.values()],
        "TTFT p99": [s["ttft_p99_ms"] for s in summary.values()]}, "ms")
    return fig


def draw_default_model_eval(report: Report) -> Figure:
    """Held-out accuracy per skill (generate, select, the SGL program) with the targets."""
    results, targets = report["results"], report.get("targets", {})
    skills = list(results)
    series = {way: [results[s].get(way) for s in skills] for way in ("generate", "select", "sgl")}
    fig, (ax,) = new_figure(title=f"default model, {report.get('num_per_skill', '?')} per skill")
    grouped_bars(ax, skills, series, "accuracy")
    ax.legend(fontsize=8, loc="lower left")
    for k, skill in enumerate(skills):
        if targets.get(skill) is not None:
            ax.hlines(targets[skill], k - 0.45, k + 0.45, colors="black", linestyles="dashed")
    ax.set_ylim(0, 1.05)
    return fig


def draw_gpu_engine(report: Report) -> Figure:
    """Decode throughput of sglc and transformers against batch size."""
    rows = report["throughput"]
    fig, (ax,) = new_figure(title=f"engine throughput on {report.get('device', '?')}")
    for key, label in (("sglc_tok_s", "sglc"), ("hf_tok_s", "transformers")):
        ax.plot([r["batch"] for r in rows], [r[key] for r in rows], marker="o", label=label)
    ax.set_xlabel("batch size")
    ax.set_ylabel("tokens / s")
    ax.legend(fontsize=8)
    return fig


def draw_gpu_kernels(report: Report) -> Figure:
    """Kernel bandwidth (Triton vs torch) and engine decode throughput per backend."""
    fig, (left, right) = new_figure(2, f"Triton kernels ({report['environment'].get('mode', '')})")
    rows = report.get("bandwidth", [])
    if rows:
        labels = [r["kernel"] for r in rows]
        grouped_bars(left, labels, {"triton": [r["triton_gbs"] for r in rows],
                                "torch": [r["torch_gbs"] for r in rows]}, "GB/s", "bandwidth")
    engine = report.get("engine", [])
    for backend in sorted({r["backend"] for r in engine}):
        mine = [r for r in engine if r["backend"] == backend]
        right.plot([r["batch"] for r in mine], [r["decode_tok_s"] for r in mine], marker="o",
                   label=backend)
    if engine:
        right.set_xlabel("batch size")
        right.set_ylabel("decode tokens / s")
        right.legend(fontsize=8)
    return fig


def draw_gpu_extend_tune(report: Report) -> Figure:
    """Each launch config's time against SDPA, per case (below 1: faster than SDPA)."""
    rows = report["rows"]
    cases = list(dict.fromkeys(r["case"] for r in rows))
    fig, (ax,) = new_figure(title=f"extend attention configs on {report.get('device', '?')}")
    for case in cases:
        mine = [r for r in rows if r["case"] == case]
        ax.plot(range(len(mine)), [r["ratio_vs_sdpa"] for r in mine], marker="o", label=case)
    ax.axhline(1.0, color="black", linestyle="dashed", linewidth=1)
    ax.set_xlabel("launch config (sweep order)")
    ax.set_ylabel("triton ms / SDPA ms")
    ax.legend(fontsize=8)
    return fig


def draw_dp_router(report: Report) -> Figure:
    """Prefix-cache hit rate and requests per second per data-parallel router."""
    results = report["results"]
    dp = report.get("workload", {}).get("dp", "?")
    ratios = ", ".join(t for t in (ratio_title(report, "hit_rate_ratio", "hit rate"),
                                   ratio_title(report, "throughput_ratio", "req/s")) if t)
    fig, (left, right) = new_figure(2, f"data-parallel router, dp={dp}" +
                                    (f": {ratios}" if ratios else ""))
    bar_chart(left, list(results), [r.get("hit_rate") for r in results.values()],
              "prefix cache hit rate")
    bar_chart(right, list(results), [r.get("requests_per_s") for r in results.values()],
              "requests / s (median)")
    return fig


def draw_placement_sim(report: Report) -> Figure:
    """SLO attainment against the SLO scale, one panel per arrival CV, per placement method."""
    rows = report["results"]
    cvs = list(dict.fromkeys(r.get("cv") for r in rows))
    fig, axes = new_figure(max(len(cvs), 1), "model placement (simulated): SLO attainment")
    for ax, cv in zip(axes, cvs, strict=False):
        mine = [r for r in rows if r.get("cv") == cv]
        scales = sorted({r.get("slo_scale") for r in mine if r.get("slo_scale") is not None})
        methods = list(dict.fromkeys(r.get("method", "?") for r in mine))
        at = {(r.get("method", "?"), r.get("slo_scale")): r.get("attainment") for r in mine}
        line_chart(ax, scales, {m: [at.get((m, s)) for s in scales] for m in methods},
                   "SLO (x model latency)", "SLO attainment", f"arrival CV {cv}")
        ax.set_ylim(0, 1.05)
    return fig


def draw_response_cache(report: Report) -> Figure:
    """Compute left (share of no-cache FLOPs) and hit rate against cache size, per policy;
    and the end-to-end wall time per policy."""
    sweep = report["sweep"]
    sizes = sorted({r["size_share"] for r in sweep})
    policies = list(dict.fromkeys(r["policy"] for r in sweep))
    cell = {(r["policy"], r["size_share"]): r for r in sweep}
    pct = [100 * s for s in sizes]

    def series(key: str) -> dict[str, list[float | None]]:
        return {p: [cell.get((p, s), {}).get(key) for s in sizes] for p in policies}

    e2e = report.get("end_to_end") or []
    return _cache_sweep_figure("response cache: FLOPs and hits vs size, per policy", pct,
                               series, ("cost_vs_no_cache", "FLOPs / no-cache FLOPs"),
                               "cache size (% of answers' bytes)", e2e,
                               [r.get("policy", "?") for r in e2e])


def draw_mux(report: Report) -> Figure:
    """Cost (share of large-only FLOPs without cache) and hit rate against cache size, per
    policy with and without multiplexing; the end-to-end wall time of each routing."""
    sweep = report["sweep"]
    sizes = sorted({r["size_share"] for r in sweep})
    lines = list(dict.fromkeys((r["policy"], r["routing"]) for r in sweep))
    cell = {(r["policy"], r["routing"], r["size_share"]): r for r in sweep}
    pct = [100 * s for s in sizes]

    def series(key: str) -> dict[str, list[float | None]]:
        return {f"{p}, {r}": [cell.get((p, r, s), {}).get(key) for s in sizes]
                for p, r in lines}

    e2e = report.get("end_to_end") or []
    return _cache_sweep_figure("multiplexing x response cache: FLOPs and hits", pct, series,
                               ("cost_vs_large_no_cache", "FLOPs / large-only FLOPs"),
                               "cache size (% of large answers' bytes)", e2e,
                               ["mux" if r.get("multiplexed") else "large only" for r in e2e])


def _cache_sweep_figure(title: str, pct: list[float], series, cost: tuple[str, str],
                        x_label: str, e2e: list[dict], e2e_labels: list[str]) -> Figure:
    """Cost (`cost`: key, axis label) and hit rate against cache size (log x, one line per
    series), and the end-to-end wall time of each run in `e2e` when there are any."""
    fig, axes = new_figure(3 if e2e else 2, title)
    for ax, key, ylabel in ((axes[0], *cost), (axes[1], "hit_rate", "hit rate")):
        ax.set_xscale("log")
        line_chart(ax, pct, series(key), x_label, ylabel)
        ax.minorticks_off()
    if e2e:
        bar_chart(axes[2], e2e_labels, [r.get("wall_s") for r in e2e], "wall s",
                  f"end to end ({e2e[0].get('requests', '?')} requests)")
    return fig


def draw_spec_pushdown(report: Report) -> Figure:
    """Spec failures, retries and violations, and wall time, with and without pushdown."""
    results = report["results"]
    counts = ("spec_failures", "retries", "violations")
    fig, (left, right) = new_figure(2, f"spec pushdown ({report.get('runs', '?')} runs)")
    grouped_bars(left, [c.replace("_", " ") for c in counts],
                 {name: [r.get(c) for c in counts] for name, r in results.items()}, "count",
                 numbers=True)
    bar_chart(right, list(results), [r.get("wall_s") for r in results.values()], "wall s")
    return fig


def draw_kv_quant(report: Report) -> Figure:
    """Tokens that fit in the unquantized pool's bytes, held-out loss and decode tokens/s
    per KV cache dtype."""
    results = report["results"]
    dtypes = list(results)
    fig, axes = new_figure(3, "quantized KV cache")
    grouped_bars(axes[0], dtypes, {
        "vs pool as stored": [r.get("tokens_in_same_bytes") for r in results.values()],
        "vs bf16 pool": [r.get("tokens_in_same_bytes_bf16") for r in results.values()]},
        "tokens in the same bytes (x)", numbers=True)
    axes[0].legend(fontsize=7, loc="upper left")
    bar_chart(axes[1], dtypes, [r.get("heldout_loss") for r in results.values()], "held-out loss")
    bar_chart(axes[2], dtypes, [r.get("decode_tokens_per_s") for r in results.values()],
              "decode tokens / s")
    return fig


def draw_mixattention(report: Report) -> Figure:
    """Tokens that fit in the standard model's KV bytes and decode tokens/s per variant."""
    return two_bar_panels(report["results"], "MixAttention",
                          ("tokens_in_same_bytes", "tokens in the same KV bytes (x)"),
                          ("decode_tokens_per_s", "decode tokens / s"), rotation=20)


def draw_weight_quant(report: Report) -> Figure:
    """Projection memory saved, held-out loss and tokens/s (batch 1, batched) per dtype."""
    results = report["results"]
    dtypes = list(results)
    fig, axes = new_figure(3, "weight-only quantization")
    bar_chart(axes[0], dtypes, [r.get("projection_bytes_ratio") for r in results.values()],
              "projection bytes saved (x)")
    bar_chart(axes[1], dtypes, [r.get("heldout_loss") for r in results.values()], "held-out loss")
    grouped_bars(axes[2], dtypes, {
        "batch 1": [r.get("batch1_tokens_per_s") for r in results.values()],
        "batched": [r.get("batch_tokens_per_s") for r in results.values()]}, "tokens / s",
        numbers=True)
    return fig


def draw_double_sparsity(report: Report) -> Figure:
    """Decode attention time per context (dense and sparse), then held-out loss and recall
    exact match per sparsity setting, one series per selection floor."""
    op = report["op_ms"]
    contexts = list(op)
    systems = list(op[contexts[0]])
    fig, axes = new_figure(3, "Double Sparsity")
    grouped_bars(axes[0], contexts, {name: [op[c].get(name) for c in contexts] for name in systems},
                 "decode attention ms (context)")
    axes[0].legend(fontsize=7, loc="upper left")
    quality = report["quality"]
    floors = list(quality)
    settings = list(quality[floors[0]]["loss"])
    settings = [s for s in settings if s != "num_conversations"]
    grouped_bars(axes[1], settings, {f"floor {f}": [quality[f]["loss"][s].get("heldout_loss")
                                                for s in settings] for f in floors},
                 "held-out loss", numbers=True)
    grouped_bars(axes[2], settings, {f"floor {f}": [quality[f]["recall"][s].get("exact_match")
                                                for s in settings] for f in floors},
                 "recall exact match", numbers=True)
    axes[2].legend(fontsize=7, loc="upper right")
    return fig


def draw_cpu_vs_llamacpp(report: Report) -> Figure:
    """Tokens/s of sglc (fp32, int8, int4 weights) and llama.cpp (f32, q8_0), batch 1 and
    batched."""
    return two_bar_panels(report["results"], "sglc vs llama.cpp on CPU, same weights",
                          ("batch1_tokens_per_s", "tokens / s, batch 1"),
                          ("batch_tokens_per_s", "tokens / s, mixed requests"), rotation=30)


def draw_json_schema_coverage(report: Report) -> Figure:
    """Suite groups each system compiles, and the soundness violations found in them."""
    rows = report["results"]
    systems = [r.get("system", "?") for r in rows]
    fig, (left, right) = new_figure(2, "JSON-Schema-Test-Suite coverage")
    grouped_bars(left, systems, {
        f"all ({report.get('groups', '?')})": [r.get("compiled") for r in rows],
        f"top level ({report.get('top_level_groups', '?')})":
            [r.get("compiled_top_level") for r in rows]}, "groups compiled", numbers=True)
    bar_chart(right, systems, [r.get("violations") for r in rows], "soundness violations",
              "invalid accepted or sampled (n/a: unchecked)")
    return fig


def draw_trace_replay(report: Report) -> Figure:
    """Throughput and prefix-cache hit rate per configuration, replaying a chat trace."""
    systems = report["systems"]
    trace = report.get("trace", {})
    fig, (left, right) = new_figure(2, f"chat trace replay ({trace.get('conversations', '?')} "
                                    f"conversations, {trace.get('requests', '?')} requests)")
    bar_chart(left, list(systems), [s.get("tokens_per_s") for s in systems.values()],
              "tokens / s (prompt + output)")
    bar_chart(right, list(systems), [s.get("cache_hit_rate") for s in systems.values()],
              "prefix cache hit rate")
    return fig


def draw_grammar_decode(report: Report) -> Figure:
    """Mask time per token (p50, p99; log scale) per grammar, one panel per vocabulary."""
    masks = report["masks"]
    vocabs = list(dict.fromkeys(m.get("vocab", "?") for m in masks))
    fig, axes = new_figure(max(len(vocabs), 1), "grammar masks: time per token")
    for ax, vocab in zip(axes, vocabs, strict=False):
        mine = [m for m in masks if m.get("vocab", "?") == vocab]
        labels = [m.get("grammar", "?") + (" (regex)" if m.get("path") == "regex" else "")
                  for m in mine]
        times = {"p50": [m.get("mask_p50_us") for m in mine],
                 "p99": [m.get("mask_p99_us") for m in mine]}
        grouped_bars(ax, labels, times, "us per mask", vocab)
        ax.set_yscale("log")
        ax.set_ylim(top=30 * max((v for vs in times.values() for v in vs if v), default=1.0))
        ax.legend(fontsize=7, loc="upper center", ncol=2)
        ax.tick_params(axis="x", labelrotation=40, labelsize=7)
    return fig


def draw_metropolis(report: Report) -> Figure:
    """Wall time and mean decode batch per town size, barrier vs out of order."""
    results = report["results"]
    sizes = list(results)
    schedules = ("barrier", "ooo")

    def series(key: str) -> dict[str, list[float | None]]:
        return {s: [results[n].get("median", {}).get(s, {}).get(key) for n in sizes]
                for s in schedules}

    fig, (left, right) = new_figure(2, "AI Metropolis: barrier vs out-of-order agents")
    grouped_bars(left, [f"{n} agents" for n in sizes], series("wall_s"), "wall s (median)",
                 numbers=True)
    grouped_bars(right, [f"{n} agents" for n in sizes], series("mean_decode_batch"),
                 "requests per decode batch", numbers=True)
    return fig


def draw_multi_model_prism(report: Report) -> Figure:
    """SLO attainment and output tokens per second per system (shared elastic memory and
    deadline-first order against a static equal split)."""
    ratios = ", ".join(t for t in (
        ratio_title(report, "slo_attainment_ratio", "SLO attainment"),
        ratio_title(report, "throughput_ratio", "tok/s")) if t)
    return two_bar_panels(report["results"], "several models, one memory" +
                          (f": prism vs static {ratios}" if ratios else ""),
                          ("slo_attainment", "SLO attainment"),
                          ("output_tokens_per_s", "output tokens / s"), rotation=20)


def draw_offload(report: Report) -> Figure:
    """Decode tokens/s and peak anonymous memory per offloading configuration."""
    return two_bar_panels(report["results"], "offloading (FlexGen policy)",
                          ("tokens_per_s", "tokens / s"), ("peak_rss_anon_mib", "peak RssAnon (MiB)"),
                          rotation=30)


PLOTS: dict[str, Callable[[Report], Figure]] = {
    "engine_throughput": draw_engine_throughput,
    "prefix_sharing": draw_prefix_sharing,
    "program_throughput": draw_program_throughput,
    "json_decode": draw_json_decode,
    "fairness": draw_fairness,
    "kv_policies": draw_kv_policies,
    "multi_lora": draw_multi_lora,
    "serve_load": draw_serve_load,
    "default_model_eval": draw_default_model_eval,
    "gpu_engine": draw_gpu_engine,
    "gpu_kernels": draw_gpu_kernels,
    "gpu_extend_tune": draw_gpu_extend_tune,
    "dp_router": draw_dp_router,
    "placement_sim": draw_placement_sim,
    "response_cache": draw_response_cache,
    "mux": draw_mux,
    "spec_pushdown": draw_spec_pushdown,
    "kv_quant": draw_kv_quant,
    "weight_quant": draw_weight_quant,
    "mixattention": draw_mixattention,
    "double_sparsity": draw_double_sparsity,
    "offload": draw_offload,
    "cpu_vs_llamacpp": draw_cpu_vs_llamacpp,
    "json_schema_coverage": draw_json_schema_coverage,
    "trace_replay": draw_trace_replay,
    "grammar_decode": draw_grammar_decode,
    "metropolis": draw_metropolis,
    "multi_model_prism": draw_multi_model_prism,
}


def plot_for(name: str) -> Callable[[Report], Figure] | None:
    """The draw function of a benchmark named `name` (or whose name starts `name`)."""
    if name in PLOTS:
        return PLOTS[name]
    matches = [key for key in PLOTS if name.startswith(key)]
    return PLOTS[max(matches, key=len)] if matches else None


def save_plot(name: str, report: Report, path: Path) -> Path | None:
    """Draw benchmark `name`'s plot of `report` into `path` (a PNG); None if it has none.
    A plot that fails is reported and skipped: the JSON matters more than the picture."""
    draw = plot_for(name)
    if draw is None:
        return None
    try:
        fig = draw(report)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
    except (KeyError, TypeError, ValueError, IndexError, StopIteration) as exc:
        print(f"no plot for {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        plt.close("all")
        return None
    return path


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python benchmarks/plots.py RESULT.json [...]", file=sys.stderr)
        return 2
    for path in paths:
        written = save_plot(path.stem, json.loads(path.read_text()), path.with_suffix(".png"))
        print(written or f"{path}: no plot for a benchmark named {path.stem!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
