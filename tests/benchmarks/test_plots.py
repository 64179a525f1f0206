"""Each benchmark's plot function draws a small fixed result (the shape its JSON has) into a
PNG, and every benchmark that writes JSON has one."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
plots = pytest.importorskip("plots", reason="matplotlib is not installed (pip install -e '.[dev]')")


def timeline(a: float, b: float) -> list[dict[str, float]]:
    return [{"a": a * k, "b": b * k} for k in range(1, 5)]


RESULTS = {
    "engine_throughput": {"results": {
        "sglc": {"median_tokens_per_s": 410.0}, "hf b=8": {"median_tokens_per_s": 120.0},
        "hf b=1": {"median_tokens_per_s": None}}},
    "prefix_sharing": {"results": {
        "radix cache on": {"num_prefill_tokens": 328, "median_seconds": 0.5},
        "radix cache off": {"num_prefill_tokens": 1728, "median_seconds": 1.5}}},
    "program_throughput": {"workloads": {
        "few_shot": {"results": {"sglc": {"median_seconds": 1.0},
                                 "sglc, no prefix-sharing pass": {"median_seconds": 1.4},
                                 "transformers sequential": {"median_seconds": 6.0}}},
        "tree": {"results": {"sglc": {"median_seconds": 2.0},
                             "sglc, no prefix-sharing pass": {"median_seconds": 2.1},
                             "transformers sequential": {"median_seconds": 9.0}}}}},
    "json_decode": {
        "decoding": {"results": {"jump-forward on": {"median_forward_passes": 40},
                                 "jump-forward off": {"median_forward_passes": 120}}},
        "constraint_costs": {"index_build": {
            "small": {"synthetic 32k": {"median_seconds": 0.2}, "bench": {"median_seconds": 0.1}},
            "large": {"synthetic 32k": {"median_seconds": 1.3}}}}},
    "fairness": {
        "sim": {"fcfs": {"timeline": timeline(30, 5)}, "vtc": {"timeline": timeline(12, 11)}},
        "engine": {"vtc": {"runs": [{"timeline": timeline(10, 9)}]}}},
    "kv_policies": {"results": {
        "exact": {"peak_kv_kib_per_request": 512.0, "token_agreement": 1.0},
        "h2o 64": {"peak_kv_kib_per_request": 64.0, "token_agreement": 0.7}}},
    "multi_lora": {"results": {
        "1": {"multi-lora": {"tokens_per_s": 90.0}, "merged": {"tokens_per_s": 100.0},
              "base": {"tokens_per_s": 110.0}, "mismatched_requests": 0,
              "speedup_vs_merged": 0.9},
        "4": {"multi-lora": {"tokens_per_s": 85.0}, "merged": {"tokens_per_s": 40.0},
              "base": {"tokens_per_s": 110.0}, "mismatched_requests": 0,
              "speedup_vs_merged": 2.1}}},
    "serve_load": {"num_requests": 16, "summary": {
        "sglc serve (HTTP)": {"output_tokens_per_s": 95.0, "ttft_p50_ms": 40.0, "ttft_p99_ms": 90.0},
        "in-process engine": {"output_tokens_per_s": 100.0, "ttft_p50_ms": 35.0,
                              "ttft_p99_ms": 80.0}}},
    "default_model_eval": {"num_per_skill": 10, "targets": {"yes_no": 0.8}, "results": {
        "yes_no": {"generate": 0.9, "select": 0.9, "sgl": 0.8, "seconds": 3.0},
        "recall": {"generate": 0.5, "sgl": 0.6, "seconds": 2.0}}},
    "gpu_engine": {"device": "test", "throughput": [
        {"batch": 1, "sglc_tok_s": 50.0, "hf_tok_s": 40.0},
        {"batch": 16, "sglc_tok_s": 700.0, "hf_tok_s": 300.0}]},
    "gpu_kernels": {"environment": {"mode": "cpu-smoke"},
                    "bandwidth": [{"kernel": "rmsnorm", "triton_gbs": 900.0, "torch_gbs": 400.0}],
                    "engine": [{"backend": "triton", "batch": 1, "decode_tok_s": 30.0},
                               {"backend": "triton", "batch": 8, "decode_tok_s": 200.0},
                               {"backend": "torch", "batch": 1, "decode_tok_s": 20.0}]},
    "gpu_extend_tune": {"device": "test", "rows": [
        {"case": "d128", "ratio_vs_sdpa": 1.2}, {"case": "d128", "ratio_vs_sdpa": 0.9},
        {"case": "d64", "ratio_vs_sdpa": 1.1}]},
    "dp_router": {"workload": {"dp": 2}, "hit_rate_ratio": 1.3, "throughput_ratio": 1.7,
                  "targets": {"hit_rate_ratio": 1.5, "throughput_ratio": 1.0}, "results": {
                      "cache_aware": {"hit_rate": 0.74, "requests_per_s": 8.8},
                      "round_robin": {"hit_rate": 0.58, "requests_per_s": 5.1}}},
    "placement_sim": {"results": [
        {"cv": cv, "slo_scale": slo, "method": method, "attainment": att}
        for cv, slo, method, att in (
            (1.0, 2.0, "replication", 0.5), (1.0, 2.0, "alpaserve", 0.95),
            (1.0, 5.0, "replication", 0.8), (1.0, 5.0, "alpaserve", 1.0),
            (3.0, 2.0, "replication", 0.3), (3.0, 2.0, "alpaserve", 0.9),
            (3.0, 5.0, "replication", 0.45), (3.0, 5.0, "alpaserve", 0.95))]},
    "response_cache": {
        "sweep": [{"size_share": size, "policy": policy, "hit_rate": size * k,
                   "cost_vs_no_cache": 1 - size * k}
                  for size in (0.05, 0.2) for k, policy in ((1, "lru"), (2, "gdsf"))],
        "end_to_end": [{"policy": "lru", "requests": 8, "wall_s": 9.0},
                       {"policy": "gdsf", "requests": 8, "wall_s": 7.0}]},
    "mux": {
        "sweep": [{"size_share": size, "policy": policy, "routing": routing,
                   "hit_rate": size * k, "cost_vs_large_no_cache": (1 - size * k) / m}
                  for size in (0.05, 0.2) for k, policy in ((1, "lru"), (2, "lec"))
                  for m, routing in ((1, "large only"), (1.5, "multiplexed"))],
        "end_to_end": [{"multiplexed": False, "requests": 8, "wall_s": 9.0},
                       {"multiplexed": True, "requests": 8, "wall_s": 5.0}]},
    "spec_pushdown": {"runs": 10, "results": {
        "no pushdown": {"spec_failures": 40, "retries": 30, "violations": 10, "wall_s": 10.0},
        "pushdown": {"spec_failures": 0, "retries": 0, "violations": 0, "wall_s": 2.0}}},
    "kv_quant": {"results": {
        "auto": {"tokens_in_same_bytes": 1.0, "tokens_in_same_bytes_bf16": 1.0,
                 "heldout_loss": 0.84, "decode_tokens_per_s": 100.0},
        "int8": {"tokens_in_same_bytes": 3.8, "tokens_in_same_bytes_bf16": 1.9,
                 "heldout_loss": 0.84, "decode_tokens_per_s": 130.0}}},
    "offload": {"results": {
        "resident": {"tokens_per_s": 40.0, "peak_rss_anon_mib": 420.0},
        "disk (page cache dropped)": {"tokens_per_s": 12.0, "peak_rss_anon_mib": 110.0}}},
    "weight_quant": {"results": {
        "float32": {"projection_bytes_ratio": 1.0, "heldout_loss": 0.84,
                    "batch1_tokens_per_s": 21.0, "batch_tokens_per_s": 160.0},
        "int4": {"projection_bytes_ratio": 7.1, "heldout_loss": 0.85,
                 "batch1_tokens_per_s": 29.0, "batch_tokens_per_s": 108.0}}},
    "mixattention": {"results": {
        "standard": {"tokens_in_same_bytes": 1.0, "decode_tokens_per_s": 100.0},
        "mixattention": {"tokens_in_same_bytes": 2.7, "decode_tokens_per_s": 120.0}}},
    "double_sparsity": {
        "op_ms": {str(c): {"dense (cpu)": c / 400, "sparse 1/8": c / 1600} for c in (4096, 32768)},
        "quality": {str(f): {
            "loss": {"dense": {"heldout_loss": 0.82}, "1/8": {"heldout_loss": 1.1},
                     "num_conversations": 10},
            "recall": {"dense": {"exact_match": 1.0}, "1/8": {"exact_match": 0.3},
                       "mean_prompt_tokens": 60.0}} for f in (16, 4)}},
    "cpu_vs_llamacpp": {"results": {
        "sglc int8": {"batch1_tokens_per_s": 70.0, "batch_tokens_per_s": 300.0},
        "llama.cpp q8_0": {"batch1_tokens_per_s": 260.0, "batch_tokens_per_s": None}}},
    "json_schema_coverage": {"groups": 40, "top_level_groups": 30, "results": [
        {"system": "sglc", "compiled": 30, "compiled_top_level": 25, "violations": 0},
        {"system": "outlines-core", "compiled": 15, "compiled_top_level": 12, "violations": 9},
        {"system": "llguidance", "compiled": 20, "compiled_top_level": 17, "violations": None}]},
    "trace_replay": {"trace": {"conversations": 8, "requests": 14}, "systems": {
        "radix on, lpm": {"tokens_per_s": 3100.0, "cache_hit_rate": 0.83},
        "radix off, fcfs": {"tokens_per_s": 750.0, "cache_hit_rate": 0.0}}},
    "multi_model_prism": {"slo_attainment_ratio": 1.5, "throughput_ratio": 1.1, "results": {
        "prism": {"slo_attainment": 0.9, "output_tokens_per_s": 300.0},
        "static split": {"slo_attainment": 0.6, "output_tokens_per_s": None}}},
    "grammar_decode": {"masks": [
        {"vocab": vocab, "grammar": grammar, "path": path, "mask_p50_us": p50,
         "mask_p99_us": 100 * p50}
        for vocab in ("default model", "synthetic 128k")
        for grammar, path, p50 in (("sql", "grammar", 40.0), ("sql_select", "regex", 3.0))]},
    "metropolis": {"results": {n: {"median": {
        "barrier": {"wall_s": 2.0 * k, "mean_decode_batch": 4.0 * k},
        "ooo": {"wall_s": 1.5 * k, "mean_decode_batch": 6.0 * k}}}
        for k, n in ((1, "16"), (4, "64"))}},
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_each_plot_draws_its_fixed_result(name, tmp_path):
    path = plots.save_plot(name, RESULTS[name], tmp_path / f"{name}.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000  # a drawn figure, not an empty canvas


def test_bars_show_the_numbers_they_were_given():
    fig = plots.draw_engine_throughput(RESULTS["engine_throughput"])
    (ax,) = fig.axes
    assert [round(p.get_height(), 3) for p in ax.patches] == [410.0, 120.0, 0.0]
    assert [t.get_text() for t in ax.texts] == ["410", "120", "n/a"]
    fig = plots.draw_multi_lora(RESULTS["multi_lora"])
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
    assert lines == {"multi-lora": [90.0, 85.0], "merged": [100.0, 40.0], "base": [110.0, 110.0]}
    fig = plots.draw_json_schema_coverage(RESULTS["json_schema_coverage"])
    assert [t.get_text() for t in fig.axes[1].texts] == ["0", "9", "n/a"]
    fig = plots.draw_placement_sim(RESULTS["placement_sim"])
    assert [ax.get_title() for ax in fig.axes] == ["arrival CV 1.0", "arrival CV 3.0"]
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[1].lines}
    assert lines == {"replication": [0.3, 0.45], "alpaserve": [0.9, 0.95]}


def test_a_missing_number_is_marked_not_raised():
    report = {"results": {"cache_aware": {"hit_rate": 0.7}, "round_robin": {}}}
    fig = plots.draw_dp_router(report)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.7", "n/a"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["n/a", "n/a"]


def test_every_benchmark_that_writes_json_has_a_plot():
    names = set()
    for script in BENCHMARKS.glob("*.py"):
        text = script.read_text()
        names.update(re.findall(r'^NAME = "(\w+)"', text, re.M))
        names.update(re.findall(r'"(\w+)\.json"', text))
        names.update(re.findall(r'write_json\(\s*"(\w+)"', text))
    names -= {"config", "adapter_config", "tokenizer", "tokenizer_config", "special_tokens_map"}
    assert names and all(plots.plot_for(n) is not None for n in names), sorted(
        n for n in names if plots.plot_for(n) is None)


def test_a_result_the_plot_cannot_read_is_skipped_not_raised(tmp_path, capsys):
    assert plots.save_plot("prefix_sharing", {"rows": []}, tmp_path / "x.png") is None
    assert plots.save_plot("no_such_benchmark", {}, tmp_path / "y.png") is None
    assert "no plot for prefix_sharing" in capsys.readouterr().err
