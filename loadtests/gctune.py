"""The load generator's garbage-collector settings: fewer, shorter pauses while it measures.

A collection stops every socket read of the process, so its pause lands in the delivery
latency of whatever tokens arrive meanwhile. With CPython's defaults (700, 10, 10) a
1,000-stream run collected generation 1 every ~0.3 s for up to several ms of CPU (it walks
every object that survived since the last one: transports, accounts, Locust's and gevent's
bookkeeping). So, once the process has imported and set up what it keeps for its whole life:

- `gc.freeze()` moves all of it to the permanent generation, which no collection walks;
- the generation-0 threshold goes to 5,000 allocations (a few hundred per second at
  50,000 tokens/s: tokens are freed by reference counting, never by the collector, so
  what young generations hold is per-stream objects) and older generations are visited
  less often (20 and 1,000 young collections).

Cycles are still collected; only the cadence changes. `tests/loadtests/test_gctune.py`
checks the settings are applied and that cyclic garbage still goes.
"""

from __future__ import annotations

import gc

THRESHOLDS = (5_000, 20, 1_000)


def tune() -> tuple[int, int, int]:
    """Collect, freeze what is alive, set `THRESHOLDS`; the previous thresholds."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return before
