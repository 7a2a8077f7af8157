"""A trigger that long-polls an MNS queue for Serverless Workflow task messages.

:class:`MNSMessageTrigger` serves three callers with the same code: the deferrable
:class:`~airflow_provider_fnf.sensors.mns.MNSSensor`, an ``AssetWatcher`` (event-driven
scheduling), and ``MessageQueueTrigger(scheme="mns", ...)``.

It yields **one** event and then returns. For a deferred sensor that is the contract. For a
watcher it is a choice: Airflow batches watcher events, and a trigger that yields several events
in quick succession has been seen to start one run that consumed one event while the other
events waited minutes for the next message. A trigger that returns after its event is restarted
by the triggerer about 2 s later, so every event starts a run promptly. To keep the throughput
while a backlog lasts, one event gathers several batches: every full batch is followed at once
by another (no long poll), up to ``max_messages_per_event`` messages or ``max_bytes_per_event``
bytes of bodies; a partial batch ends the event.

The triggerer builds a new trigger for every run. What is costly to build is kept between runs
in the process instead: the thread that makes the SDK calls and, in it, the MNS hook with its
SDK client and open connection (see :class:`_WorkerPool`). Each run still reads its connection,
so changed settings take effect on the next run.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_fnf.hooks._common import backoff_delay
from airflow_provider_fnf.receive_settings import MNSReceiveSettings, accepts_receive_options
from airflow_provider_fnf.receiver import MNSMessageReceiver, ReceiveResult, is_retryable

if TYPE_CHECKING:
    from airflow_provider_fnf.hooks.mns import BodyEncoding, MNSHook

DEFAULT_POLL_INTERVAL = 5.0
"""Pause between empty receives when long polling is off (``wait_time_seconds=0``)."""
DEFAULT_MAX_BACKOFF_SECONDS = 60.0
"""Longest pause after a transient error."""
DEFAULT_MAX_MESSAGES_PER_EVENT = 256
"""Most messages received for one event (16 full batches) while a backlog lasts."""
DEFAULT_MAX_BYTES_PER_EVENT = 1024 * 1024
"""No further batch is received once the event's message bodies reach this many bytes (1 MiB).
A batch is received whole, so an event can pass it by one batch (16 bodies of at most 64 KiB).
The stored event holds each body twice (parsed and raw)."""
_BACKOFF_BASE_SECONDS = 1.0
_IDLE_WORKER_SECONDS = 60.0
"""A worker no trigger run has used for this long is shut down (the triggerer restarts a
returned trigger about 2 s later)."""
_MAX_IDLE_WORKERS = 64
"""Most idle workers kept in a process; the busy ones are not counted."""


class _Worker:
    """One thread that runs a trigger's SDK calls. It serves one trigger run at a time; the MNS
    hooks built in it (each with this thread's SDK client) stay for the next run."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mns-trigger")
        self.idle_since = 0.0

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False)


class _WorkerPool:
    """The idle workers of this process, by MNS connection id and body encoding.

    A trigger run takes a worker (an idle one, else a new one) and gives it back when its last
    SDK call has returned, so no two runs ever share the SDK client of one thread. A worker idle
    for :data:`_IDLE_WORKER_SECONDS` is shut down the next time the pool is used, and so is one
    beyond :data:`_MAX_IDLE_WORKERS`. The keys are connection ids, never settings: settings,
    secrets included, stay in the worker's hook and are compared there (see :func:`_mns_hook_for`);
    nothing here logs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], list[_Worker]] = {}

    def take(self, key: tuple[str, str]) -> _Worker:
        with self._lock:
            self._expire(time.monotonic())
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        return _Worker()

    def give_back(self, key: tuple[str, str], worker: _Worker) -> None:
        now = time.monotonic()
        worker.idle_since = now
        with self._lock:
            self._idle.setdefault(key, []).append(worker)
            self._expire(now)
            excess = sum(len(w) for w in self._idle.values()) - _MAX_IDLE_WORKERS
            if excess > 0:
                self._idle[key].remove(worker)
                worker.shutdown()

    def _expire(self, now: float) -> None:
        for key, workers in list(self._idle.items()):
            keep = [w for w in workers if now - w.idle_since < _IDLE_WORKER_SECONDS]
            for worker in workers:
                if worker not in keep:
                    worker.shutdown()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    def clear(self) -> None:
        """Shut every idle worker down; a busy one comes back to the pool when its run ends."""
        with self._lock:
            workers = [w for ws in self._idle.values() for w in ws]
            self._idle.clear()
        for worker in workers:
            worker.shutdown()

    def forget(self) -> None:
        """In a forked child: the parent's threads do not exist here."""
        self._lock = threading.Lock()
        self._idle = {}


_WORKERS = _WorkerPool()
os.register_at_fork(after_in_child=_WORKERS.forget)

_thread_hooks = threading.local()
"""In a worker's thread: ``{(mns_conn_id, body_encoding): MNSHook}``, the hooks built there."""


def _mns_hook_for(mns_conn_id: str, body_encoding: BodyEncoding) -> MNSHook:
    """This thread's MNS hook for the connection, reused while the connection's settings are
    unchanged. The connection is read on every call (once per trigger run), as a new hook would
    read it; a changed endpoint or credentials replaces the hook and its SDK client."""
    from airflow_provider_fnf.hooks.mns import MNSHook

    hooks: dict[tuple[str, str], MNSHook] = _thread_hooks.__dict__.setdefault("hooks", {})
    key = (mns_conn_id, body_encoding)
    fresh = MNSHook(mns_conn_id, body_encoding=body_encoding)
    cached = hooks.get(key)
    if cached is not None and cached.settings == fresh.settings:
        return cached
    hooks[key] = fresh
    return fresh


class MNSMessagesTriggerEvent(TriggerEvent):
    """The event of :class:`MNSMessageTrigger`: a plain ``TriggerEvent`` whose text names the
    queue and the message ids but never shows a body or a task token.

    The triggerer logs every event it fires (``Trigger fired event ... result=<the event>``), in
    its own log and in the deferred task's trigger log. That line is written by the triggerer's
    supervisor process, whose secrets masker never learns the tokens the trigger registered in
    its own process. The payload itself is unchanged; it travels and is stored as any event's.
    """

    def __init__(self, payload: Any, **kwargs: Any) -> None:
        super().__init__(payload, **kwargs)

    def __repr__(self) -> str:
        payload = self.payload if isinstance(self.payload, dict) else {}
        messages = payload.get("messages")
        ids = (
            [m.get("message_id") for m in messages if isinstance(m, dict)]
            if isinstance(messages, list)
            else []
        )
        return (
            f"MNSMessagesTriggerEvent<status={payload.get('status')!r}, queue={payload.get('queue_name')!r}, "
            f"{len(ids)} message(s): {', '.join(str(i) for i in ids)}>"
        )

    __str__ = __repr__


class MNSMessageTrigger(BaseEventTrigger):
    """
    Wait for task messages on an MNS queue; fire one event carrying the messages received.

    The event carries one batch, or several while a backlog lasts: a full batch is followed at
    once by another, up to ``max_messages_per_event`` messages received or
    ``max_bytes_per_event`` bytes of bodies; a partial batch ends the event. Each message in the
    event is leased (its visibility set to ``lease_seconds``) before the event fires, so it is
    not delivered again while its run works; the report operator deletes it after reporting.
    Poison messages and messages the filter rejects never reach the event (see
    :mod:`airflow_provider_fnf.receiver`).

    Event payload: ``{"status": "success", "queue_name": ..., "mns_conn_id": ...,
    "messages": [<parsed message dict>, ...]}`` (see :func:`airflow_provider_fnf.messages.parse_message`).
    Permanent errors (credentials, missing queue, bad configuration) raise, and the trigger
    fails; transient ones are retried with exponential backoff and logged.

    Every option of :class:`~airflow_provider_fnf.receive_settings.MNSReceiveSettings` is a keyword
    argument of the same name (``queue_name``, ``mns_conn_id``, ``lease_seconds``,
    ``dead_letter_queue_name``, ...); ``message_filtering`` must be a JSONPath string here. The
    trigger holds them as :attr:`settings` and serializes them as JSON, next to its own:

    :param max_messages_per_event: most messages received for one event (default 256: 16 batches
        while a backlog lasts; ``max_messages`` gives one batch per event).
    :param max_bytes_per_event: no further batch is received once the bodies in the event reach
        this many bytes (default 1 MiB; the event can pass it by one batch).
    :param poll_interval: seconds between empty receives when ``wait_time_seconds`` is 0.
    :param max_backoff_seconds: longest pause between retries after transient errors.
    """

    @accepts_receive_options
    def __init__(
        self,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS,
        max_messages_per_event: int = DEFAULT_MAX_MESSAGES_PER_EVENT,
        max_bytes_per_event: int = DEFAULT_MAX_BYTES_PER_EVENT,
        **options: Any,
    ) -> None:
        super().__init__()
        queue = options.get("queue_name")
        if options.get("message_filtering") is not None and not isinstance(options["message_filtering"], str):
            raise ValueError(
                f"MNSMessageTrigger for queue {queue!r} accepts a JSONPath string as message_filtering; "
                "a callable can only run in the sensor's worker (MNSSensor applies it after the trigger)"
            )
        self.settings = MNSReceiveSettings(**options)
        if poll_interval <= 0 or max_backoff_seconds <= 0:
            raise ValueError(
                f"poll_interval and max_backoff_seconds for queue {queue!r} must be positive, "
                f"got {poll_interval!r} and {max_backoff_seconds!r}"
            )
        for name, value in (
            ("max_messages_per_event", max_messages_per_event),
            ("max_bytes_per_event", max_bytes_per_event),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} for queue {queue!r} must be a positive integer, got {value!r}")
        self.poll_interval = poll_interval
        self.max_backoff_seconds = max_backoff_seconds
        self.max_messages_per_event = max_messages_per_event
        self.max_bytes_per_event = max_bytes_per_event

    @property
    def queue_name(self) -> str:
        return self.settings.queue_name

    @property
    def mns_conn_id(self) -> str:
        return self.settings.mns_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.settings.to_json(),
                "poll_interval": self.poll_interval,
                "max_backoff_seconds": self.max_backoff_seconds,
                "max_messages_per_event": self.max_messages_per_event,
                "max_bytes_per_event": self.max_bytes_per_event,
            },
        )

    def _make_receiver(self) -> MNSMessageReceiver:
        """Built in the worker's thread, with that thread's MNS hook for the connection."""
        settings = self.settings
        return MNSMessageReceiver(
            settings, mns_hook=_mns_hook_for(settings.mns_conn_id, settings.body_encoding)
        )

    def _receive_event(self, receiver: MNSMessageReceiver, should_stop: threading.Event) -> ReceiveResult:
        """One long poll, then further batches at once while each comes back full and the event
        has room. Runs in the worker's thread. Every message returned is leased."""
        per_batch = min(self.settings.max_messages, self.max_messages_per_event)
        batch = receiver.receive_batch(
            self.settings.wait_time_seconds, per_batch, should_stop=should_stop.is_set
        )
        event = ReceiveResult()
        size = 0
        while True:
            event.messages.extend(batch.messages)
            event.received += batch.received
            event.released.extend(batch.released)
            event.poisoned.extend(batch.poisoned)
            event.dropped.extend(batch.dropped)
            size += sum(_body_bytes(m) for m in batch.messages)
            room = self.max_messages_per_event - event.received
            if batch.received < per_batch or room <= 0 or size >= self.max_bytes_per_event:
                break
            if should_stop.is_set():
                break
            per_batch = min(self.settings.max_messages, room)
            try:
                batch = receiver.receive_batch(0, per_batch, should_stop=should_stop.is_set)
            except Exception as error:
                if not event.messages:
                    raise
                # What is leased already goes out now; the next run meets the error again.
                self.log.warning(
                    "Receiving a further batch from MNS queue %s failed (%s: %s); the event goes out "
                    "with the %d message(s) received before",
                    self.queue_name,
                    type(error).__name__,
                    error,
                    len(event.messages),
                )
                break
        if should_stop.is_set() and event.messages:
            # Nobody takes this event any more: hand its messages back at once instead of leaving
            # them leased to no one for lease_seconds.
            for message in event.messages:
                if message.get("receipt_handle"):
                    receiver.release(message, reason="its trigger stopped before the event went out")
            event.messages = []
        return event

    def _work_on(self, result: ReceiveResult) -> ReceiveResult:
        """Runs in the worker's thread after each receive; the messages left in the result go out
        in the event. Here: all of them (a subclass may settle them itself)."""
        return result

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The SDK is synchronous and not thread-safe: every call runs in a worker thread this run
        # has to itself, which owns the hook and its SDK client; the event loop only awaits.
        key = (self.settings.mns_conn_id, self.settings.body_encoding)
        worker = _WORKERS.take(key)
        stopped = threading.Event()
        receiver: list[MNSMessageReceiver] = []
        in_flight: Future[ReceiveResult] | None = None

        def receive_once() -> ReceiveResult:
            if not receiver:
                receiver.append(self._make_receiver())
            return self._work_on(self._receive_event(receiver[0], stopped))

        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while True:
                started = loop.time()
                try:
                    in_flight = worker.executor.submit(receive_once)
                    result = await asyncio.wrap_future(in_flight)
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
                        "Working on MNS queue %s failed (%s: %s); retrying in %.1f s (failure %d in a row)",
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
                        "Working on MNS queue %s works again after %d failure(s)",
                        self.queue_name,
                        failures,
                    )
                    failures = 0
                if result.messages:
                    yield MNSMessagesTriggerEvent(
                        {
                            "status": "success",
                            "queue_name": self.queue_name,
                            "mns_conn_id": self.mns_conn_id,
                            "messages": result.messages,
                        }
                    )
                    return
                if not result.received and loop.time() - started < 1.0:
                    # Nothing to work on and the call came back at once (no long poll, or the
                    # service cut it short): pause instead of spinning.
                    await asyncio.sleep(self.poll_interval if self.settings.wait_time_seconds == 0 else 1.0)
        finally:
            stopped.set()
            if in_flight is None or in_flight.done():
                _WORKERS.give_back(key, worker)
            else:
                # A long poll is still running in the worker's thread: the worker is free only
                # when it returns (and hands back what it received, see receive_batch).
                in_flight.add_done_callback(lambda _: _WORKERS.give_back(key, worker))


def _body_bytes(message: dict[str, Any]) -> int:
    raw = message.get("raw_body")
    return len(raw.encode("utf-8")) if isinstance(raw, str) else 0
