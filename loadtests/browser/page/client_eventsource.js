"use strict";
// Client "browser-eventsource": EventSource (GET). The browser parses the stream and, when
// the connection drops, reconnects by itself after the server's `retry:` delay, sending
// Last-Event-ID, so the server resumes after the last event the page got. The page cannot
// resume a stream it closed itself: a new EventSource has no way to send Last-Event-ID.
// Nor can it use the cancel endpoint: an EventSource shows no response header, so the
// page never learns the stream's X-Cancel-Secret — a cancel is a close.
//
// The page code recovery needs is marked "recovery" (a line ending in `// recovery`, or the
// lines between `// recovery:begin` and `// recovery:end`; counted by
// loadtests/browser/clients.py, blank and comment lines excluded).

class EventSourceSession {
  constructor(user) {
    this.user = user;
    this.requests = 0;
  }

  async prepare() {}

  stream(run) {
    const base = this.user.http_base;
    const t0 = now();
    let conn = null;
    let closedByPage = false;
    // One record per HTTP request: the first one, and each the browser sends to reconnect.
    const request = (t) => {
      conn = new ConnRecord(`${this.user.conn_prefix}.r${++this.requests}`, this.user.index, t);
      conn.streamStarted(t);
    };
    const close = (t, reason) => {
      closedByPage = true;
      es.close();
      conn.close(t, "client", null, reason);
    };
    run.sent(t0);
    request(t0);
    const es = new EventSource(`${base}/v1/stream?${new URLSearchParams(run.params)}`);
    es.onopen = () => {
      const t = now();
      if (conn.closed) request(t);  // a reconnect: the browser sent it; seen at its answer
      conn.opened(t);
      if (run.drops.length > run.reconnects) run.reconnecting();
      run.opened(t, conn.uid, 200, null);
    };
    es.onmessage = (e) => {
      const t = now();
      conn.bytesIn += e.data.length;
      run.bytes(e.data.length);
      run.token(e.data, t);
    };
    es.addEventListener("done", (e) => {
      const t = now();
      close(t, "done");
      run.done(JSON.parse(e.data), t);
    });
    es.onerror = () => {
      if (closedByPage) return;
      const t = now();
      conn.close(t, "server", null, "connection lost");
      // recovery:begin
      if (es.readyState === EventSource.CONNECTING) {  // the browser retries by itself
        if (!run.dropped(t, "connection lost")) es.close();
        return;
      }
      // recovery:end
      run.failed(null, "EventSource failed: HTTP error or not text/event-stream", t);
    };
    return {
      cancel: () => close(now(), "cancel"),  // the endpoint needs a header it cannot read
      abort: (t) => {
        close(t, "client abort");
        run.lost(t, "client abort: a new EventSource cannot send Last-Event-ID", ABORTED);
      },
      stop: () => close(now(), "stopped"),
    };
  }

  idle(ms) { return sleep(ms); }

  close() {}
}

CLIENTS["browser-eventsource"] = { protocol: "sse", session: (user) => new EventSourceSession(user) };
