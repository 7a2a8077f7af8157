"""What happened to each message, in order: the emulator's own record, read through the admin API.

MNS itself keeps no such log; the emulator records one so that a test or a benchmark can tell
when a message was sent, received (each time), had its visibility changed, was deleted or
expired, without adding a request of its own to the queue. ``GET
/_emulator/mns/message-events?queue=NAME`` (optionally ``&message_id=ID``) answers
``{"events": [{"queue": ..., "message_id": ..., "event": "received", "time_ms": ...,
"dequeue_count": 1}, ...]}``, oldest first; ``DELETE`` clears it, as does ``POST
/_emulator/reset``. The log is kept in memory only (a restart starts it empty) and holds the
newest :data:`MAX_EVENTS` events.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

MAX_EVENTS = 200_000
"""Events kept (oldest dropped first): about 40,000 messages' worth, a few tens of MiB at most."""

SENT, RECEIVED, VISIBILITY_CHANGED, DELETED, EXPIRED = (
    "sent",
    "received",
    "visibility_changed",
    "deleted",
    "expired",
)
EVENTS = (SENT, RECEIVED, VISIBILITY_CHANGED, DELETED, EXPIRED)


class MNSMessageEventLog:
    """The newest ``capacity`` message events of every queue. Thread-safe."""

    def __init__(self, capacity: int = MAX_EVENTS) -> None:
        self._lock = threading.Lock()
        self._events: deque[tuple[str, str, str, int, int]] = deque(maxlen=capacity)

    def record(self, queue: str, message_id: str, event: str, time_ms: int, dequeue_count: int) -> None:
        with self._lock:
            self._events.append((queue, message_id, event, time_ms, dequeue_count))

    def events(self, queue: str | None = None, message_id: str | None = None) -> list[dict[str, Any]]:
        """The recorded events, oldest first, of one queue and/or one message when given."""
        with self._lock:
            kept = list(self._events)
        return [
            {"queue": q, "message_id": m, "event": e, "time_ms": t, "dequeue_count": d}
            for q, m, e, t, d in kept
            if (queue is None or q == queue) and (message_id is None or m == message_id)
        ]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
