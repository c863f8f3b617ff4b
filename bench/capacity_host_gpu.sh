#!/usr/bin/env bash
# On the GPU machine, the performance issue's last two figures:
#   1. Capacity: decode at the largest number of 8,192-token sequences that fit beside the weights and recurrent
#      state (bench/NOTES.md section 4: 236 with FP8 KV, 146 with bf16 KV on an H200), with each KV dtype; FP8 also
#      at 146 for the same-concurrency comparison.
#   2. Host share: the engine thread's own time per step against the model runner's, from a serving run's
#      /metrics (octet_engine_host_seconds_total, octet_engine_step_seconds_sum).
# Writes $OUT/capacity_fp8.json, $OUT/capacity_bf16.json (model_bench) and $OUT/host_share.json.
#   OUT=DIR bench/capacity_host_gpu.sh BIN_DIR   (model_bench, octet-worker, octet, lib/)
set -euo pipefail
bin=$(realpath "$1")
out=${OUT:-$(mktemp -d)}
export LD_LIBRARY_PATH=$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true' EXIT

run_bench() {  # NAME DTYPE BATCHES
  mkdir -p "$tmp/$1"
  "$bin/model_bench" --kv-cache-dtype "$2" --batches "$3" --context 8192 --prefill 1024 --iters 5 --out "$tmp/$1" \
    2>&1 | grep -v "^I1" | grep -E "batch|copy|model" || true
  cp "$tmp/$1/model_bench.json" "$out/capacity_$1.json"
}
run_bench fp8 fp8 146,236
run_bench bf16 bf16 146

"$bin/octet-worker" --model synthetic:qwen3.5-27b --tokenizer models/qwen3_5-code-small/tokenizer.json \
  --host 127.0.0.1 --port 50101 --metrics-port 50102 --device cuda --max-num-seqs 64 --max-model-len 2048 \
  >"$tmp/worker.log" 2>&1 &
pid=$!
for _ in $(seq 3000); do grep -q "octet-worker: serving" "$tmp/worker.log" && break; sleep 0.1; done
"$bin/octet" bench --addr 127.0.0.1:50101 --num-prompts 64 --max-concurrency 64 --input-len 1000 --output-len 256 \
  --warmup 1 --seed 3 --json "$tmp/bench.json" | grep -E "Successful|Output token throughput|Mean ITL"
python3 - "$tmp/bench.json" "$out/host_share.json" <<'PY'
import json, re, sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:50102/metrics").read().decode()
def metric(name):
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
    return float(m.group(1))
host, run, steps = metric("octet_engine_host_seconds_total"), metric("octet_engine_step_seconds_sum"), \
    metric("octet_engine_steps_total")
bench = json.load(open(sys.argv[1]))
result = {"steps": steps, "host_seconds": host, "model_runner_seconds": run, "host_share": host / (host + run),
          "host_ms_per_step": 1000 * host / steps, "runner_ms_per_step": 1000 * run / steps,
          "bench": {k: v for k, v in bench.items() if not isinstance(v, list)}}
json.dump(result, open(sys.argv[2], "w"), indent=2)
print(json.dumps({k: v for k, v in result.items() if k != "bench"}, indent=2))
PY
