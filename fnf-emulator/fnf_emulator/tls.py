"""TLS for the emulator's endpoints (``--tls``): a local certificate authority made with ``trustme``
(the ``tls`` extra: ``pip install 'fnf-emulator[tls]'``) and a server certificate it signs for
the addresses the emulator answers on.

Clients trust the emulator through the CA's certificate file alone: point ``SSL_CERT_FILE``
(Python's ``ssl``, the MNS SDK, aiohttp) and ``REQUESTS_CA_BUNDLE`` (requests) at it. The
Alibaba Cloud SDKs and alibabacloud-credentials build their TLS contexts from Python's defaults,
which read ``SSL_CERT_FILE``.

With a data directory, the CA lives in ``DATA_DIR/tls/`` and is reused across restarts, so a
client that trusts it keeps working; without one, it is made in a temporary directory that is
removed when the emulator stops.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

CA_CERT_FILE = "ca.pem"
"""The CA certificate clients trust (the ready file's ``ca_file``)."""
CA_KEY_FILE = "ca-key.pem"
"""The CA's private key, kept next to it under a data directory (mode 0600)."""
TLS_SUBDIRECTORY = "tls"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
"""Names every server certificate is valid for, besides the address the emulator binds to."""


class EmulatorTLS:
    """The CA and the server TLS context of one emulator.

    :param hosts: further names or addresses the server certificate must be valid for.
    :param data_dir: keep the CA in ``data_dir/tls`` (reused at the next start).
    """

    def __init__(self, hosts: Iterable[str] = (), data_dir: str | None = None) -> None:
        try:
            import trustme
        except ImportError as exc:  # pragma: no cover - the tls extra is installed in development
            raise RuntimeError(
                "the emulator's --tls needs the trustme package: pip install 'fnf-emulator[tls]'"
            ) from exc
        self._temporary: str | None = None
        if data_dir:
            directory = Path(data_dir) / TLS_SUBDIRECTORY
            directory.mkdir(parents=True, exist_ok=True)
        else:
            self._temporary = tempfile.mkdtemp(prefix="fnf-emulator-tls-")
            directory = Path(self._temporary)
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        if cert_path.exists() and key_path.exists():
            ca = trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
        else:
            ca = trustme.CA(organization_name="fnf-emulator", organization_unit_name="local test CA")
            key_path.touch(mode=0o600)
            ca.private_key_pem.write_to_path(str(key_path))
            ca.cert_pem.write_to_path(str(cert_path))
        names = list(dict.fromkeys([*LOCAL_NAMES, *(_identity(h) for h in hosts if h)]))
        self._leaf = ca.issue_cert(*names, common_name="fnf-emulator")
        self.ca_file = str(cert_path)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        return context

    def close(self) -> None:
        """Remove the temporary directory, if the CA lives in one."""
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None


def _identity(host: str) -> str:
    """A bind address as a certificate name; the wildcard addresses add nothing."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return "localhost" if address.is_unspecified else str(address)


def trust_environment(ca_file: str) -> dict[str, str]:
    """The variables that make Python's ``ssl`` and requests trust ``ca_file``."""
    return {"SSL_CERT_FILE": os.fspath(ca_file), "REQUESTS_CA_BUNDLE": os.fspath(ca_file)}
