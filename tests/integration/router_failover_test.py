"""The router in production conditions, with real CPU workers on loopback: a worker killed under load (nothing
accepted is lost), the dead worker taken out and back, prefix-affinity routing, and a router that starts before its
workers."""

from __future__ import annotations

import concurrent.futures
import pathlib
import re
import sys
import threading
import time
import urllib.request

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
WORKER_READY = r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)"
ROUTER_READY = r"octet-router listening on 127\.0\.0\.1:(\d+)"


def start_worker(port: int = 0, metrics_port: int = 0) -> tuple[harness.Process, str]:
    args = [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1",
            "--port", str(port), "--max-model-len", "256"]
    if metrics_port:
        args += ["--metrics-port", str(metrics_port)]
    proc = harness.start_process(args, WORKER_READY, timeout=60)
    return proc, f"127.0.0.1:{proc.ready_match.group(1)}"


def start_router(*flags: str) -> tuple[harness.Process, str, str]:
    metrics_port = harness.free_port()
    proc = harness.start_process(
        [harness.binary("router/octet-router"), "--host", "127.0.0.1", "--port", "0", "--metrics-port",
         str(metrics_port), "--health-check-interval", "100ms", *flags], ROUTER_READY, timeout=30)
    return proc, f"127.0.0.1:{proc.ready_match.group(1)}", f"http://127.0.0.1:{metrics_port}/metrics"


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def value(text: str, name: str) -> float:
    match = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


def generate(stub, pb, prompt: str, max_tokens: int, timeout: float = 60.0):
    """(outcome, tokens): outcome is "completed", "failed_after_start" (UNAVAILABLE after some tokens) or the
    status that ended it before any token."""
    tokens = []
    finished = False
    try:
        # Read to the end of the stream (its OK status), so the router counts the call as the client saw it.
        for response in stub.Generate(pb.GenerateRequest(prompt=prompt, sampling=pb.SamplingParams(
                max_tokens=max_tokens, temperature=0, ignore_eos=True)), timeout=timeout):
            tokens.extend(response.token_ids)
            finished = finished or response.finish_reason == pb.FINISH_REASON_LENGTH
        return ("completed" if finished else "ended_without_finish"), tokens
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAVAILABLE and tokens:
            return "failed_after_start", tokens
        return error.code().name, tokens


def test_a_worker_killed_under_load_loses_no_request_and_comes_back(stubs):
    pb = stubs.generation_pb2
    workers = [start_worker() for _ in range(3)]
    router, address, metrics = start_router("--workers", ",".join(a for _, a in workers))
    try:
        stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
        harness.wait_until(lambda: value(scrape(metrics), "octet_router_workers") == 3 and all(
            value(scrape(metrics), f'octet_router_worker_up{{worker="{a}"}}') == 1 for _, a in workers),
            timeout=20, what="all three workers up")
        victim, victim_address = workers[1]
        outcomes = []
        lock = threading.Lock()
        started = threading.Event()

        def one(i: int):
            outcome, tokens = generate(stub, pb, f"def function_{i}(x):", 40)
            with lock:
                outcomes.append((outcome, len(tokens)))
                if len(outcomes) == 30:
                    started.set()

        with concurrent.futures.ThreadPoolExecutor(max_workers=24) as pool:
            futures = [pool.submit(one, i) for i in range(200)]
            assert started.wait(timeout=120), "30 requests should finish before the kill"
            victim.kill()  # SIGKILL, in the middle of the load
            done, not_done = concurrent.futures.wait(futures, timeout=240)
            assert not not_done, f"{len(not_done)} requests hang"
        completed = sum(1 for o, _ in outcomes if o == "completed")
        after_start = sum(1 for o, _ in outcomes if o == "failed_after_start")
        lost = [o for o in outcomes if o[0] not in ("completed", "failed_after_start")]
        print(f"failover: {len(outcomes)} requests, completed {completed}, failed after start {after_start}, "
              f"lost {len(lost)}")
        assert len(outcomes) == 200
        assert not lost, lost
        assert all(n == 40 for o, n in outcomes if o == "completed")
        text = scrape(metrics)
        assert value(text, f'octet_router_worker_up{{worker="{victim_address}"}}') == 0
        assert value(text, "octet_router_failed_after_first_message_total") == after_start

        # Restarted on its port, the worker is taken back and gets requests again.
        port = int(victim_address.rsplit(":", 1)[1])
        restarted, _ = start_worker(port=port)
        workers[1] = (restarted, victim_address)
        harness.wait_until(lambda: value(scrape(metrics), f'octet_router_worker_up{{worker="{victim_address}"}}') == 1,
                           timeout=20, what="the restarted worker is back in rotation")
        name = f'octet_router_routing_decisions_total{{policy="least-load",worker="{victim_address}"}}'
        before = value(scrape(metrics), name)
        for i in range(12):
            assert generate(stub, pb, f"print({i})", 4)[0] == "completed"
        assert value(scrape(metrics), name) > before
    finally:
        router.stop()
        for proc, _ in workers:
            proc.kill()


def test_prefix_affinity_sends_a_shared_prefix_to_one_worker(stubs):
    pb = stubs.generation_pb2
    workers = [start_worker() for _ in range(3)]
    router, address, metrics = start_router("--workers", ",".join(a for _, a in workers),
                                            "--policy", "prefix-affinity")
    try:
        stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
        harness.wait_until(lambda: sum(value(scrape(metrics), f'octet_router_worker_up{{worker="{a}"}}')
                                       for _, a in workers) == 3, timeout=20, what="all three workers up")
        system = "# You are a careful Python programmer. Write short, correct functions with docstrings.\n" * 8
        for i in range(9):  # one at a time: the bounded-load fallback has no reason to move any
            assert generate(stub, pb, system + f"def task_{i}():", 4)[0] == "completed"
        def served_by_each():
            text = scrape(metrics)
            return [value(text, f'octet_router_requests_total{{status="OK",worker="{a}"}}') for _, a in workers]

        served = harness.wait_until(lambda: (lambda s: s if sum(s) == 9 else None)(served_by_each()), timeout=5,
                                    what="the router counts all nine")
        text = scrape(metrics)
        assert sorted(served) == [0, 0, 9], served
        assert value(text, 'octet_router_routing_decisions_total{policy="prefix-affinity",worker="%s"}'
                     % workers[served.index(9)][1]) == 9
        # Different prefixes spread out.
        for i in range(24):
            assert generate(stub, pb, f"# file {i} of a project nobody else wrote\n" * 8, 2)[0] == "completed"
        served = harness.wait_until(lambda: (lambda s: s if sum(s) == 33 else None)(served_by_each()), timeout=5,
                                    what=f"the router counts all 33 (now {served_by_each()})")
        assert min(served) > 0, served
    finally:
        router.stop()
        for proc, _ in workers:
            proc.kill()


def test_a_router_without_workers_answers_unavailable_and_recovers(stubs):
    pb = stubs.generation_pb2
    port = harness.free_port()
    # One router with the static address, one finding it through DNS (localhost resolves to it).
    router, address, metrics = start_router("--workers", f"127.0.0.1:{port}")
    dns_router, dns_address, dns_metrics = start_router("--workers-dns", f"localhost:{port}",
                                                        "--dns-refresh-interval", "200ms")
    worker = None
    try:
        for addr in (address, dns_address):
            stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(addr))
            with pytest.raises(grpc.RpcError) as error:
                list(stub.Generate(pb.GenerateRequest(prompt="x", sampling=pb.SamplingParams(max_tokens=2)),
                                   timeout=10))
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "no healthy worker" in error.value.details()
        worker, _ = start_worker(port=port)
        for addr in (address, dns_address):
            stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(addr))
            harness.wait_until(lambda: generate(stub, pb, "def f():", 3, timeout=10)[0] == "completed", timeout=30,
                               what=f"router {addr} recovers when the worker starts")
    finally:
        router.stop()
        dns_router.stop()
        if worker is not None:
            worker.kill()


def test_the_inflight_bound_refuses_at_once(stubs):
    pb = stubs.generation_pb2
    worker, worker_address = start_worker()
    router, address, metrics = start_router("--workers", worker_address, "--max-inflight-requests", "2")
    try:
        stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
        harness.wait_until(lambda: generate(stub, pb, "x", 1, timeout=10)[0] == "completed", timeout=20,
                           what="router ready")
        # The readiness call ends for the client a moment before the router releases it.
        harness.wait_until(lambda: value(scrape(metrics), "octet_router_inflight_requests") == 0, timeout=5,
                           what="the router is idle")
        long = [stub.Generate(pb.GenerateRequest(prompt="while True:", sampling=pb.SamplingParams(
            max_tokens=200, temperature=0, ignore_eos=True)), timeout=60) for _ in range(2)]
        for call in long:
            next(iter(call))  # both running
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as error:
            list(stub.Generate(pb.GenerateRequest(prompt="x", sampling=pb.SamplingParams(max_tokens=2)), timeout=10))
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert time.monotonic() - start < 2
        assert value(scrape(metrics), "octet_router_rejected_total") == 1
        for call in long:
            call.cancel()
    finally:
        router.stop()
        worker.kill()
