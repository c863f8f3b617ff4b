"""A fake octet worker for router and client tests: an in-process grpcio server with octet.v1.Generation and
grpc.health.v1, whose behaviour is set by plain attributes and which records every call it gets."""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Optional

import grpc

import harness


class Call:
    """One call as the worker saw it."""

    def __init__(self, method: str, request, context: grpc.ServicerContext):
        self.method = method
        self.request = request
        self.time_remaining: Optional[float] = context.time_remaining()  # seconds left at arrival
        self.metadata = dict(context.invocation_metadata())
        self.cancelled = threading.Event()  # the call ended before the worker finished it (cancel, deadline)
        self.done = threading.Event()  # the call ended, in any way
        self.finished_by_worker = False


class FakeWorker:
    """Knobs (change them at any time; they apply to calls that start afterwards):

    num_chunks      Generate streams "t0 ", "t1 ", ... then a last message with finish_reason STOP and usage
    chunk_delay     seconds before each chunk
    abort_with      (grpc.StatusCode, message): fail Generate after `abort_after` chunks, and unary calls at once
    hold_last_chunk a threading.Event the last text chunk waits for (at most 20 s)
    health_watch    False: the health service answers Watch with UNIMPLEMENTED (Check only), so a router polls it
                    (read by start())
    """

    def __init__(self, stubs, name: str, port: Optional[int] = None):
        self.stubs = stubs
        self.name = name
        self.port = port or harness.free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.num_chunks = 5
        self.chunk_delay = 0.0
        self.abort_with: Optional[tuple] = None
        self.abort_after = 0
        self.hold_last_chunk: Optional[threading.Event] = None
        self.health_watch = True
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._server: Optional[grpc.Server] = None
        self._health = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> "FakeWorker":
        # so_reuseport off: a port clash fails loudly instead of two servers sharing the port.
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=[("grpc.so_reuseport", 0)])
        self.stubs.generation_pb2_grpc.add_GenerationServicer_to_server(_Servicer(self), server)
        health = self.stubs.health.HealthServicer()
        self._health = health if self.health_watch else _CheckOnlyHealth(health)
        self.stubs.health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        if server.add_insecure_port(self.address) != self.port:
            raise RuntimeError(f"fake worker {self.name}: cannot listen on {self.address}")
        server.start()
        self._server = server
        self.set_serving(True)
        return self

    def stop(self) -> None:
        """Closes the port and aborts running calls at once, like a worker process that died."""
        if self._server is not None:
            self._server.stop(grace=None).wait(timeout=5)
            self._server = None

    def set_serving(self, serving: bool) -> None:
        status = self.stubs.health_pb2.HealthCheckResponse
        value = status.SERVING if serving else status.NOT_SERVING
        for service in ("", "octet.v1.Generation"):
            self._health.set(service, value)

    # --- what it saw -----------------------------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _record(self, method: str, request, context) -> Call:
        call = Call(method, request, context)

        def on_end():
            if not call.finished_by_worker:
                call.cancelled.set()
            call.done.set()

        context.add_callback(on_end)
        with self._lock:
            self.calls.append(call)
        return call


class _Servicer:
    """octet.v1.Generation as the fake worker plays it (a duck-typed GenerationServicer)."""

    def __init__(self, worker: FakeWorker):
        self.w = worker
        self.pb = worker.stubs.generation_pb2

    def Generate(self, request, context):
        w, pb = self.w, self.pb
        call = w._record("Generate", request, context)
        num_chunks, delay, abort_with, abort_after = w.num_chunks, w.chunk_delay, w.abort_with, w.abort_after
        hold = w.hold_last_chunk
        for i in range(num_chunks):
            if abort_with is not None and i == abort_after:
                call.finished_by_worker = True
                context.abort(*abort_with)
            if delay and call.done.wait(delay):
                return  # the call ended while waiting
            if hold is not None and i == num_chunks - 1:
                hold.wait(timeout=20)
            yield pb.GenerateResponse(request_id=request.request_id, text=f"t{i} ", token_ids=[i])
        if abort_with is not None and abort_after >= num_chunks:
            call.finished_by_worker = True
            context.abort(*abort_with)
        call.finished_by_worker = True
        yield pb.GenerateResponse(request_id=request.request_id, finish_reason=pb.FINISH_REASON_STOP,
                                  usage=pb.Usage(prompt_tokens=len(request.prompt.split()),
                                                 completion_tokens=num_chunks))

    def Chat(self, request, context):
        # Workers leave chat templates to the router, as octet-worker does.
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Chat is served by the router")

    def Tokenize(self, request, context):
        call = self.w._record("Tokenize", request, context)
        call.finished_by_worker = True
        if self.w.abort_with is not None:
            context.abort(*self.w.abort_with)
        ids = [ord(c) for c in request.text]
        if request.add_special_tokens:
            ids.insert(0, 1)
        return self.pb.TokenizeResponse(token_ids=ids)

    def GetModelInfo(self, request, context):
        call = self.w._record("GetModelInfo", request, context)
        call.finished_by_worker = True
        if self.w.abort_with is not None:
            context.abort(*self.w.abort_with)
        return self.pb.ModelInfo(model_name=f"fake-{self.w.name}", architecture="qwen3", context_length=4096,
                                 weight_dtype="fp8_e4m3", compute_dtype="fp32", kv_cache_dtype="fp8_e4m3",
                                 vocab_size=151936, backend="cpu")


class _CheckOnlyHealth:
    """grpc.health.v1 without Watch, as some health services are: grpcio's servicer for Check, UNIMPLEMENTED Watch."""

    def __init__(self, servicer):
        self._servicer = servicer

    def Check(self, request, context):
        return self._servicer.Check(request, context)

    def Watch(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Watch is not implemented")

    def set(self, service, status):
        self._servicer.set(service, status)
