"""An in-memory stand-in for the MNS emulator that records what the workflow engine sends (pure logic)."""

from __future__ import annotations

import json
import threading
from typing import Any

from fnf_emulator.core import ServiceError


class RecordingMNS:
    """Records sent messages; ``missing`` queues answer QueueNotExist like the MNS emulator."""

    def __init__(self, missing: tuple[str, ...] = ()) -> None:
        self.sent: list[dict[str, Any]] = []
        self.missing = missing
        self._cond = threading.Condition()

    def send_message(self, queue_name: str, body: str, priority: int, delay_seconds: int) -> str:
        if queue_name in self.missing:
            raise ServiceError(404, "QueueNotExist", f"The queue {queue_name} does not exist.")
        with self._cond:
            self.sent.append(
                {"queue": queue_name, "body": body, "priority": priority, "delay": delay_seconds}
            )
            self._cond.notify_all()
            return f"MSG{len(self.sent)}"

    def wait_for(self, count: int, timeout: float = 5) -> list[dict[str, Any]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.sent) >= count, timeout), (
                f"only {len(self.sent)} sent"
            )
            return list(self.sent)

    def token(self, index: int) -> str:
        return json.loads(self.wait_for(index + 1)[index]["body"])["task_token"]

    def body(self, index: int) -> Any:
        return json.loads(self.wait_for(index + 1)[index]["body"])
