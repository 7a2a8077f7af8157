"""Send a message to a Simple Message Queue (MNS) queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_fnf.exceptions import FnFConfigurationError
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.limits import (
    MNS_MAX_DELAY_SECONDS,
    MNS_MAX_MESSAGE_SIZE,
    MNS_MAX_PRIORITY,
    MNS_MIN_PRIORITY,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


def _check_range(task_id: str, name: str, value: Any, low: int, high: int) -> None:
    """Check a number the user passed (a template string is checked once rendered)."""
    if value is None or (isinstance(value, str) and "{{" in value):
        return
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FnFConfigurationError(f"Task {task_id}: {name} must be an integer (got {value!r})") from None
    if not low <= number <= high:
        raise FnFConfigurationError(f"Task {task_id}: {name} must be within {low}..{high} (got {number})")


class MNSSendMessageOperator(BaseOperator):
    """Send one message to an MNS queue and return its message id.

    :param queue_name: the queue (templated).
    :param message_body: the body (templated): a string is sent as it is, a dict or a list as
        compact JSON. At most 64 KiB once encoded.
    :param priority: 1 (highest) .. 16; None keeps the queue's default of 8 (templated).
    :param delay_seconds: seconds before the message becomes visible, 0..604800; None keeps the
        queue's default (templated).
    :param mns_conn_id: the ``mns`` connection (templated).
    """

    template_fields: Sequence[str] = (
        "queue_name",
        "message_body",
        "priority",
        "delay_seconds",
        "mns_conn_id",
    )
    template_fields_renderers = {"message_body": "json"}
    ui_color = "#ffd9b3"

    def __init__(
        self,
        *,
        queue_name: str,
        message_body: str | dict[str, Any] | list[Any],
        priority: int | None = None,
        delay_seconds: int | None = None,
        mns_conn_id: str = "mns_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_range(self.task_id, "priority", priority, MNS_MIN_PRIORITY, MNS_MAX_PRIORITY)
        _check_range(self.task_id, "delay_seconds", delay_seconds, 0, MNS_MAX_DELAY_SECONDS)
        self.queue_name = queue_name
        self.message_body = message_body
        self.priority = priority
        self.delay_seconds = delay_seconds
        self.mns_conn_id = mns_conn_id

    @cached_property
    def hook(self) -> MNSHook:
        return MNSHook(mns_conn_id=self.mns_conn_id)

    def _body_text(self) -> str:
        body = self.message_body
        if isinstance(body, (dict, list)):
            text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        elif isinstance(body, str):
            text = body
        else:
            raise FnFConfigurationError(
                f"Task {self.task_id}: message_body for queue {self.queue_name} must be a string, a dict "
                f"or a list (got {type(body).__name__})"
            )
        size = len(text.encode("utf-8"))
        if size > MNS_MAX_MESSAGE_SIZE:
            raise FnFConfigurationError(
                f"Task {self.task_id}: message_body for queue {self.queue_name} is {size} bytes, "
                f"more than the {MNS_MAX_MESSAGE_SIZE} bytes an MNS message can hold"
            )
        return text

    def execute(self, context: Context) -> str:
        _check_range(self.task_id, "priority", self.priority, MNS_MIN_PRIORITY, MNS_MAX_PRIORITY)
        _check_range(self.task_id, "delay_seconds", self.delay_seconds, 0, MNS_MAX_DELAY_SECONDS)
        body = self._body_text()
        message_id = self.hook.send_message(
            self.queue_name,
            body,
            priority=int(self.priority) if self.priority is not None else None,
            delay_seconds=int(self.delay_seconds) if self.delay_seconds is not None else None,
        )
        self.log.info("Sent message %s to queue %s (%d bytes)", message_id, self.queue_name, len(body))
        return message_id
