"""The in-process emulator of both services, connections to it, and a flow whose step sends its
task token to an MNS queue and waits (what MNSMessageTrigger and MNSSensor read)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from dispatch_it_support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    FNF_CONN_ID,
    MNS_CONN_ID,
    WAITING_FLOW,
    WaitingFlow,
    admin,
)

from airflow_provider_fnf.emulator.server import Emulator
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET}) as running:
        yield running


@pytest.fixture
def connections(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = {"login": ACCESS_KEY_ID, "password": ACCESS_KEY_SECRET}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{MNS_CONN_ID.upper()}",
        json.dumps({"conn_type": "mns", **credentials, "extra": {"endpoint": emulator.mns_endpoint}}),
    )
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{FNF_CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "fnf",
                **credentials,
                "extra": {"endpoint": emulator.fnf_endpoint, "region": "cn-hangzhou"},
            }
        ),
    )
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
