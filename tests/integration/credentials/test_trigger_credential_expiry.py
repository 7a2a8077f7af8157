"""MNSMessageTrigger on a connection that assumes a RAM role whose sessions last seconds: run after
run, as the triggerer restarts it, its kept SDK client long-polls across several expiries with no
failed receive and no lost message, and every renewed secret and token is masked (the real MNS
SDK and alibabacloud-credentials, over HTTPS)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
from airflow.sdk._shared.secrets_masker import redact
from credentials_it_support import MNS_CONN_ID, SHORT_ROLE, SHORT_SESSION_SECONDS, role_connection

from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger
from tests.support import set_connection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EXPIRIES = 2
"""Sessions that must expire while the trigger polls."""


async def one_event(trigger: MNSMessageTrigger, limit: float) -> dict | None:
    """The payload of the trigger's run, or None when nothing came within ``limit`` seconds."""

    async def run():
        return [event async for event in trigger.run()]

    try:
        [event] = await asyncio.wait_for(run(), limit)
    except asyncio.TimeoutError:
        return None
    return event.payload


def test_a_trigger_long_polling_across_two_expiries_loses_no_message_and_logs_no_failed_receive(
    monkeypatch, emu, issued, caplog
):
    set_connection(monkeypatch, MNS_CONN_ID, **role_connection(emu, "mns", SHORT_ROLE))
    queue = "long-poll-across-expiries"
    MNSHook(MNS_CONN_ID).create_queue(queue)
    polling_seconds = (EXPIRIES + 1) * SHORT_SESSION_SECONDS + 1
    sent: list[str] = []
    stop = threading.Event()

    def send_now_and_then() -> None:
        sender = MNSHook(MNS_CONN_ID)  # another hook, the same STS session
        number = 0
        while not stop.wait(0.6):
            number += 1
            sent.append(sender.send_message(queue, json.dumps({"task_token": f"token-{number:03d}"})))

    received: list[dict] = []
    runs = 0
    with caplog.at_level(logging.INFO):
        sender = threading.Thread(target=send_now_and_then, daemon=True)
        sender.start()
        deadline = time.monotonic() + polling_seconds
        try:
            while time.monotonic() < deadline:
                # A new trigger per run, as the triggerer builds it; the SDK client stays in the pool's thread.
                trigger = MNSMessageTrigger(queue_name=queue, mns_conn_id=MNS_CONN_ID, wait_time_seconds=2)
                payload = asyncio.run(one_event(trigger, limit=5))
                runs += 1
                if payload is not None:
                    received.extend(payload["messages"])
        finally:
            stop.set()
            sender.join(timeout=10)
        while len(received) < len(sent):  # what was sent in the last moment
            payload = asyncio.run(
                one_event(
                    MNSMessageTrigger(queue_name=queue, mns_conn_id=MNS_CONN_ID, wait_time_seconds=2), 5
                )
            )
            assert payload is not None, f"{len(sent) - len(received)} message(s) never arrived"
            received.extend(payload["messages"])
            runs += 1

    assert sorted(m["message_id"] for m in received) == sorted(sent)
    assert len(sent) >= 10 and runs >= 5
    # The sessions really expired under the polling trigger: several were assumed one after another.
    sessions = issued()
    assert len(sessions) >= EXPIRIES + 1
    assert sum(1 for s in sessions if s.expiration <= time.time()) >= EXPIRIES
    # Every receive was answered as a receive: none refused as expired, none failed.
    outcomes = emu.stats.snapshot()["mns"]
    for operation in ("ReceiveMessage", "BatchReceiveMessage"):
        assert set(outcomes.get(operation, {})) <= {"OK", "MessageNotExist"}, outcomes
    assert "SecurityTokenExpired" not in json.dumps(outcomes)
    problems = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name != "credentials"
    ]
    assert problems == []
    renewals = [r for r in caplog.records if r.getMessage().startswith(f"Assumed RAM role {SHORT_ROLE}")]
    assert len(renewals) >= EXPIRIES + 1
    # Every renewal's secret and security token is known to the secrets masker.
    for session in sessions:
        line = redact(f"secret {session.access_key_secret} token {session.security_token}")
        assert session.access_key_secret not in line and session.security_token not in line
