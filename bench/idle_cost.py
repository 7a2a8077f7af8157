"""Idle cost: what a triggerer spends watching empty queues.

``N`` :class:`MNSMessageTrigger` instances (default 50), one per empty queue, run in one asyncio
event loop in this process, as the triggerer runs them. The emulator runs as its own process
(``python -m fnf_emulator --log-level DEBUG``), so this process's CPU time is
the triggerer side alone; the emulator's one log line per request gives the calls made to the
queue service. Measured over a window after the triggers have started (their first long poll is
in flight):

- CPU seconds of this process (``time.process_time``) and of the emulator (``/proc``);
- ReceiveMessage calls per minute, in total and per queue.

For comparison, the same triggers with long polling off (``wait_time_seconds=0``: a receive
every ``poll_interval``, 5 s by default) run for the same window.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.receive_settings import DEFAULT_WAIT_TIME_SECONDS
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger
from bench._common import EmulatorProcess, connections, rounded

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent

WARM_UP_SECONDS = 3.0


def _receive_calls(counts: dict[str, int]) -> int:
    return sum(n for key, n in counts.items() if key.startswith("mns ") and "ReceiveMessage" in key)


def _mns_calls(counts: dict[str, int]) -> int:
    return sum(n for key, n in counts.items() if key.startswith("mns "))


async def _watch(triggers: list[MNSMessageTrigger], seconds: float, on_window: Callable[[str], None]) -> int:
    """Run every trigger's generator until ``seconds`` after the warm-up; returns events fired."""
    runs = [cast("AsyncGenerator[TriggerEvent, None]", t.run()) for t in triggers]
    tasks = [asyncio.ensure_future(r.__anext__()) for r in runs]
    await asyncio.sleep(WARM_UP_SECONDS)
    on_window("start")
    await asyncio.sleep(seconds)
    on_window("end")
    fired = sum(1 for t in tasks if t.done() and not t.cancelled() and t.exception() is None)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for r in runs:
        await r.aclose()
    return fired


def _measure(
    emulator: EmulatorProcess, queues: list[str], seconds: float, **trigger_kwargs: Any
) -> dict[str, Any]:
    triggers = [MNSMessageTrigger(queue_name=q, **trigger_kwargs) for q in queues]
    marks: dict[str, dict[str, Any]] = {}

    def on_window(name: str) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marks[name] = {
            "cpu": time.process_time(),
            "rusage": usage.ru_utime + usage.ru_stime,
            "wall": time.monotonic(),
            "emulator_cpu": emulator.cpu_seconds(),
            "counts": emulator.request_counts(),
        }

    fired = asyncio.run(_watch(triggers, seconds, on_window))
    start, end = marks["start"], marks["end"]
    wall = end["wall"] - start["wall"]
    receives = _receive_calls(end["counts"]) - _receive_calls(start["counts"])
    calls = _mns_calls(end["counts"]) - _mns_calls(start["counts"])
    cpu = end["cpu"] - start["cpu"]
    return {
        "triggers": len(triggers),
        "wait_time_seconds": triggers[0].wait_time_seconds,
        "window_seconds": rounded(wall, 1),
        "triggerer_cpu_seconds": rounded(cpu, 3),
        "triggerer_cpu_percent_of_a_core": rounded(100 * cpu / wall, 2),
        "triggerer_rusage_cpu_seconds": rounded(end["rusage"] - start["rusage"], 3),
        "emulator_cpu_seconds": rounded(end["emulator_cpu"] - start["emulator_cpu"], 3),
        "mns_calls_per_minute": rounded(calls * 60 / wall, 1),
        "receive_calls_per_minute": rounded(receives * 60 / wall, 1),
        "receive_calls_per_minute_per_queue": rounded(receives * 60 / wall / len(triggers), 2),
        "events_fired": fired,
    }


def run(*, triggers: int = 50, seconds: float = 60.0, echo: Callable[[str], None] = print) -> dict[str, Any]:
    for name in ("airflow_provider_fnf.hooks.mns", "airflow_provider_fnf.receiver", "airflow.triggers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with EmulatorProcess(debug=True) as emulator, connections(emulator.mns_endpoint, emulator.fnf_endpoint):
        hook = MNSHook()
        tag = uuid.uuid4().hex[:6]
        queues = [f"bench-idle-{tag}-{i:03d}" for i in range(triggers)]
        for queue in queues:
            hook.create_queue(queue)
        echo(f"  {triggers} triggers, long polling {DEFAULT_WAIT_TIME_SECONDS} s, for {seconds:.0f} s")
        long_poll = _measure(emulator, queues, seconds)
        long_poll["mode"] = f"long poll {long_poll['wait_time_seconds']} s (default)"
        echo(
            f"    triggerer CPU {long_poll['triggerer_cpu_seconds']} s, "
            f"{long_poll['receive_calls_per_minute']} receives/min"
        )
        echo(f"  the same with long polling off (wait_time_seconds=0), for {seconds:.0f} s")
        short_poll = _measure(emulator, queues, seconds, wait_time_seconds=0)
        short_poll["mode"] = "no long poll (wait 0, poll every 5 s)"
        echo(
            f"    triggerer CPU {short_poll['triggerer_cpu_seconds']} s, "
            f"{short_poll['receive_calls_per_minute']} receives/min"
        )
    floor = 60 / DEFAULT_WAIT_TIME_SECONDS
    per_queue = long_poll["receive_calls_per_minute_per_queue"]
    cpu_percent = long_poll["triggerer_cpu_percent_of_a_core"]
    return {
        "benchmark": "idle_cost",
        "rows": [long_poll, short_poll],
        "goals": [
            {
                "goal": f"{triggers} idle triggers: calls near zero (one long poll per queue per "
                f"{DEFAULT_WAIT_TIME_SECONDS} s = {floor:.0f}/min/queue)",
                "measured": f"{per_queue} receives/min/queue, {long_poll['mns_calls_per_minute']} calls/min in all",
                "met": long_poll["events_fired"] == 0 and per_queue <= floor * 1.1,
            },
            {
                "goal": f"{triggers} idle triggers: CPU near zero (< 1 % of a core)",
                "measured": f"{cpu_percent} % of a core ({long_poll['triggerer_cpu_seconds']} s in "
                f"{long_poll['window_seconds']} s)",
                "met": cpu_percent < 1.0,
            },
        ],
    }
