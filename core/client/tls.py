"""TLS for the client core (sans-I/O): ciphertext in, plaintext out, over `ssl.MemoryBIO`.

A shell that talks to an ``https://`` / ``wss://`` server keeps its socket, its reads and
its clock, and puts a `TLSClient` between the socket and the SSE / WS client core:

    tls = TLSClient(client_context(ca_file=...), host)
    send(tls.start())                         # the ClientHello
    while not tls.established:                # the handshake: TLSError if it fails
        send(tls.receive_handshake(recv()))   # b"" = EOF
    ...
    send(tls.encrypt(request_bytes))
    t, data = read()                          # ciphertext, stamped when the read returned
    plain = tls.decrypt(data)                 # b"" with data: no whole record yet, read again
    core.feed(t, plain, out)                  # the plaintext keeps the read's stamp
    send(tls.data_to_send())                  # rare: what TLS itself must answer

The stamp rule of the client core holds unchanged: the plaintext a read completes carries
the time that read returned (a record split over two reads becomes readable with the
second). `decrypt` returns b"" for a read that completed no record — that is not EOF; EOF
is `eof` turning True (the peer's close_notify, or the socket's EOF fed as ``b""``), and
the shell then feeds ``b""`` to the core as it does for a plain socket.

HTTP and WebSocket are client-first, so nothing but TLS's own records (TLS 1.3 session
tickets) can follow the server's handshake before the client's first request; they are
read with the next `decrypt`. Only ``http/1.1`` is offered by ALPN: the client core
speaks HTTP/1.1.

Verification is on by default (`client_context`): the system's CAs, or ``ca_file`` (a
self-signed server's certificate); ``insecure=True`` switches off certificate and name
checks for a server you cannot get a certificate from. Nothing here reads a clock or
touches a socket; `tests/core/test_client_tls.py` drives it against a server-side
`SSLObject` in memory.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

#: Bytes a single SSLObject.read may return (one TLS record holds at most 16 KiB).
_READ_SIZE = 65536
_CLOSED = "the server closed the connection during the TLS handshake"


class TLSError(Exception):
    """The TLS handshake failed (certificate refused, protocol error, EOF): one line."""


@dataclass(frozen=True)
class TLSSettings:
    """How a client verifies servers: ``ca_file`` (None: the system's CAs) and
    ``insecure`` (no certificate or name check). `describe` is what a manifest records."""

    ca_file: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        return client_context(ca_file=self.ca_file, insecure=self.insecure)

    def describe(self) -> dict[str, Any]:
        return {
            "verify": not self.insecure,
            "ca_file": self.ca_file,
            "alpn": ["http/1.1"],
            "library": ssl.OPENSSL_VERSION,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"ca_file": self.ca_file, "insecure": self.insecure}

    @classmethod
    def from_dict(cls, d: Any) -> TLSSettings:
        d = d if isinstance(d, dict) else {}
        return cls(ca_file=d.get("ca_file"), insecure=bool(d.get("insecure")))


def client_context(*, ca_file: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A client context: certificates and host names verified against ``ca_file`` (or the
    system's CAs) unless ``insecure``; ALPN ``http/1.1``. ssl.SSLError / OSError for a
    ``ca_file`` that is not a readable PEM file."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


_CONTEXTS: dict[TLSSettings, ssl.SSLContext] = {}


def context_for(settings: TLSSettings) -> ssl.SSLContext:
    """One context per settings and process (making one loads the CA store: milliseconds,
    not something to pay per connection)."""
    ctx = _CONTEXTS.get(settings)
    if ctx is None:
        ctx = _CONTEXTS[settings] = settings.context()
    return ctx


def is_tls_url(url: str) -> bool:
    """An ``https://`` or ``wss://`` URL."""
    return url.split(":", 1)[0].lower() in ("https", "wss")


class TLSClient:
    """One client-side TLS connection in memory (see the module docstring)."""

    __slots__ = ("_in", "_obj", "_out", "eof", "established")

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        # An IP literal is checked against the certificate's IP SANs and sent without SNI.
        self._obj = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self.established = False
        self.eof = False

    # ------------------------------------------------------------------ handshake
    def start(self) -> bytes:
        """The first flight (ClientHello) to send."""
        return self._step()

    def receive_handshake(self, data: bytes) -> bytes:
        """The server's handshake bytes (b"" = EOF) → what to send next; `established`
        turns True once the handshake is done. TLSError if it failed."""
        if self.established:
            raise TLSError("the TLS handshake is already done")
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()
        return self._step()

    def _step(self) -> bytes:
        try:
            self._obj.do_handshake()
        except ssl.SSLWantReadError:
            if self._in.eof:
                raise TLSError(_CLOSED) from None
        except ssl.SSLCertVerificationError as exc:
            raise TLSError(f"certificate verify failed: {exc.verify_message}") from None
        except ssl.SSLEOFError:
            raise TLSError(_CLOSED) from None
        except ssl.SSLError as exc:
            raise TLSError(f"TLS handshake failed: {exc.reason or exc}") from None
        else:
            self.established = True
        return self._out.read()

    # ------------------------------------------------------------------ data
    def decrypt(self, data: bytes) -> bytes:
        """One read's ciphertext (b"" = the socket's EOF) → the plaintext of every record
        it completed (b"" when none). `eof` turns True at the peer's close_notify or EOF;
        a connection cut without close_notify is an EOF too (HTTP framing tells a cut
        response from a complete one)."""
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()
        obj, rx = self._obj, self._in
        chunks: list[bytes] = []
        while True:
            try:
                chunk = obj.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self.eof = True
                break
            except ssl.SSLError:  # a corrupt record: the connection is unusable
                self.eof = True
                break
            if not chunk:
                self.eof = True
                break
            chunks.append(chunk)
            if not rx.pending and not obj.pending():
                break
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def encrypt(self, data: bytes) -> bytes:
        """Plaintext → the ciphertext to send (with anything TLS had queued before it)."""
        self._obj.write(data)
        return self._out.read()

    def data_to_send(self) -> bytes:
        """What TLS queued by itself (e.g. a key update's answer); usually b""."""
        return self._out.read() if self._out.pending else b""

    # ------------------------------------------------------------------ facts
    @property
    def version(self) -> str | None:
        """The negotiated protocol, e.g. "TLSv1.3" (None before the handshake)."""
        return self._obj.version()

    @property
    def resumed(self) -> bool:
        """The handshake resumed an earlier session (an abbreviated handshake)."""
        return bool(self._obj.session_reused)

    @property
    def cipher(self) -> str | None:
        c = self._obj.cipher()
        return c[0] if c else None
