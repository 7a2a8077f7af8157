"""Checks over everything the earlier end-to-end tests did on the shared stack (this file's
name sorts after theirs, so it runs last):

- no log of Airflow (its components' logs and every task and trigger log) holds the access key
  secret or anything shaped like a task token;
- under ``FNF_E2E_TOPOLOGY=distributed`` the tasks ran on every Celery worker (otherwise the
  distributed run would prove nothing about a provider spread over several machines), and every
  triggerer stayed up while the triggers fired. Which triggerer runs a trigger is Airflow's
  choice (by free capacity): with a dozen triggers one triggerer may take them all, so the split
  between triggerers is reported, not asserted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_fnf.masking import TASK_TOKEN_SHAPE
from tools.local_stack.stack import ACCESS_KEY_SECRET, LocalStack

pytestmark = [pytest.mark.e2e]

CELERY_TASK_DONE = re.compile(r"Task execute_workload\[[^\]]+\] succeeded in")
TRIGGER_FIRED = re.compile(r"Trigger fired event")


def airflow_logs(stack: LocalStack) -> list[Path]:
    """Component logs (``airflow-*.log``) and everything under ``AIRFLOW_HOME/logs``."""
    task_logs = (p for p in (stack.airflow_home / "logs").rglob("*") if p.is_file())
    return [*stack.work_dir.glob("airflow-*.log"), *task_logs]


def test_no_secret_or_task_token_in_any_airflow_log(stack: LocalStack) -> None:
    leaks: dict[str, list[str]] = {}
    files = airflow_logs(stack)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        found = [m.group(0)[:10] + "..." for m in TASK_TOKEN_SHAPE.finditer(text)][:2]
        if ACCESS_KEY_SECRET in text:
            found.append("the access key secret")
        if found:
            leaks[str(path.relative_to(stack.work_dir))] = found
    assert len(files) > 20, f"expected the earlier tests' task logs, found {len(files)} files"
    assert not leaks, f"{len(leaks)} log files hold secrets or task tokens: {dict(list(leaks.items())[:5])}"


def _count(stack: LocalStack, component: str, pattern: re.Pattern[str]) -> int:
    return len(pattern.findall(stack.airflow_log(component).read_text(errors="replace")))


def test_work_was_spread_over_every_worker_and_triggerer(stack: LocalStack) -> None:
    topology = stack.topology
    if topology.standalone:
        pytest.skip("airflow standalone: one process runs every component")
    workers = {
        name: _count(stack, name, CELERY_TASK_DONE)
        for name in (f"celery-worker-{i}" for i in range(1, topology.celery_workers + 1))
    }
    triggerers = {
        name: _count(stack, name, TRIGGER_FIRED)
        for name in (f"triggerer-{i}" for i in range(1, topology.triggerers + 1))
    }
    print(f"tasks per Celery worker: {workers}; trigger events per triggerer: {triggerers}")
    assert all(workers.values()), f"a Celery worker ran no task: {workers}"
    assert sum(triggerers.values()) > 0, f"no triggerer fired a trigger event: {triggerers}"
    stopped = [name for name in triggerers if not stack.airflow_processes[name].alive()]
    assert not stopped, f"triggerer(s) {stopped} exited during the run"
