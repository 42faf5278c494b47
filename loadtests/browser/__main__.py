"""`python -m loadtests.browser`: run the phase in $SSEVSWS_PHASE in Chromium pages.

The browser arms' load generator, with the same contract as the Locust one: the phase's
`core.scenario.PhaseConfig` from $SSEVSWS_PHASE, records through the same part writer into
the run folder, Locust-like exit codes (see loadtests/browser/driver.py). The runner
(bench) starts it instead of Locust when the phase's arm is a browser arm.
"""

from __future__ import annotations

import asyncio
import os
import sys

from core.browser import chromium_available
from core.scenario import PHASE_ENV, PhaseConfig, ScenarioError
from loadtests.browser.driver import EXIT_BROWSER, EXIT_USAGE, BrowserPhase
from loadtests.browser.layout import LayoutError


def main() -> int:
    path = os.environ.get(PHASE_ENV)
    if not path:
        print(f"{PHASE_ENV} is not set: point it at a PhaseConfig JSON", file=sys.stderr)
        return EXIT_USAGE
    try:
        phase = BrowserPhase(PhaseConfig.load(path), out=lambda s: print(s, flush=True))
    except (OSError, ValueError, TypeError, KeyError, ScenarioError, LayoutError) as exc:
        print(f"bad phase config {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ok, why = chromium_available()
    if not ok:
        print(f"browser load generator: {why}", file=sys.stderr)
        return EXIT_BROWSER
    return asyncio.run(phase.run())


if __name__ == "__main__":
    sys.exit(main())
