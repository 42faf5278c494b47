"""The load generator's collector settings (loadtests.gctune): applied, and cycles still go."""

from __future__ import annotations

import gc
import weakref

from loadtests import gctune


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_tune_freezes_and_sets_the_thresholds_and_cycles_are_still_collected() -> None:
    before = gc.get_threshold()
    try:
        gctune.tune()
        assert gc.get_threshold() == gctune.THRESHOLDS
        assert gc.get_freeze_count() > 0
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        # more live containers than the young threshold: the collector runs by itself
        keep = [[] for _ in range(gctune.THRESHOLDS[0] + 100)]
        assert gone() is None and len(keep) > gctune.THRESHOLDS[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
