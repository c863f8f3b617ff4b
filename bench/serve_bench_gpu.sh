#!/usr/bin/env bash
# On the GPU machine: `octet bench` against one GPU worker serving synthetic models (real shapes, random FP8
# weights), two measurements in one call:
#   1. prefix caching on synthetic:qwen3-32b (attention-only): prompts of 2048 tokens whose first 1536 are shared,
#      64 generated, 64 requests at concurrency 8, with --enable-prefix-caching and without; /metrics scraped after
#      each run (prefix-cache queries and hits, preemptions).
#   2. serving throughput on synthetic:qwen3.5-27b: 1024-token prompts, 256 generated, 96 requests at concurrency 32.
# Writes the bench JSON and the scrapes under $OUT and prints a summary last.
#   OUT=DIR bench/serve_bench_gpu.sh BIN_DIR   (octet-worker, octet, lib/)
set -euo pipefail
bin=$(realpath "$1")
out=${OUT:-$(mktemp -d)}
logs=$(mktemp -d)  # worker logs stay out of $OUT (only a few files come back); failures print their tail
export LD_LIBRARY_PATH=$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tokenizer=models/qwen3_5-code-small/tokenizer.json
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

serve() {  # NAME PRESET FLAGS...: starts a worker on port 50081 (metrics 50082) and waits until it serves
  local name=$1 preset=$2
  shift 2
  "$bin/octet-worker" --model "synthetic:$preset" --tokenizer "$tokenizer" --host 127.0.0.1 --port 50081 \
    --metrics-port 50082 --device cuda "$@" >"$logs/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 3000); do grep -q "octet-worker: serving" "$logs/$name.log" && return 0; sleep 0.1; done
  echo "worker $name did not start:" >&2
  tail -20 "$logs/$name.log" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
scrape() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:50082/metrics').read().decode())"; }

for mode in on off; do
  flag=--enable-prefix-caching
  [ "$mode" = off ] && flag=--no-enable-prefix-caching
  serve "prefix_$mode" qwen3-32b --max-model-len 8192 "$flag"
  "$bin/octet" bench --addr 127.0.0.1:50081 --num-prompts 64 --input-len 2048 --shared-prefix-len 1536 \
    --output-len 64 --max-concurrency 8 --warmup 2 --seed 7 --json "$out/prefix_$mode.json"
  scrape | grep -E "^octet_(prefix_cache|preemptions|prompt_tokens|kv_cache_blocks)" >"$out/prefix_${mode}_metrics.txt"
  stop
done

serve serve_27b qwen3.5-27b --max-model-len 8192
"$bin/octet" bench --addr 127.0.0.1:50081 --num-prompts 96 --input-len 1024 --output-len 256 --max-concurrency 32 \
  --warmup 2 --seed 7 --json "$out/serve_27b.json"
grep -h "memory:\|captured" "$logs/serve_27b.log" || true
stop

python3 - "$out" <<'EOF'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
def load(name): return json.loads((out / name).read_text())
def metric(name, key):
    m = re.search(r"^" + re.escape(key) + r" (\S+)$", (out / name).read_text(), re.M)
    return float(m.group(1)) if m else 0.0
on, off, s = load("prefix_on.json"), load("prefix_off.json"), load("serve_27b.json")
q, h = metric("prefix_on_metrics.txt", "octet_prefix_cache_queries_total"), metric("prefix_on_metrics.txt", "octet_prefix_cache_hits_total")
summary = {
    "prefix_caching_qwen3_32b": {
        "hit_rate": h / max(q, 1),
        "mean_ttft_ms": {"on": on["mean_ttft_ms"], "off": off["mean_ttft_ms"]},
        "p99_ttft_ms": {"on": on["p99_ttft_ms"], "off": off["p99_ttft_ms"]},
        "request_throughput": {"on": on["request_throughput"], "off": off["request_throughput"]},
        "prompt_tokens_computed": {"on": metric("prefix_on_metrics.txt", "octet_prompt_tokens_total"),
                                   "off": metric("prefix_off_metrics.txt", "octet_prompt_tokens_total")},
    },
    "serve_qwen3_5_27b": {k: s[k] for k in ("completed", "duration", "request_throughput", "output_throughput",
                                             "total_token_throughput", "mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms",
                                             "p99_tpot_ms", "mean_itl_ms", "mean_e2el_ms") if k in s},
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
