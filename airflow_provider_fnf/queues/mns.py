"""MNS for ``MessageQueueTrigger`` (apache-airflow-providers-common-messaging).

``MessageQueueTrigger(scheme="mns", queue_name="fnf-tasks", mns_conn_id="mns_default")`` builds an
:class:`~airflow_provider_fnf.triggers.mns.MNSMessageTrigger` with the same keyword arguments.
The deprecated URI form ``MessageQueueTrigger(queue="mns://fnf-tasks")`` is understood too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from airflow.providers.common.messaging.providers.base_provider import BaseMessageQueueProvider

from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

if TYPE_CHECKING:
    from airflow.triggers.base import BaseEventTrigger

MNS_SCHEME = "mns"
_URI_OPTIONS = ("mns_conn_id", "fnf_conn_id")
"""Query parameters a ``mns://queue?mns_conn_id=...`` URI may carry."""


class MNSMessageQueueProvider(BaseMessageQueueProvider):
    """Serves ``scheme="mns"``: waits for Serverless Workflow task messages on an MNS queue."""

    scheme = MNS_SCHEME

    def queue_matches(self, queue: str) -> bool:
        return isinstance(queue, str) and queue.startswith(f"{MNS_SCHEME}://")

    def trigger_class(self) -> type[BaseEventTrigger]:
        return MNSMessageTrigger

    def trigger_kwargs(self, queue: str, **kwargs: Any) -> dict[str, Any]:
        """``mns://<queue name>[?mns_conn_id=...&fnf_conn_id=...]`` to trigger arguments."""
        parts = urlsplit(queue)
        name = (parts.netloc + parts.path).strip("/")
        if parts.scheme != MNS_SCHEME or not name or "/" in name:
            raise ValueError(f"Expected an MNS queue URI like 'mns://queue-name', got {queue!r}")
        result: dict[str, Any] = {}
        if "queue_name" not in kwargs:
            result["queue_name"] = name
        for key, value in parse_qsl(parts.query):
            if key not in _URI_OPTIONS:
                raise ValueError(
                    f"Unknown option {key!r} in MNS queue URI {queue!r}; allowed: {', '.join(_URI_OPTIONS)}"
                )
            if key not in kwargs:
                result[key] = value
        return result
