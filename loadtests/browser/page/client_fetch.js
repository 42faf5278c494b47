"use strict";
// Clients "browser-fetch" and "browser-fetch-noresume": fetch() POSTs a JSON body and reads
// the response's ReadableStream through sse_parser.js — what most LLM web apps do, since
// EventSource can neither POST nor set headers. Nothing reconnects by itself: a cut
// response is simply over. "browser-fetch" resumes by hand: a new POST carrying
// Last-Event-ID, in the lines marked "recovery" (a line ending in `// recovery`, or
// between `// recovery:begin` and `// recovery:end`; counted by loadtests/browser/clients.py).
// "browser-fetch-noresume" is the same code without them running: the in-flight answer is
// lost.

class FetchSession {
  constructor(user, resume) {
    this.user = user;
    this.resume = resume;
    this.requests = 0;
  }

  async prepare() {}

  stream(run) {
    const st = { ctrl: null, abortT: null };
    this.read(run, st).catch((e) => run.failed(null, String(e && e.message || e), now()));
    return {
      cancel: (mode) => {
        if (mode === "cancel") postCancel(this.user.http_base, run.id, st.secret);  // body ends
        else st.ctrl.abort();
      },
      abort: (t) => { st.abortT = t; st.ctrl.abort(); },
      stop: () => st.ctrl.abort(),
    };
  }

  // One request: its events go to `run`; returns the last event id it saw.
  async request(run, st, lastEventId, conn) {
    const headers = { "Content-Type": "application/json" };
    // recovery:begin
    if (lastEventId !== "") headers["Last-Event-ID"] = lastEventId;
    // recovery:end
    const body = JSON.stringify(run.params);
    conn.bytesOut += body.length;
    const resp = await fetch(`${this.user.http_base}/v1/stream`,
                             { method: "POST", headers, body, signal: st.ctrl.signal });
    const t = now();
    conn.opened(t);
    run.opened(t, conn.uid, resp.status, null);
    st.secret = resp.headers.get("X-Cancel-Secret");  // what the cancel endpoint asks back
    if (!resp.ok) {
      run.failed(resp.status, `HTTP ${resp.status}`, t);
      return lastEventId;
    }
    const parser = new SSEParser((ev) => {
      const t = now();
      if (ev.type === "message") run.token(ev.data, t);
      else if (ev.type === "done") run.done(JSON.parse(ev.data), t);
    }, lastEventId);
    st.parser = parser;
    const reader = resp.body.getReader();
    const text = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      conn.bytesIn += value.byteLength;
      run.bytes(value.byteLength);
      parser.feed(text.decode(value, { stream: true }));
    }
    return parser.lastEventId;
  }

  async read(run, st) {
    let lastEventId = "";  // recovery
    for (;;) {  // recovery
      st.ctrl = new AbortController();
      st.parser = null;
      const t0 = now();
      run.sent(t0);
      const conn = new ConnRecord(`${this.user.conn_prefix}.r${++this.requests}`, this.user.index, t0);
      conn.streamStarted(t0);
      let why = "body ended before done";
      try {
        lastEventId = await this.request(run, st, lastEventId, conn);
      } catch (e) {  // a network error, or the page's own abort (cancel, client abort, stop)
        if (st.parser !== null) lastEventId = st.parser.lastEventId;  // recovery
        why = st.ctrl.signal.aborted ? "aborted by the page" : `network error: ${e.message}`;
      }
      const pageAbort = st.abortT !== null;
      const t = pageAbort ? st.abortT : now();
      st.abortT = null;
      conn.close(t, st.ctrl.signal.aborted ? "client" : "server", null, run.finished ? "end" : why);
      if (run.finished) return;  // done, error, cancel, timeout or stop: nothing to recover
      const outcome = pageAbort ? ABORTED : DROPPED;
      const reason = pageAbort ? "client abort" : why;
      if (!this.resume) { run.lost(t, reason, outcome); return; }
      // recovery:begin
      if (!run.dropped(t, reason, outcome)) return;
      run.reconnecting();
      // recovery:end
    }  // recovery
  }

  idle(ms) { return sleep(ms); }

  close() {}
}

CLIENTS["browser-fetch"] = { protocol: "sse", session: (user) => new FetchSession(user, true) };
CLIENTS["browser-fetch-noresume"] = { protocol: "sse", session: (user) => new FetchSession(user, false) };
