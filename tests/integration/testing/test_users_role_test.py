"""A user's test of connections that assume a RAM role, as the README shows it: the emulator over
HTTPS (``fnf_emulator_tls``) with a role whose sessions last seconds, and the connections from
``airflow_provider_fnf.testing`` pointed at it."""

from __future__ import annotations

import time

import pytest

from airflow_provider_fnf import testing
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook

ROLE = "acs:ram::1234567890123456:role/my-airflow"


def test_my_connections_assume_the_role_and_outlive_its_sessions(
    fnf_emulator_tls, monkeypatch: pytest.MonkeyPatch
):
    fnf_emulator_tls.add_ram_role(ROLE, external_id="my-external-id", session_seconds=2)
    env = testing.connection_env(
        fnf_emulator_tls.mns_endpoint,
        fnf_emulator_tls.fnf_endpoint,
        mns_conn_id="mns_my_role",
        fnf_conn_id="fnf_my_role",
        extra={
            "role_arn": ROLE,
            "external_id": "my-external-id",
            "sts_endpoint": fnf_emulator_tls.sts_endpoint,
        },
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    mns, fnf = MNSHook("mns_my_role"), ServerlessWorkflowHook("fnf_my_role")

    mns.create_queue("jobs")
    time.sleep(2.2)  # the first sessions expire
    mns.send_message("jobs", "still works")
    assert fnf.list_flows() == []

    assert [m.body for m in mns.receive_messages("jobs", wait_seconds=1)] == ["still works"]
    assert fnf_emulator_tls.stats()["sts"]["AssumeRole"]["OK"] >= 3
    assert fnf_emulator_tls.ca_file and fnf_emulator_tls.mns_endpoint.startswith("https://")
