#!/usr/bin/env bash
# On the GPU machine: the performance issue's measurements in one call, beside the limits measured on the same card.
#   1. model_bench: device copy bandwidth, cuBLASLt FP8 GEMM throughput, decode step time at batch 1..256 (CUDA
#      graphs) against its bandwidth limit, prefill tokens/s.
#   2. octet-worker (synthetic:qwen3.5-27b, official FP8 recipe, FP8 KV) behind octet-router, driven by `octet bench`
#      with 1000-token prompts and 1000 generated tokens: concurrency 1 (single stream), 16, 64, 128 and 256.
#   3. Router overhead: the same 16-way load straight to the worker and through the router (256 generated tokens).
# Writes $OUT/model_bench.json and $OUT/sweep.json (the bench results without per-request arrays, and the worker's
# memory report); bench/perf_report.py turns them into the table and chart.
#   OUT=DIR bench/perf_sweep_gpu.sh BIN_DIR   (model_bench, octet-worker, octet-router, octet, lib/)
set -euo pipefail
bin=$(realpath "$1")
out=${OUT:-$(mktemp -d)}
export LD_LIBRARY_PATH=$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
logs=$(mktemp -d)
runs=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_for() {  # LOG PATTERN
  for _ in $(seq 3000); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  echo "timed out waiting for '$2':" >&2
  tail -20 "$1" >&2
  exit 1
}

"$bin/model_bench" --batches 1,16,64,128,256 --context 1500 --prefill 1024 --iters 10 --out "$out" >"$logs/model_bench.log" 2>&1
grep -v "^I1" "$logs/model_bench.log" | tail -12

"$bin/octet-worker" --model synthetic:qwen3.5-27b --tokenizer models/qwen3_5-code-small/tokenizer.json \
  --host 127.0.0.1 --port 50091 --metrics-port 50092 --device cuda --max-num-seqs 256 --max-model-len 4096 \
  >"$logs/worker.log" 2>&1 &
pids+=($!)
wait_for "$logs/worker.log" "octet-worker: serving"
"$bin/octet-router" --workers 127.0.0.1:50091 --host 127.0.0.1 --port 50090 >"$logs/router.log" 2>&1 &
pids+=($!)
wait_for "$logs/router.log" "octet-router listening"
sleep 1
grep -h "memory:\|captured" "$logs/worker.log" || true
"$bin/octet" model-info --addr 127.0.0.1:50090 >"$runs/model_info.txt"

bench() {  # NAME ADDR PROMPTS CONCURRENCY OUTPUT_LEN
  "$bin/octet" bench --addr "$2" --num-prompts "$3" --max-concurrency "$4" --input-len 1000 --output-len "$5" \
    --warmup 1 --seed 11 --json "$runs/$1.json" | grep -E "Successful|throughput|Mean TTFT|P99 TTFT|Mean ITL|P99 ITL|Mean TPOT"
}
bench c1 127.0.0.1:50090 2 1 1000
for c in 16 64 128 256; do
  bench "c$c" 127.0.0.1:50090 "$((c > 32 ? c : 2 * c))" "$c" 1000
done
bench overhead_direct 127.0.0.1:50091 64 16 256
bench overhead_router 127.0.0.1:50090 64 16 256

python3 - "$runs" "$out/sweep.json" <<'EOF'
import json, pathlib, sys
runs = pathlib.Path(sys.argv[1])
result = {"model_info": (runs / "model_info.txt").read_text(), "runs": {}}
for f in sorted(runs.glob("*.json")):
    r = json.loads(f.read_text())
    result["runs"][f.stem] = {k: v for k, v in r.items() if not isinstance(v, list)}
pathlib.Path(sys.argv[2]).write_text(json.dumps(result, indent=2) + "\n")
print("wrote", sys.argv[2])
EOF
