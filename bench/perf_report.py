"""The performance table and chart from one bench/perf_sweep_gpu.sh run: every figure beside the limit measured on the
same card in the same call, and the ratio between them.

    python3 bench/perf_report.py --model-bench DIR/model_bench.json --sweep DIR/sweep.json \
        --card h200 --commit SHA [--out bench/results]

Limits:
- decode step (and so inter-token latency): bytes one step must read (weights, the KV of every sequence, the
  recurrent state read and written) over the device copy bandwidth, from model_bench at the sweep's mean context;
- prefill (time to first token): 2 x the linear layers' parameters x prompt tokens over the cuBLASLt FP8 GEMM
  throughput measured in the run (attention and the recurrent layers' own FLOPs are left out: under 2% here);
- a decode step at high concurrency: the larger of its bandwidth limit and 2 x parameters x batch over that
  throughput.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import tempfile

# synthetic:qwen3.5-27b's linear layers: 24.33e9 FP8 parameters (model_bench's own count) plus the bf16 ones other than
# the embedding and the LM head (32.02e9 weight bytes - 24.33e9 - 2 x 2.543e9 embedding-sized tables, 2 bytes each).
LINEAR_PARAMS = 24.33e9 + (32.02e9 - 24.33e9 - 2 * 2.543e9) / 2
PROMPT, OUTPUT = 1000, 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-bench", required=True)
    parser.add_argument("--sweep", required=True)
    parser.add_argument("--card", required=True)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    mb = json.loads(pathlib.Path(args.model_bench).read_text())
    sweep = json.loads(pathlib.Path(args.sweep).read_text())
    runs = sweep["runs"]
    bw_limit = {d["batch"]: d["bandwidth_limit_ms"] for d in mb["decode"]}
    step = {d["batch"]: d["step_ms"] for d in mb["decode"]}
    tflops = mb["cublaslt_fp8_gemm_TFLOPs"]
    rows = []

    c1 = runs["c1"]
    ttft_limit = 2 * LINEAR_PARAMS * PROMPT / (tflops * 1e12) * 1e3
    rows.append(("single stream: ITL p50 (ms)", c1["median_itl_ms"], bw_limit[1], "bandwidth", 1.15))
    rows.append(("single stream: TTFT mean (ms)", c1["mean_ttft_ms"], ttft_limit, "FP8 compute", 1.3))
    top = max(int(k[1:]) for k in runs if re.fullmatch(r"c\d+", k))
    compute_step = 2 * LINEAR_PARAMS * top / (tflops * 1e12) * 1e3
    limit_top = max(bw_limit[top], compute_step)
    rows.append((f"concurrency {top}: ITL p50 (ms)", runs[f"c{top}"]["median_itl_ms"], limit_top,
                 "bandwidth" if bw_limit[top] >= compute_step else "compute", 1.3))
    rows.append((f"batch {top}: decode step, model_bench (ms)", step[top], limit_top, "bandwidth", 1.3))

    print(f"# {mb['device']}, commit {args.commit}: copy bandwidth {mb['copy_bandwidth_GBps']:.0f} GB/s, "
          f"cuBLASLt FP8 GEMM {tflops:.0f} TFLOP/s")
    print(f"{'figure':44s} {'measured':>10s} {'limit':>10s} {'ratio':>7s}  target")
    for name, value, limit, kind, target in rows:
        print(f"{name:44s} {value:10.2f} {limit:10.2f} {value / limit:6.2f}x  <= {target}x of the {kind} limit "
              f"({'met' if value / limit <= target else 'not met'})")

    print("\nconcurrency  output tok/s  total tok/s  TTFT p50  TTFT p99  ITL p50  ITL p99   (ms)")
    series = []
    for c in sorted(int(k[1:]) for k in runs if re.fullmatch(r"c\d+", k)):
        r = runs[f"c{c}"]
        series.append((c, r))
        print(f"{c:11d}  {r['output_throughput']:12.0f}  {r['total_token_throughput']:11.0f}  "
              f"{r['median_ttft_ms']:8.0f}  {r['p99_ttft_ms']:8.0f}  {r['median_itl_ms']:7.2f}  {r['p99_itl_ms']:7.2f}")
    direct, routed = runs["overhead_direct"], runs["overhead_router"]
    overhead = {k: routed[k] - direct[k] for k in ("mean_ttft_ms", "median_ttft_ms", "mean_e2el_ms", "median_itl_ms")}
    print("\nrouter overhead at concurrency 16 (through the router minus straight to the worker): " +
          ", ".join(f"{k} {v:+.2f}" for k, v in overhead.items()))

    out = pathlib.Path(args.out)
    stem = f"perf_{args.card}"
    summary = {
        "card": mb["device"], "date": mb["date"], "commit": args.commit,
        "limits": {"copy_bandwidth_GBps": mb["copy_bandwidth_GBps"], "fp8_gemm_TFLOPs": tflops,
                   "linear_params": LINEAR_PARAMS},
        "targets": [{"figure": n, "measured": v, "limit": l, "ratio": v / l, "limit_kind": k, "target_ratio": t}
                    for n, v, l, k, t in rows],
        "concurrency": [{"concurrency": c, **{k: r[k] for k in (
            "output_throughput", "total_token_throughput", "median_ttft_ms", "p99_ttft_ms", "median_itl_ms",
            "p99_itl_ms", "mean_tpot_ms", "completed", "duration")}} for c, r in series],
        "router_overhead_ms": overhead,
        "model_bench": mb,
        "model_info": sweep.get("model_info", ""),
    }
    (out / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        data = pathlib.Path(tmp) / "data.txt"
        data.write_text("".join(f"{c} {r['output_throughput']} {r['median_itl_ms']} {r['p99_itl_ms']} "
                                f"{r['median_ttft_ms'] / 1000}\n" for c, r in series))
        script = f"""
set terminal pngcairo size 1100,450 font ',10'
set output '{out / (stem + '.png')}'
set multiplot layout 1,2 title "synthetic:qwen3.5-27b (FP8 weights, FP8 KV) on one {mb['device']}, 1000 in / 1000 out, commit {args.commit}"
set logscale x 2
set xlabel 'concurrency'
set grid
set ylabel 'output tokens/s'
set key top left
plot '{data}' using 1:2 with linespoints lw 2 pt 7 title 'output tokens/s'
set ylabel 'ms'
set y2label 'TTFT p50 (s)'
set y2tics
plot '{data}' using 1:3 with linespoints lw 2 pt 7 title 'ITL p50 (ms)', \\
     '{data}' using 1:4 with linespoints lw 2 pt 5 title 'ITL p99 (ms)', \\
     '{data}' using 1:5 axes x1y2 with linespoints lw 2 pt 9 title 'TTFT p50 (s, right)'
unset multiplot
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    print(f"\nwrote {out / (stem + '.json')} and {out / (stem + '.png')}")


if __name__ == "__main__":
    main()
