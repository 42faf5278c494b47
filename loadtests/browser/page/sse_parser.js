"use strict";
// A small Server-Sent Events parser for a fetch()-read stream, as a web app writes one
// (WHATWG HTML "Parsing an event stream"): text in any chunking (an event split across
// reads, many events in one read, a CRLF split between two reads), CR / LF / CRLF line
// ends, a leading BOM, comments, `event`, `data` (joined by "\n"), `id` (kept across events
// and reconnections; ignored if it contains NUL) and `retry` (digits only). Each
// complete event goes to onEvent({type, data, id}) as soon as its blank line is parsed.
// Feed it decoded text: TextDecoder.decode(bytes, {stream: true}) keeps UTF-8 sequences
// split across reads whole.

class SSEParser {
  constructor(onEvent, lastEventId = "") {
    this.onEvent = onEvent;
    this.lastEventId = lastEventId;
    this.retry = null;
    this.rest = "";  // an incomplete line
    this.started = false;  // a BOM can only come first
    this.skipLF = false;  // the last chunk ended in CR: an LF starting the next belongs to it
    this.data = [];
    this.event = "";
  }

  feed(text) {
    if (this.skipLF && text.length > 0) {
      this.skipLF = false;
      if (text.charCodeAt(0) === 10) text = text.slice(1);
    }
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const s = this.rest + text;
    let pos = 0;
    for (;;) {
      const lf = s.indexOf("\n", pos);
      const cr = s.indexOf("\r", pos);
      if (lf === -1 && cr === -1) break;
      let end, next;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr + 1 < s.length) next = s.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
        else { next = cr + 1; this.skipLF = true; }
      } else {
        end = lf;
        next = lf + 1;
      }
      this.line(s.slice(pos, end));
      pos = next;
    }
    this.rest = s.slice(pos);
  }

  line(line) {
    if (line === "") { this.dispatch(); return; }
    if (line.charCodeAt(0) === 58) return;  // ":" comment (heartbeat)
    const colon = line.indexOf(":");
    let field = line, value = "";
    if (colon !== -1) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id") { if (!value.includes("\0")) this.lastEventId = value; }
    else if (field === "retry") { if (/^[0-9]+$/.test(value)) this.retry = Number(value); }
  }

  dispatch() {
    if (this.data.length === 0) { this.event = ""; return; }
    const ev = { type: this.event || "message", data: this.data.join("\n"), id: this.lastEventId };
    this.data = [];
    this.event = "";
    this.onEvent(ev);
  }
}
