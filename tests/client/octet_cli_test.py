"""The `octet` CLI end to end: against a fake worker (in-process grpcio server), directly or through octet-router."""

from __future__ import annotations

import os
import pathlib
import selectors
import subprocess
import sys
import threading
import time

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "router"))

import harness  # noqa: E402
from fake_worker import FakeWorker  # noqa: E402

CLI_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


@pytest.fixture
def make_worker(stubs):
    workers = []

    def make(name: str = "a", **knobs) -> FakeWorker:
        worker = FakeWorker(stubs, name)
        for key, value in knobs.items():
            setattr(worker, key, value)
        workers.append(worker.start())
        return worker

    yield make
    for worker in workers:
        worker.stop()


@pytest.fixture
def make_router():
    processes = []

    def make(workers) -> str:
        process = harness.start_process(
            [harness.binary("router/octet-router"), "--workers", ",".join(w.address for w in workers),
             "--host", "127.0.0.1", "--port", "0", "--health_check_interval=200ms"],
            r"octet-router listening on 127\.0\.0\.1:(\d+)", timeout=20)
        processes.append(process)
        return f"127.0.0.1:{process.ready_match.group(1)}"

    yield make
    for process in processes:
        process.stop()


def octet(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([harness.binary("client/octet"), *args], input=stdin, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT)


def test_generate_prints_the_streamed_text_through_the_router(make_worker, make_router):
    worker = make_worker(num_chunks=4)
    router = make_router([worker])
    result = octet("generate", "--addr", router, "tell me a story")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "t0 t1 t2 t3 "  # exactly the streamed text when piped
    assert worker.calls_of("Generate")[0].request.prompt == "tell me a story"


def test_generate_writes_each_message_as_it_arrives(make_worker):
    release = threading.Event()
    worker = make_worker(num_chunks=3, hold_last_chunk=release)
    process = subprocess.Popen([harness.binary("client/octet"), "generate", "--addr", worker.address, "hi"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The worker holds back its last chunk; the first two must already be on stdout.
        seen = b""
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 10
        while seen != b"t0 t1 " and time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                chunk = os.read(process.stdout.fileno(), 1024)
                if not chunk:
                    break
                seen += chunk
        assert seen == b"t0 t1 "
        release.set()
        rest, _ = process.communicate(timeout=10)
        assert rest == b"t2 "
        assert process.returncode == 0
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_generate_sends_the_sampling_flags_in_either_spelling(stubs, make_worker):
    worker = make_worker()
    result = octet("generate", "--addr", worker.address, "--max-tokens", "17", "--temperature=0.7", "--top-p", "0.9",
                   "--top_k=40", "--seed", "1234", "--request-id=cli-1", "a prompt")
    assert result.returncode == 0, result.stderr
    request = worker.calls_of("Generate")[0].request
    assert (request.request_id, request.prompt) == ("cli-1", "a prompt")
    sampling = request.sampling
    assert (sampling.max_tokens, sampling.top_k, sampling.seed) == (17, 40, 1234)
    assert sampling.temperature == pytest.approx(0.7)
    assert sampling.top_p == pytest.approx(0.9)


def test_generate_reads_the_prompt_from_stdin(make_worker):
    worker = make_worker()
    result = octet("generate", "--addr", worker.address, "-", stdin="from stdin\n")
    assert result.returncode == 0, result.stderr
    assert worker.calls_of("Generate")[0].request.prompt == "from stdin\n"


def test_generate_prints_errors_with_the_status_code_name(make_worker):
    worker = make_worker(abort_with=(grpc.StatusCode.INVALID_ARGUMENT, "`top_p` must be in (0, 1]"), abort_after=0)
    result = octet("generate", "--addr", worker.address, "--top-p=2", "x")
    assert result.returncode == 1
    assert result.stderr == "octet: INVALID_ARGUMENT: `top_p` must be in (0, 1]\n"


def test_generate_keeps_the_text_before_a_failure(make_worker):
    worker = make_worker(abort_with=(grpc.StatusCode.UNAVAILABLE, "worker lost its GPU"), abort_after=2)
    result = octet("generate", "--addr", worker.address, "x")
    assert result.returncode == 1
    assert result.stdout == "t0 t1 "
    assert result.stderr == "octet: UNAVAILABLE: worker lost its GPU\n"


def test_generate_timeout_flag_sets_the_deadline(make_worker):
    worker = make_worker(num_chunks=1000, chunk_delay=0.05)
    started = time.monotonic()
    result = octet("generate", "--addr", worker.address, "--timeout=500ms", "x")
    assert time.monotonic() - started < 5
    assert result.returncode == 1
    assert result.stderr.startswith("octet: DEADLINE_EXCEEDED: ")
    assert worker.calls_of("Generate")[0].cancelled.wait(2.0)


def test_no_healthy_worker_behind_the_router(make_worker, make_router):
    worker = make_worker()
    router = make_router([worker])
    worker.stop()
    # Until the router notices, a call may still reach the dead worker and report its connection error.
    deadline = time.monotonic() + 5
    while True:
        result = octet("generate", "--addr", router, "x")
        if "no healthy worker" in result.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert result.returncode == 1
    assert result.stderr == "octet: UNAVAILABLE: no healthy worker (1 configured, 0 healthy)\n"


def test_unreachable_address(make_worker):
    port = harness.free_port()
    result = octet("generate", "--addr", f"127.0.0.1:{port}", "--connect-timeout=300ms", "x")
    assert result.returncode == 1
    assert result.stderr == f"octet: UNAVAILABLE: cannot connect to 127.0.0.1:{port} within 300ms\n"


def test_model_info(make_worker):
    worker = make_worker("m")
    result = octet("model-info", "--addr", worker.address)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert fields == {"model_name": "fake-m", "architecture": "qwen3", "context_length": "4096",
                      "weight_dtype": "fp8_e4m3", "compute_dtype": "fp32", "kv_cache_dtype": "fp8_e4m3",
                      "vocab_size": "151936", "backend": "cpu", "prefix_caching": "off"}


def test_tokenize(make_worker):
    worker = make_worker()
    result = octet("tokenize", "--addr", worker.address, "--add-special-tokens", "ab")
    assert (result.returncode, result.stdout) == (0, f"1 {ord('a')} {ord('b')}\n")


@pytest.mark.parametrize("args, message", [
    ((), "octet: missing command"),
    (("frobnicate",), "octet: unknown command 'frobnicate'"),
    (("generate", "--addr", "127.0.0.1:1"), "octet: generate takes exactly one PROMPT argument"),
])
def test_usage_errors_exit_2(args, message):
    result = octet(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert "usage: octet <command>" in result.stderr


def test_chat_keeps_the_conversation_and_the_router_writes_chatml(make_worker, make_router):
    worker = make_worker(num_chunks=3)
    router = make_router([worker])
    result = octet("chat", "--addr", router, "--system", "Be brief.", "--max-tokens", "8",
                   stdin="hello\n\nsecond turn\n/reset\nafter reset\n")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "t0 t1 t2 \n" * 3  # each reply, then a newline
    prompts = [c.request.prompt for c in worker.calls_of("Generate")]
    system = "<|im_start|>system\nBe brief.<|im_end|>\n"
    assert prompts == [
        system + "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
        system + "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nt0 t1 t2<|im_end|>\n"
        "<|im_start|>user\nsecond turn<|im_end|>\n<|im_start|>assistant\n",
        system + "<|im_start|>user\nafter reset<|im_end|>\n<|im_start|>assistant\n",
    ]
    request = worker.calls_of("Generate")[0].request
    assert list(request.sampling.stop) == ["<|im_end|>"] and request.sampling.max_tokens == 8


def test_chat_straight_to_a_worker_is_unimplemented(make_worker):
    worker = make_worker()
    result = octet("chat", "--addr", worker.address, stdin="hi\n")
    assert result.returncode == 1
    assert result.stderr.startswith("octet: UNIMPLEMENTED")


def test_info_is_model_info(make_worker):
    worker = make_worker("m")
    assert octet("info", "--addr", worker.address).stdout == octet("model-info", "--addr", worker.address).stdout
