"""Registry of `ssevsws` subcommands other than `serve` (each module adds its parser)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # noqa: ARG001 - filled in as commands land
    """Add every subcommand's parser to `sub`; each sets `func` via set_defaults."""
