"""The certificate a run's reference servers serve TLS with (scenarios with ``server.tls``).

Made once per run, on first use, into ``<run>/tls/`` (core.tlscert: valid for loopback and,
with ``--hosts``, the server's namespace address), recorded in the manifest as
``server_tls`` (path and fingerprint, never the key's content). The servers get it as
``--tls-cert/--tls-key``; the runner's own health and /metrics requests and the load
clients verify the servers against it.
"""

from __future__ import annotations

from pathlib import Path

from core.runfolder import update_manifest
from core.scenario import Scenario
from core.tlscert import describe_cert, make_self_signed_cert


class RunCertificate:
    def __init__(self) -> None:
        self._files: tuple[str, str] | None = None

    def files(self, run_dir: Path, names: tuple[str, ...] = ()) -> tuple[str, str]:
        """(cert, key), made the first time (core.tlscert.CertError if it cannot be)."""
        if self._files is None:
            cert, key = make_self_signed_cert(run_dir / "tls", names=names)
            self._files = (str(cert), str(key))
            update_manifest(run_dir, server_tls={**describe_cert(cert), "names": list(names)})
        return self._files

    def for_server(
        self, scenario: Scenario, run_dir: Path, names: tuple[str, ...] = ()
    ) -> tuple[str, str] | None:
        """The files a reference server of `scenario` serves with (None: plain TCP)."""
        return self.files(run_dir, names) if scenario.server.tls else None
