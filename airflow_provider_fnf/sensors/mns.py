"""A sensor that waits for Serverless Workflow task messages on an MNS queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_fnf import limits
from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.masking import mask_task_token
from airflow_provider_fnf.messages import DEFAULT_TOKEN_KEYS, message_matches
from airflow_provider_fnf.receiver import (
    DEFAULT_LEASE_SECONDS,
    POISON_ERROR_NAME,
    MNSMessageReceiver,
    MNSReceiveSettings,
    validate_receive_arguments,
)
from airflow_provider_fnf.triggers.mns import DEFAULT_WAIT_TIME_SECONDS, MNSMessageTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class MNSSensor(BaseSensorOperator):
    """
    Wait for task messages on an MNS queue and push them to XCom as parsed dicts.

    The sensor's return value (XCom ``return_value``, ``sensor.output``) is a list of dicts made
    by :func:`airflow_provider_fnf.messages.parse_message`: ``message_id``, ``receipt_handle``,
    ``queue_name``, ``mns_conn_id``, ``dequeue_count``, ``enqueue_time``, ``body`` (parsed JSON),
    ``raw_body``, ``task_token``, ``flow_name``, ``execution_name``.

    Messages are **not** deleted on receipt: each gets a processing lease (its visibility is set
    to ``lease_seconds``), and the report operator deletes it after reporting the task token.
    Messages that do not match ``message_filtering`` are released at once; poison messages follow
    ``poison_policy`` (see :mod:`airflow_provider_fnf.receiver`).

    :param queue_name: MNS queue to read. (templated)
    :param mns_conn_id: MNS connection id.
    :param fnf_conn_id: Serverless Workflow connection id, used to report poison messages' tasks failed.
    :param max_messages: messages per receive call, 1..16.
    :param num_batches: receive calls per poke, or per resume in deferrable mode: up to
        ``max_messages * num_batches`` messages.
    :param wait_time_seconds: long-poll seconds per receive call, 0..30.
    :param lease_seconds: processing lease set on each message received, 1..43,200 (default 3,600).
    :param delete_on_receipt: opt-in: delete each message as soon as it is received instead of
        leasing it. Delivery then becomes at most once: if the run fails before reporting, the
        task token is lost and the flow waits for its step's timeout.
    :param token_keys: keys under which the task token is looked for in a JSON body, in order;
        a dotted key walks nested objects.
    :param message_filtering: a callable taking the parsed message dict and returning a bool, or
        a JSONPath expression applied to the body. Non-matching messages are released at once.
    :param message_filtering_match_values: with a JSONPath, the values one of which must match.
    :param require_task_token: a body that is not a JSON object with a task token is poison.
    :param max_receive_count: a message received more often than this is poison (None: no limit).
    :param poison_policy: ``dead_letter`` (send, then delete), ``delete`` or ``leave``; default
        ``dead_letter`` when ``dead_letter_queue_name`` is set, else ``leave``.
    :param dead_letter_queue_name: queue poison messages are moved to. (templated)
    :param report_poison_failures: report a poison message's task failed when a token can be read.
    :param poison_error_name: the error name reported for poison messages (what the flow's
        retry/catch matches).
    :param body_encoding: ``raw`` (what Serverless Workflow sends), ``base64`` or ``auto``.
    :param deferrable: wait in the triggerer instead of a worker slot (default
        ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("queue_name", "dead_letter_queue_name")
    ui_color = "#ff6a00"

    def __init__(
        self,
        *,
        queue_name: str,
        mns_conn_id: str = "mns_default",
        fnf_conn_id: str = "fnf_default",
        max_messages: int = limits.MNS_MAX_BATCH_SIZE,
        num_batches: int = 1,
        wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        delete_on_receipt: bool = False,
        token_keys: Sequence[str] = DEFAULT_TOKEN_KEYS,
        message_filtering: str | Callable[[dict[str, Any]], bool] | None = None,
        message_filtering_match_values: Sequence[Any] | None = None,
        require_task_token: bool = True,
        max_receive_count: int | None = None,
        poison_policy: str | None = None,
        dead_letter_queue_name: str | None = None,
        report_poison_failures: bool = True,
        poison_error_name: str = POISON_ERROR_NAME,
        body_encoding: str = "raw",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        if not isinstance(num_batches, int) or num_batches < 1:
            raise ValueError(
                f"num_batches for queue {queue_name!r} must be a positive integer, got {num_batches!r}"
            )
        self.queue_name = queue_name
        self.mns_conn_id = mns_conn_id
        self.fnf_conn_id = fnf_conn_id
        self.max_messages = max_messages
        self.num_batches = num_batches
        self.wait_time_seconds = wait_time_seconds
        self.lease_seconds = lease_seconds
        self.delete_on_receipt = delete_on_receipt
        self.token_keys = list(token_keys)
        self.message_filtering = message_filtering
        self.message_filtering_match_values = message_filtering_match_values
        self.require_task_token = require_task_token
        self.max_receive_count = max_receive_count
        self.poison_policy = poison_policy
        self.dead_letter_queue_name = dead_letter_queue_name
        self.report_poison_failures = report_poison_failures
        self.poison_error_name = poison_error_name
        self.body_encoding = body_encoding
        self.deferrable = deferrable

    # -- building blocks ---------------------------------------------------------------------
    def _settings(self, *, with_callable_filter: bool) -> MNSReceiveSettings:
        message_filtering = self.message_filtering
        if callable(message_filtering) and not with_callable_filter:
            message_filtering = None
        return MNSReceiveSettings.from_attributes(self, message_filtering=message_filtering)

    @cached_property
    def receiver(self) -> MNSMessageReceiver:
        """Receives, filters (a callable too), settles poison messages and leases, in this worker."""
        return MNSMessageReceiver(self._settings(with_callable_filter=True))

    def _trigger(self) -> MNSMessageTrigger:
        # A callable filter cannot be serialized: it runs here, in execute_complete.
        arguments = self._settings(with_callable_filter=False).arguments()
        values = self.message_filtering_match_values
        arguments["message_filtering_match_values"] = (
            list(values) if arguments["message_filtering"] and values else None
        )
        return MNSMessageTrigger(
            **arguments,
            wait_time_seconds=self.wait_time_seconds,
            # a resumed sensor gets what a poke would: up to num_batches batches
            max_messages_per_event=self.max_messages * self.num_batches,
        )

    def _receive(self, wait_seconds: int, batches: int) -> list[dict[str, Any]]:
        collected: list[dict[str, Any]] = []
        for _ in range(batches):
            result = self.receiver.receive_batch(wait_seconds)
            collected.extend(result.messages)
            if result.received < self.max_messages:
                break  # the queue had no more for now
        return collected

    def _log_received(self, messages: list[dict[str, Any]]) -> None:
        self.log.info(
            "Got %d task message(s) from MNS queue %s: %s",
            len(messages),
            self.queue_name,
            ", ".join(m["message_id"] for m in messages),
        )

    # -- poke mode -----------------------------------------------------------------------------
    def poke(self, context: Context) -> bool | PokeReturnValue:
        messages = self._receive(self.wait_time_seconds, self.num_batches)
        if not messages:
            self.log.info("No task message on MNS queue %s yet", self.queue_name)
            return False
        self._log_received(messages)
        return PokeReturnValue(is_done=True, xcom_value=messages)

    # -- deferrable mode -------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # Check once before deferring: a message already waiting needs no triggerer round trip.
        messages = self._receive(0, 1)
        if messages:
            return messages
        self._defer()

    def _defer(self) -> None:
        self.defer(
            trigger=self._trigger(),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        if (
            not isinstance(event, dict)
            or event.get("status") != "success"
            or not isinstance(event.get("messages"), list)
        ):
            # Never echo the event itself: its messages carry task tokens.
            what = f"status {event.get('status')!r}" if isinstance(event, dict) else type(event).__name__
            raise FnFProviderError(
                f"MNSSensor {self.task_id}: unexpected event from MNSMessageTrigger for queue "
                f"{self.queue_name!r} ({what}); expected status 'success' with a list of messages",
                conn_id=self.mns_conn_id,
                resource=self.queue_name,
            )
        messages: list[dict[str, Any]] = event["messages"]
        for message in messages:  # this worker's log masker learns the tokens too
            mask_task_token(message.get("task_token"))
        if callable(self.message_filtering):
            kept = []
            for message in messages:
                if message_matches(message, self.message_filtering):
                    kept.append(message)
                elif message.get("receipt_handle"):
                    self.receiver.release(message)
            messages = kept
        if not messages:
            self.log.info(
                "Every message received from MNS queue %s was filtered out; waiting again", self.queue_name
            )
            self._defer()
        self._log_received(messages)
        return messages
