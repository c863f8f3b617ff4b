#!/usr/bin/env python3
"""Streams a completion from an octet router to stdout.

    python client/python/examples/complete.py --addr 127.0.0.1:50051 --max-tokens 64 "def fibonacci(n):"

The API key, if the router wants one, comes from $OCTET_API_KEY.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from octet_client import Chunk, Client, OctetError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", help="the prompt")
    parser.add_argument("--addr", default="127.0.0.1:50051", help="router (or worker) address")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens to generate at most")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    parser.add_argument("--tls-ca", help="PEM CA certificates: connect over TLS and check the server against them")
    args = parser.parse_args()

    last: Optional[Chunk] = None
    try:
        with Client(args.addr, api_key=os.environ.get("OCTET_API_KEY") or None, tls_ca=args.tls_ca) as client:
            for chunk in client.stream(args.prompt, max_tokens=args.max_tokens, temperature=args.temperature):
                print(chunk.text, end="", flush=True)
                last = chunk
    except OctetError as e:
        print(f"complete.py: {e}", file=sys.stderr)
        return 1
    print()
    if last is not None and last.usage is not None:  # the last message carries the finish reason and the token counts
        print(f"[{last.finish_reason}: {last.usage.prompt_tokens} prompt + {last.usage.completion_tokens} completion "
              "tokens]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
