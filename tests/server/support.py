"""Helpers of the server tests: a real `sglc serve` (python -m sglc.runtime.server) in a
subprocess on a free loopback port, and reading Prometheus text."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

API_KEY = "test-key-123"
PROGRAMS = Path(__file__).parent / "programs"
# small limits, so the tests can reach them
SERVER_ARGS = ["--api-key", API_KEY, "--max-in-flight", "8", "--max-n", "4",
               "--max-body-bytes", "65536", "--max-tokens", "900", "--log-level", "warning",
               "--program", str(PROGRAMS / "qa.sgl"), "--program-timeout", "120"]
START_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base_url: str
    proc: subprocess.Popen
    log_path: Path

    def client(self, api_key: str = API_KEY, **options: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=api_key, max_retries=0,
                             **options)

    def http(self, api_key: str | None = API_KEY, timeout: float = 120) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(args: list[str], log_path: Path) -> Server:
    port = free_port()
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sglc.runtime.server", "--port", str(port), *args],
        stdout=log, stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the server did not start in {START_TIMEOUT_S} s:\n{server.log()}")


def stop_server(server: Server) -> int:
    server.proc.terminate()
    try:
        return server.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        return server.proc.wait()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (labels must all match)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric_name = head.split("{", 1)[0]
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    raise KeyError(f"{name} {labels} not in /metrics")
