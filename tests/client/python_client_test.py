"""The Python client (client/python, package octet_client) end to end: a real octet-worker on the bundled model behind
a real octet-router; request mapping, metadata and cancellation against a fake worker; and the package's install.

octet_client comes from the project virtualenv, where scripts/setup installs it (pip install -e ./client/python)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "router"))

import harness  # noqa: E402
from fake_worker import FakeWorker  # noqa: E402

try:
    from octet_client import Chunk, Client, Completion, OctetError
except ImportError as e:
    raise ImportError(f"octet_client is not installed in {sys.executable} ({e}): run scripts/setup, which does "
                      "pip install --no-build-isolation -e ./client/python") from e

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
CLIENT_DIR = harness.REPO_ROOT / "client" / "python"
CONTEXT = 256
PROMPT = "def fibonacci(n):"


@pytest.fixture(scope="module")
def router():
    worker = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1",
         "--port", "0", "--max-model-len", str(CONTEXT)],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60)
    router = harness.start_process(
        [harness.binary("router/octet-router"), "--workers", f"127.0.0.1:{worker.ready_match.group(1)}",
         "--host", "127.0.0.1", "--port", "0", "--health_check_interval=200ms"],
        r"listening on 127\.0\.0\.1:(\d+)", timeout=30)
    address = f"127.0.0.1:{router.ready_match.group(1)}"
    try:
        with Client(address, timeout=5) as probe:
            harness.wait_until(lambda: _model_info_or_none(probe), timeout=20, what="router sees a healthy worker")
        yield address
    finally:
        router.stop()
        worker.stop()


def _model_info_or_none(client: Client):
    try:
        return client.model_info()
    except OctetError:
        return None


@pytest.fixture
def client(router):
    with Client(router, timeout=60) as c:
        yield c


def test_stream_yields_the_greedy_completion_in_pieces(client):
    chunks = list(client.stream(PROMPT, max_tokens=24, temperature=0, ignore_eos=True))
    completion = client.generate(PROMPT, max_tokens=24, temperature=0, ignore_eos=True)

    assert all(isinstance(c, Chunk) for c in chunks)
    assert len(chunks) >= 2, "the answer should stream in several messages"
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 24
    # Greedy decoding: the streamed pieces put together are the non-streamed completion.
    assert "".join(c.text for c in chunks) == completion.text
    assert [t for c in chunks for t in c.token_ids] == completion.token_ids
    assert completion.text.strip(), "the model should produce some text"
    assert len({c.request_id for c in chunks}) == 1 and chunks[0].request_id


def test_generate_returns_text_tokens_finish_reason_and_usage(client):
    completion = client.generate(PROMPT, max_tokens=10, temperature=0, ignore_eos=True, request_id="py-1")
    assert isinstance(completion, Completion)
    assert completion.request_id == "py-1"
    assert completion.finish_reason == "length"
    assert len(completion.token_ids) == 10
    assert completion.usage.completion_tokens == 10
    assert completion.usage.prompt_tokens == len(client.tokenize(PROMPT))


def test_logprobs_come_with_each_token(client):
    completion = client.generate(PROMPT, max_tokens=6, temperature=0, ignore_eos=True, logprobs=3)
    assert len(completion.logprobs) == len(completion.token_ids) == 6
    for token_id, entry in zip(completion.token_ids, completion.logprobs):
        assert entry.chosen.token_id == token_id
        assert entry.chosen.logprob <= 0
        assert len(entry.top) == 3
        # Greedy: the chosen token is the most likely one.
        assert entry.top[0].token_id == token_id
        assert [t.logprob for t in entry.top] == sorted((t.logprob for t in entry.top), reverse=True)


def test_a_prompt_of_token_ids_completes_as_its_text(client):
    ids = client.tokenize(PROMPT)
    by_ids = client.generate(ids, max_tokens=8, temperature=0, ignore_eos=True)
    by_text = client.generate(PROMPT, max_tokens=8, temperature=0, ignore_eos=True)
    assert by_ids.token_ids == by_text.token_ids
    assert by_ids.text == by_text.text
    assert by_ids.usage.prompt_tokens == len(ids)


def test_seeded_sampling_is_reproducible(client):
    def run(seed: int) -> list[int]:
        return client.generate(PROMPT, max_tokens=16, temperature=1.0, top_p=0.9, top_k=50, seed=seed,
                               ignore_eos=True).token_ids
    assert run(1234) == run(1234)
    assert run(1234) != run(4321)


def test_a_stop_string_ends_the_completion_before_it(client):
    full = client.generate(PROMPT, max_tokens=24, temperature=0, ignore_eos=True)
    stop = full.text[8:12]
    assert stop.strip(), f"pick a stop string with text in it from {full.text!r}"
    completion = client.generate(PROMPT, max_tokens=24, temperature=0, stop=stop)
    assert completion.finish_reason == "stop"
    assert completion.text == full.text[:full.text.index(stop)]


def test_tokenize_and_model_info(client):
    ids = client.tokenize("def f(x):\n    return x")
    assert ids and all(isinstance(t, int) for t in ids)
    assert client.tokenize("") == []

    info = client.model_info()
    assert info.model_name == "qwen3_5-code-small"
    assert info.context_length == CONTEXT
    assert info.backend == "cpu"
    assert info.vocab_size == 8192
    assert all(0 <= t < info.vocab_size for t in ids)
    assert info.memory.weights_bytes > 0


@pytest.mark.parametrize("sampling, field", [
    ({"top_p": 2.0}, "top_p"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": CONTEXT + 1}, "max_tokens"),
    ({"temperature": -0.5}, "temperature"),
])
def test_a_bad_request_raises_invalid_argument(client, sampling, field):
    with pytest.raises(OctetError) as raised:
        client.generate(PROMPT, **sampling)
    assert raised.value.code == "INVALID_ARGUMENT"
    assert field in raised.value.message
    assert str(raised.value).startswith("INVALID_ARGUMENT: ")
    # The same from a stream, raised while iterating.
    with pytest.raises(OctetError) as raised:
        list(client.stream(PROMPT, **sampling))
    assert raised.value.code == "INVALID_ARGUMENT"


def test_an_address_with_nothing_behind_it_is_unavailable():
    with Client(f"127.0.0.1:{harness.free_port()}", timeout=5) as c:
        with pytest.raises(OctetError) as raised:
            c.model_info()
        assert raised.value.code == "UNAVAILABLE"
        with pytest.raises(OctetError) as raised:
            c.generate(PROMPT, max_tokens=4)
        assert raised.value.code == "UNAVAILABLE"


def test_the_example_streams_a_completion_to_stdout(router, client):
    result = subprocess.run(
        [sys.executable, str(CLIENT_DIR / "examples" / "complete.py"), "--addr", router, "--max-tokens", "12",
         PROMPT], capture_output=True, text=True, timeout=60, env={**os.environ, "OCTET_API_KEY": ""})
    assert result.returncode == 0, result.stderr
    expected = client.generate(PROMPT, max_tokens=12, temperature=0).text
    assert expected.strip()
    assert result.stdout == expected + "\n"
    assert "completion tokens" in result.stderr


def test_the_example_reports_a_failed_call():
    result = subprocess.run(
        [sys.executable, str(CLIENT_DIR / "examples" / "complete.py"), "--addr", f"127.0.0.1:{harness.free_port()}",
         PROMPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr


# --- against a fake worker: what goes on the wire ---------------------------------------------------------------


@pytest.fixture
def fake_worker():
    worker = FakeWorker(harness.load_stubs(), "py").start()
    yield worker
    worker.stop()


def test_every_argument_reaches_the_request(fake_worker):
    with Client(fake_worker.address, timeout=30, api_key="sk-test") as c:
        completion = c.generate("a prompt", max_tokens=17, temperature=0.5, top_p=0.9, top_k=40, seed=1234,
                                stop=["\n\n", "END"], stop_token_ids=[7, 9], ignore_eos=True, logprobs=3,
                                priority=-2, request_id="req-1")
    assert completion.text == "t0 t1 t2 t3 t4 "
    assert completion.token_ids == [0, 1, 2, 3, 4]
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (2, 5)

    call = fake_worker.calls_of("Generate")[0]
    request, sampling = call.request, call.request.sampling
    assert (request.request_id, request.prompt, request.priority) == ("req-1", "a prompt", -2)
    assert (sampling.max_tokens, sampling.top_k, sampling.seed, sampling.logprobs) == (17, 40, 1234, 3)
    assert sampling.temperature == pytest.approx(0.5)
    assert sampling.top_p == pytest.approx(0.9)
    assert list(sampling.stop) == ["\n\n", "END"]
    assert list(sampling.stop_token_ids) == [7, 9]
    assert sampling.ignore_eos
    assert call.metadata["authorization"] == "Bearer sk-test"
    assert 0 < call.time_remaining <= 31


def test_unset_arguments_stay_unset(fake_worker):
    with Client(fake_worker.address) as c:
        c.generate([5, 6, 7])
    call = fake_worker.calls_of("Generate")[0]
    request, sampling = call.request, call.request.sampling
    assert request.WhichOneof("input") == "prompt_token_ids"
    assert list(request.prompt_token_ids.ids) == [5, 6, 7]
    # Optional fields left out, so the server's defaults apply; no key, no deadline.
    assert not sampling.HasField("max_tokens")
    assert not sampling.HasField("temperature")
    assert not sampling.HasField("top_p")
    assert "authorization" not in call.metadata
    assert call.time_remaining is None or call.time_remaining > 1e6  # grpcio reports no deadline as ~2^63 s


def test_zeros_are_sent_as_set_and_one_stop_string_as_a_list(fake_worker):
    with Client(fake_worker.address) as c:
        c.generate("x", temperature=0, max_tokens=1, stop="END")
    sampling = fake_worker.calls_of("Generate")[0].request.sampling
    assert sampling.HasField("temperature") and sampling.temperature == 0
    assert sampling.HasField("max_tokens") and sampling.max_tokens == 1
    assert list(sampling.stop) == ["END"]


def test_a_call_timeout_overrides_the_client_default(fake_worker):
    with Client(fake_worker.address, timeout=300) as c:
        c.tokenize("abc", timeout=7)
        assert c.tokenize("abc", add_special_tokens=True) == [1, 97, 98, 99]
    first, second = fake_worker.calls_of("Tokenize")
    # gRPC rounds deadlines up on the wire (by up to a second here).
    assert 0 < first.time_remaining <= 8
    assert 8 < second.time_remaining <= 301


def test_leaving_a_stream_early_cancels_the_call(fake_worker):
    release = threading.Event()
    fake_worker.num_chunks = 3
    fake_worker.hold_last_chunk = release
    try:
        with Client(fake_worker.address, timeout=30) as c:
            stream = c.stream("hi")
            first = next(stream)
            assert first.text == "t0 " and first.finish_reason is None
            stream.close()
            call = fake_worker.calls_of("Generate")[0]
            assert call.cancelled.wait(10), "closing the stream should cancel the call"
    finally:
        release.set()


def test_a_failure_mid_stream_raises_after_the_chunks_before_it(fake_worker):
    fake_worker.num_chunks = 4
    fake_worker.abort_with = (grpc.StatusCode.RESOURCE_EXHAUSTED, "KV cache full")
    fake_worker.abort_after = 2
    seen = []
    with Client(fake_worker.address, timeout=30) as c:
        with pytest.raises(OctetError) as raised:
            for chunk in c.stream("hi"):
                seen.append(chunk.text)
    assert seen == ["t0 ", "t1 "]
    assert (raised.value.code, raised.value.message) == ("RESOURCE_EXHAUSTED", "KV cache full")


# --- the package ---------------------------------------------------------------------------------------------


def test_the_package_installs_offline_with_stubs_generated_from_proto(tmp_path):
    # What `pip install client/python` does, without the network: build with the environment's grpcio-tools.
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-build-isolation",
         "--no-deps", "--no-index", "--target", str(target), str(CLIENT_DIR)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    stubs = target / "octet_client" / "_proto" / "octet" / "v1"
    for proto in (harness.PROTO_DIR / "octet" / "v1").glob("*.proto"):
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            assert (stubs / f"{proto.stem}{suffix}").is_file(), f"{proto.stem}{suffix} not generated"
    assert (target / "octet_client" / "py.typed").is_file()
    # The installed copy imports on its own (its stubs import each other inside the package).
    check = subprocess.run(
        [sys.executable, "-c", "import octet_client, octet_client._proto.octet.v1.worker_pb2_grpc as w; "
         "print(octet_client.__file__); print(w.WorkerControlStub.__name__)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)})
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines() == [str(target / "octet_client" / "__init__.py"), "WorkerControlStub"]
    # Its declared runtime requirements are bounded by the grpcio-tools that generated the stubs.
    metadata = next(target.glob("octet_client-*.dist-info")).joinpath("METADATA").read_text()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert sorted(r.split("<")[0].split(">")[0] for r in requires) == ["grpcio", "protobuf"]
