#!/usr/bin/env python3
"""Trains octet's demo model: a small Qwen3.5 (`qwen3_5_text`) language model of Python code.

Run on the GPU machine (python3 there has PyTorch, transformers 5.17, tokenizers and safetensors):

    PYTHONUNBUFFERED=1 python3 models/train_qwen3_5_code.py --out /tmp/qwen3_5-code-small

Everything it needs is already on that machine, and everything it does is deterministic up to GPU arithmetic:

1. Corpus: the Python sources (*.py) of the installed packages (the running interpreter's site-packages), files
   sorted by path; files over 1 MB or not valid UTF-8 are skipped. Whole packages (HOLDOUT) are held out for
   evaluation: no file with one of those names as a path component (vendored copies included) is trained on.
2. Tokenizer: a byte-level BPE (8192 tokens in all) trained with HF `tokenizers` on a sample of the training text and
   configured exactly like Qwen's tokenizer.json (NFC; Split(Qwen2 regex, isolated) + ByteLevel(use_regex=false);
   ByteLevel decoder), special tokens <|endoftext|>, <|im_start|>, <|im_end|>. Documents are joined with
   <|endoftext|>.
3. Model: Qwen3_5TextConfig with the 3:1 linear/full attention pattern, untied embeddings, trained for a fixed wall
   clock with bf16 autocast, AdamW, linear warmup then cosine decay, sequences of 512 tokens.
4. Saved with save_pretrained in BF16 (model.safetensors, config.json, generation_config.json) plus tokenizer.json.
5. Evaluation as transformers measures it: the saved BF16 model reloaded with dtype=float32; token-level perplexity
   over non-overlapping 512-token windows of the held-out token stream, each window scored from scratch (its first
   token is not predicted). eval_windows.json holds the first 16 windows' ids; eval.json the per-window mean NLL of
   those 16, their perplexity, the full held-out perplexity, the training numbers and a few greedy completions.
"""

import argparse
import json
import math
import os
import platform
import sys
import sysconfig
import time

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
VOCAB_SIZE = 8192  # BPE tokens plus the 3 special tokens
HOLDOUT = ("click", "jinja2", "requests", "yaml")
MAX_FILE_BYTES = 1 << 20
SEQ_LEN = 512
EVAL_WINDOWS_CI = 16
PROMPTS = ["def fibonacci(n):", "class Stack:\n    def __init__(self):\n",
           "import os\nimport sys\n\n\ndef main():\n", "for i in range("]

T0 = time.time()


def log(msg):
    print("[%7.1fs] %s" % (time.time() - T0, msg), flush=True)


# ----------------------------------------------------------------------------------------------------------------
# corpus


def python_sources(base):
    """(relative path, text) of every *.py under base, sorted by relative path; skips big and non-UTF-8 files."""
    rels = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in filenames:
            if name.endswith(".py"):
                rels.append(os.path.relpath(os.path.join(dirpath, name), base))
    rels.sort()
    skipped = 0
    for rel in rels:
        path = os.path.join(base, rel)
        try:
            if os.path.getsize(path) > MAX_FILE_BYTES:
                skipped += 1
                continue
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            skipped += 1
            continue
        if text.strip():
            yield rel, text
    log("corpus: %d files listed, %d skipped (too big, unreadable or not UTF-8)" % (len(rels), skipped))


def split_corpus(base, max_train_bytes):
    train, held, held_pkgs = [], [], set()
    train_bytes, held_bytes = 0, 0
    for rel, text in python_sources(base):
        parts = rel.split(os.sep)
        n = len(text.encode("utf-8"))
        if parts[0] in HOLDOUT:
            held.append(text)
            held_pkgs.add(parts[0])
            held_bytes += n
        elif any(p in HOLDOUT for p in parts):
            continue  # a vendored copy of a held-out package
        elif train_bytes < max_train_bytes:
            train.append(text)
            train_bytes += n
    log("corpus: train %d files (%.1f MB), held out %d files (%.2f MB) of %s" % (
        len(train), train_bytes / 1e6, len(held), held_bytes / 1e6, sorted(held_pkgs)))
    return train, held, sorted(held_pkgs), train_bytes, held_bytes


# ----------------------------------------------------------------------------------------------------------------
# tokenizer (the construction of tests/fixtures/make_tokenizer.py)


def train_tokenizer(texts, sample_bytes, path):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    total = sum(len(t) for t in texts)
    stride = max(1, int(total // max(1, sample_bytes)))
    sample = texts[::stride]
    log("tokenizer: training BPE on every %d-th training file (%d files, %.1f MB)" % (
        stride, len(sample), sum(len(t) for t in sample) / 1e6))
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS), min_frequency=2, show_progress=False,
                                  special_tokens=[], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(sample, trainer)
    # As in Qwen: the special tokens come right after the BPE vocabulary.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    data = json.loads(tok.to_str())
    # The Python constructors drop some ByteLevel arguments; write them as Qwen's tokenizer.json has them.
    fields = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    data["pre_tokenizer"]["pretokenizers"][1] = dict(fields)
    data["post_processor"] = dict(fields)
    data["decoder"] = dict(fields)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    tok = Tokenizer.from_file(path)
    n = tok.get_vocab_size(with_added_tokens=True)
    assert n == VOCAB_SIZE, n
    log("tokenizer: %d tokens, <|endoftext|> = %d" % (n, tok.token_to_id("<|endoftext|>")))
    return tok


def encode_stream(tok, texts, eot, max_tokens=None, batch=2048):
    """Token ids of texts, each document followed by <|endoftext|>, as one uint16 array."""
    out, count = [], 0
    for i in range(0, len(texts), batch):
        for enc in tok.encode_batch(texts[i:i + batch], add_special_tokens=False):
            ids = np.asarray(enc.ids + [eot], dtype=np.uint16)
            out.append(ids)
            count += len(ids)
        if max_tokens and count >= max_tokens:
            break
    return np.concatenate(out) if out else np.zeros(0, np.uint16)


# ----------------------------------------------------------------------------------------------------------------
# model


def make_config(args, eot):
    from transformers.models.qwen3_5 import Qwen3_5TextConfig
    pattern = ["linear_attention"] * 3 + ["full_attention"]
    return Qwen3_5TextConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=64,
        hidden_act="silu",
        max_position_embeddings=2048,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
        attention_bias=False,
        linear_conv_kernel_dim=4,
        linear_key_head_dim=args.linear_head_dim,
        linear_value_head_dim=args.linear_head_dim,
        linear_num_key_heads=args.linear_k_heads,
        linear_num_value_heads=args.linear_v_heads,
        layer_types=[pattern[i % 4] for i in range(args.layers)],
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=None,
    )


def lm_loss(model, x):
    import torch.nn.functional as F
    logits = model(input_ids=x, use_cache=False).logits
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))


def pick_batch(model, data, device, candidates, amp):
    """Tokens per second of a few training steps (forward and backward, no update) at each batch size."""
    import torch
    best = None
    results = {}
    for b in candidates:
        try:
            times = []
            for i in range(5):
                x = data[:b].long()
                torch.cuda.synchronize() if device.type == "cuda" else None
                t = time.time()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = lm_loss(model, x)
                loss.backward()
                torch.cuda.synchronize() if device.type == "cuda" else None
                if i >= 2:
                    times.append(time.time() - t)
            model.zero_grad(set_to_none=True)
            tps = b * SEQ_LEN / (sum(times) / len(times))
        except torch.OutOfMemoryError:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            break
        results[b] = tps
        log("batch %4d: %.0f tokens/s (%.3f s/step)" % (b, tps, b * SEQ_LEN / tps))
    top = max(results.values())
    # the smallest batch within 10% of the best throughput: more optimizer steps for the same tokens
    best = min(b for b, tps in results.items() if tps >= 0.9 * top)
    return best, results


def train(args, model, train_ids, device):
    import torch
    amp = device.type == "cuda"
    n_seq = len(train_ids) // SEQ_LEN
    data = torch.from_numpy(train_ids[:n_seq * SEQ_LEN].astype(np.int32)).to(device).view(n_seq, SEQ_LEN)
    log("training data: %d sequences of %d tokens (%.1fM tokens)" % (n_seq, SEQ_LEN, n_seq * SEQ_LEN / 1e6))

    if args.batch:
        batch, bench = args.batch, {}
    else:
        model.train()
        batch, bench = pick_batch(model, data, device, args.batch_candidates, amp)
    log("batch size %d sequences (%d tokens a step)" % (batch, batch * SEQ_LEN))

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "conv1d" not in name else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")

    gen = torch.Generator(device="cpu").manual_seed(1234)
    perm, pos, epoch = torch.randperm(n_seq, generator=gen), 0, 0
    model.train()
    step, seen, t_start, losses = 0, 0, time.time(), []
    history = []
    while True:
        elapsed = time.time() - t_start
        if elapsed >= args.train_seconds:
            break
        frac = elapsed / args.train_seconds
        if step < args.warmup_steps:
            lr = args.lr * (step + 1) / args.warmup_steps
        else:
            lr = args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if pos + batch > n_seq:
            perm, pos, epoch = torch.randperm(n_seq, generator=gen), 0, epoch + 1
        idx = perm[pos:pos + batch].to(device)
        pos += batch
        x = data[idx].long()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = lm_loss(model, x)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        seen += batch * SEQ_LEN
        losses.append(loss.detach())
        if step % args.log_every == 0:
            mean = torch.stack(losses).float().mean().item()
            losses = []
            history.append({"step": step, "seconds": round(time.time() - t_start, 1), "tokens": seen,
                            "lr": lr, "loss": round(mean, 4)})
            log("step %5d  loss %.4f  lr %.2e  gnorm %.2f  %.1fM tokens  %.0f tok/s  epoch %d" % (
                step, mean, lr, gnorm.item(), seen / 1e6, seen / (time.time() - t_start), epoch))
    wall = time.time() - t_start
    final = torch.stack(losses).float().mean().item() if losses else history[-1]["loss"]
    log("trained %d steps, %.1fM tokens in %.1f s; final loss %.4f" % (step, seen / 1e6, wall, final))
    return {"steps": step, "train_tokens_seen": seen, "train_seconds": round(wall, 1),
            "final_train_loss": round(final, 4), "batch_sequences": batch, "batch_tokens": batch * SEQ_LEN,
            "epochs_started": epoch + 1, "train_sequences_available": n_seq, "batch_benchmark_tokens_per_s":
            {str(k): round(v) for k, v in bench.items()}, "loss_history": history}


# ----------------------------------------------------------------------------------------------------------------
# evaluation


def window_nll(model, windows, device):
    """Mean NLL of each window (tokens 1..511 predicted from their prefix), in float32."""
    import torch
    import torch.nn.functional as F
    x = torch.as_tensor(windows, dtype=torch.long, device=device)
    with torch.no_grad():
        logits = model(input_ids=x, use_cache=False).logits.float()
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none")
    return nll.view(x.shape[0], -1).double().mean(dim=1).tolist()


def evaluate(args, out_dir, held_ids, tok, device):
    import torch
    from transformers.models.qwen3_5 import Qwen3_5ForCausalLM
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = Qwen3_5ForCausalLM.from_pretrained(out_dir, dtype=torch.float32).to(device).eval()
    n_win = len(held_ids) // SEQ_LEN
    windows = held_ids[:n_win * SEQ_LEN].reshape(n_win, SEQ_LEN).astype(np.int64)
    ci = window_nll(model, windows[:EVAL_WINDOWS_CI], device)
    log("eval: first %d windows: ppl %.4f" % (EVAL_WINDOWS_CI, math.exp(sum(ci) / len(ci))))

    t, full = time.time(), []
    for i in range(0, n_win, args.eval_batch):
        full += window_nll(model, windows[i:i + args.eval_batch], device)
        if time.time() - t > args.eval_seconds:
            break
    log("eval: %d of %d windows in %.1f s: ppl %.4f" % (len(full), n_win, time.time() - t,
                                                         math.exp(sum(full) / len(full))))

    samples = []
    for prompt in PROMPTS:
        ids = tok.encode(prompt, add_special_tokens=False).ids
        x = torch.tensor([ids], device=device)
        with torch.no_grad():
            y = model.generate(x, max_new_tokens=48, do_sample=False)
        new = y[0, len(ids):].tolist()
        text = tok.decode(new, skip_special_tokens=False)
        samples.append({"prompt": prompt, "prompt_ids": ids, "completion_ids": new, "completion": text})
        log("sample: %r -> %r" % (prompt, text))

    return {
        "ci_windows": {
            "file": "eval_windows.json", "count": EVAL_WINDOWS_CI, "window_tokens": SEQ_LEN,
            "predicted_tokens_per_window": SEQ_LEN - 1,
            "mean_nll_per_window": [round(v, 6) for v in ci],
            "mean_nll": round(sum(ci) / len(ci), 6),
            "perplexity": round(math.exp(sum(ci) / len(ci)), 4),
        },
        "full_heldout": {
            "windows": len(full), "windows_available": n_win, "tokens": len(held_ids),
            "mean_nll": round(sum(full) / len(full), 6),
            "perplexity": round(math.exp(sum(full) / len(full)), 4),
        },
        "greedy_samples": samples,
    }, windows[:EVAL_WINDOWS_CI].tolist()


# ----------------------------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the model folder to write")
    p.add_argument("--site-packages", default=sysconfig.get_paths()["purelib"])
    p.add_argument("--max-train-bytes", type=float, default=300e6)
    p.add_argument("--tokenizer-sample-bytes", type=float, default=40e6)
    p.add_argument("--train-seconds", type=float, default=330)
    p.add_argument("--deadline-seconds", type=float, default=0,
                   help="if set, shorten training so that the whole script ends by then (reserve: --reserve-seconds)")
    p.add_argument("--reserve-seconds", type=float, default=75)
    p.add_argument("--batch", type=int, default=0, help="sequences a step; 0: pick from --batch-candidates")
    p.add_argument("--batch-candidates", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--eval-seconds", type=float, default=45)
    p.add_argument("--eval-batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=320)
    p.add_argument("--intermediate", type=int, default=960)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--linear-k-heads", type=int, default=4)
    p.add_argument("--linear-v-heads", type=int, default=8)
    p.add_argument("--linear-head-dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus-only", action="store_true", help="stop after the corpus and the tokenizer (no torch)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log("python %s, site-packages %s" % (sys.version.split()[0], args.site_packages))

    train_texts, held_texts, held_pkgs, train_bytes, held_bytes = split_corpus(args.site_packages,
                                                                               args.max_train_bytes)
    tok = train_tokenizer(train_texts, args.tokenizer_sample_bytes, os.path.join(args.out, "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    held_ids = encode_stream(tok, held_texts, eot)
    log("held-out stream: %d tokens (%.2f bytes/token)" % (len(held_ids), held_bytes / max(1, len(held_ids))))
    train_ids = encode_stream(tok, train_texts, eot)
    log("training stream: %d tokens (%.2f bytes/token)" % (len(train_ids), train_bytes / max(1, len(train_ids))))
    if args.corpus_only:
        return

    import torch
    import tokenizers
    import transformers
    from transformers import GenerationConfig
    from transformers.models.qwen3_5 import Qwen3_5ForCausalLM

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    config = make_config(args, eot)
    model = Qwen3_5ForCausalLM(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    log("model: %d parameters (%.2fM), %s" % (n_params, n_params / 1e6, config.layer_types))
    if args.deadline_seconds:
        left = args.deadline_seconds - (time.time() - T0) - args.reserve_seconds
        if left < args.train_seconds:
            log("training time cut from %.0f s to %.0f s to meet the deadline" % (args.train_seconds, left))
            args.train_seconds = max(10.0, left)

    stats = train(args, model, train_ids, device)

    model.generation_config = GenerationConfig(bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    model.to(torch.bfloat16).save_pretrained(args.out)
    del model
    torch.cuda.empty_cache()
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in sorted(os.listdir(args.out))}
    log("saved %s" % sizes)

    results, ci_windows = evaluate(args, args.out, held_ids, tok, device)
    with open(os.path.join(args.out, "eval_windows.json"), "w") as f:
        json.dump(ci_windows, f, separators=(",", ":"))
        f.write("\n")
    report = {
        "model": "qwen3_5-code-small",
        "parameters": n_params,
        "config": {k: getattr(config, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                   "num_attention_heads", "num_key_value_heads", "head_dim",
                                                   "linear_num_key_heads", "linear_num_value_heads",
                                                   "linear_key_head_dim", "linear_value_head_dim", "vocab_size")},
        "eval_method": ("saved BF16 weights reloaded with dtype=float32 (TF32 off), eval mode; non-overlapping "
                        "%d-token windows of the held-out stream, each scored from scratch; token 0 of each window "
                        "is not predicted; perplexity = exp(mean NLL over predicted tokens)" % SEQ_LEN),
        **results,
        "training": {**stats, "seq_len": SEQ_LEN, "lr": args.lr, "min_lr_ratio": args.min_lr_ratio,
                     "warmup_steps": args.warmup_steps, "weight_decay": args.weight_decay, "optimizer":
                     "AdamW(0.9, 0.95), grad clip 1.0, bf16 autocast over fp32 weights", "seed": args.seed},
        "corpus": {"source": "*.py of the site-packages of the Python that has PyTorch, sorted by path; files over "
                             "1 MB or not UTF-8 skipped; documents joined with <|endoftext|>",
                   "heldout_packages": held_pkgs, "heldout_bytes": held_bytes, "train_bytes": train_bytes,
                   "train_files": len(train_texts), "heldout_files": len(held_texts),
                   "train_stream_tokens": int(len(train_ids)), "heldout_stream_tokens": int(len(held_ids))},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "numpy": np.__version__,
                     "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"},
        "total_seconds": round(time.time() - T0, 1),
    }
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
        f.write("\n")
    log("done: ci ppl %.4f, full ppl %.4f over %d windows" % (
        results["ci_windows"]["perplexity"], results["full_heldout"]["perplexity"], results["full_heldout"]["windows"]))


if __name__ == "__main__":
    main()
