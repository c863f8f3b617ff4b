"""Writes a held-out text for `octet eval` on the bundled model: an installed package's Python sources.

models/qwen3_5-code-small never saw click, jinja2, requests or yaml (models/README.md). This joins every *.py of one
such package, sorted by path, each file followed by <|endoftext|> exactly as the training script built its held-out
stream (files over 1 MB, unreadable or blank ones skipped), so `octet eval` tokenizes it into the same kind of stream.

    .venv/bin/python bench/data/make_heldout.py                      # requests -> bench/data/heldout.txt
    .venv/bin/python bench/data/make_heldout.py --package click --out /tmp/click.txt
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import pathlib
import sys

HELD_OUT = ("click", "jinja2", "requests", "yaml")
EOT = "<|endoftext|>"
MAX_FILE_BYTES = 1_000_000


def package_dir(name: str) -> pathlib.Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"make_heldout: package {name} is not installed in {sys.prefix} (pip install {name})")
    return pathlib.Path(next(iter(spec.submodule_search_locations)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default="requests", choices=HELD_OUT)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "heldout.txt"))
    args = parser.parse_args()

    base = package_dir(args.package)
    rels = sorted(os.path.relpath(os.path.join(d, f), base.parent)
                  for d, _, files in os.walk(base) for f in files if f.endswith(".py"))
    parts = []
    for rel in rels:
        path = base.parent / rel
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text.strip():
            parts.append(text + EOT)
    try:
        version = importlib.metadata.version(args.package if args.package != "yaml" else "pyyaml")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    data = "".join(parts).encode("utf-8")
    pathlib.Path(args.out).write_bytes(data)
    print(f"make_heldout: {args.package} {version}: {len(parts)} files, {len(data):,} bytes -> {args.out}")


if __name__ == "__main__":
    main()
