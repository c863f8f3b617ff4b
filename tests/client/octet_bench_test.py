"""`octet bench` end to end: against a real octet-worker serving the bundled model, and against a scripted
in-process grpcio server that records what the benchmark sends and fails on cue."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

import harness  # noqa: E402

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
CONTEXT = 512
BENCH_TIMEOUT = 180.0


def octet_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([harness.binary("client/octet"), "bench", *args], capture_output=True, text=True,
                          timeout=BENCH_TIMEOUT)


def load_json(path: pathlib.Path) -> dict:
    with open(path) as f:
        return json.load(f)


def assert_ordered_percentiles(report: dict) -> None:
    for metric in ("ttft", "tpot", "itl", "e2el"):
        median, p90, p99 = (report[f"{s}_{metric}_ms"] for s in ("median", "p90", "p99"))
        assert 0 < median <= p90 <= p99, metric


# --- against a real worker ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker():
    process = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1",
         "--port", "0", "--max_model_len", str(CONTEXT)],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60)
    yield f"127.0.0.1:{process.ready_match.group(1)}"
    process.stop()


def test_every_request_completes_and_the_metrics_agree(worker, tmp_path):
    out = tmp_path / "out.json"
    result = octet_bench("--addr", worker, "--num-prompts", "20", "--input-len", "32", "--output-len", "16",
                         "--max-concurrency", "4", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "Successful requests:                     20\n" in result.stdout
    assert "Failed requests:                         0\n" in result.stdout
    report = load_json(out)

    assert (report["num_prompts"], report["input_len"], report["output_len"]) == (20, 32, 16)
    assert (report["max_concurrency"], report["request_rate"], report["temperature"]) == (4, "inf", 0.0)
    assert (report["completed"], report["failed"], report["failed_by_code"]) == (20, 0, {})
    assert report["errors"] == [""] * 20
    assert report["input_lens"] == [32] * 20
    assert report["output_lens"] == [16] * 20
    assert report["total_input_tokens"] == 20 * 32
    assert report["total_output_tokens"] == 20 * 16

    duration = report["duration"]
    assert duration >= max(report["e2els_ms"]) / 1000
    assert report["output_throughput"] == pytest.approx(report["total_output_tokens"] / duration, rel=1e-9)
    assert report["request_throughput"] == pytest.approx(20 / duration, rel=1e-9)
    assert report["total_token_throughput"] == pytest.approx(20 * (32 + 16) / duration, rel=1e-9)

    tpots = []
    for ttft, e2e, itls in zip(report["ttfts_ms"], report["e2els_ms"], report["itls_ms"]):
        assert 0 < ttft <= e2e
        assert 1 <= len(itls) <= 15  # one gap a message after the first; a message may carry several tokens
        assert ttft + sum(itls) <= e2e
        tpots.append((e2e - ttft) / 15)
    assert report["mean_tpot_ms"] == pytest.approx(sum(tpots) / len(tpots), rel=1e-9)
    assert report["mean_ttft_ms"] == pytest.approx(sum(report["ttfts_ms"]) / 20, rel=1e-9)
    assert_ordered_percentiles(report)


def test_shared_prefix_and_random_lengths(worker, tmp_path):
    out = tmp_path / "out.json"
    result = octet_bench("--addr", worker, "--num-prompts", "12", "--input_len", "40", "--output_len", "8",
                         "--shared-prefix-len", "24", "--random-range-ratio", "0.25", "--request-rate", "40",
                         "--seed", "7", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "Shared prefix tokens:                    24\n" in result.stdout
    report = load_json(out)
    assert (report["completed"], report["shared_prefix_len"], report["request_rate"]) == (12, 24, 40.0)
    assert all(30 <= n <= 50 for n in report["input_lens"])
    assert all(6 <= n <= 10 for n in report["output_lens"])
    assert len(set(report["input_lens"])) > 1
    assert report["total_input_tokens"] == sum(report["input_lens"])
    assert report["total_output_tokens"] == sum(report["output_lens"])
    assert all(0 < t <= e for t, e in zip(report["ttfts_ms"], report["e2els_ms"]))


def test_a_workload_longer_than_the_context_is_a_usage_error(worker, tmp_path):
    out = tmp_path / "out.json"
    result = octet_bench("--addr", worker, "--input-len", "600", "--output-len", "16", "--json", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "octet: --input-len 600 plus --output-len 16 tokens does not fit the model's context of 512 tokens\n")
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (("--max-concurrency", "-1"), "octet: --max-concurrency must be >= 0 (0: no cap), got -1"),
    (("--request-rate", "0"), "octet: --request-rate must be > 0 (inf: all at once), got 0"),
    (("--random-range-ratio", "1"), "octet: --random-range-ratio must be in [0, 1), got 1"),
    (("--input-len", "8", "--shared-prefix-len", "9"),
     "octet: --shared-prefix-len 9 is longer than the shortest prompt (8 tokens)"),
    (("extra",), "octet: bench takes no arguments"),
])
def test_bad_flags_exit_2_before_connecting(args, message):
    result = octet_bench("--addr", f"127.0.0.1:{harness.free_port()}", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert "usage: octet <command>" in result.stderr


# --- against a scripted server ------------------------------------------------------------------------------


class ScriptedServer:
    """octet.v1.Generation answering GetModelInfo (vocabulary 1000, context 256) and streaming max_tokens token
    ids, tokens_per_message at a time, `delay` seconds apart. Calls whose 0-based arrival index is in
    fail_calls abort with fail_with; usage_extra is added to the completion_tokens it reports."""

    VOCAB = 1000

    def __init__(self, stubs):
        self.pb = stubs.generation_pb2
        self.tokens_per_message = 1
        self.delay = 0.0
        self.fail_calls: set[int] = set()
        self.fail_with = (grpc.StatusCode.RESOURCE_EXHAUSTED, "KV cache full")
        self.usage_extra = 0
        self.requests = []
        self.arrivals = []  # time.monotonic() of each Generate
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=[("grpc.so_reuseport", 0)])
        stubs.generation_pb2_grpc.add_GenerationServicer_to_server(self, self._server)
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def stop(self):
        self._server.stop(grace=None).wait(timeout=5)

    def Tokenize(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the benchmark sends token ids")

    def Chat(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the benchmark sends Generate calls")

    def GetModelInfo(self, request, context):
        return self.pb.ModelInfo(model_name="scripted", context_length=256, vocab_size=self.VOCAB, backend="cpu")

    def Generate(self, request, context):
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
            self.arrivals.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if index in self.fail_calls:
                context.abort(*self.fail_with)
            n = request.sampling.max_tokens
            for start in range(0, n, self.tokens_per_message):
                time.sleep(self.delay)
                ids = list(range(start, min(n, start + self.tokens_per_message)))
                yield self.pb.GenerateResponse(text="x" * len(ids), token_ids=ids)
            yield self.pb.GenerateResponse(
                finish_reason=self.pb.FINISH_REASON_LENGTH,
                usage=self.pb.Usage(prompt_tokens=len(request.prompt_token_ids.ids),
                                    completion_tokens=n + self.usage_extra))
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def scripted():
    server = ScriptedServer(harness.load_stubs())
    yield server
    server.stop()


def test_requests_carry_the_workload(scripted):
    result = octet_bench("--addr", scripted.address, "--num-prompts", "10", "--input-len", "50", "--output-len",
                         "7", "--shared-prefix-len", "20", "--warmup", "2", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert len(scripted.requests) == 12  # 2 warm-up requests first
    prefix = list(scripted.requests[0].prompt_token_ids.ids[:20])
    tails = set()
    for request in scripted.requests:
        ids = list(request.prompt_token_ids.ids)
        assert len(ids) == 50
        assert ids[:20] == prefix
        assert all(0 <= i < ScriptedServer.VOCAB * 0.9 for i in ids)
        tails.add(tuple(ids[20:]))
        sampling = request.sampling
        assert (sampling.max_tokens, sampling.ignore_eos, sampling.temperature) == (7, True, 0.0)
        assert sampling.HasField("temperature")
    assert len(tails) == 12


def test_temperature_flag_reaches_the_requests(scripted):
    result = octet_bench("--addr", scripted.address, "--num-prompts", "2", "--input-len", "4", "--output-len", "2",
                         "--temperature=0.5")
    assert result.returncode == 0, result.stderr
    assert [r.sampling.temperature for r in scripted.requests] == [0.5] * 3


def test_max_concurrency_caps_the_requests_in_flight(scripted):
    scripted.delay = 0.02
    result = octet_bench("--addr", scripted.address, "--num-prompts", "12", "--input-len", "4", "--output-len", "5",
                         "--max-concurrency", "3", "--warmup", "0")
    assert result.returncode == 0, result.stderr
    assert scripted.max_in_flight == 3


def test_poisson_arrivals_spread_the_requests(scripted, tmp_path):
    out = tmp_path / "out.json"
    result = octet_bench("--addr", scripted.address, "--num-prompts", "20", "--input-len", "4", "--output-len", "2",
                         "--request-rate", "20", "--warmup", "0", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = load_json(out)
    # 19 gaps of mean 50 ms: about 0.95 s (sd 0.22 s); all at once they would arrive within a few ms.
    assert scripted.arrivals[-1] - scripted.arrivals[0] > 0.3
    assert report["duration"] > scripted.arrivals[-1] - scripted.arrivals[0]
    assert report["request_rate"] == 20.0


def test_messages_with_several_tokens_count_one_gap_each(scripted, tmp_path):
    out = tmp_path / "out.json"
    scripted.tokens_per_message = 3
    scripted.delay = 0.01
    result = octet_bench("--addr", scripted.address, "--num-prompts", "4", "--input-len", "4", "--output-len", "10",
                         "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = load_json(out)
    assert report["output_lens"] == [10] * 4
    assert [len(itls) for itls in report["itls_ms"]] == [3] * 4  # messages of 3, 3, 3, 1 tokens
    tpots = [(e - t) / 9 for t, e in zip(report["ttfts_ms"], report["e2els_ms"])]
    assert report["mean_tpot_ms"] == pytest.approx(sum(tpots) / 4, rel=1e-9)


def test_failed_requests_are_counted_by_code_and_exit_1(scripted, tmp_path):
    out = tmp_path / "out.json"
    scripted.fail_calls = {1, 4, 7}  # call 0 is the warm-up
    result = octet_bench("--addr", scripted.address, "--num-prompts", "9", "--input-len", "4", "--output-len", "3",
                         "--max-concurrency", "1", "--json", str(out))
    assert result.returncode == 1
    assert "Failed requests:                         3\n" in result.stdout
    assert "  RESOURCE_EXHAUSTED:                    3\n" in result.stdout
    assert "octet: 3 requests failed: RESOURCE_EXHAUSTED: KV cache full\n" in result.stderr
    report = load_json(out)
    assert (report["completed"], report["failed"]) == (6, 3)
    assert report["failed_by_code"] == {"RESOURCE_EXHAUSTED": 3}
    assert report["errors"][0] == "RESOURCE_EXHAUSTED: KV cache full"
    assert report["total_output_tokens"] == 6 * 3
    assert report["output_throughput"] == pytest.approx(18 / report["duration"], rel=1e-9)


def test_usage_that_disagrees_with_the_stream_fails_the_warm_up(scripted):
    scripted.usage_extra = 1
    result = octet_bench("--addr", scripted.address, "--num-prompts", "3", "--input-len", "4", "--output-len", "4")
    assert result.returncode == 1
    assert result.stderr == ("octet: INTERNAL: warm-up request failed: usage.completion_tokens = 5 but 4 token ids "
                             "were streamed\n")
    assert result.stdout == ""
