"""End to end: two real octet-workers serving the bundled model behind a real octet-router, driven by a Python
gRPC client (another language's gRPC stack), with HF `tokenizers` as the reference for the streamed text."""

from __future__ import annotations

import concurrent.futures
import importlib
import math
import pathlib
import sys
import threading
import time

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
CONTEXT = 256


@pytest.fixture(scope="module")
def stubs():
    s = harness.load_stubs()
    s.worker_pb2 = importlib.import_module("octet.v1.worker_pb2")
    s.worker_pb2_grpc = importlib.import_module("octet.v1.worker_pb2_grpc")
    return s


@pytest.fixture(scope="module")
def cluster():
    workers = []
    for _ in range(2):
        workers.append(harness.start_process(
            [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1",
             "--port", "0", "--max_model_len", str(CONTEXT)],
            r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60))
    worker_addrs = [f"127.0.0.1:{w.ready_match.group(1)}" for w in workers]
    router = harness.start_process(
        [harness.binary("router/octet-router"), "--workers", ",".join(worker_addrs), "--port", "0"],
        r"listening on 127\.0\.0\.1:(\d+)", timeout=30)
    router_addr = f"127.0.0.1:{router.ready_match.group(1)}"
    yield {"router": router_addr, "workers": worker_addrs}
    router.stop()
    for w in workers:
        w.stop()


@pytest.fixture(scope="module")
def router_stub(cluster, stubs):
    channel = grpc.insecure_channel(cluster["router"])
    stub = stubs.generation_pb2_grpc.GenerationStub(channel)
    # The router needs one health round to see the workers.
    harness.wait_until(lambda: _try_model_info(stub, stubs), timeout=20, what="router sees a healthy worker")
    return stub


def _try_model_info(stub, stubs):
    try:
        return stub.GetModelInfo(stubs.generation_pb2.GetModelInfoRequest(), timeout=2)
    except grpc.RpcError:
        return None


@pytest.fixture(scope="module")
def hf_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))


def _generate(stub, stubs, prompt, **sampling):
    pb = stubs.generation_pb2
    request = pb.GenerateRequest(prompt=prompt, sampling=pb.SamplingParams(**sampling))
    return list(stub.Generate(request, timeout=60))


def test_streamed_completion_through_router(router_stub, stubs, hf_tokenizer):
    pb = stubs.generation_pb2
    responses = _generate(router_stub, stubs, "def fibonacci(n):", max_tokens=24, temperature=0, ignore_eos=True)
    assert len(responses) >= 2, "the answer should stream in several messages"
    assert all(r.finish_reason == pb.FINISH_REASON_UNSPECIFIED for r in responses[:-1])
    last = responses[-1]
    assert last.finish_reason == pb.FINISH_REASON_LENGTH
    ids = [t for r in responses for t in r.token_ids]
    assert len(ids) == 24
    assert last.usage.completion_tokens == 24
    assert last.usage.prompt_tokens == len(hf_tokenizer.encode("def fibonacci(n):").ids)
    # The streamed text is exactly what HF tokenizers decodes from the streamed ids (no special tokens emitted).
    text = "".join(r.text for r in responses)
    assert text == hf_tokenizer.decode(ids, skip_special_tokens=True)


def test_greedy_is_deterministic_across_workers(router_stub, stubs):
    # Round-robin sends consecutive calls to different workers: greedy output must not depend on which.
    outs = {tuple(t for r in _generate(router_stub, stubs, "import os\n", max_tokens=12, temperature=0,
                                       ignore_eos=True) for t in r.token_ids) for _ in range(4)}
    assert len(outs) == 1


def test_seeded_sampling_is_reproducible(router_stub, stubs):
    def run(seed):
        return [t for r in _generate(router_stub, stubs, "class Foo:", max_tokens=16, temperature=1.0, top_p=0.9,
                                     seed=seed, ignore_eos=True) for t in r.token_ids]
    assert run(1234) == run(1234)
    assert run(1234) != run(4321)


def test_sixteen_concurrent_requests_all_complete(router_stub, stubs):
    pb = stubs.generation_pb2

    def one(i):
        responses = _generate(router_stub, stubs, f"x = {i}\n", max_tokens=8 + i % 5, temperature=0.7, seed=i + 1,
                              ignore_eos=True)
        return i, responses[-1]

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(16)))
    for i, last in results:
        assert last.finish_reason == pb.FINISH_REASON_LENGTH
        assert last.usage.completion_tokens == 8 + i % 5


def test_logprobs(router_stub, stubs):
    responses = _generate(router_stub, stubs, "def f():", max_tokens=4, temperature=0, logprobs=3, ignore_eos=True)
    lps = [lp for r in responses for lp in r.logprobs]
    assert len(lps) == 4
    for lp in lps:
        assert len(lp.top) == 3
        assert lp.top[0].logprob >= lp.top[1].logprob >= lp.top[2].logprob
        # Greedy: the chosen token is the most likely one.
        assert lp.chosen.token_id == lp.top[0].token_id
        assert math.isclose(lp.chosen.logprob, lp.top[0].logprob, rel_tol=1e-6)
        assert lp.chosen.logprob <= 0


def test_stop_string_ends_generation(router_stub, stubs, hf_tokenizer):
    pb = stubs.generation_pb2
    full = "".join(r.text for r in _generate(router_stub, stubs, "def g(x):", max_tokens=40, temperature=0,
                                              ignore_eos=True))
    assert len(full) > 8
    stop = full[4:7]  # a string the greedy continuation is known to produce
    responses = _generate(router_stub, stubs, "def g(x):", max_tokens=40, temperature=0, ignore_eos=True,
                          stop=[stop])
    assert responses[-1].finish_reason == pb.FINISH_REASON_STOP
    assert "".join(r.text for r in responses) == full[:full.index(stop)]


def test_cancel_mid_stream_frees_kv_blocks(cluster, stubs):
    pb = stubs.generation_pb2
    # Straight to one worker so its load report is about this request alone.
    addr = cluster["workers"][0]
    channel = grpc.insecure_channel(addr)
    gen = stubs.generation_pb2_grpc.GenerationStub(channel)
    control = stubs.worker_pb2_grpc.WorkerControlStub(channel)
    load = lambda: control.GetLoad(stubs.worker_pb2.GetLoadRequest(), timeout=5)  # noqa: E731
    harness.wait_until(lambda: load().num_running == 0, timeout=10, what="worker idle")
    total = load().num_total_kv_blocks
    call = gen.Generate(pb.GenerateRequest(prompt="while True:", sampling=pb.SamplingParams(
        max_tokens=CONTEXT - 16, temperature=0, ignore_eos=True)), timeout=60)
    it = iter(call)
    next(it)
    next(it)
    busy = load()
    assert busy.num_running == 1 and busy.num_free_kv_blocks < total
    assert 0 < busy.kv_cache_usage <= 1
    assert busy.num_tokens_in_flight > 0 and busy.num_unfinished == 1 and not busy.draining
    assert busy.kv_capacity_tokens >= total * 16 and busy.kv_capacity_tokens % total == 0
    call.cancel()
    harness.wait_until(lambda: (lambda l: l.num_running == 0 and l.num_free_kv_blocks == total)(load()),
                       timeout=2, what="KV blocks freed after cancel")
    idle = load()
    assert idle.kv_cache_usage == 0 and idle.num_tokens_in_flight == 0 and idle.num_unfinished == 0


def test_cancel_through_router_reaches_worker(router_stub, cluster, stubs):
    pb = stubs.generation_pb2
    call = router_stub.Generate(pb.GenerateRequest(prompt="for i in range(10):", sampling=pb.SamplingParams(
        max_tokens=CONTEXT - 16, temperature=0, ignore_eos=True)), timeout=60)
    next(iter(call))
    call.cancel()
    for addr in cluster["workers"]:
        control = stubs.worker_pb2_grpc.WorkerControlStub(grpc.insecure_channel(addr))
        harness.wait_until(lambda: control.GetLoad(stubs.worker_pb2.GetLoadRequest(), timeout=5).num_running == 0,
                           timeout=3, what=f"{addr} idle after the router's call was cancelled")


BAD_REQUESTS = [
    (dict(prompt=""), "`prompt` must not be empty"),
    (dict(), "`prompt` or `prompt_token_ids` is required"),
    (dict(prompt_ids=[]), "`prompt_token_ids` must not be empty"),
    (dict(prompt="x", sampling=dict(max_tokens=0)), "`max_tokens` must be >= 1"),
    (dict(prompt="x", sampling=dict(max_tokens=-3)), "`max_tokens` must be >= 1"),
    (dict(prompt="x", sampling=dict(max_tokens=CONTEXT)), "`max_tokens`"),
    (dict(prompt="x", sampling=dict(temperature=-0.5)), "`temperature`"),
    (dict(prompt="x", sampling=dict(temperature=float("nan"))), "`temperature`"),
    (dict(prompt="x", sampling=dict(top_p=0.0)), "`top_p` must be in (0, 1]"),
    (dict(prompt="x", sampling=dict(top_p=1.5)), "`top_p` must be in (0, 1]"),
    (dict(prompt="x", sampling=dict(top_k=-1)), "`top_k` must be >= 0"),
    (dict(prompt_ids=[1, 2, 10 ** 7]), "`prompt_token_ids[2]`"),
    (dict(prompt_ids=[-1]), "`prompt_token_ids[0]`"),
    (dict(prompt_ids=[5] * CONTEXT), "shorter than the context"),
    (dict(prompt="x", sampling=dict(logprobs=21)), "`logprobs`"),
]


@pytest.mark.parametrize("fields,message", BAD_REQUESTS, ids=[m for _, m in BAD_REQUESTS])
def test_bad_request_is_invalid_argument(router_stub, stubs, fields, message):
    pb = stubs.generation_pb2
    request = pb.GenerateRequest()
    if "prompt" in fields:
        request.prompt = fields["prompt"]
    if "prompt_ids" in fields:
        request.prompt_token_ids.SetInParent()
        request.prompt_token_ids.ids.extend(fields["prompt_ids"])
    for k, v in fields.get("sampling", {}).items():
        setattr(request.sampling, k, v)
    with pytest.raises(grpc.RpcError) as err:
        list(router_stub.Generate(request, timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


def test_workers_still_serve_after_bad_requests(router_stub, stubs):
    responses = _generate(router_stub, stubs, "ok", max_tokens=2, temperature=0, ignore_eos=True)
    assert responses[-1].usage.completion_tokens == 2


def test_worker_health_and_model_info(cluster, stubs):
    for addr in cluster["workers"]:
        channel = grpc.insecure_channel(addr)
        health = stubs.health_pb2_grpc.HealthStub(channel)
        status = health.Check(stubs.health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == stubs.health_pb2.HealthCheckResponse.SERVING
        info = stubs.generation_pb2_grpc.GenerationStub(channel).GetModelInfo(
            stubs.generation_pb2.GetModelInfoRequest(), timeout=5)
        assert info.architecture == "qwen3_5_text"
        assert info.context_length == CONTEXT
        assert info.backend == "cpu"


def test_tokenize_matches_hf(router_stub, stubs, hf_tokenizer):
    text = "Hello, world! def f(x): return x**2  # 数字 🙂"
    got = router_stub.Tokenize(stubs.generation_pb2.TokenizeRequest(text=text), timeout=5)
    assert list(got.token_ids) == hf_tokenizer.encode(text).ids


def test_worker_not_serving_until_loaded(stubs, tmp_path):
    # A model folder whose load fails: the worker never reports SERVING and exits with a clear error.
    (tmp_path / "config.json").write_text('{"model_type": "qwen3"}')
    worker = harness.Process([harness.binary("worker/server/octet-worker"), "--model", str(tmp_path),
                              "--host", "127.0.0.1", "--port", "0"])
    assert worker.wait(timeout=30) != 0
    assert "cannot serve" in worker.output()


def test_octet_chat_on_cpu_workers_answers_as_generate_on_the_chatml_prompt(cluster, router_stub, stubs):
    """`octet chat` through the router: two turns, each reply equal to a greedy Generate of the ChatML prompt."""
    import subprocess

    pb = stubs.generation_pb2
    octet = harness.binary("client/octet")
    result = subprocess.run([octet, "chat", "--addr", cluster["router"], "--system", "You write Python.",
                             "--max-tokens", "12", "--temperature", "0"],
                            input="def add(a, b):\nnow subtract\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    prompt = ("<|im_start|>system\nYou write Python.<|im_end|>\n<|im_start|>user\ndef add(a, b):<|im_end|>\n"
              "<|im_start|>assistant\n")
    end_id = list(router_stub.Tokenize(pb.TokenizeRequest(text="<|im_end|>"), timeout=10).token_ids)
    sampling = pb.SamplingParams(max_tokens=12, temperature=0, stop=["<|im_end|>"],
                                 stop_token_ids=end_id if len(end_id) == 1 else [])
    text = "".join(r.text for r in router_stub.Generate(pb.GenerateRequest(prompt=prompt, sampling=sampling),
                                                        timeout=60))
    # The first reply, a newline, then the second turn's reply (replies may hold newlines of their own).
    assert text and result.stdout.startswith(text + "\n"), (result.stdout, text)
    assert len(result.stdout) > len(text) + 2
