"""Check, on a real Airflow, that a message whose lease expires while its run works starts no
second run and is deleted once the run reported.

    .venv/bin/python -m bench.lease_expiry

Prints the execution's status, the worker runs, each dispatcher run's summary, and what is left
in the queue; exits non-zero when anything is off.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

from bench.dispatch_modes import FLOW
from tools.local_stack.stack import LocalStack

DAGS = Path(__file__).resolve().parent / "lease_dags"
QUEUE = "lease-expiry"


def create_queue(stack: LocalStack) -> None:
    from airflow_provider_fnf.hooks.mns import MNSHook

    with stack.connections_in_this_process():
        MNSHook().create_queue(QUEUE)


def main() -> int:
    from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
    from airflow_provider_fnf.hooks.mns import MNSHook

    with LocalStack(dags_folder=DAGS, prepare=create_queue) as stack:
        stack.api.wait_for_dags(["lease_expiry_listener", "lease_expiry_worker"])
        with stack.connections_in_this_process():
            time.sleep(8)  # the watcher's first poll
            fnf, mns = ServerlessWorkflowHook(), MNSHook()
            flow = f"lease-{uuid.uuid4().hex[:6]}"
            fnf.create_or_update_flow(flow, FLOW.format(queue=QUEUE))
            fnf.start_execution(flow, {"n": 1}, "only")
            started = time.monotonic()
            status = "Running"
            while status == "Running" and time.monotonic() - started < 240:
                time.sleep(1)
                status = fnf.describe_execution(flow, "only")["Status"]
            print(f"execution {status} after {time.monotonic() - started:.1f} s")
            left = -1
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                attributes = mns.get_queue_attributes(QUEUE)
                left = attributes["active_messages"] + attributes["inactive_messages"]
                if left == 0:
                    break
                time.sleep(1)
            print(f"messages left in the queue: {left} ({time.monotonic() - started:.1f} s)")
            workers = stack.api.dag_runs("lease_expiry_worker")
            print("worker runs:", [(r["dag_run_id"], r["state"]) for r in workers])
            summaries = []
            for run in reversed(stack.api.dag_runs("lease_expiry_listener")):
                summary = stack.api.xcom("lease_expiry_listener", run["dag_run_id"], "dispatch")
                summaries.append(summary)
                print("dispatcher run", run["dag_run_id"], run["state"], json.dumps(summary))
    redeliveries = sum(len(s["running"]) for s in summaries if s)
    print(f"deliveries while the run worked: {redeliveries}")
    ok = status == "Succeeded" and left == 0 and len(workers) == 1 and redeliveries >= 1
    print("OK" if ok else "NOT OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
