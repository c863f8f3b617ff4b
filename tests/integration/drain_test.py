"""Drain: on SIGTERM or the Drain RPC a worker stops taking requests, finishes the ones it accepted, and exits 0."""

from __future__ import annotations

import pathlib
import signal
import sys
import threading

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


def start_worker():
    worker = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1", "--port", "0"],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60)
    return worker, grpc.insecure_channel(f"127.0.0.1:{worker.ready_match.group(1)}")


def test_sigterm_finishes_accepted_requests_then_exits_0(stubs):
    pb = stubs.generation_pb2
    worker, channel = start_worker()
    try:
        stub = stubs.generation_pb2_grpc.GenerationStub(channel)
        first_token = threading.Event()
        result = {}

        def generate():
            responses = []
            for r in stub.Generate(pb.GenerateRequest(prompt="def fibonacci(n):", sampling=pb.SamplingParams(
                    max_tokens=300, temperature=0, ignore_eos=True)), timeout=120):
                responses.append(r)
                first_token.set()
            result["responses"] = responses

        thread = threading.Thread(target=generate)
        thread.start()
        assert first_token.wait(timeout=60)
        worker.send_signal(signal.SIGTERM)
        # Admission stops: health goes NOT_SERVING and a new request is refused.
        health = stubs.health_pb2_grpc.HealthStub(channel)
        harness.wait_until(lambda: health.Check(stubs.health_pb2.HealthCheckRequest(), timeout=5).status ==
                           stubs.health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10, what="NOT_SERVING")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Generate(pb.GenerateRequest(prompt="x", sampling=pb.SamplingParams(max_tokens=2)), timeout=10))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "draining" in refused.value.details()
        # The accepted request runs to its end.
        thread.join(timeout=120)
        responses = result["responses"]
        assert responses[-1].finish_reason == pb.FINISH_REASON_LENGTH
        assert responses[-1].usage.completion_tokens == 300
        assert worker.wait(timeout=30) == 0
    finally:
        worker.stop()


def test_drain_rpc_drains_and_exits_0(stubs):
    worker, channel = start_worker()
    try:
        control = stubs.worker_pb2_grpc.WorkerControlStub(channel)
        assert control.GetLoad(stubs.worker_pb2.GetLoadRequest(), timeout=5).draining is False
        response = control.Drain(stubs.worker_pb2.DrainRequest(), timeout=5)
        assert response.num_unfinished == 0
        assert worker.wait(timeout=30) == 0
        assert "drained; exiting" in worker.output()
    finally:
        worker.stop()
