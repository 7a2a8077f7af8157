"""A sensor that waits for Serverless Workflow task messages on an MNS queue."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.masking import mask_task_token
from airflow_provider_fnf.messages import message_matches
from airflow_provider_fnf.receive_settings import MNSReceiveSettings, accepts_receive_options
from airflow_provider_fnf.receiver import MNSMessageReceiver
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

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

    Every option of :class:`~airflow_provider_fnf.receive_settings.MNSReceiveSettings` is a keyword
    argument of the same name (``queue_name``, ``mns_conn_id``, ``lease_seconds``,
    ``message_filtering``, ``poison_policy``, ``dead_letter_queue_name``, ...), checked when the DAG is
    parsed; ``queue_name`` and ``dead_letter_queue_name`` are templated. ``message_filtering`` may
    also be a callable taking the parsed message dict: it then runs in this worker. Besides:

    :param num_batches: receive calls per poke, or per resume in deferrable mode: up to
        ``max_messages * num_batches`` messages.
    :param deferrable: wait in the triggerer instead of a worker slot (default
        ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("queue_name", "dead_letter_queue_name")
    ui_color = "#ff6a00"

    @accepts_receive_options
    def __init__(
        self,
        *,
        queue_name: str,
        num_batches: int = 1,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        options, operator_kwargs = MNSReceiveSettings.split_options(kwargs)
        super().__init__(**operator_kwargs)
        try:
            self.receive_settings = MNSReceiveSettings(queue_name=queue_name, **options)
        except ValueError as err:
            raise type(err)(f"MNSSensor {self.task_id}: {err}") from None
        if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
            raise ValueError(
                f"MNSSensor {self.task_id}: num_batches for queue {queue_name!r} must be a positive "
                f"integer, got {num_batches!r}"
            )
        # The templated options, rendered in place before execute() reads them back.
        self.queue_name = queue_name
        self.dead_letter_queue_name = self.receive_settings.dead_letter_queue_name
        self.num_batches = num_batches
        self.deferrable = deferrable

    # -- building blocks ---------------------------------------------------------------------
    @property
    def settings(self) -> MNSReceiveSettings:
        """The receive settings with the rendered templated options."""
        return dataclasses.replace(
            self.receive_settings,
            queue_name=self.queue_name,
            dead_letter_queue_name=self.dead_letter_queue_name,
        )

    @cached_property
    def receiver(self) -> MNSMessageReceiver:
        """Receives, filters (a callable too), settles poison messages and leases, in this worker."""
        return MNSMessageReceiver(self.settings)

    def _trigger(self) -> MNSMessageTrigger:
        # A callable filter cannot be serialized: it runs here, in execute_complete.
        return MNSMessageTrigger(
            **self.settings.without_callable_filter().to_json(),
            # a resumed sensor gets what a poke would: up to num_batches batches
            max_messages_per_event=self.receive_settings.max_messages * self.num_batches,
        )

    def _receive(self, wait_seconds: int, batches: int) -> list[dict[str, Any]]:
        collected: list[dict[str, Any]] = []
        for _ in range(batches):
            result = self.receiver.receive_batch(wait_seconds)
            collected.extend(result.messages)
            if result.received < self.receive_settings.max_messages:
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
        messages = self._receive(self.receive_settings.wait_time_seconds, self.num_batches)
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
                conn_id=self.receive_settings.mns_conn_id,
                resource=self.queue_name,
            )
        messages: list[dict[str, Any]] = event["messages"]
        for message in messages:  # this worker's log masker learns the tokens too
            mask_task_token(message.get("task_token"))
        message_filtering = self.receive_settings.message_filtering
        if callable(message_filtering):
            kept = []
            for message in messages:
                if message_matches(message, message_filtering):
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
