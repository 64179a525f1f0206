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
