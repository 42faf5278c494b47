"use strict";
// Client "browser-ws": one WebSocket per session (held through think time; the browser
// answers the server's pings), a start message per turn, one text frame per token. When
// the socket drops, nothing happens by itself: the page reconnects and sends
// {"type":"resume","stream":ID,"after":SEQ} — the lines marked "recovery" (a line ending in
// `// recovery`, or between `// recovery:begin` and `// recovery:end`; counted by
// loadtests/browser/clients.py). A page cannot cut a socket abruptly: its own "abort" is a
// close handshake, then the same recovery.

class WSSession {
  constructor(user) {
    this.user = user;
    this.ws = null;
    this.conn = null;
    this.sockets = 0;
    this.run = null;  // the stream in flight
    this.closedByPage = new WeakSet();
  }

  connect() {
    return new Promise((resolve, reject) => {
      const t = now();
      const conn = new ConnRecord(`${this.user.conn_prefix}.c${++this.sockets}`, this.user.index, t);
      conn.streams = 0;
      const ws = new WebSocket(`${this.user.ws_url}?conn=${encodeURIComponent(conn.uid)}`);
      let open = false;
      ws.onopen = () => { open = true; conn.opened(now()); resolve(); };
      ws.onmessage = (e) => this.message(e.data, conn);
      ws.onclose = (e) => {
        const t = now();
        const byPage = this.closedByPage.has(ws);
        conn.close(t, byPage ? "client" : "server", e.code, e.reason || (e.wasClean ? null : "EOF"));
        if (this.ws === ws) this.ws = null;
        if (!open) reject(new Error(`WebSocket upgrade failed (close ${e.code})`));
        else if (!byPage) this.lost(t, `closed ${e.code}`, DROPPED);
      };
      this.ws = ws;
      this.conn = conn;
    });
  }

  async prepare() {
    if (this.ws === null) await this.connect();
  }

  send(obj) {
    const text = JSON.stringify(obj);
    this.ws.send(text);
    this.conn.bytesOut += text.length;
  }

  begin(run, message) {
    const t = now();
    this.run = run;
    this.tokenPrefix = `{"s":${JSON.stringify(run.id)},`;  // its token frames start so
    run.sent(t);
    this.conn.streamStarted(t);
    this.send(message);
    run.opened(t, this.conn.uid, null, this.conn.streams++ > 0);
  }

  stream(run) {
    this.begin(run, { type: "start", ...run.params });
    return {
      cancel: (mode) => {
        if (mode === "cancel") this.send({ type: "cancel", stream: run.id });
        else this.closeSocket("cancel");
        this.ended(now());
      },
      abort: (t) => { this.closeSocket("client abort"); this.lost(t, "client abort", ABORTED); },
      stop: () => { this.closeSocket("stopped"); this.ended(now()); },
    };
  }

  message(data, conn) {
    const t = now();
    conn.bytesIn += data.length;
    const run = this.run;
    if (data.startsWith('{"s"')) {  // a token: the payload as the SSE arm's data
      // a cancelled stream's last frames can still arrive after the next start
      if (run !== null && data.startsWith(this.tokenPrefix)) {
        run.bytes(data.length);
        run.token(data, t);
      }
      return;
    }
    const msg = JSON.parse(data);
    if (run === null || String(msg.stream) !== run.id) return;
    run.bytes(data.length);  // every message of the stream, as the Python client counts
    if (msg.type === "done") { this.ended(t); run.done(msg, t); }
    else if (msg.type === "error") { this.ended(t); run.failed(null, msg.error, t); }
  }

  ended(t) {
    if (this.conn !== null) this.conn.streamEnded(t);
    this.run = null;
  }

  closeSocket(reason) {
    if (this.ws === null) return;
    this.closedByPage.add(this.ws);
    this.ws.close(1000, reason);
    this.ws = null;
  }

  // The socket under the stream in flight is gone (server, network, or the page's abort).
  lost(t, reason, outcome) {
    const run = this.run;
    this.run = null;
    if (run === null || run.finished) return;
    // recovery:begin
    if (run.dropped(t, reason, outcome)) {
      this.resume(run).catch((e) => run.failed(null, `resume: ${e.message}`, now()));
      return;
    }
    // recovery:end
    run.lost(t, reason, outcome);
  }

  // recovery:begin
  async resume(run) {
    for (;;) {
      run.reconnecting();
      try {
        await this.connect();
        break;
      } catch (e) {  // cut again before the socket opened: another try, if allowed
        if (!run.dropped(now(), `reconnect: ${e.message}`)) return;
      }
    }
    if (run.finished) return;
    // apps keep the last seq they rendered; here the harness keeps it as run.lastSeq
    this.begin(run, { type: "resume", after: run.lastSeq, ...run.params });
  }
  // recovery:end

  idle(ms) { return sleep(ms); }

  close() { this.closeSocket("end of session"); }
}

CLIENTS["browser-ws"] = { protocol: "ws", session: (user) => new WSSession(user) };
