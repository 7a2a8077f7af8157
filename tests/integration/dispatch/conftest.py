"""Connections to the in-process emulator of both services (``emulator``, from tests/conftest.py),
and a flow whose step sends its task token to an MNS queue and waits (what MNSMessageTrigger and
MNSSensor read)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from dispatch_it_support import FNF_CONN_ID, MNS_CONN_ID, WAITING_FLOW, WaitingFlow
from fnf_emulator.server import Emulator

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from tests.support import admin, set_emulator_connections


@pytest.fixture
def connections(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    set_emulator_connections(monkeypatch, emulator, mns_conn_id=MNS_CONN_ID, fnf_conn_id=FNF_CONN_ID)
    yield
    admin(emulator.mns_endpoint, "DELETE", "faults")


@pytest.fixture
def flow(connections: None) -> WaitingFlow:
    suffix = uuid.uuid4().hex[:8]
    mns = MNSHook(MNS_CONN_ID)
    fnf = ServerlessWorkflowHook(FNF_CONN_ID)
    queue_name = f"tasks-{suffix}"
    mns.create_queue(queue_name)
    mns.create_queue(f"{queue_name}-dlq")
    flow_name = f"waiting-{suffix}"
    fnf.create_or_update_flow(flow_name, WAITING_FLOW.format(queue=queue_name))
    return WaitingFlow(flow_name, queue_name, f"{queue_name}-dlq", mns, fnf)
