"""What the test suites share: the emulator's credentials, connections to it (``AIRFLOW_CONN_*``
variables), its admin API, and the reference flow whose task step waits for a callback.

Import it as ``from tests.support import ...``; the fixtures built on it are in ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import TYPE_CHECKING, Any

from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

from airflow_provider_fnf import testing

if TYPE_CHECKING:
    import pytest
    from fnf_emulator.server import Emulator

ACCESS_KEY_ID = DEFAULT_ACCESS_KEY_ID
ACCESS_KEY_SECRET = DEFAULT_ACCESS_KEY_SECRET
"""The emulator's default AccessKey pair."""
REGION = testing.EMULATOR_REGION


def callback_flow_definition(
    queue: str, *, step: str = "Work", input_key: str = "key", input_source: str | None = None
) -> str:
    """FDL of a flow whose one task step sends ``{task_token, <input_key>}`` to ``queue`` and
    waits for the callback (``pattern: waitForCallback``), as in the reference seed flow.

    ``input_source`` defaults to ``$input.<input_key>``. Pass ``"{queue}"`` as ``queue`` for a
    template to ``.format(queue=...)`` later; append steps or a ``catch`` to the text as needed.
    """
    return f"""\
version: v1
type: flow
steps:
  - type: task
    name: {step}
    resourceArn: acs:mns:::/queues/{queue}/messages
    pattern: waitForCallback
    inputMappings:
      - target: task_token
        source: $context.task.token
      - target: {input_key}
        source: {input_source or "$input." + input_key}
    serviceParams:
      MessageBody: $
      Priority: 1
"""


REFERENCE_FLOW = callback_flow_definition("fnf-demo", step="Task_1", input_source="value")
"""The reference seed flow, verbatim: step ``Task_1`` on queue ``fnf-demo``."""


def connection_env(
    emulator: Emulator, *, mns_conn_id: str = "mns_default", fnf_conn_id: str = "fnf_default"
) -> dict[str, str]:
    """AIRFLOW_CONN_* variables for an ``mns`` and an ``fnf`` connection to ``emulator``."""
    return testing.connection_env(
        emulator.mns_endpoint, emulator.fnf_endpoint, mns_conn_id=mns_conn_id, fnf_conn_id=fnf_conn_id
    )


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> str:
    """Give connection ``conn_id`` (JSON ``fields``) through its AIRFLOW_CONN_* variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


def set_emulator_connections(
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    *,
    mns_conn_id: str = "mns_default",
    fnf_conn_id: str = "fnf_default",
) -> dict[str, str]:
    """Point ``mns_conn_id`` and ``fnf_conn_id`` at ``emulator``; returns the variables set."""
    env = connection_env(emulator, mns_conn_id=mns_conn_id, fnf_conn_id=fnf_conn_id)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def admin(endpoint: str, method: str, path: str, payload: Any = None) -> Any:
    """Call the emulator's admin API (``/_emulator/...``: health, reset, faults) on the port at
    ``endpoint``; returns the JSON answer."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{endpoint}/_emulator/{path}", data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def add_fault(endpoint: str, **rule: Any) -> None:
    """Add a fault rule through the admin API of the port at ``endpoint``."""
    admin(endpoint, "POST", "faults", rule)


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
