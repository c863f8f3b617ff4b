"""Every FP8 recipe and KV cache dtype serves the bundled model through a real router and worker."""

from __future__ import annotations

import pathlib
import sys

import grpc
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402

MODEL_DIR = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
SETTINGS = [("official", "fp8"), ("mlp-only", "fp8"), ("all", "fp8"), ("none", "bf16"), ("official", "bf16"),
            ("none", "fp32")]


@pytest.fixture(scope="module")
def stubs():
    return harness.load_stubs()


@pytest.mark.parametrize("recipe,kv", SETTINGS, ids=[f"{r}-{k}" for r, k in SETTINGS])
def test_recipe_serves_through_router(stubs, recipe, kv):
    pb = stubs.generation_pb2
    worker = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR), "--host", "127.0.0.1", "--port", "0",
         "--max-model-len", "256", "--fp8-recipe", recipe, "--kv-cache-dtype", kv],
        r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)", timeout=60)
    router = harness.start_process(
        [harness.binary("router/octet-router"), "--workers", f"127.0.0.1:{worker.ready_match.group(1)}", "--port", "0"],
        r"listening on 127\.0\.0\.1:(\d+)", timeout=30)
    try:
        stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(f"127.0.0.1:{router.ready_match.group(1)}"))
        info = harness.wait_until(lambda: _model_info(stub, pb), timeout=20, what="router sees the worker")
        assert info.kv_cache_dtype == {"fp8": "fp8_e4m3", "bf16": "bf16", "fp32": "fp32"}[kv]
        if recipe == "none":
            assert "fp8" not in info.weight_dtype
        else:
            assert f"recipe {recipe}" in info.weight_dtype
        # The memory plan: the bundled model is hybrid (recurrent state), and the KV pool's bytes hold about twice
        # the tokens with FP8 KV as with bf16 KV (per head of 64: 64 one-byte values + a 4-byte scale vs 128 bytes).
        m = info.memory
        assert m.weights_bytes > 0 and m.kv_cache_bytes > 0 and m.state_bytes > 0 and m.workspace_bytes > 0
        assert m.device_total_bytes == 0  # CPU backend
        assert m.kv_cache_tokens > 0 and m.kv_cache_tokens % 16 == 0
        assert {"fp8": m.kv_cache_tokens_fp8, "bf16": m.kv_cache_tokens_bf16}.get(kv, m.kv_cache_tokens) == \
            m.kv_cache_tokens
        assert 1.7 < m.kv_cache_tokens_fp8 / m.kv_cache_tokens_bf16 < 2.0
        responses = list(stub.Generate(pb.GenerateRequest(prompt="def add(a, b):", sampling=pb.SamplingParams(
            max_tokens=16, temperature=0, ignore_eos=True)), timeout=60))
        assert responses[-1].finish_reason == pb.FINISH_REASON_LENGTH
        assert responses[-1].usage.completion_tokens == 16
        assert "".join(r.text for r in responses).strip()
    finally:
        router.stop()
        worker.stop()


def _model_info(stub, pb):
    try:
        return stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=2)
    except grpc.RpcError:
        return None


def test_unknown_recipe_is_refused_at_start():
    worker = harness.Process([harness.binary("worker/server/octet-worker"), "--model", str(MODEL_DIR),
                              "--fp8-recipe", "fp4", "--port", "0"])
    assert worker.wait(timeout=30) == 2
    assert "unknown FP8 recipe 'fp4'" in worker.output()
