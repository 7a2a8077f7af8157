"""In-memory queues with an optional SQLite write-through copy.

Each queue keeps its messages in a dict plus two heaps: ``ready`` (visible now, ordered by
priority then arrival) and ``pending`` (delayed or in flight, ordered by the time they become
visible). Heap entries carry the message's generation; a message whose state changed leaves its
old entries behind, and they are skipped when they surface.

With a database, every change is written before the request is answered (WAL journal,
``synchronous=NORMAL``: a crash of the process loses nothing), and :meth:`MNSDatabase.load`
rebuilds the queues, visibility deadlines and receipt handles included.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import IO

try:
    import fcntl
except ImportError:  # not POSIX: no lock, one emulator per data directory is then up to the user
    fcntl = None  # type: ignore[assignment]

from fnf_emulator.limits import (
    MNS_DEFAULT_DELAY_SECONDS,
    MNS_DEFAULT_POLLING_WAIT_SECONDS,
    MNS_DEFAULT_RETENTION_SECONDS,
    MNS_DEFAULT_VISIBILITY_TIMEOUT,
    MNS_MAX_MESSAGE_SIZE,
)

_PURGE_INTERVAL_MS = 1_000


@dataclass
class QueueAttributes:
    visibility_timeout: int = MNS_DEFAULT_VISIBILITY_TIMEOUT
    maximum_message_size: int = MNS_MAX_MESSAGE_SIZE
    message_retention_period: int = MNS_DEFAULT_RETENTION_SECONDS
    delay_seconds: int = MNS_DEFAULT_DELAY_SECONDS
    polling_wait_seconds: int = MNS_DEFAULT_POLLING_WAIT_SECONDS
    logging_enabled: bool = False


@dataclass(eq=False)
class StoredMessage:
    message_id: str
    body: str
    body_md5: str
    priority: int
    seq: int
    enqueue_time: int
    """Epoch milliseconds."""
    first_dequeue_time: int = 0
    dequeue_count: int = 0
    visible_at: int = 0
    """Epoch milliseconds from which the message is active (after a delay or a receive)."""
    receipt_handle: str | None = None
    gen: int = 0


class MNSQueue:
    """One queue's state. Not thread-safe by itself: the service holds its lock."""

    def __init__(
        self,
        name: str,
        attributes: QueueAttributes,
        create_time: int,
        last_modify_time: int,
        lock: threading.Lock,
    ) -> None:
        self.name = name
        self.attributes = attributes
        self.create_time = create_time
        self.last_modify_time = last_modify_time
        self.cond = threading.Condition(lock)
        self.messages: dict[str, StoredMessage] = {}
        self.handles: dict[str, str] = {}
        self._ready: list[tuple[int, int, int, str]] = []
        self._pending: list[tuple[int, int, str]] = []
        self._next_purge = 0

    # --- state changes -------------------------------------------------------------------
    def add(self, message: StoredMessage, now: int) -> None:
        self.messages[message.message_id] = message
        if message.receipt_handle:
            self.handles[message.receipt_handle] = message.message_id
        self._schedule(message, now)

    def remove(self, message: StoredMessage) -> None:
        self.messages.pop(message.message_id, None)
        if message.receipt_handle:
            self.handles.pop(message.receipt_handle, None)

    def hide(self, message: StoredMessage, until: int, handle: str) -> None:
        """Make a message invisible until ``until`` under a new receipt handle."""
        if message.receipt_handle:
            self.handles.pop(message.receipt_handle, None)
        message.receipt_handle = handle
        message.visible_at = until
        self.handles[handle] = message.message_id
        message.gen += 1
        heapq.heappush(self._pending, (until, message.gen, message.message_id))
        self._maybe_compact()

    def _schedule(self, message: StoredMessage, now: int) -> None:
        if message.visible_at <= now:
            heapq.heappush(self._ready, (message.priority, message.seq, message.gen, message.message_id))
        else:
            heapq.heappush(self._pending, (message.visible_at, message.gen, message.message_id))
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        """Drop stale heap entries once they outnumber the messages (visibility changes leave some)."""
        if len(self._ready) + len(self._pending) <= 2 * len(self.messages) + 1024:
            return
        self._ready = [e for e in self._ready if self._current(e[3], e[2])]
        self._pending = [e for e in self._pending if self._current(e[2], e[1])]
        heapq.heapify(self._ready)
        heapq.heapify(self._pending)

    def _current(self, message_id: str, gen: int) -> bool:
        message = self.messages.get(message_id)
        return message is not None and message.gen == gen

    # --- queries -------------------------------------------------------------------------
    def _promote(self, now: int) -> None:
        pending = self._pending
        while pending and pending[0][0] <= now:
            _, gen, message_id = heapq.heappop(pending)
            message = self.messages.get(message_id)
            if message is not None and message.gen == gen:
                heapq.heappush(self._ready, (message.priority, message.seq, gen, message_id))

    def expired(self, message: StoredMessage, now: int) -> bool:
        return message.enqueue_time + self.attributes.message_retention_period * 1000 <= now

    def purge_expired(self, now: int, force: bool = False) -> list[StoredMessage]:
        """Drop messages older than the retention period (at most once a second unless forced)."""
        if not force and now < self._next_purge:
            return []
        self._next_purge = now + _PURGE_INTERVAL_MS
        gone = [m for m in self.messages.values() if self.expired(m, now)]
        for message in gone:
            self.remove(message)
        return gone

    def take(self, now: int, count: int) -> list[StoredMessage]:
        """Pop up to ``count`` active messages, priority first, then arrival."""
        self._promote(now)
        taken: list[StoredMessage] = []
        ready = self._ready
        while ready and len(taken) < count:
            _, _, gen, message_id = heapq.heappop(ready)
            message = self.messages.get(message_id)
            if message is None or message.gen != gen:
                continue
            if not self.expired(message, now):  # expired ones wait for purge_expired
                taken.append(message)
        return taken

    def peek(self, now: int, count: int) -> list[StoredMessage]:
        self._promote(now)
        entries = sorted(e for e in self._ready if self._current(e[3], e[2]))
        found = []
        for _, _, _, message_id in entries:
            message = self.messages[message_id]
            if not self.expired(message, now):
                found.append(message)
                if len(found) == count:
                    break
        return found

    def next_due(self) -> int | None:
        """When the next delayed or in-flight message becomes active (epoch ms)."""
        pending = self._pending
        while pending:
            due, gen, message_id = pending[0]
            if self._current(message_id, gen):
                return due
            heapq.heappop(pending)
        return None

    def by_handle(self, handle: str, now: int) -> StoredMessage | None:
        """The message a receipt handle names, if the handle is still the current, unexpired one."""
        message_id = self.handles.get(handle)
        message = self.messages.get(message_id) if message_id else None
        if message is None or message.receipt_handle != handle or message.visible_at <= now:
            return None
        return message

    def counts(self, now: int) -> tuple[int, int, int]:
        """(active, inactive, delayed) message counts."""
        active = inactive = delayed = 0
        for message in self.messages.values():
            if message.visible_at <= now:
                active += 1
            elif message.dequeue_count:
                inactive += 1
            else:
                delayed += 1
        return active, inactive, delayed


_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    attributes TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    last_modify_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    body_md5 TEXT NOT NULL,
    priority INTEGER NOT NULL,
    enqueue_time INTEGER NOT NULL,
    first_dequeue_time INTEGER NOT NULL,
    dequeue_count INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receipt_handle TEXT,
    PRIMARY KEY (queue, message_id)
);
"""

_MESSAGE_COLUMNS = (
    "message_id, body, body_md5, priority, seq, enqueue_time, first_dequeue_time, dequeue_count, "
    "visible_at, receipt_handle"
)


class MNSDatabase:
    """The SQLite copy of the queues. Callers serialize access (the service's lock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock_file = _exclusive_lock(f"{path}.lock")
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._conn.commit()

    def load(self) -> list[tuple[str, QueueAttributes, int, int, list[StoredMessage]]]:
        queues = []
        for name, attributes, create_time, last_modify_time in self._conn.execute(
            "SELECT name, attributes, create_time, last_modify_time FROM queues ORDER BY name"
        ):
            rows = self._conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE queue = ? ORDER BY seq", (name,)
            ).fetchall()
            messages = [StoredMessage(*row) for row in rows]
            queues.append(
                (name, QueueAttributes(**json.loads(attributes)), create_time, last_modify_time, messages)
            )
        return queues

    def save_queue(self, queue: MNSQueue) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO queues (name, attributes, create_time, last_modify_time) VALUES (?, ?, ?, ?)",
                (queue.name, json.dumps(asdict(queue.attributes)), queue.create_time, queue.last_modify_time),
            )

    def delete_queue(self, name: str) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM messages WHERE queue = ?", (name,))
            self._conn.execute("DELETE FROM queues WHERE name = ?", (name,))

    def insert_messages(self, queue: str, messages: Iterable[StoredMessage]) -> None:
        with self._conn:
            self._conn.executemany(
                f"INSERT INTO messages (queue, {_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        queue,
                        m.message_id,
                        m.body,
                        m.body_md5,
                        m.priority,
                        m.seq,
                        m.enqueue_time,
                        m.first_dequeue_time,
                        m.dequeue_count,
                        m.visible_at,
                        m.receipt_handle,
                    )
                    for m in messages
                ],
            )

    def update_messages(self, queue: str, messages: Iterable[StoredMessage]) -> None:
        with self._conn:
            self._conn.executemany(
                "UPDATE messages SET first_dequeue_time = ?, dequeue_count = ?, visible_at = ?, receipt_handle = ? "
                "WHERE queue = ? AND message_id = ?",
                [
                    (
                        m.first_dequeue_time,
                        m.dequeue_count,
                        m.visible_at,
                        m.receipt_handle,
                        queue,
                        m.message_id,
                    )
                    for m in messages
                ],
            )

    def delete_messages(self, queue: str, message_ids: Iterable[str]) -> None:
        with self._conn:
            self._conn.executemany(
                "DELETE FROM messages WHERE queue = ? AND message_id = ?",
                [(queue, mid) for mid in message_ids],
            )

    def clear(self) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM messages")
            self._conn.execute("DELETE FROM queues")

    def close(self) -> None:
        self._conn.close()
        self._lock_file.close()


def _exclusive_lock(path: str) -> IO[str]:
    """Hold an exclusive lock on ``path`` so that two emulators never share one data directory."""
    handle = open(path, "a", encoding="utf-8")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            raise RuntimeError(f"{path} is locked: another emulator is using this data directory") from exc
    return handle
