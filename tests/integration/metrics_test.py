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
QWEN3_DIR = harness.REPO_ROOT / "tests" / "fixtures" / "hf" / "qwen3-tiny-gqa-f32"  # attention-only: prefix caching


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
    assert value(after, 'octet_requests_total{finish_reason="length",status="OK"}') - \
        value(before, 'octet_requests_total{finish_reason="length",status="OK"}') == 1
    assert value(after, "octet_time_to_first_token_seconds_count") - \
        value(before, "octet_time_to_first_token_seconds_count") == 1
    assert value(after, "octet_inter_token_latency_seconds_count") - \
        value(before, "octet_inter_token_latency_seconds_count") == 11
    assert value(after, "octet_e2e_request_latency_seconds_count") >= 1
    assert value(after, "octet_engine_host_seconds_total") > value(before, "octet_engine_host_seconds_total")
    # Idle again: nothing running or waiting, every KV block free.
    assert value(after, "octet_requests_waiting") == 0
    assert value(after, "octet_kv_cache_used_blocks") == 0
    assert value(after, "octet_kv_cache_blocks") > 0
    assert value(after, 'octet_memory_bytes{kind="weights"}') > 0
    assert value(after, 'octet_device_memory_total_bytes{device="0"}') == 0  # the CPU backend
    assert value(after, 'vllm:num_requests_running{model_name="qwen3_5-code-small"}') == 0
    assert 'octet_model_info{' in after
    assert 'prefix_caching="false"' in after  # a hybrid model serves without it
    assert value(after, "octet_prefix_cache_queries_total") == 0


def test_rejections_and_deadlines_are_counted(worker, stubs):
    _, address, url = worker
    pb = stubs.generation_pb2
    stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
    before = scrape(url)
    with pytest.raises(grpc.RpcError) as bad:
        list(stub.Generate(pb.GenerateRequest(prompt="x", sampling=pb.SamplingParams(max_tokens=-1)), timeout=10))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A deadline far shorter than the generation: the caller gets DEADLINE_EXCEEDED and the worker frees the request.
    with pytest.raises(grpc.RpcError) as late:
        list(stub.Generate(pb.GenerateRequest(prompt="def slow(n):", sampling=pb.SamplingParams(
            max_tokens=200, temperature=0, ignore_eos=True)), timeout=0.15))
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    ended = 'octet_requests_total{finish_reason="error",status="DEADLINE_EXCEEDED"}'
    cancelled = 'octet_requests_total{finish_reason="cancelled",status="CANCELLED"}'

    def settled():
        text = scrape(url)
        # The engine ends it at its deadline, or gRPC's cancellation of the expired call gets there first.
        done = value(text, ended) + value(text, cancelled) - value(before, ended) - value(before, cancelled)
        return text if done == 1 and value(text, "octet_kv_cache_used_blocks") == 0 else None

    after = harness.wait_until(settled, timeout=10, what="the expired request is ended and its blocks freed")
    assert value(after, 'octet_requests_rejected_total{status="INVALID_ARGUMENT"}') - \
        value(before, 'octet_requests_rejected_total{status="INVALID_ARGUMENT"}') == 1
    assert value(after, "octet_requests_running") == 0


@pytest.fixture(scope="module")
def qwen3_worker():
    port = harness.free_port()
    proc = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(QWEN3_DIR), "--host", "127.0.0.1", "--port", "0",
         "--max-model-len", "512", "--metrics-port", str(port), "--metrics-compat", "vllm"],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60)
    yield proc, f"127.0.0.1:{proc.ready_match.group(1)}", f"http://127.0.0.1:{port}/metrics"
    proc.stop()


def test_prefix_cache_hits_on_a_repeated_prompt_with_identical_output(qwen3_worker, stubs):
    _, address, url = qwen3_worker
    pb = stubs.generation_pb2
    stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
    prompt = "The cache keeps every full block of a prompt, so the next request with the same start skips it. " * 3
    before = scrape(url)
    assert 'prefix_caching="true"' in before

    def generate():
        responses = list(stub.Generate(pb.GenerateRequest(prompt=prompt, sampling=pb.SamplingParams(
            max_tokens=8, temperature=0, ignore_eos=True)), timeout=60))
        return [t for r in responses for t in r.token_ids], responses[-1].usage.prompt_tokens

    first, prompt_tokens = generate()
    second, _ = generate()
    assert second == first
    after = harness.wait_until(lambda: (lambda t: t if value(t, "octet_kv_cache_used_blocks") == 0 else None)(
        scrape(url)), timeout=5, what="the worker goes idle")
    queries = value(after, "octet_prefix_cache_queries_total") - value(before, "octet_prefix_cache_queries_total")
    hits = value(after, "octet_prefix_cache_hits_total") - value(before, "octet_prefix_cache_hits_total")
    assert queries == 2 * prompt_tokens
    assert hits == (prompt_tokens - 1) // 16 * 16  # the second request: every full block but the last token's
    assert value(after, "octet_kv_cache_cached_blocks") >= prompt_tokens // 16
    assert value(after, 'vllm:prefix_cache_hits_total{model_name="qwen3-tiny-gqa-f32"}') >= hits


def test_bad_metrics_compat_is_refused():
    proc = harness.Process([harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--port", "0",
                            "--metrics-compat", "tgi"])
    assert proc.wait(timeout=30) == 2
    assert "--metrics-compat must be vllm" in proc.output()
