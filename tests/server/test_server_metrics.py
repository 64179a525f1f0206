"""/metrics in Prometheus text format, and what a client that goes away leaves behind:
its requests are aborted, the engine's running count drops back, its KV is freed."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from server.support import API_KEY, metric

LONG = {"model": "default", "prompt": "Count:", "max_tokens": 800, "temperature": 1.0,
        "ignore_eos": True}


@pytest.fixture(scope="module")
def http(server):
    with server.http() as client:
        yield client


def snapshot(http) -> dict[str, float]:
    r = http.get("/metrics")
    assert r.status_code == 200
    text = r.text
    total = metric(text, "sglc:kv_cache_total_tokens")
    return {
        "running": metric(text, "sglc:num_requests_running"),
        "waiting": metric(text, "sglc:num_requests_waiting"),
        "in_flight": metric(text, "sglc:num_requests_in_flight"),
        "used_slots": round(metric(text, "sglc:kv_cache_usage_perc") * total),
        "cache_tokens": metric(text, "sglc:prefix_cache_tokens"),
        "aborts": _or_zero(text, "sglc:request_success_total", finished_reason="abort"),
        "lengths": _or_zero(text, "sglc:request_success_total", finished_reason="length"),
        "generated": metric(text, "sglc:generation_tokens_total"),
    }


def _or_zero(text: str, name: str, **labels: str) -> float:
    try:
        return metric(text, name, **labels)
    except KeyError:
        return 0.0


def wait_idle(http, timeout_s: float = 30) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = snapshot(http)
        if state["running"] == state["waiting"] == state["in_flight"] == 0:
            return state
        assert time.monotonic() < deadline, f"still busy after {timeout_s} s: {state}"
        time.sleep(0.2)


def assert_no_kv_held_by_requests(state: dict[str, float]) -> None:
    # when idle, every used KV slot belongs to the prefix cache (evictable), none to a request
    assert state["used_slots"] == state["cache_tokens"], state


def test_metrics_text_format_and_counters(http, server):
    before = snapshot(http)
    r = server.client().completions.create(model="default", prompt="Hello", max_tokens=5,
                                           temperature=0, extra_body={"ignore_eos": True})
    response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    after = snapshot(http)
    assert after["generated"] - before["generated"] == r.usage.completion_tokens == 5
    assert after["lengths"] == before["lengths"] + 1
    for name in ("sglc:time_to_first_token_seconds", "sglc:inter_token_latency_seconds",
                 "sglc:e2e_request_latency_seconds"):
        assert f"# TYPE {name} histogram" in text
        assert metric(text, f"{name}_count") >= 1
        assert metric(text, f"{name}_bucket", le="+Inf") == metric(text, f"{name}_count")
    assert 0 <= metric(text, "sglc:prefix_cache_hit_rate") <= 1
    assert metric(text, "sglc:gen_throughput") > 0
    assert 'model_name="default"' in text


def test_disconnect_mid_stream_aborts_and_frees_kv(http, server):
    before = wait_idle(http)
    with server.http() as client, client.stream(
        "POST", "/v1/completions", json={**LONG, "n": 2, "stream": True}
    ) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("data: ")
        busy = snapshot(http)
        assert busy["running"] + busy["waiting"] == 2 and busy["in_flight"] == 2
    after = wait_idle(http, timeout_s=20)  # far less than 800 tokens take
    assert after["aborts"] == before["aborts"] + 2
    assert after["generated"] - before["generated"] < 2 * 800
    assert_no_kv_held_by_requests(after)


def test_disconnect_while_waiting_for_a_whole_response_aborts(http, server):
    # A raw socket that goes away once /metrics shows its request running: no client timeout
    # to race the generation (a fast machine finished 800 tokens inside one).
    before = wait_idle(http)
    body = json.dumps({"model": "default", "messages": [{"role": "user", "content": "Count!"}],
                       "max_tokens": 800, "temperature": 1.0, "ignore_eos": True}).encode()
    url = urlsplit(server.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\n"
            + f"Host: {url.netloc}\r\nAuthorization: Bearer {API_KEY}\r\n".encode()
            + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body)
        busy = wait_busy(http)
        assert busy["running"] + busy["waiting"] == 1 and busy["in_flight"] == 1
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # no response yet: the request is still going
            sock.recv(1)
    after = wait_idle(http, timeout_s=20)
    assert after["aborts"] == before["aborts"] + 1
    assert after["generated"] - before["generated"] < 800
    assert_no_kv_held_by_requests(after)


def wait_busy(http, timeout_s: float = 30) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        state = snapshot(http)
        if state["running"] + state["waiting"]:  # in the engine, not only admitted
            return state
        assert time.monotonic() < deadline, f"nothing in the engine after {timeout_s} s: {state}"
        time.sleep(0.01)
