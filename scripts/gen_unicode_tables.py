#!/usr/bin/env python3
"""Generates worker/tokenizer/unicode_tables.cc from the Unicode Character Database, via Python.

The tokenizer's pre-tokenizer regexes need \\p{L}, \\p{N}, \\p{M} (only Qwen3.5's pattern) and \\s (White_Space) over
all code points, and the NFC normalizer needs canonical combining classes, full canonical decompositions, primary
composites and the NFC quick-check property. Both are chosen to agree exactly with Hugging Face tokenizers 0.22,
octet's reference:

  * character classes: Unicode 16.0, the version of the Oniguruma inside tokenizers 0.22 (verified over every
    code point by tests/worker/tokenizer/unicode_test.cc against tests/fixtures/tokenizer/onig_classes.json, and
    \\p{M} with the others by tests/worker/tokenizer/qwen3_5_tokenizer_test.py against Oniguruma itself);
  * NFC: Unicode 9.0, the version of the tables in the Rust crate unicode-normalization-alignments that HF's NFC
    normalizer uses. Characters assigned later are, as there, starters that neither decompose nor compose.
    The Unicode 9.0 data is the 16.0 data of the characters whose Age is <= 9.0 (combining classes and
    decomposition mappings of assigned characters never change: Unicode's normalization stability policy).

The data comes from `unicodedataplus` 16.0.0.post1 (a drop-in unicodedata from PyPI with the Age property; the
standard library has no Age, and Python 3.11's own unicodedata is Unicode 14.0). Rerunning gives a byte-identical
file:

    python3 -m venv /tmp/ucd && /tmp/ucd/bin/pip install unicodedataplus==16.0.0.post1
    /tmp/ucd/bin/python scripts/gen_unicode_tables.py           # rewrites worker/tokenizer/unicode_tables.cc
    /tmp/ucd/bin/python scripts/gen_unicode_tables.py --check   # exits 1 if the committed file is stale
"""

import argparse
import os
import sys

try:
    import unicodedataplus as ucd
except ImportError:
    sys.exit("gen_unicode_tables.py needs unicodedataplus==16.0.0.post1 (pip install unicodedataplus==16.0.0.post1)")

UCD_VERSION = "16.0.0"   # Oniguruma's in tokenizers 0.22: the character classes
NFC_AGE_LIMIT = (9, 0)   # unicode-normalization-alignments' tables in tokenizers 0.22: NFC

MAX_CP = 0x10FFFF
HANGUL_S_BASE, HANGUL_S_COUNT = 0xAC00, 11172
HANGUL_V_FIRST, HANGUL_V_LAST = 0x1161, 0x1175
HANGUL_T_FIRST, HANGUL_T_LAST = 0x11A8, 0x11C2

# White_Space from PropList.txt (unchanged since Unicode 6.3); used to check the derivation below.
WHITE_SPACE_PROPLIST = (
    [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


def all_code_points():
    for cp in range(MAX_CP + 1):
        if 0xD800 <= cp <= 0xDFFF:  # surrogates are not scalar values; they never occur in UTF-8 text
            continue
        yield cp


def to_ranges(cps):
    """Sorted code points -> [(first, last)] of maximal consecutive runs."""
    ranges = []
    for cp in cps:
        if ranges and ranges[-1][1] + 1 == cp:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return ranges


def is_white_space(ch):
    # Oniguruma's \s and Rust's char::is_whitespace are the White_Space property, which equals
    # Zs | Zl | Zp | U+0009..U+000D | U+0085. (Python's str.isspace() also accepts U+001C..U+001F: not used.)
    cp = ord(ch)
    return ucd.category(ch) in ("Zs", "Zl", "Zp") or 0x09 <= cp <= 0x0D or cp == 0x85


def in_nfc_tables(ch):
    """Whether the NFC tables know the character (assigned by Unicode 9.0)."""
    age = ucd.age(ch)
    return age != "Unassigned" and tuple(int(x) for x in age.split(".")) <= NFC_AGE_LIMIT


def canonical_decomposition_1(ch):
    """One level of the canonical decomposition mapping, or None (compatibility mappings start with '<')."""
    d = ucd.decomposition(ch)
    if not d or d.startswith("<"):
        return None
    return [int(x, 16) for x in d.split()]


def build():
    if ucd.unidata_version != UCD_VERSION:
        sys.exit("unicodedataplus has Unicode %s, want %s" % (ucd.unidata_version, UCD_VERSION))
    letters, numbers, marks, spaces = [], [], [], []
    ccc_runs = []  # [first, last, ccc] for ccc != 0
    decompositions = []  # (cp, [full canonical decomposition])
    compositions = []  # (first, second, composite)
    not_yes = set()  # NFC_QC = No or Maybe

    second_of_pair = set(range(HANGUL_V_FIRST, HANGUL_V_LAST + 1)) | set(range(HANGUL_T_FIRST, HANGUL_T_LAST + 1))
    for cp in all_code_points():
        ch = chr(cp)
        cat = ucd.category(ch)
        if cat[0] == "L":
            letters.append(cp)
        elif cat[0] == "N":
            numbers.append(cp)
        elif cat[0] == "M":
            marks.append(cp)
        if is_white_space(ch):
            spaces.append(cp)
        if not in_nfc_tables(ch):
            continue
        ccc = ucd.combining(ch)
        if ccc:
            if ccc_runs and ccc_runs[-1][1] + 1 == cp and ccc_runs[-1][2] == ccc:
                ccc_runs[-1][1] = cp
            else:
                ccc_runs.append([cp, cp, ccc])
        if HANGUL_S_BASE <= cp < HANGUL_S_BASE + HANGUL_S_COUNT:
            continue  # Hangul syllables decompose and compose algorithmically
        nfd = ucd.normalize("NFD", ch)
        if nfd != ch:
            decompositions.append((cp, [ord(c) for c in nfd]))
        if ucd.normalize("NFC", ch) != ch:
            not_yes.add(cp)  # NFC_QC=No: never occurs in NFC text
        one = canonical_decomposition_1(ch)
        if one is not None and len(one) == 2 and ucd.normalize("NFC", ch) == ch:
            compositions.append((one[0], one[1], cp))  # a primary composite: not excluded from composition
            second_of_pair.add(one[1])
    # NFC_QC=Maybe: characters that may compose with a preceding one. No and Maybe force the slow path.
    not_yes |= second_of_pair

    assert spaces == sorted(WHITE_SPACE_PROPLIST), "White_Space derivation no longer matches PropList.txt"
    compositions.sort(key=lambda t: (t[0] << 21) | t[1])
    return dict(letters=to_ranges(letters), numbers=to_ranges(numbers), marks=to_ranges(marks),
                spaces=to_ranges(spaces),
                ccc=ccc_runs, decompositions=decompositions, compositions=compositions,
                qc_not_yes=to_ranges(sorted(not_yes)))


def fmt_rows(items, per_line, indent="    "):
    lines = []
    for i in range(0, len(items), per_line):
        lines.append(indent + " ".join(items[i:i + per_line]))
    return "\n".join(lines)


def render(t):
    out = []
    w = out.append
    w("// GENERATED by scripts/gen_unicode_tables.py from unicodedataplus (Unicode %s). DO NOT EDIT." % UCD_VERSION)
    w("// Character classes: Unicode %s; NFC data: characters assigned by Unicode %d.%d (the script says why)."
      % ((UCD_VERSION,) + NFC_AGE_LIMIT))
    w("// Data tables are exempt from the file-length guideline: they are one concern, read only by unicode.cc/nfc.cc.")
    w("// clang-format off")
    w('#include "worker/tokenizer/unicode_tables.h"')
    w("")
    w("namespace octet::unicode_tables {")
    w("namespace {")
    w("")

    def ranges(name, rs, comment):
        w("// %s (%d ranges)." % (comment, len(rs)))
        w("constexpr CodePointRange %s[] = {" % name)
        w(fmt_rows(["{0x%X, 0x%X}," % (a, b) for a, b in rs], 6))
        w("};")
        w("")

    ranges("kLetters", t["letters"], "General_Category L (Lu Ll Lt Lm Lo): regex \\p{L}")
    ranges("kNumbers", t["numbers"], "General_Category N (Nd Nl No): regex \\p{N}")
    ranges("kMarks", t["marks"], "General_Category M (Mn Mc Me): regex \\p{M}")
    ranges("kWhiteSpace", t["spaces"], "White_Space: regex \\s")
    ranges("kNfcQcNotYes", t["qc_not_yes"], "NFC_Quick_Check No or Maybe")

    w("// Canonical_Combining_Class runs, non-zero classes only (%d runs)." % len(t["ccc"]))
    w("constexpr CombiningClassRange kCombiningClasses[] = {")
    w(fmt_rows(["{0x%X, 0x%X, %d}," % (a, b, c) for a, b, c in t["ccc"]], 5))
    w("};")
    w("")

    data, entries = [], []
    for cp, seq in t["decompositions"]:
        entries.append("{0x%X, %d, %d}," % (cp, len(data), len(seq)))
        data.extend(seq)
    assert len(data) < 65536 and max(len(s) for _, s in t["decompositions"]) < 256
    w("// Full canonical decompositions (Hangul syllables excluded: algorithmic), %d entries." % len(entries))
    w("constexpr Decomposition kDecompositions[] = {")
    w(fmt_rows(entries, 5))
    w("};")
    w("constexpr char32_t kDecompositionData[] = {")
    w(fmt_rows(["0x%X," % c for c in data], 10))
    w("};")
    w("")

    w("// Primary composites keyed by (first << 21) | second, sorted (%d pairs)." % len(t["compositions"]))
    w("constexpr Composition kCompositions[] = {")
    w(fmt_rows(["{0x%XULL, 0x%X}," % ((a << 21) | b, c) for a, b, c in t["compositions"]], 4))
    w("};")
    w("")
    w("}  // namespace")
    w("")
    w('const char kClassesUnicodeVersion[] = "%s";' % UCD_VERSION)
    w('const char kNfcUnicodeVersion[] = "%d.%d.0";' % NFC_AGE_LIMIT)
    w("")
    for fn, arr, typ in (("Letters", "kLetters", "CodePointRange"), ("Numbers", "kNumbers", "CodePointRange"),
                         ("Marks", "kMarks", "CodePointRange"),
                         ("WhiteSpace", "kWhiteSpace", "CodePointRange"),
                         ("NfcQcNotYes", "kNfcQcNotYes", "CodePointRange"),
                         ("CombiningClasses", "kCombiningClasses", "CombiningClassRange"),
                         ("Decompositions", "kDecompositions", "Decomposition"),
                         ("DecompositionData", "kDecompositionData", "char32_t"),
                         ("Compositions", "kCompositions", "Composition")):
        w("absl::Span<const %s> %s() { return %s; }" % (typ, fn, arr))
    w("")
    w("}  // namespace octet::unicode_tables")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(root, "worker", "tokenizer", "unicode_tables.cc"))
    args = parser.parse_args()
    text = render(build())
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            if f.read() != text:
                print("%s is stale; rerun scripts/gen_unicode_tables.py" % args.out, file=sys.stderr)
                return 1
        return 0
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s (classes: Unicode %s, NFC: Unicode %d.%d)" % ((args.out, UCD_VERSION) + NFC_AGE_LIMIT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
