"""``make demo``: the reference document's scenario, end to end, on the emulator and a real Airflow,
in both generations of the service: the reference flow and its CloudFlow twin.

1. start the MNS + Serverless Workflow/CloudFlow emulator and create the queue ``fnf-demo`` (and
   the other example queues, so the example DAGs' watchers have something to watch);
2. start an embedded ``airflow standalone`` with the example DAGs and the connections
   ``mns_default`` / ``fnf_default`` pointed at the emulator;
3. create the flows ``fnf-demo`` (``dags_examples/flows/reference_flow.yaml``, Serverless
   Workflow) and ``fnf-demo-cloudflow`` (``reference_flow_cloudflow.yaml``, CloudFlow) and start
   an execution of each;
4. Airflow receives each step's message on ``fnf-demo`` (``fnf_demo_dispatcher``), one
   ``fnf_reference_worker`` run per message does the work and reports ``{"key": "value"}``, the
   message is deleted, the flows end;
5. print, for each execution, what the reference document's last step shows: status, start and
   end time, the path (Start -> Task_1 -> End), each step's input and output; plus the Airflow
   run that did the work and the URLs of the Airflow UI and of the emulator's console;
6. stop everything (or, with ``--keep-running``, wait for Ctrl-C first).

Exit status 0 when both executions Succeeded, 1 otherwise (with the reason), 2 when a part of
the stack did not come up.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from airflow_provider_fnf.messages import DEFAULT_TOKEN_KEYS
from tools.local_stack.stack import DAGS_FOLDER, REPO_ROOT, WORK_DIR_MARKER, LocalStack, StackError

FLOWS = DAGS_FOLDER / "flows"


@dataclass(frozen=True)
class ReferenceFlow:
    """One generation's reference flow: both send to the queue ``fnf-demo``, one worker serves both."""

    service: str
    flow_name: str
    flow_file: Path
    execution_prefix: str


REFERENCE_FLOWS = (
    ReferenceFlow("Serverless Workflow", "fnf-demo", FLOWS / "reference_flow.yaml", "demo"),
    ReferenceFlow(
        "CloudFlow", "fnf-demo-cloudflow", FLOWS / "reference_flow_cloudflow.yaml", "demo-cloudflow"
    ),
)
REFERENCE_QUEUE = "fnf-demo"
EXAMPLE_QUEUES = ("fnf-demo", "fnf-data-pipeline", "fnf-watcher-demo", "fnf-one-task")
"""Every queue an example DAG reads: they must exist before Airflow's watchers start."""
REFERENCE_DAGS = ("fnf_demo_dispatcher", "fnf_reference_worker")
WORKER_DAG = "fnf_reference_worker"
FINAL_STATUSES = ("Succeeded", "Failed", "TimedOut", "Stopped")
TOKEN_KEYS = DEFAULT_TOKEN_KEYS
DEFAULT_WORK_DIR = REPO_ROOT / ".demo"


class DemoFailed(RuntimeError):
    """The flow or the Airflow run did not end as the reference document says."""


@dataclass
class ExecutionResult:
    """One reference execution as it ended, and the Airflow run that worked for it."""

    flow: ReferenceFlow
    name: str
    execution: dict[str, Any]
    events: list[dict[str, Any]]
    run: dict[str, Any]
    tasks: list[dict[str, Any]]

    def check(self) -> None:
        """Raise :class:`DemoFailed` unless it ended as the reference document says."""
        status = self.execution.get("Status")
        if status != "Succeeded":
            last = _detail(self.events[-1]) if self.events else {}
            raise DemoFailed(
                f"Execution {self.name} of {self.flow.flow_name} ended {status}: "
                f"{last.get('error') or ''} {last.get('cause') or ''}".rstrip()
            )
        if self.run["state"] != "success":
            raise DemoFailed(f"Airflow run {WORKER_DAG}/{self.run['dag_run_id']} ended {self.run['state']}")


# --- the execution, as the console's execution page shows it ------------------------------
def hide_tokens(value: Any) -> Any:
    """A copy of a step's data with task tokens shortened: tokens are credentials."""
    if isinstance(value, dict):
        return {
            k: (f"<task token, {len(v)} chars>" if k in TOKEN_KEYS and isinstance(v, str) else hide_tokens(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [hide_tokens(v) for v in value]
    return value


def steps_of(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step the execution entered, in order: name, status, input, output (from the history)."""
    steps: list[dict[str, Any]] = []
    open_steps: dict[str, dict[str, Any]] = {}
    for event in events:
        name = event.get("StepName") or ""
        detail = _detail(event)
        kind = event.get("Type")
        if kind == "StepEntered":
            step = {"name": name, "status": "Running", "input": detail.get("input"), "output": None}
            steps.append(step)
            open_steps[name] = step
        elif kind == "StepSucceeded" and name in open_steps:
            open_steps[name].update(status="Succeeded", output=detail.get("output"))
        elif kind == "StepFailed" and name in open_steps:
            open_steps[name].update(
                status="Failed", output={"error": detail.get("error"), "cause": detail.get("cause")}
            )
    return steps


def path_of(events: Sequence[dict[str, Any]]) -> str:
    return " -> ".join(["Start", *(s["name"] for s in steps_of(events)), "End"])


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("EventDetail") or "{}"
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"value": value}


def _json(value: Any) -> str:
    return json.dumps(hide_tokens(value), ensure_ascii=False, sort_keys=True)


# --- the demo ------------------------------------------------------------------------------
class Demo:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.started = time.monotonic()

    def echo(self, line: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {line}", flush=True)

    def prepare(self, stack: LocalStack) -> None:
        """Step 1 of the reference document: the queues exist before anyone polls them."""
        mns = stack.mns_hook()
        _quiet_library_logs()
        for queue in EXAMPLE_QUEUES:
            mns.create_queue(queue)
        self.echo(f"Created MNS queues {', '.join(EXAMPLE_QUEUES)}")

    def run(self) -> int:
        work_dir = Path(self.args.work_dir).resolve()
        stack = LocalStack(
            work_dir, echo=self.echo, prepare=self.prepare, airflow_timeout=self.args.airflow_timeout
        )
        _stop_on_sigterm()
        try:
            try:
                stack.start()
                stack.api.wait_for_dags(REFERENCE_DAGS, echo=self.echo, timeout=self.args.airflow_timeout)
            except StackError as error:
                print(f"\nERROR: the local stack did not come up: {error}", file=sys.stderr)
                print(f"Logs: {work_dir}", file=sys.stderr)
                return 2
            try:
                self.reference_scenario(stack)
                status = 0
            except (DemoFailed, StackError) as error:
                print(f"\nERROR: {error}", file=sys.stderr)
                print(f"Logs: {work_dir}", file=sys.stderr)
                status = 1
            except Exception as error:  # a hook call failed: say which, keep stopping the stack
                print(f"\nERROR: {type(error).__name__}: {error}", file=sys.stderr)
                print(f"Logs: {work_dir}", file=sys.stderr)
                status = 1
            if self.args.keep_running:
                self.keep_running(stack)
            return status
        except KeyboardInterrupt:
            print("\nInterrupted", file=sys.stderr)
            return 130
        finally:
            stop_started = time.monotonic()
            stack.stop()
            self.echo(f"Stopped everything in {time.monotonic() - stop_started:.0f} s")

    def reference_scenario(self, stack: LocalStack) -> None:
        """Both reference flows at once, through the same queue and worker DAG; print both."""
        fnf = stack.fnf_hook()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        names: dict[ReferenceFlow, str] = {}
        for flow in REFERENCE_FLOWS:
            fnf.create_or_update_flow(
                flow.flow_name,
                flow.flow_file.read_text(encoding="utf-8"),
                description=f"The reference document's flow ({flow.service}): Task_1 waits for Airflow",
            )
            self.echo(
                f"Created flow {flow.flow_name} ({flow.service}) from {flow.flow_file.relative_to(REPO_ROOT)}"
            )
        for flow in REFERENCE_FLOWS:
            names[flow] = f"{flow.execution_prefix}-{stamp}"
            fnf.start_execution(flow.flow_name, {}, execution_name=names[flow])
            self.echo(
                f"Started execution {names[flow]} of {flow.flow_name}; waiting for Airflow to do Task_1"
            )
        results = [self.collect(stack, flow, names[flow]) for flow in REFERENCE_FLOWS]
        queue = stack.mns_hook().get_queue_attributes(REFERENCE_QUEUE)
        left = sum(int(queue.get(k) or 0) for k in ("active_messages", "inactive_messages", "delay_messages"))
        for result in results:
            self.print_result(stack, result)
        print(f"\nMNS queue {REFERENCE_QUEUE}: {left} message(s) left", flush=True)
        self.print_urls(stack)
        for result in results:
            result.check()
        if left:
            raise DemoFailed(f"{left} message(s) are still on queue {REFERENCE_QUEUE}")

    def collect(self, stack: LocalStack, flow: ReferenceFlow, name: str) -> ExecutionResult:
        """Wait for one execution to end; gather its history and the Airflow run that worked for it."""
        fnf = stack.fnf_hook()
        deadline = time.monotonic() + self.args.timeout
        execution = fnf.describe_execution(flow.flow_name, name)
        while execution.get("Status") not in FINAL_STATUSES:
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"Execution {name} of {flow.flow_name} is still {execution.get('Status')} after "
                    f"{self.args.timeout:.0f} s; see {stack.emulator.console_url(flow.flow_name, name)}"
                )
            self.echo(f"  execution {name} of {flow.flow_name}: {execution.get('Status')}")
            execution = fnf.describe_execution(flow.flow_name, name, wait_time_seconds=5)
        events = fnf.get_execution_history(flow.flow_name, name)
        run = stack.api.find_dag_run(
            WORKER_DAG,
            lambda r: (r.get("conf") or {}).get("execution_name") == name,
            timeout=60,
        )
        run = stack.api.wait_for_dag_run(WORKER_DAG, run["dag_run_id"], timeout=60)
        tasks = stack.api.task_instances(WORKER_DAG, run["dag_run_id"])
        return ExecutionResult(flow, name, execution, events, run, tasks)

    def print_result(self, stack: LocalStack, result: ExecutionResult) -> None:
        flow, name, execution, run = result.flow, result.name, result.execution, result.run
        lines = [
            "",
            f"Execution {name} of flow {flow.flow_name} ({flow.service})",
            f"  Status:      {execution.get('Status')}",
            f"  Started:     {execution.get('StartedTime')}",
            f"  Ended:       {execution.get('StoppedTime')}",
            f"  Input:       {_json(_parse(execution.get('Input')))}",
            f"  Output:      {_json(_parse(execution.get('Output')))}",
            f"  Path:        {path_of(result.events)}",
            "  Steps:",
        ]
        for step in steps_of(result.events):
            lines += [
                f"    {step['name']} ({step['status']})",
                f"      input:  {_json(step['input'])}",
                f"      output: {_json(step['output'])}",
            ]
        lines += [
            "",
            "  The Airflow run that did the work",
            f"  DAG run:     {WORKER_DAG} / {run['dag_run_id']} ({run['state']})",
            "  Tasks:       "
            + ", ".join(
                f"{t['task_id']} {t['state']}" for t in sorted(result.tasks, key=lambda t: t["task_id"])
            ),
            f"  Airflow UI:  {stack.dag_run_url(WORKER_DAG, run['dag_run_id'])}",
            f"  Console:     {stack.emulator.console_url(flow.flow_name, name)}",
        ]
        print("\n".join(lines), flush=True)

    def print_urls(self, stack: LocalStack) -> None:
        print(
            f"Airflow UI:        {stack.airflow_url}  (user admin, password {stack.admin_password})\n"
            f"Emulator console:  {stack.emulator.fnf_endpoint}/console/\n",
            flush=True,
        )

    def keep_running(self, stack: LocalStack) -> None:
        self.echo("Everything keeps running (--keep-running): press Ctrl-C to stop it")
        self.echo(
            f"Connections for your own code: MNS {stack.emulator.mns_endpoint}, "
            f"Serverless Workflow {stack.emulator.fnf_endpoint} (AccessKey emulator-access-key-id / "
            "emulator-access-key-secret)"
        )
        try:
            while stack.airflow_process is not None and stack.airflow_process.alive():
                time.sleep(1)
            self.echo("Airflow stopped by itself")
        except KeyboardInterrupt:
            print()


def _parse(text: Any) -> Any:
    if isinstance(text, str) and text:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _quiet_library_logs() -> None:
    """The demo prints its own progress; the hooks' INFO lines (and Airflow's notes about masking
    short secrets) would only repeat it. Airflow sets up logging on import, hence after it."""
    logging.getLogger("airflow_provider_fnf").setLevel(logging.WARNING)
    logging.getLogger("airflow.sdk").setLevel(logging.ERROR)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so that ``finally`` stops the stack."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make demo",
        description="Run the reference flow end to end: emulator + embedded Airflow + example DAGs.",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the emulator and Airflow running after the demo, until Ctrl-C",
    )
    parser.add_argument(
        "--work-dir",
        default=str(DEFAULT_WORK_DIR),
        help="AIRFLOW_HOME, emulator data and logs (default: %(default)s, replaced on each run)",
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for the execution (default %(default)s)"
    )
    parser.add_argument(
        "--airflow-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for Airflow to be healthy (default %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work_dir = Path(args.work_dir)
    if work_dir.exists() and any(work_dir.iterdir()):
        if not (work_dir / WORK_DIR_MARKER).exists():
            print(
                f"ERROR: {work_dir} is not empty and was not made by an earlier demo; choose another --work-dir",
                file=sys.stderr,
            )
            return 2
        shutil.rmtree(work_dir)  # a fresh AIRFLOW_HOME and emulator state each run
    return Demo(args).run()


if __name__ == "__main__":
    sys.exit(main())
