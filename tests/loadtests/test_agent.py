"""Agent tool chains on the reference servers, plain and over TLS (the same code Locust
runs), held to the known truth: every turn's transport share — first token − tool result
− the server's scheduled TTFT — is at least the first token's own delivery (client read −
server send stamp) and so never negative; a TLS chain's first turn includes its handshake;
both arms keep one connection (one TLS handshake) for the whole chain."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from analysis.chains import chain_frame, paired_turns, turn_frame
from core.accounting import OK
from core.client.tls import TLSSettings
from core.scenario import SessionSpec, StreamSpec
from core.schedule import StreamParams, offsets_ns
from core.tlscert import make_self_signed_cert

from .conftest import reference, run_user, start_server, stop_server

TURNS = 6
STREAM = StreamSpec(tokens=10, tokens_min=5, ttft_ms=30, gap_ms=2, jitter=0.2)
CHAIN = SessionSpec(turns=TURNS, think_s=0.06, think_min_s=0.02, think_dist="uniform", chain=True)


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """{"plain/sse", "plain/ws", "tls/sse", "tls/ws"} → URL, plus "ca" → the certificate."""
    cert, key = make_self_signed_cert(tmp_path_factory.mktemp("agent-tls"))
    gen = reference()
    plain = next(gen)
    procs, out = [], {f"plain/{a}": plain[a] for a in ("sse", "ws")}
    try:
        for arm in ("sse", "ws"):
            tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
            proc, port = start_server(["-m", "servers", arm, "--port", "{port}", *tls])
            procs.append(proc)
            out[f"tls/{arm}"] = f"{'https' if arm == 'sse' else 'wss'}://127.0.0.1:{port}"
        out["ca"] = str(cert)
        yield out
    finally:
        for p in procs:
            stop_server(p)
        gen.close()


def _chain(urls: dict[str, str], config: str, arm: str) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    tls = TLSSettings(ca_file=urls["ca"]) if config == "tls" else None
    accts, sink = run_user(arm, urls[f"{config}/{arm}"], stream=STREAM, session=CHAIN, tls=tls)
    rows = pd.DataFrame([a.streams_row() for a in accts]).assign(group=config, rep=1)
    conns = pd.DataFrame([c.row() for c in sink.connections])
    return rows, conns, accts


@pytest.mark.parametrize("config", ["plain", "tls"])
def test_chain_transport_share_against_the_schedule(urls, config: str) -> None:
    frames = {}
    for arm in ("sse", "ws"):
        rows, conns, accts = _chain(urls, config, arm)
        assert [a.outcome for a in accts] == [OK] * TURNS and all(a.checksum_ok for a in accts)
        turns = turn_frame(rows)
        # the scheduled TTFT is this stream's own (jittered) first-token offset
        for a, sched in zip(accts, turns["sched_ttft_ms"], strict=True):
            params = StreamParams(
                seed=a.labels.seed, tokens=a.labels.tokens_expected, ttft_ms=30, gap_ms=2,
                jitter=0.2, stream=a.labels.stream_id,
            )  # fmt: skip
            assert sched == offsets_ns(params)[0] / 1e6
        assert turns["sched_ttft_ms"].nunique() > 1  # jitter: a schedule per stream
        # truth: the server sent token 0 no earlier than tool result + scheduled TTFT, so
        # the transport share is at least the first token's delivery, which is >= 0
        first_server = np.array([a.t_server_ns[0] for a in accts], dtype=np.int64)
        first_recv = np.array([a.t_recv_ns[0] for a in accts], dtype=np.int64)
        sched_ns = np.array([a.t_sched_ns for a in accts], dtype=np.int64)
        delivery_ms = (first_recv - first_server) / 1e6
        server_late_ms = (first_server - sched_ns) / 1e6 - turns["sched_ttft_ms"].to_numpy()
        assert (server_late_ms >= -1e-6).all()
        assert (delivery_ms >= 0).all()
        assert (turns["transport_ms"].to_numpy() >= delivery_ms - 1e-6).all()
        assert np.allclose(
            turns["transport_ms"], turns["to_first_ms"] - turns["sched_ttft_ms"], atol=1e-9
        )
        chains = chain_frame(turns, conns, TURNS)
        (c,) = chains.itertuples()
        assert c.complete and c.turns == TURNS and c.connections == 1
        assert c.tls_handshakes == (1 if config == "tls" else 0)
        (conn,) = conns.itertuples()
        if config == "tls":  # turn 0 opened the connection: its handshake is in its share
            handshake_ms = (conn.t_tls_ns - conn.t_tcp_ns) / 1e6
            assert turns.loc[turns["turn"] == 0, "transport_ms"].iloc[0] >= handshake_ms
        frames[arm] = turns
    both = pd.concat(frames.values(), ignore_index=True)
    paired = paired_turns(both, "sse", "ws")
    assert len(paired) == TURNS - 1  # the same chain on both arms: every later turn pairs
