"""Reporting under the published quota: 100 ReportTaskSucceeded calls against a throttled service.

The emulator runs as its own process with ``--fnf-throttle`` (ReportTaskSucceeded: a bucket of
10, refilled at 2 per second, per account). For each concurrency level, ``N`` executions of the
reference flow (``dags_examples/flows/reference_flow.yaml``, on a queue of the benchmark's own)
are started and wait for their callback; their N task messages are received; then N reports are
made through :class:`ServerlessWorkflowHook` (its own retry with backoff on 429), from
``concurrency`` threads, each with its own hook as separate task processes have. The best the
quota allows is ``(N - 10) / 2`` seconds (45 s for 100); the achieved rate is reported as a
percentage of it, with the failures, the 429 answers, and whether every execution Succeeded.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.limits import FNF_QUOTA_DEFAULT, MNS_MAX_BATCH_SIZE
from bench._common import EmulatorProcess, connections, rounded

REFERENCE_FLOW = Path(__file__).resolve().parent.parent / "dags_examples" / "flows" / "reference_flow.yaml"
GOAL_FRACTION = 0.90
BURST, RATE = FNF_QUOTA_DEFAULT


def best_seconds(reports: int) -> float:
    """The shortest time ``reports`` calls can take under a full bucket of BURST refilled at RATE/s."""
    return max(0.0, (reports - BURST) / RATE)


def reference_flow(queue: str) -> str:
    text = REFERENCE_FLOW.read_text()
    if "/queues/fnf-demo/" not in text:
        raise RuntimeError(f"{REFERENCE_FLOW} no longer sends to the queue fnf-demo; update the benchmark")
    return text.replace("/queues/fnf-demo/", f"/queues/{queue}/")


class _RetryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.retries = 0
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in str(record.msg):
            with self._lock:
                self.retries += 1


def _tokens_waiting(fnf: ServerlessWorkflowHook, mns: MNSHook, count: int, tag: str) -> tuple[str, list[str]]:
    """Start ``count`` executions and return their flow and task tokens (messages received)."""
    queue = f"bench-report-{tag}"
    flow = f"bench-report-{tag}"
    mns.create_queue(queue)
    fnf.create_or_update_flow(flow, reference_flow(queue))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: fnf.start_execution(flow, {}, f"r{i:04d}"), range(count)))
    tokens: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while len(tokens) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(tokens)} of {count} task messages arrived on {queue}")
        for message in mns.receive_messages(queue, MNS_MAX_BATCH_SIZE, wait_seconds=2):
            tokens[message.message_id] = json.loads(message.body)["task_token"]
    return flow, list(tokens.values())


def _report_all(tokens: list[str], concurrency: int) -> dict[str, Any]:
    local = threading.local()
    failures: list[str] = []
    lock = threading.Lock()

    def report(token: str) -> None:
        hook = getattr(local, "hook", None)
        if hook is None:
            hook = local.hook = ServerlessWorkflowHook()
        try:
            hook.report_task_succeeded(token, {"key": "value"})
        except FnFProviderError as error:
            with lock:
                failures.append(type(error).__name__)

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(report, tokens))
    return {"seconds": time.monotonic() - started, "failures": failures}


def _statuses(fnf: ServerlessWorkflowHook, flow: str, count: int) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for i in range(count):
        status = fnf.describe_execution(flow, f"r{i:04d}").get("Status", "?")
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def run(
    *, reports: int = 100, concurrencies: tuple[int, ...] = (1, 8, 32), echo: Callable[[str], None] = print
) -> dict[str, Any]:
    hook_log = logging.getLogger("airflow_provider_fnf.hooks.fnf")
    counter = _RetryCounter()
    hook_log.addHandler(counter)
    hook_log.setLevel(logging.WARNING)
    hook_log.propagate = False
    rows: list[dict[str, Any]] = []
    best = best_seconds(reports)
    try:
        with (
            EmulatorProcess(fnf_throttle=True, debug=True) as emulator,
            connections(emulator.mns_endpoint, emulator.fnf_endpoint),
        ):
            fnf = ServerlessWorkflowHook(max_attempts=50)  # set-up and checks: patient
            mns = MNSHook()
            for concurrency in concurrencies:
                tag = uuid.uuid4().hex[:6]
                echo(f"  {reports} executions waiting for their callback (concurrency {concurrency})")
                flow, tokens = _tokens_waiting(fnf, mns, reports, tag)
                time.sleep(BURST / RATE + 1)  # the bucket is full again
                before = emulator.request_counts()
                counter.retries = 0
                outcome = _report_all(tokens, concurrency)
                after = emulator.request_counts()
                throttled = after.get("fnf ReportTaskSucceeded 429", 0) - before.get(
                    "fnf ReportTaskSucceeded 429", 0
                )
                accepted = after.get("fnf ReportTaskSucceeded 200", 0) - before.get(
                    "fnf ReportTaskSucceeded 200", 0
                )
                statuses = _statuses(fnf, flow, reports)
                seconds = outcome["seconds"]
                row: dict[str, Any] = {
                    "concurrency": concurrency,
                    "reports": reports,
                    "failures": len(outcome["failures"]),
                    "failure_kinds": sorted(set(outcome["failures"])),
                    "accepted": accepted,
                    "throttled_429": throttled,
                    "hook_retries": counter.retries,
                    "seconds": rounded(seconds, 1),
                    "reports_per_second": rounded(reports / seconds, 2),
                    "best_seconds": rounded(best, 1),
                    # of the reports the service accepted: failed ones do not count as done
                    "percent_of_quota": rounded(
                        100 * best_seconds(accepted) / seconds if seconds else 0.0, 1
                    ),
                    "executions": statuses,
                }
                rows.append(row)
                echo(
                    f"    {row['seconds']} s, {row['failures']} failures, {throttled} answers 429, "
                    f"{row['percent_of_quota']} % of the quota's best; executions {statuses}"
                )
    finally:
        hook_log.removeHandler(counter)
        hook_log.propagate = True
    goals: list[dict[str, Any]] = []
    for row in rows:
        succeeded = row["executions"].get("Succeeded", 0)
        goals.append(
            {
                "goal": f"{reports} reports, concurrency {row['concurrency']}: zero failures, "
                f">= {GOAL_FRACTION:.0%} of the quota's best ({best:.0f} s)",
                "measured": f"{row['failures']} failures, {row['percent_of_quota']} % "
                f"({row['seconds']} s), {succeeded}/{reports} Succeeded",
                "met": row["failures"] == 0
                and row["percent_of_quota"] >= GOAL_FRACTION * 100
                and succeeded == reports,
            }
        )
    return {
        "benchmark": "report_quota",
        "quota": {"burst": BURST, "per_second": RATE},
        "rows": rows,
        "goals": goals,
    }
