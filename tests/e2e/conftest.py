"""One real stack for every end-to-end test: the emulator plus an embedded ``airflow standalone``
(scheduler, triggerer, dag-processor, api-server; LocalExecutor on SQLite) running the example
DAGs of ``dags_examples/``, exactly as ``make demo`` does. With ``FNF_E2E_TOPOLOGY=distributed``
(``make test-distributed``) the same tests run on CeleryExecutor with Redis and PostgreSQL, two
Celery workers and two triggerers, each a process of its own.

Starting Airflow costs tens of seconds and about 1 GB, so the stack is session-scoped; each test
uses its own executions (and its own flows where it changes them) and checks what a user would
see: the execution's status, path and output, the Airflow runs, the queue left empty. The stack
is stopped at the end of the session, also when a test fails or times out; a reaper process
stops it if pytest itself is killed.

Test-only DAGs (load, lease expiry, poison messages) live in ``tests/e2e/dags/``, each on queues
of its own; the stack runs them alongside the examples (``extra_dags_folders``).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.dags import e2e_hostile, e2e_lease, e2e_load, e2e_poison
from tools.local_stack.demo import EXAMPLE_QUEUES, path_of, steps_of
from tools.local_stack.processes import session_members
from tools.local_stack.stack import DAGS_FOLDER, AirflowTopology, LocalStack

FLOWS = DAGS_FOLDER / "flows"
TEST_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
TEST_DAG_MODULES = (e2e_load, e2e_lease, e2e_poison, e2e_hostile)
EXAMPLE_DAGS = (
    "fnf_demo_dispatcher",
    "fnf_reference_worker",
    "fnf_data_pipeline_dispatcher",
    "fnf_data_pipeline_worker",
    "fnf_watcher_worker",
    "fnf_start_flow_and_wait",
    "fnf_one_task_worker",
    "fnf_cloudflow_pipeline",
    "fnf_express_order_check",
)
TEST_DAGS = tuple(dag_id for module in TEST_DAG_MODULES for dag_id in module.DAG_IDS)
TOPOLOGIES = {"standalone": AirflowTopology(), "distributed": AirflowTopology.distributed()}
TOPOLOGY_VARIABLE = "FNF_E2E_TOPOLOGY"
"""``standalone`` (default: ``airflow standalone``, LocalExecutor on SQLite) or ``distributed``
(CeleryExecutor with Redis and PostgreSQL, two Celery workers, two triggerers: ``make test-distributed``)."""
STACK_TIMEOUT = 420
"""pytest-timeout limit of an e2e test: the first one also starts the stack (30-150 s here)."""
FINAL = ("Succeeded", "Failed", "TimedOut", "Stopped")


def _echo(line: str) -> None:
    print(f"[e2e stack] {line}", file=sys.stderr, flush=True)


def _create_queues(stack: LocalStack) -> None:
    mns = stack.mns_hook()
    for queue in (*EXAMPLE_QUEUES, *(q for module in TEST_DAG_MODULES for q in module.QUEUES)):
        mns.create_queue(queue)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    work_dir = tmp_path_factory.mktemp("local-stack")
    name = os.environ.get(TOPOLOGY_VARIABLE, "standalone")
    if name not in TOPOLOGIES:
        raise pytest.UsageError(f"{TOPOLOGY_VARIABLE}={name!r}: expected one of {sorted(TOPOLOGIES)}")
    local = LocalStack(
        work_dir,
        extra_dags_folders=[TEST_DAGS_FOLDER],
        echo=_echo,
        prepare=_create_queues,
        topology=TOPOLOGIES[name],
    )
    try:
        local.start()
        local.api.wait_for_dags((*EXAMPLE_DAGS, *TEST_DAGS), echo=_echo)
        yield local
    finally:
        local.stop()
    # Every process the stack started (scheduler, triggerer, task workers...) is gone.
    left = {sid: session_members(sid) for sid in local.started_sessions}
    assert not any(left.values()), f"processes left behind by the stack (session: pids): {left}"


class Flows:
    """Serverless Workflow, as the tests drive it (through the provider's hook)."""

    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.fnf = stack.fnf_hook()
        self.mns = stack.mns_hook()

    def deploy(self, flow_name: str, flow_file: str) -> None:
        self.fnf.create_or_update_flow(flow_name, (FLOWS / flow_file).read_text(encoding="utf-8"))

    def start(
        self, flow_name: str, execution_input: dict[str, Any] | None = None, prefix: str = "e2e"
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.fnf.start_execution(flow_name, execution_input or {}, execution_name=name)
        return name

    def wait(self, flow_name: str, name: str, timeout: float = 330.0) -> dict[str, Any]:
        """Wait for the execution to end. The patience covers a message that Airflow's scheduler
        left without a run (docs/dispatch-modes.md): it comes back when its lease (300 s in
        reference_worker.py) expires."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.fnf.describe_execution(flow_name, name, wait_time_seconds=10)
            if execution.get("Status") in FINAL:
                return execution
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Execution {name} of flow {flow_name} is still {execution.get('Status')} after "
                    f"{timeout:.0f} s; path so far: {self.path(flow_name, name)}; Airflow logs under "
                    f"{self.stack.airflow_home / 'logs'}"
                )

    def history(self, flow_name: str, name: str) -> list[dict[str, Any]]:
        return self.fnf.get_execution_history(flow_name, name)

    def path(self, flow_name: str, name: str) -> str:
        return path_of(self.history(flow_name, name))

    def steps(self, flow_name: str, name: str) -> dict[str, dict[str, Any]]:
        return {step["name"]: step for step in steps_of(self.history(flow_name, name))}

    def message_ids(self, flow_name: str, name: str) -> list[str]:
        """The MNS message ids the execution's task steps sent (TaskSubmitted events)."""
        import json

        return [
            json.loads(e["EventDetail"])["MessageId"]
            for e in self.history(flow_name, name)
            if e["Type"] == "TaskSubmitted"
        ]

    def messages_left(self, queue_name: str) -> int:
        attributes = self.mns.get_queue_attributes(queue_name)
        return sum(int(attributes[k]) for k in ("active_messages", "inactive_messages", "delay_messages"))

    def wait_queue_empty(self, queue_name: str, timeout: float = 30.0) -> int:
        """Messages are deleted right after the report: wait briefly for the delete to land."""
        deadline = time.monotonic() + timeout
        while (left := self.messages_left(queue_name)) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left


@pytest.fixture(scope="session")
def flows(stack: LocalStack) -> Flows:
    return Flows(stack)


@pytest.fixture
def data_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A partition folder and a summary folder the worker DAG (another process) can read and write."""
    source, output = tmp_path / "partitions", tmp_path / "summaries"
    source.mkdir()
    output.mkdir()
    return source, output
