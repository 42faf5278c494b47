"use strict";
// The page half of the browser load generator (loadtests/browser, README there).
//
// Runs the users of this page — sessions of turns with think time, cancels, client aborts —
// over one client (client_*.js: EventSource, fetch, WebSocket) and keeps what each stream
// saw until the harness collects it with drain(). Every time is the page clock
// performance.timeOrigin + performance.now() (ms), read as each event is handled; the
// harness maps it onto its monotonic clock (core/clock_sync.py) from clockSync() round
// trips. The harness calls init / resolution / clockSync / start / stop / hardStop / drain
// over the page's control socket (at the end of this file).
//
// This file is the same for every client, so none of it counts as a client's recovery code.

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

// name -> {protocol, session(user, cfg) -> Session}; filled by the client_*.js files.
// A Session: prepare() (connect before the clock starts), stream(run) -> {cancel(mode),
// abort(), stop()}, idle(ms), close().
const CLIENTS = {};

const OK = "ok", CANCELLED = "cancelled", ABORTED = "aborted", DROPPED = "dropped";
const ERROR = "error", TIMEOUT = "timeout", STOPPED = "stopped";

// One connection (a WebSocket) or one HTTP request (EventSource / fetch: the TCP connection
// under a request is not visible to a page), as events the harness replays into
// core.accounting.ConnectionAccount.
class ConnRecord {
  constructor(uid, user, t) {
    this.uid = uid;
    this.user = user;
    this.events = [["connect", t]];
    this.bytesIn = 0;
    this.bytesOut = 0;
    this.closed = false;
    H.conns.push(this);
  }
  opened(t) { this.events.push(["open", t]); }
  streamStarted(t) { this.events.push(["start", t]); }
  streamEnded(t) { this.events.push(["end", t]); }
  close(t, by, code, reason) {
    if (this.closed) return;
    this.closed = true;
    this.events.push(["close", t, by, code ?? null, reason ?? null]);
  }
  record() {
    return { uid: this.uid, user: this.user, events: this.events,
             bytes_in: this.bytesIn, bytes_out: this.bytesOut };
  }
}

// What one stream saw, across reconnects (core.accounting.StreamAccount's inputs).
class StreamRun {
  constructor(user, session, turn, k, tSched, cancel, nTokens) {
    const c = H.cfg;
    this.user = user;
    this.session = session;
    this.turn = turn;
    this.k = k;
    this.id = `${c.phase_seed}.${c.worker_index}.${user.index}.${session}.${turn}`;
    this.params = { ...c.stream, tokens: nTokens, seed: c.phase_seed + k, stream: this.id };
    this.tSched = tSched;
    this.tSend = null;
    this.tOpen = null;
    this.conn = null;
    this.reused = null;
    this.status = null;
    this.tokens = [];  // flat: t, payload, t, payload, ...
    this.seen = new Set();
    this.lastSeq = -1;
    this.drops = [];
    this.reconnects = 0;
    this.bytesIn = 0;
    this.doneInfo = null;
    this.outcome = null;
    this.error = null;
    this.tEnd = null;
    const b = c.behaviour;
    this.cancelAt = cancel ? b.cancel_after : null;
    this.abortAt = b.client_abort_after > 0 ? b.client_abort_after : null;
    this.handle = null;
    this.ended = new Promise((resolve) => { this._resolve = resolve; });
  }
  get finished() { return this.outcome !== null; }
  // --- what a client reports
  sent(t) { if (this.tSend === null) this.tSend = t; }
  opened(t, conn, status, reused) {
    if (this.tOpen === null) { this.tOpen = t; this.conn = conn; this.reused = reused; }
    if (status != null) this.status = status;
  }
  token(payload, t) {
    if (this.finished) return;  // after a cancel: the rest of the stream is nobody's
    this.tokens.push(t, payload);
    const seq = JSON.parse(payload).i;
    this.seen.add(seq);
    this.lastSeq = seq;
    if (this.cancelAt !== null && this.seen.size >= this.cancelAt) {
      this.cancelAt = null;
      this.finish(t, CANCELLED);
      this.handle.cancel(H.cfg.behaviour.cancel_mode);
    } else if (this.abortAt !== null && this.seen.size >= this.abortAt) {
      this.abortAt = null;  // once per stream, like one network failure
      this.handle.abort(t);
    }
  }
  bytes(n) { this.bytesIn += n; }
  done(summary, t) { this.doneInfo = { count: summary.count, sha256: summary.sha256 }; this.finish(t, OK); }
  failed(status, error, t) { if (status != null) this.status = status; this.finish(t, ERROR, error); }
  // The connection carrying the stream went away before done (server drop, network cut,
  // or the page's own abort). True when the scenario lets the client reconnect and resume
  // (behaviour.resume, max_reconnects); otherwise the stream ends here as `outcome`
  // (dropped, or aborted after the page's own abort).
  dropped(t, reason, outcome = DROPPED) {
    if (this.finished) return false;
    this.drops.push(t);
    const b = H.cfg.behaviour;
    if (b.resume && this.reconnects < b.max_reconnects) return true;
    this.finish(t, outcome, reason);
    return false;
  }
  // The same for a client that never resumes: the stream ends with the drop.
  lost(t, reason, outcome = DROPPED) {
    if (this.finished) return;
    this.drops.push(t);
    this.finish(t, outcome, reason);
  }
  reconnecting() { this.reconnects += 1; }
  finish(t, outcome, error = null) {
    if (this.outcome !== null) return;
    this.outcome = outcome;
    this.tEnd = t;
    this.error = error;
    this._resolve();
  }
  // The harness ends it (phase hard stop, stream timeout): record first, then close.
  stop(outcome, error) {
    if (this.finished) return;
    this.finish(now(), outcome, error);
    if (this.handle !== null) this.handle.stop();
  }
  record() {
    return {
      user: this.user.index, session: this.session, turn: this.turn, k: this.k, id: this.id,
      seed: this.params.seed, n_tokens: this.params.tokens, t_sched: this.tSched, t_send: this.tSend, t_open: this.tOpen,
      conn: this.conn, reused: this.reused, status: this.status, tokens: this.tokens,
      drops: this.drops, reconnects: this.reconnects, bytes_in: this.bytesIn,
      done: this.doneInfo, outcome: this.outcome, error: this.error, t_end: this.tEnd,
    };
  }
}

async function runTurn(user, session, sessionNo, turn, tSched, cancel, nTokens) {
  const k = user.streams++;
  const run = new StreamRun(user, sessionNo, turn, k, tSched, cancel, nTokens);
  H.inflight.add(run);
  const b = H.cfg.behaviour;
  const timer = setTimeout(
    () => run.stop(TIMEOUT, `no done within ${b.stream_timeout_s} s`), b.stream_timeout_s * 1000);
  try {
    await session.prepare();
    if (run.finished) return;  // stopped (or timed out) while connecting: never sent
    run.handle = session.stream(run);
    await run.ended;
  } catch (e) {
    run.finish(now(), ERROR, String(e && e.message || e));
  } finally {
    clearTimeout(timer);
    H.inflight.delete(run);
    H.streams.push(run.record());
  }
}

async function runSession(user, tSched) {
  const c = H.cfg;
  const sessionNo = user.sessions++;
  const session = CLIENTS[c.client].session(user, c);
  try {
    for (let turn = 0; turn < c.session.turns; turn++) {
      if (turn && H.stopping) break;
      const draw = user.draws[user.streams];
      if (draw === undefined) throw new Error(`user ${user.index}: out of pre-drawn turns`);
      const [cancel, think, nTokens] = draw;
      await runTurn(user, session, sessionNo, turn, turn === 0 && tSched !== null ? tSched : now(), cancel, nTokens);
      if (turn + 1 < c.session.turns && think > 0) await session.idle(think * 1000);
    }
  } finally {
    session.close();
  }
}

// Sleep until page time `t`, in naps, returning early once the phase is stopping.
async function napUntil(t) {
  let wait;
  while ((wait = t - now()) > 0 && !H.stopping) await sleep(Math.min(wait, 250));
}

async function runUser(user) {
  const c = H.cfg;
  const limit = c.session.sessions_per_user;
  for (const [a, b] of user.windows) {
    const end = H.t0 + b;
    await napUntil(H.t0 + a);
    let due = H.t0 + a;
    while (!H.stopping && now() < end) {
      if (limit && user.sessions >= limit) return;
      let tSched = null;
      if (user.arrivals !== null) {  // open model: sessions at pre-drawn Poisson gaps
        const gap = user.arrivals[user.nextArrival++];
        if (gap === undefined) throw new Error(`user ${user.index}: out of pre-drawn arrivals`);
        due += gap * 1000;
        await napUntil(due);
        if (H.stopping || now() >= end) return;
        tSched = due;
      }
      await runSession(user, tSched);
    }
  }
}

const H = {
  cfg: null,
  t0: null,
  stopping: false,
  inflight: new Set(),
  streams: [],  // finished stream records, until drained
  conns: [],  // connection records (closed ones leave at drain)
  errors: [],
  usersRunning: 0,

  init(cfg) {
    if (!(cfg.client in CLIENTS)) throw new Error(`unknown client ${cfg.client}`);
    H.cfg = cfg;
    return { client: cfg.client, cross_origin_isolated: self.crossOriginIsolated,
             time_origin: performance.timeOrigin, user_agent: navigator.userAgent };
  },

  // The smallest step performance.now() takes here (ms): Chromium coarsens it to 100 µs,
  // or 5 µs in a cross-origin-isolated page (this one, COOP + COEP), with jitter.
  resolution(steps = 200) {
    let last = performance.now(), best = Infinity, seen = 0;
    for (let i = 0; i < 10000000 && seen < steps; i++) {
      const t = performance.now();
      if (t !== last) { best = Math.min(best, t - last); last = t; seen++; }
    }
    return best;
  },

  // Round trips to the harness's clock (a WebSocket answering its monotonic ns):
  // [[a_ms, "h_ns", b_ms], ...] for core.clock_sync.estimate.
  async clockSync(url, n) {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("clock socket failed")); });
    const out = [];
    for (let i = 0; i < n; i++) {
      const got = new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
      const a = now();
      ws.send("t");
      const h = await got;
      const b = now();
      out.push([a, h, b]);
      await sleep(1);
    }
    ws.close();
    return out;
  },

  // The page clock now (ms).
  now() { return now(); },

  // Start every user of this page; `t0` is the phase start on the page clock.
  start(t0, users) {
    H.t0 = t0;
    for (const u of users) {
      const user = { ...u, sessions: 0, streams: 0, nextArrival: 0 };
      H.usersRunning++;
      runUser(user)
        .catch((e) => H.errors.push(`user ${u.index}: ${e && e.message || e}`))
        .finally(() => { H.usersRunning--; });
    }
    return now();
  },

  // Soft stop: no new turn or session; streams in flight finish.
  stop() { H.stopping = true; return H.inflight.size; },

  // Hard stop: every stream still in flight ends now as "stopped".
  hardStop() {
    H.stopping = true;
    for (const run of [...H.inflight]) run.stop(STOPPED, "stopped by the load generator");
    return H.inflight.size;
  },

  // What finished since the last call, and the page's state now.
  drain() {
    const streams = H.streams;
    H.streams = [];
    const conns = H.conns.filter((c) => c.closed).map((c) => c.record());
    H.conns = H.conns.filter((c) => !c.closed);
    const errors = H.errors;
    H.errors = [];
    return { streams, conns, errors, inflight: H.inflight.size, open_conns: H.conns.length,
             users_running: H.usersRunning, t: now() };
  },

  // Connections still open (end of phase): recorded as closed now by the client.
  closeOpenConns() {
    const t = now();
    for (const c of H.conns) c.close(t, "client", null, "end of phase");
  },
};
self.ssevsws = H;

// POST the cancel endpoint with the secret the stream's response carried (X-Cancel-Secret,
// a header: the browser preflights it, once per origin); fire and forget.
function postCancel(base, id, secret) {
  fetch(`${base}/v1/streams/${encodeURIComponent(id)}/cancel`,
        { method: "POST", headers: { "X-Cancel-Secret": secret || "" } }).catch(() => {});
}

// The harness's line to this page (opened as /?page=N by loadtests/browser: no DevTools
// client is attached): {id, method, args} → ssevsws[method](...args) → {id, result|error}.
// Uncaught errors are pushed as {event: "error", text}. Opened once every script of the
// page has run (DOMContentLoaded), so no call can arrive before the clients exist.
self.addEventListener("DOMContentLoaded", () => {
  const page = new URLSearchParams(location.search).get("page");
  if (page === null) return;
  const ws = new WebSocket(`ws://${location.host}/control?page=${encodeURIComponent(page)}`);
  const push = (text) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event: "error", text })); };
  self.addEventListener("error", (e) => push(`uncaught: ${e.message}`));
  self.addEventListener("unhandledrejection", (e) => push(`unhandled rejection: ${e.reason}`));
  ws.onmessage = async (e) => {
    const { id, method, args } = JSON.parse(e.data);
    try {
      const result = await H[method](...(args || []));
      ws.send(JSON.stringify({ id, result: result === undefined ? null : result }));
    } catch (err) {
      ws.send(JSON.stringify({ id, error: String((err && err.message) || err) }));
    }
  };
});
