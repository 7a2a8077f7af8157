"""Where each second of a message goes: the hops of every execution, from the services' own records.

For each execution, the time of each mark, from the record that saw it:

``sent``      the flow's ``TaskSubmitted`` event (Serverless Workflow history; it names the MNS message)
``received``  the message's first receive (the emulator's ``/_emulator/mns/message-events``)
``event``     the asset event that carried the message (Airflow's ``/api/v2/assets/events``,
              ``timestamp``); for the REST floor the moment its ``POST .../dagRuns`` returned
``run``       the run that works on it was created (``queued_at`` of the worker run; of the
              watcher run in the watcher mode)
``task``      that run's first task started (its earliest task instance ``start_date``)
``last_task`` that run's last task started (the report task of a two-task worker; the same as
              ``task`` for a one-task worker)
``report``    the flow's ``TaskSucceeded`` event (the report was accepted)
``deleted``   the message was deleted (the emulator's message events)

A hop is the time from the previous mark the mode has to this one (the plain worker has no
event, run or task: its ``report`` hop starts at ``received``). :func:`hop_rows` gives the median
and p95 of each hop per mode, and ``total`` (sent -> report), so the largest share stands out.
"""

from __future__ import annotations

import datetime
import json
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench._common import percentile, rounded

MARKS = ("sent", "received", "event", "run", "task", "last_task", "report", "deleted")
HOPS = MARKS[1:]


def parse_time(text: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 time (Airflow's microseconds or the services' milliseconds)."""
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def flow_marks(fnf: Any, flow: str, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """execution name -> {"message_id", "sent", "report"} from each execution's history."""

    def one(name: str) -> tuple[str, dict[str, Any]]:
        marks: dict[str, Any] = {}
        for event in fnf.get_execution_history(flow, name):
            if event["Type"] == "TaskSubmitted" and "sent" not in marks:
                marks["sent"] = parse_time(event.get("Time"))
                marks["message_id"] = json.loads(event.get("EventDetail") or "{}").get("MessageId")
            elif event["Type"] == "TaskSucceeded":
                marks["report"] = parse_time(event.get("Time"))
        return name, marks

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, list(names)))


def queue_marks(mns_endpoint: str, queue: str) -> dict[str, dict[str, float]]:
    """message id -> {"received": first receive, "deleted": delete} from the emulator's record."""
    url = f"{mns_endpoint}/_emulator/mns/message-events?{urllib.parse.urlencode({'queue': queue})}"
    with urllib.request.urlopen(url, timeout=60) as response:
        events = json.loads(response.read())["events"]
    marks: dict[str, dict[str, float]] = {}
    for event in events:
        slot = marks.setdefault(event["message_id"], {})
        seconds = event["time_ms"] / 1000
        if event["event"] == "received":
            slot.setdefault("received", seconds)
        elif event["event"] == "deleted":
            slot["deleted"] = seconds
    return marks


def all_pages(api: Any, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = api.get(path, limit=100, offset=len(items), **params)[key]
        items.extend(page)
        if len(page) < 100:
            return items


def task_starts(
    api: Any, dag_id: str, run_ids: set[str] | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """(run id -> the earliest start of its task instances, run id -> the latest start)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    path = f"/api/v2/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns/~/taskInstances"
    for ti in all_pages(api, path, "task_instances"):
        started = parse_time(ti.get("start_date"))
        run_id = ti["dag_run_id"]
        if started is None or (run_ids is not None and run_id not in run_ids):
            continue
        first[run_id] = min(started, first.get(run_id, started))
        last[run_id] = max(started, last.get(run_id, started))
    return first, last


def asset_event_marks(api: Any, asset_name: str) -> dict[str, dict[str, Any]]:
    """message id -> {"event": the asset event's time, "run_ids": the runs it created}."""
    assets = api.get("/api/v2/assets", name_pattern=asset_name, limit=100)["assets"]
    ids = [a["id"] for a in assets if a["name"] == asset_name]
    if not ids:
        return {}
    marks: dict[str, dict[str, Any]] = {}
    for event in all_pages(api, "/api/v2/assets/events", "asset_events", asset_id=ids[0]):
        payload = (event.get("extra") or {}).get("payload") or {}
        runs = [r["run_id"] for r in event.get("created_dagruns") or []]
        for message in payload.get("messages") or []:
            marks.setdefault(
                message.get("message_id"), {"event": parse_time(event.get("timestamp")), "run_ids": runs}
            )
    return marks


def hops(timeline: Mapping[str, float | None]) -> dict[str, float]:
    """Each hop's seconds: from the previous mark present to this one."""
    out: dict[str, float] = {}
    previous = timeline.get("sent")
    for mark in HOPS:
        value = timeline.get(mark)
        if value is None:
            continue
        if previous is not None:
            out[mark] = value - previous
        previous = value
    if timeline.get("sent") is not None and timeline.get("report") is not None:
        out["total"] = timeline["report"] - timeline["sent"]  # type: ignore[operator]
    return out


def hop_row(mode: str, timelines: list[dict[str, float | None]]) -> dict[str, Any]:
    """Median / p95 of each hop over the timelines of one mode, and the median hop's share of total."""
    per_hop: dict[str, list[float]] = {}
    for timeline in timelines:
        for name, seconds in hops(timeline).items():
            per_hop.setdefault(name, []).append(seconds)
    row: dict[str, Any] = {"mode": mode, "messages": len(timelines)}
    total = percentile(per_hop.get("total", []), 0.5)
    for name in (*HOPS, "total"):
        values = per_hop.get(name)
        if not values:
            continue
        median, p95 = percentile(values, 0.5), percentile(values, 0.95)
        row[f"{name}_median"], row[f"{name}_p95"] = rounded(median), rounded(p95)
        row[name] = f"{median:.2f} / {p95:.2f}"  # type: ignore[str-format]
        if total and name != "total" and name != "deleted" and median is not None:
            row[name] += f" ({100 * median / total:.0f}%)"
    return row
