"""One GitHub-flavoured Markdown table writer for every report the project writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any


def md_table(
    header: Sequence[Any], rows: Iterable[Sequence[Any]], fmt: Callable[[Any], str] = str
) -> str:
    """Header, separator and one line per row; cells through `fmt` (default str), pipes
    escaped and newlines flattened so a cell never breaks the table."""

    def cell(x: Any, f: Callable[[Any], str]) -> str:
        return f(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h, str) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cell(c, fmt) for c in r) + " |" for r in rows]
    return "\n".join(lines)
