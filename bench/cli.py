"""`ssevsws` — the project's one console script.

Each subcommand lives in its own module and registers itself via `add_parser(sub)`;
this file only wires them together. `serve` starts a reference server as
`python -m servers …` so that bench never imports servers (docs/architecture.md: the
arrows between rooms).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _serve(argv: Sequence[str]) -> int:
    """Replace this process by the server process (signals and exit code pass through)."""
    args = [sys.executable, "-m", "servers", *argv]
    os.execv(sys.executable, args)
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        return _serve(argv[1:])
    parser = argparse.ArgumentParser(
        prog="ssevsws", description="SSE vs WebSocket token-streaming benchmark harness"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run a reference server: serve {sse,ws,ws-websockets} --port P")
    from bench import commands

    commands.register(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
