"""octet-router's OpenAI-compatible HTTP front end end to end: a real octet-worker serving the bundled CPU model
behind a real `octet-router --http-port 0`, driven by the official `openai` Python client (and by raw HTTP where
the client hides the status line or the body)."""

from __future__ import annotations

import http.client
import json
import pathlib
import re
import sys
import urllib.error
import urllib.request

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
import harness  # noqa: E402

openai = pytest.importorskip("openai")

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
MODEL = "qwen3_5-code-small"
CONTEXT = 512
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


@pytest.fixture(scope="module")
def cluster():
    metrics_port = harness.free_port()
    worker = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1", "--port",
         "0", "--max-model-len", str(CONTEXT), "--metrics-port", str(metrics_port)],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=90)
    router = harness.start_process(
        [harness.binary("router/octet-router"), "--workers", f"127.0.0.1:{worker.ready_match.group(1)}",
         "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--health-check-interval", "200ms"],
        r"octet-router http listening on 127\.0\.0\.1:(\d+)", timeout=30)
    grpc_port = int(re.search(r"octet-router listening on 127\.0\.0\.1:(\d+)", router.output()).group(1))
    base = f"http://127.0.0.1:{router.ready_match.group(1)}"
    harness.wait_until(lambda: _status(base, "/health") == 200, timeout=20, what="router /health is 200")
    yield {"base": base, "grpc": f"127.0.0.1:{grpc_port}", "metrics": f"http://127.0.0.1:{metrics_port}/metrics",
           "router": router}
    assert router.stop(timeout=20) == 0, router.output()
    worker.stop()


@pytest.fixture(scope="module")
def client(cluster):
    return openai.OpenAI(base_url=cluster["base"] + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def router_stub(cluster, stubs):
    channel = grpc.insecure_channel(cluster["grpc"])
    yield stubs.generation_pb2_grpc.GenerationStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def hf_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))


def _status(base: str, path: str) -> int:
    try:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _request(base: str, method: str, path: str, body: bytes | str | None = None,
             headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One raw HTTP request: (status, headers with lower-case names, body)."""
    if isinstance(body, str):
        body = body.encode()
    request = urllib.request.Request(base + path, data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def _error(body: bytes) -> dict:
    """The OpenAI error object of a body, checked for its shape."""
    parsed = json.loads(body)
    assert set(parsed) == {"error"}, parsed
    error = parsed["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def _grpc_text(router_stub, stubs, prompt: str, **sampling) -> tuple[str, object]:
    """What octet.v1.Generation answers for the same request: (text, last message)."""
    pb = stubs.generation_pb2
    responses = list(router_stub.Generate(pb.GenerateRequest(prompt=prompt, sampling=pb.SamplingParams(**sampling)),
                                          timeout=TIMEOUT))
    return "".join(r.text for r in responses), responses[-1]


def _chatml(messages) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + \
        "<|im_start|>assistant\n"


# --- models and health -------------------------------------------------------------------------------------------


def test_models_lists_the_served_model(client, cluster):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].object == "model"
    assert models.data[0].owned_by == "octet"
    assert client.models.retrieve(MODEL).id == MODEL
    status, _, body = _request(cluster["base"], "GET", "/v1/models")
    assert status == 200
    assert json.loads(body)["data"][0]["max_model_len"] == CONTEXT


def test_health(cluster):
    status, headers, body = _request(cluster["base"], "GET", "/health")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"status": "serving"}


# --- completions ---------------------------------------------------------------------------------------------------


def test_completion(client, router_stub, stubs, hf_tokenizer):
    prompt = "def fibonacci(n):"
    completion = client.completions.create(model=MODEL, prompt=prompt, max_tokens=12, temperature=0,
                                           extra_body={"ignore_eos": True})
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    assert completion.model == MODEL
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "length"
    assert completion.usage.prompt_tokens == len(hf_tokenizer.encode(prompt).ids)
    assert completion.usage.completion_tokens == 12
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 12
    # Greedy: exactly the text the gRPC API gives for the same request.
    expected, _ = _grpc_text(router_stub, stubs, prompt, max_tokens=12, temperature=0, ignore_eos=True)
    assert choice.text == expected and expected


def test_completion_defaults_to_sixteen_tokens(client):
    completion = client.completions.create(model=MODEL, prompt="import os\n", temperature=0,
                                           extra_body={"ignore_eos": True})
    assert completion.usage.completion_tokens == 16
    assert completion.choices[0].finish_reason == "length"


def test_completion_stop_string(client, router_stub, stubs):
    full, _ = _grpc_text(router_stub, stubs, "def g(x):", max_tokens=40, temperature=0, ignore_eos=True)
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert stop.strip(), f"pick a visible stop string from {full!r}"
    completion = client.completions.create(model=MODEL, prompt="def g(x):", max_tokens=40, temperature=0,
                                           stop=[stop], extra_body={"ignore_eos": True})
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].text == full[:full.index(stop)]


def test_streamed_completion(client, router_stub, stubs):
    stream = client.completions.create(model=MODEL, prompt="class Stack:", max_tokens=20, temperature=0,
                                       stream=True, stream_options={"include_usage": True},
                                       extra_body={"ignore_eos": True})
    chunks = list(stream)
    text_chunks = [c for c in chunks if c.choices]
    assert len(text_chunks) >= 2, "the text should arrive in several events"
    assert all(c.object == "text_completion" and c.id == chunks[0].id for c in chunks)
    assert [c.choices[0].finish_reason for c in text_chunks[:-1]] == [None] * (len(text_chunks) - 1)
    assert text_chunks[-1].choices[0].finish_reason == "length"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage.completion_tokens == 20
    expected, _ = _grpc_text(router_stub, stubs, "class Stack:", max_tokens=20, temperature=0, ignore_eos=True)
    assert "".join(c.choices[0].text for c in text_chunks) == expected


def test_stream_is_server_sent_events(cluster):
    status, headers, body = _request(cluster["base"], "POST", "/v1/completions",
                                     json.dumps({"prompt": "x = ", "max_tokens": 4, "stream": True}))
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    events = body.decode().split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for event in events[:-2]:
        assert event.startswith("data: {"), event
        json.loads(event[len("data: "):])


# --- chat completions ----------------------------------------------------------------------------------------------

CHAT = [{"role": "system", "content": "You write Python."},
        {"role": "user", "content": "Write a function that adds two numbers."}]


def test_chat_completion(client, router_stub, stubs, hf_tokenizer):
    completion = client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=10, temperature=0)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    # The prompt is the ChatML rendering, its markers each one special token.
    prompt = _chatml(CHAT)
    assert completion.usage.prompt_tokens == len(hf_tokenizer.encode(prompt).ids)
    assert hf_tokenizer.encode("<|im_end|>").ids == [hf_tokenizer.token_to_id("<|im_end|>")]
    expected, last = _grpc_text(router_stub, stubs, prompt, max_tokens=10, temperature=0, stop=["<|im_end|>"],
                                stop_token_ids=[hf_tokenizer.token_to_id("<|im_end|>")])
    assert choice.message.content == expected
    assert completion.usage.completion_tokens == last.usage.completion_tokens


def test_chat_content_parts_and_max_completion_tokens(client):
    completion = client.chat.completions.create(
        model=MODEL, max_completion_tokens=3, temperature=0,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]}],
        extra_body={"ignore_eos": True})
    assert completion.usage.completion_tokens == 3
    assert completion.choices[0].finish_reason == "length"


def test_streamed_chat(client):
    whole = client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=12, temperature=0)
    stream = client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks) == whole.choices[0].message.content
    assert content_chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


# --- errors --------------------------------------------------------------------------------------------------------


def test_bad_json_is_400(cluster):
    status, headers, body = _request(cluster["base"], "POST", "/v1/completions", '{"prompt": "x", ')
    assert status == 400
    assert headers["content-type"] == "application/json"
    error = _error(body)
    assert error["type"] == "invalid_request_error"
    assert "not valid JSON" in error["message"]
    status, _, body = _request(cluster["base"], "POST", "/v1/chat/completions", '{"messages": "hi"}')
    assert status == 400
    assert _error(body)["param"] == "messages"


def test_unknown_model_is_404(client, cluster):
    with pytest.raises(openai.NotFoundError) as info:
        client.completions.create(model="gpt-4", prompt="x", max_tokens=2)
    assert info.value.status_code == 404
    status, _, body = _request(cluster["base"], "POST", "/v1/chat/completions",
                               json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}))
    assert status == 404
    error = _error(body)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "gpt-4" in error["message"]


def test_max_tokens_beyond_the_context_is_400(client, cluster):
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt="x", max_tokens=CONTEXT + 1)
    with pytest.raises(openai.BadRequestError):  # a stream that fails before its first token is a plain 400 too
        list(client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=CONTEXT, stream=True))
    status, _, body = _request(cluster["base"], "POST", "/v1/completions",
                               json.dumps({"prompt": "x", "max_tokens": CONTEXT + 1}))
    assert status == 400
    error = _error(body)
    assert error["param"] == "max_tokens"
    assert f"exceeds the context of {CONTEXT} tokens" in error["message"]


def test_n_above_one_is_400(client, cluster):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=CHAT, n=2)
    status, _, body = _request(cluster["base"], "POST", "/v1/completions", json.dumps({"prompt": "x", "n": 2}))
    assert status == 400
    error = _error(body)
    assert error["param"] == "n"
    assert "n must be 1" in error["message"]


def test_unsupported_penalty_is_400_naming_the_field(cluster):
    status, _, body = _request(cluster["base"], "POST", "/v1/completions",
                               json.dumps({"prompt": "x", "frequency_penalty": 0.5}))
    assert status == 400
    assert _error(body)["param"] == "frequency_penalty"


def test_unknown_path_and_wrong_method(cluster):
    status, _, body = _request(cluster["base"], "GET", "/v1/embeddings")
    assert status == 404
    assert _error(body)["code"] == "not_found"
    status, headers, body = _request(cluster["base"], "GET", "/v1/completions")
    assert status == 405
    assert headers["allow"] == "POST"
    assert _error(body)["code"] == "method_not_allowed"


def test_body_over_the_limit_is_413(cluster):
    big = json.dumps({"prompt": "x" * (5 << 20)})
    status, _, body = _request(cluster["base"], "POST", "/v1/completions", big)
    assert status == 413
    assert _error(body)["code"] == "request_too_large"


# --- cancellation --------------------------------------------------------------------------------------------------


def _cancelled_requests(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    match = re.search(r'^octet_requests_total\{[^}]*finish_reason="cancelled"[^}]*\} (\S+)$', text, re.M)
    assert match, "no cancelled-requests counter in the worker's metrics"
    return float(match.group(1))


def test_client_disconnect_cancels_the_generation(cluster):
    before = _cancelled_requests(cluster["metrics"])
    host, port = cluster["base"][len("http://"):].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    body = json.dumps({"prompt": "def main():", "max_tokens": CONTEXT - 16, "stream": True, "ignore_eos": True})
    connection.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"data: {")  # generation is under way
    response.close()  # the response holds the socket too
    connection.close()
    # Had the call run on, the worker would count it as finished by "length", never as "cancelled".
    harness.wait_until(lambda: _cancelled_requests(cluster["metrics"]) > before, timeout=20,
                       what="the worker counts the request as cancelled")
