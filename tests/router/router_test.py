"""octet-router end to end: the real binary in front of fake workers (in-process grpcio servers), on loopback."""

from __future__ import annotations

import pathlib
import signal
import sys
import threading
import time
from dataclasses import dataclass

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import harness  # noqa: E402
from fake_worker import FakeWorker  # noqa: E402

READY_LINE = r"octet-router listening on 127\.0\.0\.1:(\d+)"
RPC_TIMEOUT = 10.0  # every call in these tests is bounded


@dataclass
class Router:
    process: harness.Process
    address: str
    channel: grpc.Channel
    stub: object  # octet.v1.GenerationStub
    health: object  # grpc.health.v1.HealthStub

    def wait_for_log(self, regex: str, timeout: float = 5.0, start: int = 0):
        return self.process.wait_for_line(regex, timeout, start=start)

    def health_status(self, service: str = "") -> int:
        stubs = harness.load_stubs()
        request = stubs.health_pb2.HealthCheckRequest(service=service)
        return self.health.Check(request, timeout=RPC_TIMEOUT).status


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


@pytest.fixture
def make_worker(stubs):
    workers = []

    def make(name: str, **knobs) -> FakeWorker:
        worker = FakeWorker(stubs, name)
        for key, value in knobs.items():
            setattr(worker, key, value)
        workers.append(worker.start())
        return worker

    yield make
    for worker in workers:
        worker.stop()


@pytest.fixture
def make_router(stubs):
    routers = []

    def make(workers, *flags: str) -> Router:
        addresses = ",".join(w if isinstance(w, str) else w.address for w in workers)
        process = harness.start_process(
            [harness.binary("router/octet-router"), "--workers", addresses, "--host", "127.0.0.1", "--port", "0",
             "--health_check_interval=200ms", *flags],
            READY_LINE, timeout=20)
        address = f"127.0.0.1:{process.ready_match.group(1)}"
        channel = grpc.insecure_channel(address)
        router = Router(process, address, channel, stubs.generation_pb2_grpc.GenerationStub(channel),
                        stubs.health_pb2_grpc.HealthStub(channel))
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.channel.close()
        code = router.process.stop(timeout=15)
        assert code == 0, f"octet-router exited with {code}; output:\n{router.process.output()}"


def request(stubs, prompt="hello there", request_id="", **sampling):
    pb = stubs.generation_pb2
    return pb.GenerateRequest(request_id=request_id, prompt=prompt, sampling=pb.SamplingParams(**sampling))


def texts(responses) -> list[str]:
    return [r.text for r in responses]


def expected_texts(num_chunks: int) -> list[str]:
    return [f"t{i} " for i in range(num_chunks)] + [""]


def serving(stubs) -> int:
    return stubs.health_pb2.HealthCheckResponse.SERVING


def not_serving(stubs) -> int:
    return stubs.health_pb2.HealthCheckResponse.NOT_SERVING


# --- streaming ----------------------------------------------------------------------------------------------------


def test_generate_streams_every_chunk_in_order(stubs, make_worker, make_router):
    worker = make_worker("a", num_chunks=40)
    router = make_router([worker])
    req = request(stubs, prompt="one two three", request_id="req-1", max_tokens=40, temperature=0.5, top_p=0.9,
                  top_k=7, seed=11)
    responses = list(router.stub.Generate(req, timeout=RPC_TIMEOUT))
    assert texts(responses) == expected_texts(40)
    assert [r.token_ids[0] for r in responses[:-1]] == list(range(40))
    assert all(r.request_id == "req-1" for r in responses)
    last = responses[-1]
    assert last.finish_reason == stubs.generation_pb2.FINISH_REASON_STOP
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 40)
    # The worker got the client's request unchanged.
    assert [c.request for c in worker.calls_of("Generate")] == [req]


def test_generate_relays_each_message_as_it_arrives(stubs, make_worker, make_router):
    release = threading.Event()
    worker = make_worker("a", num_chunks=3, hold_last_chunk=release)
    router = make_router([worker])
    call = router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT)
    try:
        # The worker holds back its last chunk: the first two must already be through the router.
        assert next(call).text == "t0 "
        assert next(call).text == "t1 "
    finally:
        release.set()
    assert texts(call) == ["t2 ", ""]


def test_slow_client_still_gets_every_chunk(stubs, make_worker, make_router):
    # 600 messages sent at once overflow the router's queue of 64: reading from the worker pauses and resumes.
    worker = make_worker("a", num_chunks=600)
    router = make_router([worker])
    received = []
    for response in router.stub.Generate(request(stubs), timeout=30):
        if len(received) < 100:
            time.sleep(0.002)
        received.append(response.text)
    assert received == expected_texts(600)


# --- routing and health -------------------------------------------------------------------------------------------


def test_round_robin_spreads_requests_over_two_workers(stubs, make_worker, make_router):
    a, b = make_worker("a"), make_worker("b")
    router = make_router([a, b])
    for i in range(10):
        assert texts(router.stub.Generate(request(stubs, request_id=f"r{i}"), timeout=RPC_TIMEOUT)) == \
            expected_texts(5)
    assert len(a.calls_of("Generate")) == 5
    assert len(b.calls_of("Generate")) == 5
    # Strictly alternating: consecutive requests went to different workers.
    ids_a = {c.request.request_id for c in a.calls_of("Generate")}
    assert ids_a in ({"r0", "r2", "r4", "r6", "r8"}, {"r1", "r3", "r5", "r7", "r9"})


def test_worker_going_down_is_marked_unhealthy_and_skipped(stubs, make_worker, make_router):
    a, b = make_worker("a"), make_worker("b")
    # Rounds an hour apart: the end of `a`'s health Watch stream takes it out at once.
    router = make_router([a, b], "--health_check_interval=1h")
    a.stop()
    router.wait_for_log(rf"worker 127\.0\.0\.1:{a.port} is unhealthy: health watch ended", timeout=1)
    for _ in range(6):
        assert texts(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT)) == expected_texts(5)
    assert len(b.calls_of("Generate")) == 6
    assert router.health_status() == serving(stubs)


def test_worker_coming_back_is_used_again(stubs, make_worker, make_router):
    a, b = make_worker("a"), make_worker("b")
    router = make_router([a, b])
    a.stop()
    router.wait_for_log(rf"worker 127\.0\.0\.1:{a.port} is unhealthy", timeout=5)
    start = router.process.line_count()
    a.start()  # same port
    router.wait_for_log(rf"worker 127\.0\.0\.1:{a.port} is healthy", timeout=5, start=start)
    calls_before = len(a.calls_of("Generate"))
    for _ in range(4):
        list(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT))
    assert len(a.calls_of("Generate")) - calls_before == 2


def test_unreachable_worker_is_retried_on_another_before_the_first_message(stubs, make_worker, make_router):
    # `a` has no health Watch (whose end would tell the router at once) and is checked every hour: the router
    # learns that it is gone only from a failed call.
    a, b = make_worker("a", health_watch=False), make_worker("b")
    router = make_router([a, b], "--health_check_interval=1h")
    router.wait_for_log(rf"worker 127\.0\.0\.1:{a.port} has no health Watch")
    a.stop()
    for _ in range(4):
        assert texts(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT)) == expected_texts(5)
    assert len(b.calls_of("Generate")) == 4
    router.wait_for_log(rf"worker 127\.0\.0\.1:{a.port} failed before its first message .*retrying on "
                        rf"127\.0\.0\.1:{b.port}")
    # Unary calls are retried the same way.
    assert router.stub.GetModelInfo(stubs.generation_pb2.GetModelInfoRequest(), timeout=RPC_TIMEOUT).model_name == \
        "fake-b"


def test_unavailable_from_worker_before_first_message_is_retried(stubs, make_worker, make_router):
    a, b = make_worker("a"), make_worker("b")
    router = make_router([a, b])
    a.abort_with, a.abort_after = (grpc.StatusCode.UNAVAILABLE, "draining"), 0
    for _ in range(2):
        assert texts(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT)) == expected_texts(5)
    assert len(b.calls_of("Generate")) == 2


def test_all_workers_down_gives_unavailable_and_not_serving(stubs, make_worker, make_router):
    a, b = make_worker("a"), make_worker("b")
    router = make_router([a, b])
    assert router.health_status() == serving(stubs)
    assert router.health_status("octet.v1.Generation") == serving(stubs)
    a.stop()
    b.stop()
    harness.wait_until(lambda: router.health_status() == not_serving(stubs), timeout=5, what="router NOT_SERVING")
    assert router.health_status("octet.v1.Generation") == not_serving(stubs)
    with pytest.raises(grpc.RpcError) as error:
        list(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.value.details() == "no healthy worker (2 configured, 0 healthy)"
    with pytest.raises(grpc.RpcError) as error:
        router.stub.Tokenize(stubs.generation_pb2.TokenizeRequest(text="x"), timeout=RPC_TIMEOUT)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE

    b.start()
    harness.wait_until(lambda: router.health_status() == serving(stubs), timeout=5, what="router SERVING again")
    assert texts(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT)) == expected_texts(5)


def test_no_worker_reachable_at_start(stubs, make_router):
    router = make_router([f"127.0.0.1:{harness.free_port()}", f"127.0.0.1:{harness.free_port()}"])
    assert router.health_status() == not_serving(stubs)
    with pytest.raises(grpc.RpcError) as error:
        list(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.value.details() == "no healthy worker (2 configured, 0 healthy)"


def test_router_health_follows_worker_health(stubs, make_worker, make_router):
    worker = make_worker("a")
    router = make_router([worker])
    assert router.health_status() == serving(stubs)
    worker.set_serving(False)  # e.g. a worker still loading its model
    harness.wait_until(lambda: router.health_status() == not_serving(stubs), timeout=5, what="router NOT_SERVING")
    with pytest.raises(grpc.RpcError) as error:
        list(router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT))
    assert error.value.details() == "no healthy worker (1 configured, 0 healthy)"
    worker.set_serving(True)
    harness.wait_until(lambda: router.health_status() == serving(stubs), timeout=5, what="router SERVING")


# --- deadlines, cancellation, errors ------------------------------------------------------------------------------


def test_client_cancel_cancels_the_worker_call(stubs, make_worker, make_router):
    worker = make_worker("a", num_chunks=1000, chunk_delay=0.02)
    router = make_router([worker])
    call = router.stub.Generate(request(stubs), timeout=30)
    assert [next(call).text for _ in range(3)] == ["t0 ", "t1 ", "t2 "]
    call.cancel()
    (worker_call,) = worker.calls_of("Generate")
    assert worker_call.cancelled.wait(1.0), "the worker's call was not cancelled within 1 s"


def test_client_deadline_reaches_the_worker(stubs, make_worker, make_router):
    worker = make_worker("a")
    router = make_router([worker])
    list(router.stub.Generate(request(stubs), timeout=5.0))
    list(router.stub.Generate(request(stubs)))  # no deadline
    with_deadline, without_deadline = worker.calls_of("Generate")
    # gRPC rounds a deadline up a little when it puts it on the wire (grpc-timeout), hence the slack above 5 s.
    assert 3.0 < with_deadline.time_remaining <= 5.5
    assert without_deadline.time_remaining is None or without_deadline.time_remaining > 3600


def test_deadline_exceeded_cancels_the_worker_call(stubs, make_worker, make_router):
    worker = make_worker("a", num_chunks=1000, chunk_delay=0.05)
    router = make_router([worker])
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        list(router.stub.Generate(request(stubs), timeout=0.5))
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3.0
    (worker_call,) = worker.calls_of("Generate")
    assert worker_call.cancelled.wait(2.0)


def test_worker_error_status_is_passed_through(stubs, make_worker, make_router):
    a, b = make_worker("a"), make_worker("b")
    for w in (a, b):
        w.abort_with, w.abort_after = (grpc.StatusCode.INVALID_ARGUMENT, "`top_p` must be in (0, 1]"), 0
    router = make_router([a, b])
    with pytest.raises(grpc.RpcError) as error:
        list(router.stub.Generate(request(stubs, top_p=2.0), timeout=RPC_TIMEOUT))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "`top_p` must be in (0, 1]"
    assert len(a.calls) + len(b.calls) == 1  # client errors are not retried
    assert router.health_status() == serving(stubs)  # and do not count against a worker


def test_worker_failure_after_first_message_ends_the_stream_with_its_status(stubs, make_worker, make_router):
    a, b = make_worker("a"), make_worker("b")
    for w in (a, b):
        w.abort_with, w.abort_after = (grpc.StatusCode.UNAVAILABLE, "worker lost its GPU"), 2
    router = make_router([a, b])
    received = []
    with pytest.raises(grpc.RpcError) as error:
        for response in router.stub.Generate(request(stubs), timeout=RPC_TIMEOUT):
            received.append(response.text)
    assert received == ["t0 ", "t1 "]  # the tokens so far, then the error
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "failed after the response had started (UNAVAILABLE: worker lost its GPU)" in error.value.details()
    assert len(a.calls) + len(b.calls) == 1  # not retried after a message went out


def test_tokenize_and_model_info_are_forwarded(stubs, make_worker, make_router):
    worker = make_worker("a")
    router = make_router([worker])
    pb = stubs.generation_pb2
    tokens = router.stub.Tokenize(pb.TokenizeRequest(text="hi!", add_special_tokens=True), timeout=RPC_TIMEOUT)
    assert list(tokens.token_ids) == [1, ord("h"), ord("i"), ord("!")]
    info = router.stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=RPC_TIMEOUT)
    assert (info.model_name, info.architecture, info.context_length, info.backend) == ("fake-a", "qwen3", 4096, "cpu")
    with_deadline = worker.calls_of("Tokenize")[0].time_remaining
    assert 5.0 < with_deadline <= RPC_TIMEOUT + 0.5

    worker.abort_with = (grpc.StatusCode.INVALID_ARGUMENT, "`text` must be valid UTF-8")
    with pytest.raises(grpc.RpcError) as error:
        router.stub.Tokenize(pb.TokenizeRequest(text="x"), timeout=RPC_TIMEOUT)
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                           "`text` must be valid UTF-8")


# --- process ------------------------------------------------------------------------------------------------------


def test_sigterm_cancels_running_calls_after_the_grace_period_and_exits_cleanly(stubs, make_worker, make_router):
    worker = make_worker("a", num_chunks=1000, chunk_delay=0.02)
    router = make_router([worker], "--shutdown_grace=500ms")
    call = router.stub.Generate(request(stubs), timeout=30)
    assert next(call).text == "t0 "
    router.process.send_signal(signal.SIGTERM)
    assert router.process.wait(timeout=10) == 0
    with pytest.raises(grpc.RpcError):
        for _ in call:
            pass
    (worker_call,) = worker.calls_of("Generate")
    assert worker_call.cancelled.wait(2.0)
    router.wait_for_log(r"router: stopped")


def test_bad_workers_flag_is_rejected():
    process = harness.Process([harness.binary("router/octet-router"), "--workers", "localhost", "--port", "0"])
    assert process.wait(timeout=10) == 2
    assert "--workers: 'localhost' must be HOST:PORT" in process.output()
