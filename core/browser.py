"""Where the real browser is and how it is started: Debian's chromium.

Both browser users share this: the C7 check of the orchestrator (`bench.browser`, a wave
of EventSources through a proxy, driven by Playwright) and the browser load generator
(`loadtests.browser`, which runs whole phases in Chromium pages and starts Chromium itself).
It only looks at the file system and the installed packages; nothing here starts a process.

`chromium_available()` (the load generator) and `browser_available()` (chromium and
Playwright: the C7 check, the tests that drive a page) say why not when something is
missing: callers skip with that reason (the phase is recorded as skipped), never fake a
browser.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV_CHROMIUM = "SSEVSWS_CHROMIUM"
#: Headless, no sandbox (root in CI), and no background traffic: the machine's network is
#: closed and Chromium's own connections would only add noise.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
#: Chromium's per-host connection limit for HTTP/1.1 (net::ClientSocketPoolManager).
BROWSER_H1_LIMIT = 6
INSTALL_HINT = "install chromium as root (`make system-deps`) or set SSEVSWS_CHROMIUM"


def find_chromium() -> Path | None:
    """$SSEVSWS_CHROMIUM > chromium / chromium-browser on PATH > /usr/bin/chromium."""
    for cand in (os.environ.get(ENV_CHROMIUM), "chromium", "chromium-browser"):
        if not cand:
            continue
        found = shutil.which(cand)
        if found:
            return Path(found)
    fallback = Path("/usr/bin/chromium")
    return fallback if fallback.exists() else None


def chromium_available() -> tuple[bool, str]:
    """(True, "chromium <path>") or (False, why)."""
    chromium = find_chromium()
    if chromium is None:
        return False, f"chromium not found: {INSTALL_HINT}"
    return True, f"chromium {chromium}"


def browser_available() -> tuple[bool, str]:
    """(True, "chromium <path>, playwright <version>") or (False, why)."""
    ok, why = chromium_available()
    if not ok:
        return False, why
    chromium = find_chromium()
    try:
        from importlib.metadata import version

        import playwright.async_api  # noqa: F401

        pw = version("playwright")
    except ImportError as e:
        return False, f"playwright not importable ({e}): `make setup` installs it"
    return True, f"chromium {chromium}, playwright {pw}"
