"""Self-signed certificates for the reference servers and proxies that serve TLS on loopback.

`make_self_signed_cert(dir)` writes ``cert.pem`` and ``key.pem`` (EC P-256, one day,
CN=localhost, SANs localhost, 127.0.0.1, ::1 and any extra names) with the ``openssl``
binary — no Python dependency for a few milliseconds of work a run. The certificate is its
own trust anchor: a client that loads it as its CA file verifies the server (name and
chain), which is how the harness measures TLS with verification on.
`describe_cert(path)` is what a manifest records of it (never the key).
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


class CertError(RuntimeError):
    """The certificate could not be made (no openssl, or it failed): one line."""


def _san(names: tuple[str, ...]) -> str:
    out = []
    for name in dict.fromkeys(names):
        try:
            ipaddress.ip_address(name)
            out.append(f"IP:{name}")
        except ValueError:
            out.append(f"DNS:{name}")
    return ",".join(out)


def make_self_signed_cert(
    workdir: Path | str, *, names: tuple[str, ...] = (), days: int = 1
) -> tuple[Path, Path]:
    """(cert.pem, key.pem) in `workdir` (created), valid for DEFAULT_NAMES + `names`; the
    key file is readable by its owner only. CertError if openssl is missing or fails."""
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    cert, key = wd / "cert.pem", wd / "key.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertError("openssl not found: needed to make a self-signed TLS certificate")
    cmd = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", str(days), "-subj", "/CN=localhost",
        "-addext", f"subjectAltName={_san((*DEFAULT_NAMES, *names))}",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CertError(f"openssl could not make a certificate: {exc}") from None
    if out.returncode != 0:
        raise CertError(f"openssl could not make a certificate: {out.stderr.strip()}")
    key.chmod(0o600)
    return cert, key


def server_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A server context for `cert` / `key` (TLS 1.2+, ALPN http/1.1); ssl.SSLError /
    OSError for files that are not a matching PEM pair."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def describe_cert(cert: Path | str) -> dict[str, Any]:
    """What a manifest records of a certificate: its path and SHA-256 fingerprint."""
    pem = Path(cert).read_text()
    der = ssl.PEM_cert_to_DER_cert(pem)
    return {"cert": str(cert), "sha256": hashlib.sha256(der).hexdigest()}
