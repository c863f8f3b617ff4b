"""The engine under pressure, on real CPU workers: preemption and prefix caching, each against a run without it.

Preemption: the bundled Qwen3.5 model (hybrid) with a KV pool too small for its concurrent requests, against the same
requests on a pool that holds them all: the greedy tokens must match, and the preemptions are counted from /metrics.
Prefix caching: a transformers-made Qwen3 checkpoint (attention-only, where the cache applies) serving requests that
share a long system prompt, with and without --enable-prefix-caching: identical tokens, prompt tokens computed, hit
rate and client-side time to first token.

    OCTET_BUILD_DIR=build/cpu .venv/bin/python bench/engine_pressure.py [--out bench/results/engine_pressure_cpu.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request

import grpc

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402

READY = r"octet-worker: serving \S+ on 127\.0\.0\.1:(\d+)"


def start_worker(model: pathlib.Path, *flags: str):
    metrics_port = harness.free_port()
    proc = harness.start_process(
        [harness.binary("worker/server/octet-worker"), "--model", str(model), "--host", "127.0.0.1", "--port", "0",
         "--metrics-port", str(metrics_port), *flags], READY, timeout=120)
    return proc, f"127.0.0.1:{proc.ready_match.group(1)}", f"http://127.0.0.1:{metrics_port}/metrics"


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def generate(stub, pb, prompt: str, max_tokens: int):
    """(tokens, seconds to the first token)."""
    start = time.monotonic()
    ttft = None
    tokens = []
    for r in stub.Generate(pb.GenerateRequest(prompt=prompt, sampling=pb.SamplingParams(
            max_tokens=max_tokens, temperature=0, ignore_eos=True)), timeout=600):
        if r.token_ids and ttft is None:
            ttft = time.monotonic() - start
        tokens.extend(r.token_ids)
    return tokens, ttft


def preemption(stubs) -> dict:
    pb = stubs.generation_pb2
    model = REPO / "models" / "qwen3_5-code-small"
    prompts = [f"def solve_{i}(values):\n    \"\"\"Return the {i}-th running total of values.\"\"\"\n" * 2
               for i in range(16)]
    max_tokens = 96
    runs = {}
    for name, flags in (("relaxed", []), ("tight", ["--num-kv-blocks", "40"])):
        proc, address, metrics = start_worker(model, "--max-model-len", "512", "--max-num-seqs", "16", *flags)
        try:
            stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
            start = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
                outputs = list(pool.map(lambda p: generate(stub, pb, p, max_tokens)[0], prompts))
            wall = time.monotonic() - start
            runs[name] = {"outputs": outputs, "seconds": wall,
                          "preemptions": metric(metrics, "octet_preemptions_total"),
                          "kv_blocks": metric(metrics, "octet_kv_cache_blocks")}
        finally:
            proc.stop()
    same = sum(1 for a, b in zip(runs["relaxed"]["outputs"], runs["tight"]["outputs"]) if a == b)
    return {
        "model": "qwen3_5-code-small (hybrid), CPU, greedy",
        "requests": len(prompts), "max_tokens": max_tokens,
        "relaxed": {k: v for k, v in runs["relaxed"].items() if k != "outputs"},
        "tight": {k: v for k, v in runs["tight"].items() if k != "outputs"},
        "identical_outputs": same,
    }


def prefix_caching(stubs) -> dict:
    pb = stubs.generation_pb2
    model = REPO / "tests" / "fixtures" / "hf" / "qwen3-tiny-gqa-f32"
    system = "You are a careful assistant who answers in one sentence and cites the rule it used. " * 12
    questions = [f"Question {i}: what does rule {i * 7 % 13} say?" for i in range(20)]
    runs = {}
    for name, flag in (("off", "--noenable-prefix-caching"), ("on", "--enable-prefix-caching")):
        proc, address, metrics = start_worker(model, "--max-model-len", "2048", flag)
        try:
            stub = stubs.generation_pb2_grpc.GenerationStub(grpc.insecure_channel(address))
            results = [generate(stub, pb, system + q, 16) for q in questions]
            runs[name] = {
                "outputs": [t for t, _ in results],
                "mean_ttft_ms": 1000 * statistics.mean(s for _, s in results[1:]),  # after the first (cold) one
                "prompt_tokens_computed": metric(metrics, "octet_prompt_tokens_total"),
                "prefix_query_tokens": metric(metrics, "octet_prefix_cache_queries_total"),
                "prefix_hit_tokens": metric(metrics, "octet_prefix_cache_hits_total"),
            }
        finally:
            proc.stop()
    on = runs["on"]
    return {
        "model": "qwen3-tiny-gqa-f32 (attention-only, transformers-made), CPU, greedy",
        "requests": len(questions),
        "identical_outputs": sum(1 for a, b in zip(runs["off"]["outputs"], on["outputs"]) if a == b),
        "off": {k: v for k, v in runs["off"].items() if k != "outputs"},
        "on": {k: v for k, v in on.items() if k != "outputs"},
        "hit_rate": on["prefix_hit_tokens"] / max(on["prefix_query_tokens"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "engine_pressure_cpu.json"))
    args = parser.parse_args()
    stubs = harness.load_stubs()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    result = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit.strip(),
        "preemption": preemption(stubs),
        "prefix_caching": prefix_caching(stubs),
    }
    p, c = result["preemption"], result["prefix_caching"]
    print(f"preemption: {p['requests']} requests, tight pool {p['tight']['kv_blocks']:.0f} blocks: "
          f"{p['tight']['preemptions']:.0f} preemptions, {p['identical_outputs']}/{p['requests']} outputs identical "
          f"to the relaxed pool; {p['tight']['seconds']:.2f} s vs {p['relaxed']['seconds']:.2f} s")
    print(f"prefix caching: {c['requests']} requests, hit rate {c['hit_rate']:.1%}, prompt tokens computed "
          f"{c['on']['prompt_tokens_computed']:.0f} vs {c['off']['prompt_tokens_computed']:.0f}, mean TTFT "
          f"{c['on']['mean_ttft_ms']:.1f} ms vs {c['off']['mean_ttft_ms']:.1f} ms, "
          f"{c['identical_outputs']}/{c['requests']} outputs identical")
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
