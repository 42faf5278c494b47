"""Progress of a long run: phase k of n, arm, users, elapsed / ETA, live TTFT p50, errors.

On a terminal it is a rich live line under the log lines; otherwise it stays quiet and
the plain one-line-per-phase log is all that is printed (CI logs, pipes).
Live figures are read from the run folder's flushed stream rows — what the analysis
will see — never from Locust's rounded stats.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.runfolder import read_table

POLL_S = 2.0


def live_figures(run_dir: Path, phase: str) -> tuple[int, float | None, int]:
    """(streams, median TTFT in ms, streams that ended in error) of one phase so far."""
    cols = ["phase", "t_send_ns", "t_first_ns", "outcome"]
    s = read_table(run_dir, "streams", columns=cols, dtypes="numpy")
    s = s[s["phase"] == phase]
    ttft = (s["t_first_ns"] - s["t_send_ns"]).to_numpy(dtype=float) / 1e6
    ttft = ttft[np.isfinite(ttft)]
    errors = int((s["outcome"] == "error").sum())
    return len(s), (float(np.median(ttft)) if len(ttft) else None), errors


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


class Progress:
    """Receives Runner hooks (`on_phase`) and log lines (`out`)."""

    def __init__(self, total_s: float, *, enabled: bool | None = None) -> None:
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self.total_s = total_s
        self.t0 = time.monotonic()
        self.info: dict[str, Any] = {}
        self.phase_t0 = self.t0
        self.figures: tuple[int, float | None, int] = (0, None, 0)
        self._stop = threading.Event()
        self._live: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(), refresh_per_second=2)
            self._live.__enter__()
            self._thread = threading.Thread(target=self._poll, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def out(self, line: str) -> None:
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            print(line, flush=True)

    def on_phase(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            self.info = info
            self.phase_t0 = time.monotonic()
            self.figures = (0, None, 0)
        elif event == "end":
            self.info = {**self.info, "done": info.get("index")}

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            info = self.info
            if info.get("run_dir") and info.get("phase"):
                with contextlib.suppress(Exception):  # parts may be mid-rename; next poll
                    self.figures = live_figures(Path(info["run_dir"]), info["phase"])
            if self._live is not None:
                self._live.update(self._render())

    def _render(self) -> Any:
        from rich.text import Text

        elapsed = time.monotonic() - self.t0
        info = self.info
        if not info:
            return Text(f"starting…  elapsed {_clock(elapsed)}")
        eta = max(self.total_s - elapsed, 0)
        n, ttft, errors = self.figures
        ttft_s = f"{ttft:.1f} ms" if ttft is not None else "–"
        return Text(
            f"phase {info['index']}/{info['total']}  {info['phase']}  arm {info['arm']}  "
            f"{info['users']}  elapsed {_clock(elapsed)}  ETA {_clock(eta)}  "
            f"streams {n}  TTFT p50 {ttft_s}  errors {errors}"
        )
