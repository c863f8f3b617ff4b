"""`octet eval` end to end on the bundled model (models/qwen3_5-code-small), in-process on the CPU.

Needs the built CLI: ninja -C build/cpu octet (ctest sets OCTET_BUILD_DIR). About 10 s.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import pty
import re
import select
import shutil
import subprocess
import sys
import time

import pytest
from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "integration"))

import harness  # noqa: E402

MODEL = harness.REPO_ROOT / "models" / "qwen3_5-code-small"
TIMEOUT = 60.0

# Held-out style text (the model never trained on requests): a few hundred tokens.
TEXT = '''"""
requests.hooks
~~~~~~~~~~~~~~

This module provides the capabilities for the Requests hooks system.

Available hooks:

``response``:
    The response generated from a Request.
"""
HOOKS = ["response"]


def default_hooks():
    return {event: [] for event in HOOKS}


# TODO: response is the only one


def dispatch_hook(key, hooks, hook_data, **kwargs):
    """Dispatches a hook dictionary on a given piece of data."""
    hooks = hooks or {}
    hooks = hooks.get(key)
    if hooks:
        if hasattr(hooks, "__call__"):
            hooks = [hooks]
        for hook in hooks:
            _hook_data = hook(hook_data, **kwargs)
            if _hook_data is not None:
                hook_data = _hook_data
    return hook_data


class Session:
    def __init__(self, headers=None, timeout=None):
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.hooks = default_hooks()

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        merged = {**self.headers, **kwargs.pop("headers", {})}
        response = self.send(method.upper(), url, headers=merged, **kwargs)
        return dispatch_hook("response", self.hooks, response)
'''


def octet_eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([harness.binary("client/octet"), "eval", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=harness.REPO_ROOT)


@pytest.fixture
def text_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "hooks.py"
    path.write_text(TEXT, encoding="utf-8")
    return path


def num_tokens(text: str) -> int:
    return len(Tokenizer.from_file(str(MODEL / "tokenizer.json")).encode(text, add_special_tokens=False).ids)


def num_windows(tokens: int, window: int) -> int:
    """Non-overlapping windows of `window` tokens; a last one of a single token predicts nothing and is dropped."""
    return tokens // window + (1 if tokens % window >= 2 else 0)


def test_eval_reports_every_setting_against_the_bf16_baseline(text_file, tmp_path):
    out_json, out_png = tmp_path / "eval.json", tmp_path / "eval.png"
    chart = ["--chart", str(out_png)] if shutil.which("gnuplot") else []
    result = octet_eval("--model", str(MODEL), "--text", str(text_file), "--recipes", "none", "--kv", "bf16,fp32",
                        "--window", "128", "--json", str(out_json), *chart)
    assert result.returncode == 0, result.stderr

    tokens = num_tokens(TEXT)
    assert 200 < tokens < 1000
    windows = num_windows(tokens, 128)
    report = json.loads(out_json.read_text())
    assert report["model"] == "qwen3_5-code-small"
    assert report["text_file"] == str(text_file)
    assert report["num_tokens"] == report["text_tokens"] == tokens  # the same ids as HF tokenizers
    assert report["window"] == 128
    assert report["num_windows"] == windows
    assert report["scored_positions"] == tokens - windows  # each window's first token is not predicted
    assert report["backend"] == "cpu"
    assert report["baseline"] == "none/bf16"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["date"])
    assert re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?|unknown", report["commit"])
    assert isinstance(report["worktree_dirty"], bool)

    settings = {s["name"]: s for s in report["settings"]}
    assert list(settings) == ["none/bf16", "none/fp32"]
    for s in settings.values():
        assert math.isfinite(s["perplexity"]) and 1.0 < s["perplexity"] < 100.0, s
        assert s["perplexity"] == pytest.approx(math.exp(s["mean_nll"]))
        assert s["scored_positions"] == tokens - windows
        assert s["weight_bytes"] == 2 * 17_264_672  # every parameter in BF16
        assert s["fp8_weight_bytes"] == 0
        assert s["recipe"] == "none"
    base, fp32 = settings["none/bf16"], settings["none/fp32"]
    assert base["mean_kl"] == 0.0 and base["top1_agreement"] == 1.0
    assert 0.0 <= fp32["mean_kl"] < 1e-3  # the KV cache's precision barely moves the distribution
    assert fp32["top1_agreement"] > 0.95
    assert fp32["perplexity"] == pytest.approx(base["perplexity"], rel=0.01)
    # 2 full-attention layers x 2 KV heads x 64 dims, K and V.
    assert (base["kv_cache_dtype"], base["kv_bytes_per_token"]) == ("bf16", 1024)
    assert (fp32["kv_cache_dtype"], fp32["kv_bytes_per_token"]) == ("fp32", 2048)

    rows = [line for line in result.stdout.splitlines() if line.startswith("none/")]
    assert len(rows) == 2 and rows[0].startswith("none/bf16 (baseline)")
    assert f"{base['perplexity']:.4f}" in rows[0] and f"{fp32['perplexity']:.4f}" in rows[1]
    # stderr is not a terminal here: progress comes as lines, not a redrawn bar.
    assert f"octet eval: {windows}/{windows} windows (100%)" in result.stderr
    assert "\r" not in result.stderr
    if chart:
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_reproduces_the_perplexity_transformers_measured(tmp_path):
    """The first 4 windows of models/.../eval_windows.json, as text: transformers scored them in fp32 (eval.json)."""
    windows = json.loads((MODEL / "eval_windows.json").read_text())
    ids = [i for window in windows for i in window]
    text = Tokenizer.from_file(str(MODEL / "tokenizer.json")).decode(ids, skip_special_tokens=False)
    text_file, out_json = tmp_path / "ci_windows.txt", tmp_path / "eval.json"
    text_file.write_text(text, encoding="utf-8")
    result = octet_eval("--model", str(MODEL), "--text", str(text_file), "--recipes", "none", "--kv", "fp32",
                        "--max-tokens", "2048", "--json", str(out_json))
    assert result.returncode == 0, result.stderr
    report = json.loads(out_json.read_text())
    assert (report["text_tokens"], report["num_windows"], report["scored_positions"]) == (len(ids), 4, 4 * 511)
    want_nll = json.loads((MODEL / "eval.json").read_text())["ci_windows"]["mean_nll_per_window"][:4]
    fp32 = next(s for s in report["settings"] if s["name"] == "none/fp32")
    assert fp32["mean_nll"] == pytest.approx(sum(want_nll) / 4, abs=2e-3)
    assert fp32["perplexity"] == pytest.approx(math.exp(sum(want_nll) / 4), rel=0.005)


def test_eval_max_tokens_scores_only_the_start_of_the_text(text_file, tmp_path):
    out_json = tmp_path / "eval.json"
    result = octet_eval("--model", str(MODEL), "--text", str(text_file), "--recipes", "none", "--kv", "bf16",
                        "--max-tokens", "100", "--window", "64", "--json", str(out_json))
    assert result.returncode == 0, result.stderr
    report = json.loads(out_json.read_text())
    assert report["text_tokens"] == num_tokens(TEXT)
    assert (report["num_tokens"], report["num_windows"], report["scored_positions"]) == (100, 2, 98)
    assert [s["name"] for s in report["settings"]] == ["none/bf16"]  # the baseline alone


def test_eval_draws_a_progress_bar_when_stderr_is_a_terminal(text_file):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [harness.binary("client/octet"), "eval", "--model", str(MODEL), "--text", str(text_file), "--recipes", "none",
         "--kv", "bf16", "--window", "64"],
        stdout=subprocess.PIPE, stderr=follower, cwd=harness.REPO_ROOT)
    os.close(follower)
    err, deadline = b"", time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 1.0)[0]:
                continue
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            err += data
        assert process.wait(timeout=max(1.0, deadline - time.monotonic())) == 0
    finally:
        process.kill()
        process.stdout.close()
        os.close(leader)
    windows = num_windows(num_tokens(TEXT), 64)
    assert f"\r[{'#' * 30}] {windows}/{windows} windows" in err.decode()
    assert "octet eval: 1/" not in err.decode()  # no periodic lines on a terminal


@pytest.mark.parametrize("args, code, message", [
    (["--recipes", "fp4"], 2, "unknown FP8 recipe 'fp4'"),
    (["--kv", "int8"], 2, "unknown KV cache dtype 'int8'"),
    (["--window", "4096"], 1, "INVALID_ARGUMENT: window must be in [2, 2048]"),
])
def test_eval_rejects_bad_settings(text_file, args, code, message):
    result = octet_eval("--model", str(MODEL), "--text", str(text_file), "--recipes", "none", "--kv", "bf16", *args)
    assert result.returncode == code
    assert message in result.stderr


def test_eval_needs_a_model_and_a_readable_text(text_file, tmp_path):
    result = octet_eval("--text", str(text_file))
    assert result.returncode == 2 and "eval needs --model DIR" in result.stderr
    result = octet_eval("--model", str(MODEL), "--text", str(tmp_path / "missing.txt"), "--recipes", "none",
                        "--kv", "bf16")
    assert result.returncode == 1 and "NOT_FOUND" in result.stderr and "missing.txt" in result.stderr
