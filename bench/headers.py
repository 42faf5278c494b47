"""`--header 'Name: value'` for `ssevsws run`: syntax, environment variables, redaction.

A value may name environment variables as ``${NAME}``, expanded from the runner's
environment when the run starts — so an API key is written as
``--header 'Authorization: Bearer ${OPENAI_API_KEY}'`` (single quotes: the shell leaves it
alone, and the key is in neither the shell history nor ``ps``). A ``$`` not followed by
``{`` is kept as it is. Header values never reach the run folder: the resolved pairs go to
the load processes in $SSEVSWS_HEADERS only, and the manifest (the command line included)
shows each value as ``<redacted>``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

#: RFC 9110 field name: a token (tchar+).
_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REDACTED = "<redacted>"
#: Headers the clients write themselves: a --header cannot replace them.
RESERVED = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade"}
    | {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"}
)


class HeaderError(ValueError):
    """A --header that cannot be used (the message names it; one line)."""


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` → (name, value template); HeaderError for bad syntax."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _NAME.match(name):
        raise HeaderError(f"--header {name or text!r}: expected 'Name: value'")
    if name.lower() in RESERVED:
        raise HeaderError(f"--header {name}: the client writes this header itself")
    if any(c in value for c in "\r\n\0"):
        raise HeaderError(f"--header {name}: the value has a line break or NUL")
    return name, value


def resolve(name: str, template: str, env: Mapping[str, str] | None = None) -> str:
    """The value with every ``${VAR}`` replaced from `env` (default: the environment);
    HeaderError naming a variable that is not set or empty."""
    env = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        value = env.get(m.group(1))
        if not value:
            raise HeaderError(f"--header {name}: environment variable {m.group(1)} is not set")
        return value

    value = _VAR.sub(sub, template)
    if any(c in value for c in "\r\n\0"):
        raise HeaderError(f"--header {name}: the value has a line break or NUL")
    return value


def parse_headers(
    texts: Sequence[str], env: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Every --header resolved: [(name, value)]; HeaderError for the first bad one (a name
    given twice included)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for text in texts:
        name, template = parse_header(text)
        if name.lower() in seen:
            raise HeaderError(f"--header {name}: given twice")
        seen.add(name.lower())
        out.append((name, resolve(name, template, env)))
    return out


def describe(texts: Sequence[str]) -> list[dict[str, object]]:
    """What the manifest says of the headers: names, values redacted, the variables read."""
    out: list[dict[str, object]] = []
    for text in texts:
        name, template = parse_header(text)
        out.append({"name": name, "value": REDACTED, "from_env": _VAR.findall(template)})
    return out


def _is_header_flag(arg: str) -> bool:
    """--header or an abbreviation argparse takes for it (--hea, --head, …)."""
    return len(arg) >= 5 and "--header".startswith(arg)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """The command line with every --header value replaced by <redacted>."""
    out: list[str] = []
    after_flag = False
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if after_flag:
            out.append(f"{arg.partition(':')[0].strip()}: {REDACTED}")
            after_flag = False
        elif _is_header_flag(arg):
            out.append(arg)
            after_flag = True
        elif eq and _is_header_flag(flag):
            out.append(f"{flag}={value.partition(':')[0].strip()}: {REDACTED}")
        else:
            out.append(arg)
    return out
