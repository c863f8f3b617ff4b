#!/usr/bin/env bash
# On the GPU machine: a worker on the GPU and one on the CPU serving the bundled model, a router in front of the GPU
# one, and the octet CLI asking both for the same greedy completions. Prints the GPU worker's memory report and
# whether the answers agree; writes $OUT/serve_on_gpu.json when OUT is set. With SYNTHETIC=PRESET (e.g.
# qwen3.5-27b) it then also serves synthetic:PRESET through the router and times a 128-token completion.
#   [SYNTHETIC=qwen3.5-27b] tests/gpu/serve_on_gpu.sh BIN_DIR   (octet-worker, octet-router, octet, lib/)
set -euo pipefail
bin=$(realpath "$1")
export LD_LIBRARY_PATH=$bin/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
model=models/qwen3_5-code-small
logs=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_for() {  # LOGFILE PATTERN: up to 120 s
  for _ in $(seq 1200); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  echo "timed out waiting for '$2'; log:" >&2; cat "$1" >&2; exit 1
}

"$bin/octet-worker" --model "$model" --host 127.0.0.1 --port 50061 --device cuda >"$logs/gpu.log" 2>&1 &
pids+=($!)
"$bin/octet-worker" --model "$model" --host 127.0.0.1 --port 50062 --device cpu >"$logs/cpu.log" 2>&1 &
pids+=($!)
wait_for "$logs/gpu.log" "octet-worker: serving"
wait_for "$logs/cpu.log" "octet-worker: serving"
"$bin/octet-router" --workers 127.0.0.1:50061 --port 50060 >"$logs/router.log" 2>&1 &
pids+=($!)
wait_for "$logs/router.log" "octet-router listening"
sleep 1

grep -h "GPU 0\|memory:" "$logs/gpu.log" || true
"$bin/octet" model-info --addr 127.0.0.1:50060 | tee "$logs/model_info.txt"

prompts=("def fibonacci(n):" "import numpy as np
" "class Stack:" "for i in range(10):" "def quicksort(arr):")
same=0
total=0
json_items=()
for p in "${prompts[@]}"; do
  start=$(date +%s.%N)
  gpu=$("$bin/octet" generate --addr 127.0.0.1:50060 --max-tokens 64 --temperature 0 "$p")
  end=$(date +%s.%N)
  cpu=$("$bin/octet" generate --addr 127.0.0.1:50062 --max-tokens 64 --temperature 0 "$p")
  total=$((total + 1))
  if [ "$gpu" = "$cpu" ]; then same=$((same + 1)); verdict=same; else verdict=DIFFERENT; fi
  printf -- '--- %q via router on the GPU (%.2f s): %s\n%s\n' "$p" "$(python3 -c "print($end - $start)")" "$verdict" "$gpu"
  [ "$verdict" = same ] || printf -- '--- on the CPU:\n%s\n' "$cpu"
  json_items+=("{\"prompt\": $(printf '%s' "$p" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'), \"same_as_cpu\": $([ "$verdict" = same ] && echo true || echo false)}")
done
echo "greedy completions identical to the CPU worker's: $same of $total"
if [ -n "${OUT:-}" ]; then
  { echo "{\"same_as_cpu\": $same, \"prompts\": $total, \"items\": ["; (IFS=,; echo "${json_items[*]}"); echo "],";
    echo "\"model_info\": $(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$logs/model_info.txt")}"; } >"$OUT/serve_on_gpu.json"
  cp "$logs"/*.log "$OUT/" 2>/dev/null || true
fi

if [ -n "${SYNTHETIC:-}" ]; then
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  "$bin/octet-worker" --model "synthetic:$SYNTHETIC" --tokenizer "$model/tokenizer.json" --host 127.0.0.1 \
    --port 50071 --device cuda --max-model-len 32768 >"$logs/synthetic.log" 2>&1 &
  pids+=($!)
  wait_for "$logs/synthetic.log" "octet-worker: serving"
  "$bin/octet-router" --workers 127.0.0.1:50071 --port 50070 >"$logs/router2.log" 2>&1 &
  pids+=($!)
  wait_for "$logs/router2.log" "octet-router listening"
  sleep 1
  grep -h "memory:" "$logs/synthetic.log" || true
  "$bin/octet" model-info --addr 127.0.0.1:50070 | tee "$logs/synthetic_info.txt"
  for run in 1 2; do
    start=$(date +%s.%N)
    text=$("$bin/octet" generate --addr 127.0.0.1:50070 --max-tokens 128 --temperature 0 "def fibonacci(n):")
    end=$(date +%s.%N)
    echo "synthetic:$SYNTHETIC via router, run $run: 128 tokens max, $(python3 -c "print(round($end - $start, 3))") s, ${#text} characters"
  done
  [ -n "${OUT:-}" ] && cp "$logs/synthetic.log" "$logs/synthetic_info.txt" "$OUT/"
fi
