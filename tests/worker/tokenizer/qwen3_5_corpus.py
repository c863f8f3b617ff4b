"""A deterministic multilingual corpus (>= 10 MiB) for checking and timing the Qwen3.5 tokenizer.

Built offline from what the machine has after scripts/setup: the project venv's Python sources (stdlib and
site-packages) and faker's locale data, plus generated text for the cases tokenizers get wrong: combining marks
(the Qwen3.5 regex's \\p{M}), emoji ZWJ sequences and skin tones, long white-space runs, special tokens inline,
NFD text. Same machine and seed → same documents (sorted files, seeded generators, no hash()).

    .venv/bin/python tests/worker/tokenizer/qwen3_5_corpus.py [OUT.bin]   # NUL-separated documents; a summary

Used by qwen3_5_tokenizer_test.py and bench/tokenizer_bench.py. No document contains a NUL byte.
"""

import datetime
import os
import random
import sys
import sysconfig
import unicodedata
import zlib

SEED = 20240613
MIB = 1 << 20

# Bytes per part; the total is ~11 MiB.
CODE_BYTES = 4_600_000
FAKER_BYTES = 4_200_000
NFD_BYTES = 800_000
MARKS_BYTES = 450_000
EMOJI_BYTES = 350_000
WHITESPACE_BYTES = 350_000
CHAT_BYTES = 450_000

MAX_FILE_CHARS = 120_000  # longer source files are cut (at a line end) so that one file cannot dominate

# faker locales by script; those with a native lorem provider also give prose (others fall back to Latin lorem,
# so they give names, addresses, jobs and companies only).
FAKER_LOCALES = [
    "en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL", "cs_CZ", "sv_SE", "fi_FI", "hu_HU",
    "tr_TR", "vi_VN", "id_ID", "la", "da_DK", "ro_RO", "hr_HR", "az_AZ",  # Latin
    "ru_RU", "uk_UA", "bg_BG", "mk_MK",  # Cyrillic
    "el_GR",  # Greek
    "ar_AA", "ar_SA", "fa_IR",  # Arabic
    "he_IL",  # Hebrew
    "hi_IN", "ne_NP", "mr_IN",  # Devanagari
    "bn_BD", "ta_IN", "gu_IN", "or_IN", "si_LK",  # other Indic scripts
    "th_TH",  # Thai
    "zh_CN", "zh_TW", "ja_JP",  # CJK, kana
    "ko_KR",  # Hangul
    "hy_AM", "ka_GE",  # Armenian, Georgian
]

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>", "<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
    "<tts_text_bos_single>", "<|audio_pad|>",
]


def _rng(name):
    return random.Random(SEED ^ zlib.crc32(name.encode()))


def _size(text):
    return len(text.encode("utf-8"))


def _take(docs, label, texts, budget):
    """Appends (label#i, text) from the iterator until `budget` bytes are taken."""
    used = 0
    for i, text in enumerate(texts):
        text = text.replace("\0", "")
        if not text:
            continue
        docs.append(("%s#%d" % (label, i), text))
        used += _size(text)
        if used >= budget:
            break
    return used


# --- source code --------------------------------------------------------------------------------------------------

def python_source_files():
    """The venv's Python sources: the stdlib and the venv's site-packages, sorted."""
    paths = sysconfig.get_paths()
    roots = [(paths["stdlib"], True), (paths["purelib"], False)]
    files = []
    for root, is_stdlib in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames
                                 if d != "__pycache__" and not (is_stdlib and d in ("site-packages", "dist-packages")))
            files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    return sorted(set(files))


def code_docs(budget):
    files = python_source_files()
    _rng("code").shuffle(files)
    docs, used = [], 0
    for path in files:
        try:
            with open(path, encoding="utf-8", newline="") as f:  # newline="": keep \r\n as written
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) > MAX_FILE_CHARS:
            text = text[:text.rfind("\n", 0, MAX_FILE_CHARS) + 1] or text[:MAX_FILE_CHARS]
        text = text.replace("\0", "")
        if not text:
            continue
        docs.append(("code:" + path, text))
        used += _size(text)
        if used >= budget:
            break
    return docs


# --- faker ----------------------------------------------------------------------------------------------------------

def _has_native_lorem(locale):
    import importlib.util
    return locale == "la" or importlib.util.find_spec("faker.providers.lorem." + locale) is not None


def _faker(locale):
    from faker import Faker
    f = Faker(locale)
    f.seed_instance(SEED ^ zlib.crc32(locale.encode()))
    return f


DATE_FIRST = datetime.date(1990, 1, 1)
DATE_LAST = datetime.date(2030, 12, 31)


def _record(f, rng):
    """One line about a person, in the locale's script where faker has it."""
    fields = [f.name(), f.address().replace("\n", ", ")]
    for method in ("job", "company", "phone_number", "city", "street_name"):
        if rng.random() < 0.6:
            try:
                fields.append(getattr(f, method)())
            except AttributeError:
                pass
    # a date from a fixed range: faker's date(), day_of_week() and month_name() draw from 1970..today
    fields.append(f.date_between_dates(DATE_FIRST, DATE_LAST).isoformat())
    return rng.choice([", ", "; ", " | ", "\t"]).join(fields)


def faker_locale_docs(locale, budget):
    f = _faker(locale)
    rng = _rng("faker:" + locale)
    prose = _has_native_lorem(locale)

    def texts():
        while True:
            parts = []
            for _ in range(rng.randint(3, 12)):
                if prose and rng.random() < 0.7:
                    parts.append(f.paragraph(nb_sentences=rng.randint(2, 9)))
                else:
                    parts.append("\n".join(_record(f, rng) for _ in range(rng.randint(1, 6))))
            yield rng.choice(["\n\n", "\n", " "]).join(parts) + rng.choice(["", "\n"])

    docs = []
    _take(docs, "faker:" + locale, texts(), budget)
    return docs


def faker_docs(budget):
    docs = []
    for locale in FAKER_LOCALES:
        docs += faker_locale_docs(locale, budget // len(FAKER_LOCALES))
    return docs


# --- NFD --------------------------------------------------------------------------------------------------------

NFD_LOCALES = ["vi_VN", "fr_FR", "de_DE", "cs_CZ", "pl_PL", "el_GR", "ko_KR", "ja_JP", "hi_IN", "ru_RU", "tr_TR",
               "he_IL", "ar_AA", "bn_BD", "es_ES", "hu_HU"]


def nfd_docs(budget):
    """Text in NFD (and some in NFKD): NFC must recompose it (Hangul, kana voicing marks, Devanagari nukta...)."""
    docs = []
    rng = _rng("nfd")
    for locale in NFD_LOCALES:
        for label, text in faker_locale_docs(locale, budget // len(NFD_LOCALES)):
            form = "NFKD" if rng.random() < 0.2 else "NFD"
            docs.append(("nfd:" + form + ":" + label, unicodedata.normalize(form, text)))
    return docs


# --- combining marks ----------------------------------------------------------------------------------------------

ARABIC_HARAKAT = [chr(c) for c in range(0x064B, 0x0653)] + ["\u0670"]
HEBREW_NIQQUD = [chr(c) for c in range(0x05B0, 0x05BD)] + ["\u05C1", "\u05C2", "\u05C7"]
LATIN_COMBINING = [chr(c) for c in range(0x0300, 0x0370)]
OTHER_MARKS = ["\u0903", "\u093C", "\u094D", "\u0951", "\u0E31", "\u0E47", "\u0E4C", "\u1AB0", "\u1DC0", "\u20D7",
               "\u20DD", "\u20E3", "\uFE0F", "\uFE20", "\U000E0100", "\u0489", "\u302A", "\u3099", "\u309A"]


def _with_marks(text, marks, rng, rate):
    out = []
    for ch in text:
        out.append(ch)
        if ch.isalpha() and rng.random() < rate:
            out.append("".join(rng.choice(marks) for _ in range(rng.choice([1, 1, 1, 2, 3]))))
    return "".join(out)


def marks_docs(budget):
    """Words with combining marks, and marks where no word is (after spaces, digits, punctuation, line starts)."""
    rng = _rng("marks")
    ar, he, en, th, hi = (_faker(x) for x in ("ar_AA", "he_IL", "en_US", "th_TH", "hi_IN"))
    all_marks = ARABIC_HARAKAT + HEBREW_NIQQUD + LATIN_COMBINING + OTHER_MARKS

    def stray():
        # a mark sequence in an odd place; never right after '>' (see qwen3_5_tokenizer_test.py: U+0338 would
        # compose with a special token's '>' in tiktoken's whole-text NFC)
        lead = rng.choice([" ", "  ", "\n", "\t", "5", "!", "(", "-", "", "\u00A0", "\u3000", "。", "a", "ب"])
        return lead + "".join(rng.choice(all_marks) for _ in range(rng.randint(1, 4)))

    def texts():
        while True:
            parts = []
            for _ in range(rng.randint(4, 10)):
                kind = rng.randrange(6)
                if kind == 0:
                    parts.append(_with_marks(ar.paragraph(nb_sentences=4), ARABIC_HARAKAT, rng, 0.7))
                elif kind == 1:
                    parts.append(_with_marks(he.paragraph(nb_sentences=4), HEBREW_NIQQUD, rng, 0.6))
                elif kind == 2:  # "zalgo" Latin
                    parts.append(_with_marks(en.paragraph(nb_sentences=3), LATIN_COMBINING, rng, 0.4))
                elif kind == 3:
                    parts.append(th.paragraph(nb_sentences=4))
                elif kind == 4:
                    parts.append(" ".join(hi.name() + rng.choice(["।", ",", "", " ॥"]) for _ in range(8)))
                else:
                    parts.append("".join(stray() + rng.choice(["", "x", "१२", "word", "Ω"]) for _ in range(20)))
            yield rng.choice(["\n", " ", "\n\n"]).join(parts)

    docs = []
    _take(docs, "marks", texts(), budget)
    return docs


# --- emoji -------------------------------------------------------------------------------------------------------

SKIN_TONES = [chr(c) for c in range(0x1F3FB, 0x1F400)]
ZWJ = "\u200D"
PEOPLE = ["\U0001F468", "\U0001F469", "\U0001F9D1", "\U0001F466", "\U0001F467"]
PROFESSIONS = ["\U0001F4BB", "\U0001F52C", "\U0001F680", "\U0001F373", "\U0001F3A8", "\u2695\uFE0F", "\u2696\uFE0F",
               "\U0001F692", "\u2708\uFE0F", "\U0001F33E"]


def _emoji(rng, base):
    kind = rng.randrange(8)
    if kind == 0:  # family: man ZWJ woman ZWJ girl ZWJ boy
        return ZWJ.join(rng.choice(PEOPLE) for _ in range(rng.randint(2, 4)))
    if kind == 1:  # person + skin tone ZWJ profession
        return rng.choice(PEOPLE) + rng.choice(SKIN_TONES) + ZWJ + rng.choice(PROFESSIONS)
    if kind == 2:  # hand + skin tone
        return rng.choice(["\U0001F44D", "\U0001F44B", "\U0001F64F", "\u270C\uFE0F", "\U0001F91D"]) + rng.choice(
            SKIN_TONES)
    if kind == 3:  # flag: two regional indicators
        return "".join(chr(0x1F1E6 + rng.randrange(26)) for _ in range(2))
    if kind == 4:  # keycap
        return rng.choice("0123456789#*") + "\uFE0F\u20E3"
    if kind == 5:  # tag sequence (England, Scotland) or rainbow flag
        return rng.choice(["\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F",
                           "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
                           "\U0001F3F3\uFE0F\u200D\U0001F308", "\u2764\uFE0F\u200D\U0001F525"])
    return "".join(rng.choice(base) for _ in range(rng.randint(1, 5)))


def emoji_docs(budget):
    from faker.providers.emoji.en_US import Provider
    base = list(Provider.emojis)
    rng = _rng("emoji")
    fakers = [_faker(x) for x in ("en_US", "ja_JP", "zh_CN", "ru_RU", "ar_AA")]

    def texts():
        while True:
            words = []
            f = rng.choice(fakers)
            for w in f.paragraph(nb_sentences=8).split(" "):
                words.append(w)
                if rng.random() < 0.35:
                    e = _emoji(rng, base)
                    words.append(e if rng.random() < 0.6 else e * rng.randint(2, 4))
                    if rng.random() < 0.3:
                        words[-1] = words[-1] + rng.choice(["!", ".", "", "\n"])
            yield rng.choice([" ", ""]).join(words) if rng.random() < 0.2 else " ".join(words)

    docs = []
    _take(docs, "emoji", texts(), budget)
    return docs


# --- white space ---------------------------------------------------------------------------------------------------

ODD_SPACES = ["\u00A0", "\u2003", "\u3000", "\u2009", "\u200B", "\u0085", "\u2028", "\u000B", "\u000C", "\u1680",
              "\u202F"]


def whitespace_docs(budget):
    rng = _rng("whitespace")
    en = _faker("en_US")

    def run():
        kind = rng.randrange(7)
        if kind == 0:
            return " " * rng.choice([1, 2, 3, 4, 8, 16, 31, 64, 100, 257])
        if kind == 1:
            return "\t" * rng.randint(1, 40)
        if kind == 2:
            return "\n" * rng.randint(2, 30)
        if kind == 3:
            return "\r\n" * rng.randint(1, 10)
        if kind == 4:
            return "".join(rng.choice([" ", "\t", "\n", "\r\n", " \n"]) for _ in range(rng.randint(2, 60)))
        if kind == 5:
            return "".join(rng.choice(ODD_SPACES + [" "]) for _ in range(rng.randint(1, 12)))
        return rng.choice([" ", "  "]) * rng.randint(1, 40) + "\n"

    def texts():
        while True:
            lines = []
            for _ in range(rng.randint(20, 80)):
                indent = rng.choice(["", "    ", "\t", "        ", "\t\t", "  \t ", " " * rng.randint(0, 120)])
                lines.append(indent + en.sentence() + (run() if rng.random() < 0.5 else "") + rng.choice(
                    ["\n", "\n", "   \n", "\t\n", "\n\n\n", "\r\n"]))
            text = "".join(lines)
            yield text + (run() if rng.random() < 0.5 else "")  # sometimes white space at the very end

    docs = []
    _take(docs, "whitespace", texts(), budget)
    return docs


# --- chat template: special tokens inline -------------------------------------------------------------------------

NEAR_MISSES = ["<|im_start", "im_start|>", "<|IM_START|>", "< |im_end|>", "<think >", "</think", "<|endoftext",
               "<tool_call", "<|im_end||>", "<|fim_prefix |>", "<<|im_end|>>", "<|<|im_start|>|>"]


def chat_docs(budget):
    rng = _rng("chat")
    fakers = [_faker(x) for x in ("en_US", "zh_CN", "ja_JP", "ru_RU", "ar_AA", "th_TH", "de_DE")]

    def text():
        return rng.choice(fakers).paragraph(nb_sentences=rng.randint(1, 6))

    def turn():
        role = rng.choice(["user", "assistant", "system", "tool"])
        body = text()
        if role == "assistant" and rng.random() < 0.6:
            body = "<think>\n" + text() + "\n</think>\n\n" + body
        if role == "assistant" and rng.random() < 0.3:
            body += '\n<tool_call>\n{"name": "search", "arguments": {"q": "%s"}}\n</tool_call>' % text()[:40]
        if role == "tool":
            body = "<tool_response>\n" + body + "\n</tool_response>"
        return "<|im_start|>" + role + "\n" + body + "<|im_end|>\n"

    def glued():
        # specials against words, digits, marks, white space, each other, and near misses
        pieces = []
        for _ in range(rng.randint(10, 40)):
            pieces.append(rng.choice(SPECIAL_TOKENS) if rng.random() < 0.5 else rng.choice(NEAR_MISSES))
            pieces.append(rng.choice(["", " ", "\n", "x", "42", "\u0301", "é", "中文", "  ", "<", "|", "🙂", text()[:30]]))
        return "".join(pieces)

    def texts():
        while True:
            kind = rng.randrange(4)
            if kind == 0:
                yield "".join(turn() for _ in range(rng.randint(2, 8))) + rng.choice(["", "<|endoftext|>"])
            elif kind == 1:
                yield glued()
            elif kind == 2:
                yield ("<|vision_start|>" + "<|image_pad|>" * rng.randint(1, 64) + "<|vision_end|>" + text())
            else:
                yield ("<|repo_name|>octet\n<|file_sep|>main.py\n<|fim_prefix|>" + text() + "<|fim_suffix|>"
                       + text() + "<|fim_middle|>")

    docs = []
    _take(docs, "chat", texts(), budget)
    return docs


# --- all --------------------------------------------------------------------------------------------------------

def build_corpus():
    """[(label, text)]: every part, in a fixed order.

    Some faker providers pick from sets, whose order follows the string hash seed; the corpus is therefore built
    in a child interpreter with PYTHONHASHSEED=0 unless this one already runs with it.
    """
    if os.environ.get("PYTHONHASHSEED") == "0":
        return _build_corpus()
    import json
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.json")
        subprocess.run([sys.executable, os.path.abspath(__file__), "--json", path], check=True,
                       env=dict(os.environ, PYTHONHASHSEED="0"), stdout=subprocess.DEVNULL)
        with open(path, encoding="utf-8") as f:
            return [tuple(doc) for doc in json.load(f)]


def _build_corpus():
    docs = []
    docs += code_docs(CODE_BYTES)
    docs += faker_docs(FAKER_BYTES)
    docs += nfd_docs(NFD_BYTES)
    docs += marks_docs(MARKS_BYTES)
    docs += emoji_docs(EMOJI_BYTES)
    docs += whitespace_docs(WHITESPACE_BYTES)
    docs += chat_docs(CHAT_BYTES)
    for label, text in docs:
        assert "\0" not in text, label
    return docs


def write_corpus(docs, path):
    """NUL-separated UTF-8 documents, the input format of tokenize_file."""
    with open(path, "wb") as f:
        f.write(b"\0".join(text.encode("utf-8") for _, text in docs))


def summary(docs, by_locale=True):
    """{part: (documents, bytes)}: code, faker (or faker:<locale> each), nfd, marks, emoji, whitespace, chat."""
    parts = {}
    for label, text in docs:
        part = label.split(":")[0].split("#")[0]
        if part == "faker" and by_locale:
            part = label.split("#")[0]
        n, b = parts.get(part, (0, 0))
        parts[part] = (n + 1, b + _size(text))
    return parts


def main():
    import argparse
    import json
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="write the documents here, NUL-separated (tokenize_file's input)")
    parser.add_argument("--json", help="write [[label, text], ...] here")
    args = parser.parse_args()
    docs = build_corpus()
    if args.out:
        write_corpus(docs, args.out)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(docs, f, ensure_ascii=False)
    total = 0
    for part, (n, b) in summary(docs).items():
        print("%-16s %6d docs %10d bytes" % (part, n, b))
        total += b
    print("total %d documents, %d bytes (%.2f MiB)" % (len(docs), total, total / MIB))


if __name__ == "__main__":
    main()
