"""analysis.plots: every figure renders from data and from nothing, with fixed arm colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from analysis import metrics as M
from analysis import plots as P
from analysis import resources as R
from tests.analysis.analysis_synth import S, Script, build, frame


@pytest.fixture(scope="module")
def frames():
    fr = build(
        [
            Script(arm="sse", phase="chat/sse/rep1", streams=12, users_target=5),
            Script(arm="ws", phase="chat/ws/rep1", streams=12, users_target=5, delivery_ms=1.0),
            Script(
                arm="ws-websockets", phase="chat/ws-websockets/rep1", streams=12, users_target=5
            ),
        ]
    )
    rows = [
        {
            "t_ns": (10_000 + i) * S,
            "phase": "chat/sse/rep1",
            "arm": "sse",
            "role": "server",
            "pid": 1,
            "cpu_user_s": float(i),
            "cpu_sys_s": 0.0,
            "rss_bytes": 10_000_000 + 9000 * i,
            "connections": i,
        }
        for i in range(5)
    ]
    fr["resources"] = frame("resources", rows)
    return fr


def _figures(fr):
    sm = M.stream_metrics(fr["streams"], fr["connections"])
    return {
        "ttft": P.plot_ttft_cdf(sm),
        "itl": P.plot_itl_cdf(M.token_gaps(fr["tokens"], fr["streams"])),
        "e2e": P.plot_e2e(sm),
        "delivery": P.plot_delivery_cdf(M.delivery_latency(fr["tokens"], fr["streams"])),
        "ramp": P.plot_ramp(M.ramp(fr["streams"], fr["tokens"])),
        "cpu": P.plot_server_cpu(R.server_cpu(fr["resources"], fr["streams"], fr["tokens"])),
        "memory": P.plot_memory_per_connection(R.rss_per_connection(fr["resources"])),
        "bytes": P.plot_bytes_per_token(
            M.bytes_per_token(fr["streams"], fr["tokens"], fr["connections"])
        ),
        "conn": P.plot_connection_time(M.connection_time(fr["connections"], fr["streams"])),
        "outcomes": P.plot_outcomes(fr["streams"]),
    }


def _texts(fig: Figure) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts) + " ".join(
        ax.get_title() for ax in fig.axes
    )


def test_every_plot_returns_a_figure_that_renders(frames, tmp_path):
    for name, fig in _figures(frames).items():
        assert isinstance(fig, Figure), name
        assert P.NOT_MEASURED not in _texts(fig), name
        fig.savefig(tmp_path / f"{name}.png", dpi=50)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_empty_inputs_say_not_measured(frames):
    empty = {k: v.iloc[0:0] for k, v in frames.items()}
    for name, fig in _figures(empty).items():
        assert isinstance(fig, Figure), name
        assert P.NOT_MEASURED in _texts(fig), name
    for fn in (
        P.plot_ttft_cdf,
        P.plot_itl_cdf,
        P.plot_delivery_cdf,
        P.plot_e2e,
        P.plot_ramp,
        P.plot_server_cpu,
        P.plot_memory_per_connection,
        P.plot_bytes_per_token,
        P.plot_connection_time,
        P.plot_outcomes,
    ):
        assert P.NOT_MEASURED in _texts(fn(None))
        assert P.NOT_MEASURED in _texts(fn(pd.DataFrame()))


def test_foreign_server_delivery_plot_says_not_measured():
    fr = build([Script(delivery_ms=None)])
    fig = P.plot_delivery_cdf(M.delivery_latency(fr["tokens"], fr["streams"]))
    assert P.NOT_MEASURED in _texts(fig)


def test_arm_colours_are_fixed(frames):
    fig = P.plot_ttft_cdf(M.stream_metrics(frames["streams"]))
    lines = {
        ln.get_label().split(" ")[0]: to_hex(ln.get_color())
        for ln in fig.axes[0].lines
        if "(n=" in ln.get_label()
    }
    arms = set(frames["streams"]["arm"].astype(object))
    assert lines == {a: c.lower() for a, c in P.ARM_COLORS.items() if a in arms}
    assert len(lines) == len(arms) >= 3
    assert len(set(P.ARM_COLORS.values())) == len(P.ARM_COLORS), "two arms share a colour"
    assert P.arm_color("custom", ["custom"]) == P.arm_color("custom", ["custom", "zz"])
