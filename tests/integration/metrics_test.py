"""A worker's Prometheus endpoint: scraped over HTTP, valid for promtool, and moving as requests flow."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import urllib.request

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


@pytest.fixture(scope="module")
def worker():
    port = harness.free_port()
    proc = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1", "--port", "0",
         "--max-model-len", "256", "--metrics-port", str(port), "--metrics-compat", "vllm"],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60)
    yield proc, f"127.0.0.1:{proc.ready_match.group(1)}", f"http://127.0.0.1:{port}/metrics"
    proc.stop()


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def value(text: str, name: str) -> float:
    """The value of the sample `name` (with its labels, exactly as exposed)."""
    match = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in the exposition"
    return float(match.group(1))


def test_promtool_accepts_the_exposition(worker):
    text = scrape(worker[2])
    # vLLM's own names contain ':' (recording-rule style), which promtool's linter flags as a naming note; the octet_*
    # part must pass the linter as it is.
    octet_part = "\n".join(line for line in text.splitlines() if "vllm:" not in line) + "\n"
    result = subprocess.run(["promtool", "check", "metrics"], input=octet_part, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vllm:num_requests_waiting" in text


def test_metrics_move_with_a_request(worker, stubs):
    _, address, url = worker
    before = scrape(url)
    pb = stubs.generation_pb2
    stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
    responses = list(stub.Generate(pb.GenerateRequest(prompt="def add(a, b):", sampling=pb.SamplingParams(
        max_tokens=12, temperature=0, ignore_eos=True)), timeout=60))
    assert responses[-1].finish_reason == pb.FINISH_REASON_LENGTH
    prompt_tokens = responses[-1].usage.prompt_tokens
    after = harness.wait_until(lambda: (lambda t: t if value(t, "octet_requests_running") == 0 else None)(scrape(url)),
                               timeout=5, what="the request leaves the running batch")
    assert value(after, "octet_generation_tokens_total") - value(before, "octet_generation_tokens_total") == 12
    assert value(after, "octet_prompt_tokens_total") - value(before, "octet_prompt_tokens_total") == prompt_tokens
    assert value(after, 'octet_requests_total{finish_reason="length"}') - \
        value(before, 'octet_requests_total{finish_reason="length"}') == 1
    assert value(after, "octet_time_to_first_token_seconds_count") - \
        value(before, "octet_time_to_first_token_seconds_count") == 1
    assert value(after, "octet_inter_token_latency_seconds_count") - \
        value(before, "octet_inter_token_latency_seconds_count") == 11
    assert value(after, "octet_e2e_request_latency_seconds_count") >= 1
    # Idle again: nothing running or waiting, every KV block free.
    assert value(after, "octet_requests_waiting") == 0
    assert value(after, "octet_kv_cache_used_blocks") == 0
    assert value(after, "octet_kv_cache_blocks") > 0
    assert value(after, 'octet_memory_bytes{kind="weights"}') > 0
    assert value(after, 'octet_device_memory_total_bytes{device="0"}') == 0  # the CPU backend
    assert value(after, 'vllm:num_requests_running{model_name="qwen3_5-code-small"}') == 0
    assert 'octet_model_info{' in after


def test_bad_metrics_compat_is_refused():
    proc = harness.Process([harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--port", "0",
                            "--metrics-compat", "tgi"])
    assert proc.wait(timeout=30) == 2
    assert "--metrics-compat must be vllm" in proc.output()
