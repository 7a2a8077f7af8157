"""Measure the ways of turning a burst of MNS task messages into worker DAG runs, on a real Airflow.

    .venv/bin/python -m bench.dispatch_modes [--messages 50] [--modes operator,mapped,watcher]

Starts the local stack (emulator + ``airflow standalone``, LocalExecutor on SQLite) with the DAGs
of ``bench/dispatch_dags/``; for each mode, starts N flow executions at once (each sends one task
message to that mode's queue), and waits until every execution succeeded (its worker run
reported the task). Prints, per mode: seconds from the burst to the first and to the last report,
worker runs created, duplicates, messages left in the queue. Numbers, not assertions: the machine
decides them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from airflow_provider_fnf.messages import run_id_for
from tools.local_stack.flows import callback_flow
from tools.local_stack.stack import LocalStack

DAGS = Path(__file__).resolve().parent / "dispatch_dags"
MODES = ("operator", "mapped", "watcher", "direct")


def queue_of(mode: str) -> str:
    return f"bench-{mode}"


def create_queues(stack: LocalStack) -> None:
    """The benchmark's queues, created before Airflow (and the watcher's trigger) starts."""
    from airflow_provider_fnf.hooks.mns import MNSHook

    with stack.connections_in_this_process():
        hook = MNSHook()
        for mode in MODES:
            hook.create_queue(queue_of(mode))


def measure(stack: LocalStack, mode: str, count: int) -> dict[str, object]:
    from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
    from airflow_provider_fnf.hooks.mns import MNSHook

    fnf = ServerlessWorkflowHook()
    mns = MNSHook()
    flow = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
    fnf.create_or_update_flow(flow, callback_flow(queue_of(mode)))
    names = [f"e{i:03d}-{uuid.uuid4().hex[:6]}" for i in range(count)]

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: fnf.start_execution(flow, {"n": item[0]}, item[1]), enumerate(names)))
    burst = time.monotonic() - started

    first_done = None
    pending = set(names)
    deadline = started + 600
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            status = fnf.describe_execution(flow, name)["Status"]
            if status in ("Succeeded", "Failed", "Stopped", "TimedOut"):
                pending.discard(name)
                if first_done is None:
                    first_done = time.monotonic() - started
        if pending:
            time.sleep(0.5)
    last_done = time.monotonic() - started
    failed = [n for n in names if fnf.describe_execution(flow, n)["Status"] != "Succeeded"]

    # A worker reports, then deletes: give the last deletes a moment before counting leftovers.
    settle_deadline = time.monotonic() + 30
    while time.monotonic() < settle_deadline:
        attributes = mns.get_queue_attributes(queue_of(mode))
        if attributes["active_messages"] + attributes["inactive_messages"] == 0:
            break
        time.sleep(0.5)
    runs = stack.api.get(f"/api/v2/dags/bench_worker_{mode}/dagRuns", limit=1000)["dag_runs"]
    if mode == "direct":  # runs per batch of asset events, not per message: no conf to check
        attributes = mns.get_queue_attributes(queue_of(mode))
        return {
            "mode": mode,
            "messages": count,
            "burst_seconds": round(burst, 2),
            "first_report_seconds": round(first_done or -1, 2),
            "all_reported_seconds": round(last_done, 2) if not pending else None,
            "executions_not_succeeded": len(failed),
            "worker_runs": len(runs),
            "left_in_queue": attributes["active_messages"] + attributes["inactive_messages"],
        }
    mine = [r for r in runs if (r.get("conf") or {}).get("execution_name") in set(names)]
    by_message = {}
    for run in mine:
        conf = run["conf"]
        by_message.setdefault(conf["message_id"], []).append(run["dag_run_id"])
    bad_ids = [
        r["dag_run_id"]
        for r in mine
        if r["dag_run_id"] != run_id_for(queue_of(mode), r["conf"]["message_id"])
    ]
    attributes = mns.get_queue_attributes(queue_of(mode))
    return {
        "mode": mode,
        "messages": count,
        "burst_seconds": round(burst, 2),
        "first_report_seconds": round(first_done or -1, 2),
        "all_reported_seconds": round(last_done, 2) if not pending else None,
        "executions_not_succeeded": len(failed),
        "worker_runs": len(mine),
        "messages_with_more_than_one_run": sum(1 for v in by_message.values() if len(v) > 1),
        "run_ids_not_derived_from_message": len(bad_ids),
        "left_in_queue": attributes["active_messages"] + attributes["inactive_messages"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    results = []
    with LocalStack(args.work_dir, dags_folder=DAGS, prepare=create_queues) as stack:
        stack.api.wait_for_dags(
            [f"bench_listener_{m}" for m in modes if m != "direct"] + [f"bench_worker_{m}" for m in modes]
        )
        with stack.connections_in_this_process():
            time.sleep(10)  # let the listeners reach their first wait (sensor deferred, watcher polling)
            for mode in modes:
                result = measure(stack, mode, args.messages)
                print(json.dumps(result), flush=True)
                results.append(result)
    print(json.dumps(results, indent=2))
    return 0 if all(r["executions_not_succeeded"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
