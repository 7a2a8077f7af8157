"""Helpers for the hooks' integration tests: credentials the emulator accepts, its admin API."""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any

import pytest

ACCESS_KEY_ID = "emulator-access-key-id"
ACCESS_KEY_SECRET = "emulator-access-key-secret"
STS_ACCESS_KEY_ID = "STS.hooks-temporary-id"
STS_ACCESS_KEY_SECRET = "hooks-temporary-secret"
STS_TOKEN = "hooks-sts-security-token-0123456789"

MNS_CONN_ID = "mns_hooks_it"
FNF_CONN_ID = "fnf_hooks_it"


def admin(endpoint: str, method: str, path: str, payload: Any = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{endpoint}/_emulator/{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def add_fault(endpoint: str, **rule: Any) -> None:
    """Add a fault rule through the admin API of the port at ``endpoint``."""
    admin(endpoint, "POST", "faults", rule)


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
