"""Connections that assume a RAM role, through the unmodified SDKs and alibabacloud-credentials
against the emulator over HTTPS: the work a worker does (receive, report, delete) signed with the
role's temporary credentials; sessions that expire and are renewed without an error anyone sees;
roles that cannot be assumed, and why, in words a user can act on."""

from __future__ import annotations

import json
import logging
import time
import uuid

import pytest
from credentials_it_support import (
    FNF_CONN_ID,
    GUARDED_ROLE,
    LONG_ROLE,
    MNS_CONN_ID,
    PARTNER_EXTERNAL_ID,
    PARTNER_ROLE,
    SHORT_ROLE,
    SHORT_SESSION_SECONDS,
    TRUSTED_ACCESS_KEY_ID,
    UNKNOWN_ROLE,
    role_connection,
)
from fnf_emulator.server import Emulator

from airflow_provider_fnf.exceptions import (
    MNSAuthenticationError,
    ServerlessWorkflowAuthenticationError,
    STSAssumeRoleError,
)
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from tests.support import ACCESS_KEY_ID, callback_flow_definition, set_connection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def hooks(monkeypatch, emu: Emulator, role_arn: str, **extra) -> tuple[MNSHook, ServerlessWorkflowHook]:
    set_connection(monkeypatch, MNS_CONN_ID, **role_connection(emu, "mns", role_arn, **extra))
    set_connection(monkeypatch, FNF_CONN_ID, **role_connection(emu, "fnf", role_arn, **extra))
    return MNSHook(MNS_CONN_ID), ServerlessWorkflowHook(FNF_CONN_ID)


def start_waiting_execution(mns: MNSHook, fnf: ServerlessWorkflowHook) -> tuple[str, str, str]:
    """A queue, a flow whose step waits for a callback on it, and one execution: (queue, flow, execution)."""
    suffix = uuid.uuid4().hex[:8]
    queue, flow, execution = f"jobs-{suffix}", f"flow-{suffix}", f"run-{suffix}"
    mns.create_queue(queue)
    fnf.create_or_update_flow(flow, callback_flow_definition(queue))
    fnf.start_execution(flow, {"key": "value"}, execution)
    return queue, flow, execution


def temporary_signers(emu: Emulator, service: str) -> dict[str, int]:
    return {k: n for k, n in emu.identities.signers(service).items() if k.startswith("STS.")}


def test_a_connection_with_role_arn_receives_reports_and_deletes(monkeypatch, emu, issued):
    mns, fnf = hooks(monkeypatch, emu, LONG_ROLE)
    queue, flow, execution = start_waiting_execution(mns, fnf)

    [message] = mns.receive_messages(queue, wait_seconds=5)
    body = json.loads(message.body)
    fnf.report_task_succeeded(body["task_token"], {"done": body["key"]})
    mns.delete_message(queue, message.receipt_handle)

    assert fnf.describe_execution(flow, execution, wait_time_seconds=10)["Status"] == "Succeeded"
    assert mns.get_queue_attributes(queue)["active_messages"] == 0
    # Every MNS and Serverless Workflow request was signed with the role's temporary credentials,
    # none with the connection's own AccessKey, which only called STS (once per connection).
    for service in ("mns", "fnf"):
        assert ACCESS_KEY_ID not in emu.identities.signers(service)
        assert sum(temporary_signers(emu, service).values()) >= 3
    assert emu.identities.signers("sts") == {ACCESS_KEY_ID: 2}
    assert [c.role_arn for c in issued()] == [LONG_ROLE, LONG_ROLE]
    ok, text = mns.test_connection()
    assert ok and f"RAM role {LONG_ROLE}" in text and f"AccessKey {ACCESS_KEY_ID}" in text


def test_the_session_name_says_which_connection_outside_a_task_and_which_task_inside(
    monkeypatch, emu, issued
):
    mns, _ = hooks(monkeypatch, emu, LONG_ROLE)
    mns.create_queue("named")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "fnf_reference_worker")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "report")
    MNSHook(MNS_CONN_ID).create_queue("named")

    sessions = [c.role_session_name for c in issued()]
    assert sessions == [f"airflow-{MNS_CONN_ID}", "airflow-fnf_reference_worker-report"]


def test_a_report_after_an_expiry_succeeds_and_nobody_sees_the_expiry(monkeypatch, emu, caplog, issued):
    mns, fnf = hooks(monkeypatch, emu, SHORT_ROLE)
    queue, flow, execution = start_waiting_execution(mns, fnf)
    [message] = mns.receive_messages(queue, wait_seconds=5)
    first = issued()

    time.sleep(SHORT_SESSION_SECONDS + 0.5)  # every session so far has expired
    with caplog.at_level(logging.INFO):
        fnf.report_task_succeeded(json.loads(message.body)["task_token"], {"ok": True})
        mns.delete_message(queue, message.receipt_handle)

    assert fnf.describe_execution(flow, execution, wait_time_seconds=10)["Status"] == "Succeeded"
    assert all(c.expiration <= time.time() for c in first)
    # Renewed before use, not after a refusal: no request was answered "expired".
    stats = emu.stats.snapshot()
    assert stats["mns"].get("DeleteMessage") == {"OK": 1}
    assert stats["fnf"].get("ReportTaskSucceeded") == {"OK": 1}
    assert stats["sts"]["AssumeRole"]["OK"] >= 4
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("airflow_provider")
    ]


def test_a_request_that_meets_an_expired_token_renews_once_and_is_sent_again(
    monkeypatch, emu, caplog, issued
):
    mns, fnf = hooks(monkeypatch, emu, LONG_ROLE)
    mns.create_queue("expiring")
    fnf.list_flows()
    for credentials in issued():
        emu.identities.expire_now(credentials.access_key_id)  # the service says "expired" before we think so

    with caplog.at_level(logging.INFO, logger="airflow_provider_fnf"):
        mns.send_message("expiring", "after the expiry")
        fnf.list_flows()

    stats = emu.stats.snapshot()
    assert stats["mns"]["SendMessage"] == {"SecurityTokenExpired": 1, "OK": 1}
    assert stats["fnf"]["ListFlows"] == {"OK": 2, "InvalidSecurityToken.Expired": 1}
    assert stats["sts"]["AssumeRole"] == {"OK": 4}  # one session per connection, then one more each
    renewals = [r.getMessage() for r in caplog.records if "met expired credentials" in r.getMessage()]
    assert len(renewals) == 2 and all("renewed them" in m for m in renewals)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    [received] = mns.receive_messages("expiring", wait_seconds=1)
    assert received.body == "after the expiry"


@pytest.mark.parametrize(
    ("service", "code", "error"),
    [
        ("mns", "SecurityTokenExpired", MNSAuthenticationError),
        ("fnf", "InvalidSecurityToken.Expired", ServerlessWorkflowAuthenticationError),
    ],
)
def test_a_session_still_refused_as_expired_after_renewal_names_the_connection_the_role_and_the_clock(
    monkeypatch, emu, service, code, error
):
    mns, fnf = hooks(monkeypatch, emu, LONG_ROLE)
    operation = "CreateQueue" if service == "mns" else "ListFlows"
    emu.faults.add({"operation": operation, "status": 403, "code": code, "times": 2}, service)

    with pytest.raises(error) as info:
        mns.create_queue("never") if service == "mns" else fnf.list_flows()

    text = str(info.value)
    assert (MNS_CONN_ID if service == "mns" else FNF_CONN_ID) in text
    assert LONG_ROLE in text and "expired" in text and "clock" in text
    assert emu.stats.snapshot()["sts"]["AssumeRole"] == {"OK": 2}  # renewed once, not in a loop


@pytest.mark.parametrize("service", ["mns", "fnf"])
@pytest.mark.parametrize(
    ("role_arn", "extra", "code", "says"),
    [
        pytest.param(
            UNKNOWN_ROLE, {}, "EntityNotExist.Role", ["check role_arn", "account id"], id="unknown-role"
        ),
        pytest.param(
            PARTNER_ROLE,
            {"external_id": "not-the-one"},
            "NoPermission",
            ["trust policy", "sts:ExternalId", "external_id"],
            id="wrong-external-id",
        ),
        pytest.param(
            PARTNER_ROLE, {}, "NoPermission", ["sts:ExternalId", "set external_id"], id="missing-external-id"
        ),
        pytest.param(
            GUARDED_ROLE,
            {},
            "NoPermission",
            ["trust policy", f"AccessKey {ACCESS_KEY_ID}", "sts:AssumeRole"],
            id="untrusted-source",
        ),
        pytest.param(
            LONG_ROLE,
            {"session_duration": 7200},
            "InvalidParameter.DurationSeconds",
            ["session_duration 7200", "maximum session duration"],
            id="session-above-the-roles-maximum",
        ),
    ],
)
def test_a_role_that_cannot_be_assumed_fails_with_an_error_that_says_what_to_check(
    monkeypatch, emu, service, role_arn, extra, code, says
):
    mns, fnf = hooks(monkeypatch, emu, role_arn, **extra)

    with pytest.raises(STSAssumeRoleError) as info:
        mns.create_queue("never") if service == "mns" else fnf.list_flows()

    error = info.value
    assert (error.code, error.resource) == (code, role_arn)
    assert error.conn_id == (MNS_CONN_ID if service == "mns" else FNF_CONN_ID)
    text = str(error)
    assert error.conn_id in text and role_arn in text and code in text
    for words in says:
        assert words in text
    # Nothing reached the service: the role was never assumed.
    assert emu.stats.snapshot().get(service, {}) == {}


def test_the_right_external_id_and_a_trusted_source_assume_the_role(monkeypatch, emu, issued):
    mns, fnf = hooks(monkeypatch, emu, PARTNER_ROLE, external_id=PARTNER_EXTERNAL_ID)
    mns.create_queue("partner")
    assert fnf.list_flows() == []
    set_connection(
        monkeypatch,
        "mns_trusted",
        conn_type="mns",
        login=TRUSTED_ACCESS_KEY_ID,
        password="another-accounts-secret",
        extra={"endpoint": emu.mns_endpoint, "role_arn": GUARDED_ROLE, "sts_endpoint": emu.sts_endpoint},
    )
    emu.identities.access_keys[TRUSTED_ACCESS_KEY_ID] = "another-accounts-secret"
    try:
        MNSHook("mns_trusted").create_queue("guarded")
    finally:
        del emu.identities.access_keys[TRUSTED_ACCESS_KEY_ID]
    assert {c.role_arn for c in issued()} == {PARTNER_ROLE, GUARDED_ROLE}
