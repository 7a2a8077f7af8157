"""A trigger that long-polls an MNS queue for Serverless Workflow task messages.

:class:`MNSMessageTrigger` serves three callers with the same code: the deferrable
:class:`~airflow_provider_fnf.sensors.mns.MNSSensor`, an ``AssetWatcher`` (event-driven
scheduling), and ``MessageQueueTrigger(scheme="mns", ...)``.

It yields **one** event per received batch and then returns. For a deferred sensor that is the
contract. For a watcher it is a choice: Airflow batches watcher events, and a trigger that
yields several events in quick succession has been seen to start one run that consumed one
event while the other events waited minutes for the next message. A trigger that returns after
its event is restarted by the triggerer about 2 s later, so every event starts a run promptly; a
batch of up to 16 messages per event keeps the throughput.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_fnf import limits
from airflow_provider_fnf.hooks._common import backoff_delay
from airflow_provider_fnf.messages import DEFAULT_TOKEN_KEYS
from airflow_provider_fnf.receiver import (
    DEFAULT_LEASE_SECONDS,
    POISON_ERROR_NAME,
    MNSMessageReceiver,
    MNSReceiveSettings,
    ReceiveResult,
    is_retryable,
    validate_receive_arguments,
)

DEFAULT_WAIT_TIME_SECONDS = 20
"""Long poll per receive call: below MNS's 30 s maximum and the SDK's socket timeout."""
DEFAULT_POLL_INTERVAL = 5.0
"""Pause between empty receives when long polling is off (``wait_time_seconds=0``)."""
DEFAULT_MAX_BACKOFF_SECONDS = 60.0
"""Longest pause after a transient error."""
_BACKOFF_BASE_SECONDS = 1.0


class MNSMessageTrigger(BaseEventTrigger):
    """
    Wait for task messages on an MNS queue; fire one event carrying the batch received.

    Each message in the event is leased (its visibility set to ``lease_seconds``) before the
    event fires, so it is not delivered again while its run works; the report operator deletes
    it after reporting. Poison messages and messages the filter rejects never reach the event
    (see :mod:`airflow_provider_fnf.receiver`).

    Event payload: ``{"status": "success", "queue_name": ..., "mns_conn_id": ...,
    "messages": [<parsed message dict>, ...]}`` (see :func:`airflow_provider_fnf.messages.parse_message`).
    Permanent errors (credentials, missing queue, bad configuration) raise, and the trigger
    fails; transient ones are retried with exponential backoff and logged.

    :param queue_name: MNS queue to poll.
    :param mns_conn_id: MNS connection id.
    :param fnf_conn_id: Serverless Workflow connection id, used to report poison messages' tasks failed.
    :param max_messages: messages per receive, 1..16.
    :param wait_time_seconds: long-poll seconds per receive, 0..30.
    :param lease_seconds: processing lease set on each message received, 1..43,200.
    :param delete_on_receipt: delete messages on receipt instead of leasing them (at most once:
        a run that fails afterwards loses its task).
    :param token_keys: keys under which the task token is looked for in a JSON body, in order.
    :param message_filtering: a JSONPath expression applied to the body, or None.
    :param message_filtering_match_values: values one of which the JSONPath must match.
    :param require_task_token: treat a body that is not JSON or has no task token as poison.
    :param max_receive_count: a message received more often is poison (None: no limit).
    :param poison_policy: ``dead_letter``, ``delete`` or ``leave`` (default: ``dead_letter``
        when ``dead_letter_queue_name`` is set, else ``leave``).
    :param dead_letter_queue_name: queue poison messages are moved to.
    :param report_poison_failures: report a poison message's task failed when its token can be read.
    :param poison_error_name: the error name reported for poison messages.
    :param body_encoding: ``raw`` (what Serverless Workflow sends), ``base64`` or ``auto``.
    :param poll_interval: seconds between empty receives when ``wait_time_seconds`` is 0.
    :param max_backoff_seconds: longest pause between retries after transient errors.
    """

    def __init__(
        self,
        *,
        queue_name: str,
        mns_conn_id: str = "mns_default",
        fnf_conn_id: str = "fnf_default",
        max_messages: int = limits.MNS_MAX_BATCH_SIZE,
        wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        delete_on_receipt: bool = False,
        token_keys: Sequence[str] = DEFAULT_TOKEN_KEYS,
        message_filtering: str | None = None,
        message_filtering_match_values: Sequence[Any] | None = None,
        require_task_token: bool = True,
        max_receive_count: int | None = None,
        poison_policy: str | None = None,
        dead_letter_queue_name: str | None = None,
        report_poison_failures: bool = True,
        poison_error_name: str = POISON_ERROR_NAME,
        body_encoding: str = "raw",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
    ) -> None:
        super().__init__()
        if message_filtering is not None and not isinstance(message_filtering, str):
            raise ValueError(
                f"MNSMessageTrigger for queue {queue_name!r} accepts a JSONPath string as message_filtering; "
                "a callable can only run in the sensor's worker (MNSSensor applies it after the trigger)"
            )
        validate_receive_arguments(
            queue_name=queue_name,
            max_messages=max_messages,
            lease_seconds=lease_seconds,
            token_keys=token_keys,
            message_filtering=message_filtering,
            max_receive_count=max_receive_count,
            poison_policy=poison_policy,
            dead_letter_queue_name=dead_letter_queue_name,
            poison_error_name=poison_error_name,
            body_encoding=body_encoding,
            wait_time_seconds=wait_time_seconds,
        )
        if poll_interval <= 0 or max_backoff_seconds <= 0:
            raise ValueError(
                f"poll_interval and max_backoff_seconds for queue {queue_name!r} must be positive, "
                f"got {poll_interval!r} and {max_backoff_seconds!r}"
            )
        self.queue_name = queue_name
        self.mns_conn_id = mns_conn_id
        self.fnf_conn_id = fnf_conn_id
        self.max_messages = max_messages
        self.wait_time_seconds = wait_time_seconds
        self.lease_seconds = lease_seconds
        self.delete_on_receipt = delete_on_receipt
        self.token_keys = list(token_keys)
        self.message_filtering = message_filtering
        self.message_filtering_match_values = (
            list(message_filtering_match_values) if message_filtering_match_values is not None else None
        )
        self.require_task_token = require_task_token
        self.max_receive_count = max_receive_count
        self.poison_policy = poison_policy
        self.dead_letter_queue_name = dead_letter_queue_name
        self.report_poison_failures = report_poison_failures
        self.poison_error_name = poison_error_name
        self.body_encoding = body_encoding
        self.poll_interval = poll_interval
        self.max_backoff_seconds = max_backoff_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "queue_name": self.queue_name,
                "mns_conn_id": self.mns_conn_id,
                "fnf_conn_id": self.fnf_conn_id,
                "max_messages": self.max_messages,
                "wait_time_seconds": self.wait_time_seconds,
                "lease_seconds": self.lease_seconds,
                "delete_on_receipt": self.delete_on_receipt,
                "token_keys": list(self.token_keys),
                "message_filtering": self.message_filtering,
                "message_filtering_match_values": self.message_filtering_match_values,
                "require_task_token": self.require_task_token,
                "max_receive_count": self.max_receive_count,
                "poison_policy": self.poison_policy,
                "dead_letter_queue_name": self.dead_letter_queue_name,
                "report_poison_failures": self.report_poison_failures,
                "poison_error_name": self.poison_error_name,
                "body_encoding": self.body_encoding,
                "poll_interval": self.poll_interval,
                "max_backoff_seconds": self.max_backoff_seconds,
            },
        )

    def receive_settings(self) -> MNSReceiveSettings:
        return MNSReceiveSettings.from_attributes(self)

    def _make_receiver(self) -> MNSMessageReceiver:
        """Built inside the trigger's own thread, so its hooks and SDK clients live there."""
        return MNSMessageReceiver(self.receive_settings())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The SDK is synchronous and not thread-safe: every call runs in this trigger's own
        # single thread, which owns the hooks and their SDK client; the event loop only awaits.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mns-trigger-{self.queue_name}")
        stopped = threading.Event()
        receiver: list[MNSMessageReceiver] = []

        def receive_once() -> ReceiveResult:
            if not receiver:
                receiver.append(self._make_receiver())
            return receiver[0].receive_batch(self.wait_time_seconds, should_stop=stopped.is_set)

        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while True:
                started = loop.time()
                try:
                    result = await loop.run_in_executor(executor, receive_once)
                except Exception as error:
                    if not is_retryable(error):
                        self.log.error(
                            "Receiving from MNS queue %s (connection %s) failed and will not succeed on retry: %s",
                            self.queue_name,
                            self.mns_conn_id,
                            error,
                        )
                        raise
                    failures += 1
                    delay = backoff_delay(failures, base=_BACKOFF_BASE_SECONDS, cap=self.max_backoff_seconds)
                    self.log.warning(
                        "Receiving from MNS queue %s failed (%s: %s); retrying in %.1f s (failure %d in a row)",
                        self.queue_name,
                        type(error).__name__,
                        error,
                        delay,
                        failures,
                    )
                    await asyncio.sleep(delay)
                    continue
                if failures:
                    self.log.info(
                        "Receiving from MNS queue %s works again after %d failure(s)",
                        self.queue_name,
                        failures,
                    )
                    failures = 0
                if result.messages:
                    yield TriggerEvent(
                        {
                            "status": "success",
                            "queue_name": self.queue_name,
                            "mns_conn_id": self.mns_conn_id,
                            "messages": result.messages,
                        }
                    )
                    return
                if loop.time() - started < 1.0:
                    # Nothing to work on and the call came back at once (no long poll, or the
                    # service cut it short): pause instead of spinning.
                    await asyncio.sleep(self.poll_interval if self.wait_time_seconds == 0 else 1.0)
        finally:
            stopped.set()
            executor.shutdown(wait=False, cancel_futures=True)
