"""The README's "Testing your DAGs against the emulator", verbatim: a user's test with the
``fnf_emulator`` fixture (the emulator's pytest plugin) and ``fnf_airflow_connections``
(``airflow_provider_fnf.testing``), through the provider's hooks."""

from __future__ import annotations

import json
import os

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook

MY_FLOW = """
version: v1
type: flow
steps:
  - type: task
    name: Work
    resourceArn: acs:mns:::/queues/jobs/messages
    pattern: waitForCallback
    inputMappings:
      - {target: task_token, source: $context.task.token}
      - {target: key, source: $input.key}
    serviceParams: {MessageBody: $, Priority: 1}
"""


def test_my_flow_resumes_when_the_worker_reports(fnf_emulator, fnf_airflow_connections):
    mns, fnf = MNSHook(), ServerlessWorkflowHook()  # mns_default, fnf_default -> the emulator
    mns.create_queue("jobs")
    fnf.create_or_update_flow("my-flow", MY_FLOW)
    fnf.start_execution("my-flow", {"key": "value"}, execution_name="run-1")

    [message] = mns.receive_messages("jobs", wait_seconds=5)
    body = json.loads(message.body)
    fnf.report_task_succeeded(body["task_token"], {"done": body["key"]})

    assert fnf.describe_execution("my-flow", "run-1", wait_time_seconds=10)["Status"] == "Succeeded"
    assert fnf_emulator.stats()["fnf"]["ReportTaskSucceeded"] == {"OK": 1}


def test_each_test_starts_from_an_empty_emulator(fnf_emulator, fnf_airflow_connections):
    assert fnf_emulator.stats() == {}
    assert MNSHook().get_conn().list_queue()[0] == []
    assert json.loads(os.environ["AIRFLOW_CONN_MNS_DEFAULT"])["extra"]["endpoint"] == fnf_emulator.mns_endpoint


def test_a_fault_reaches_the_hook(fnf_emulator, fnf_airflow_connections):
    fnf_emulator.add_fault(service="mns", operation="CreateQueue", status=403, code="AccessDenied")
    try:
        MNSHook().create_queue("jobs")
    except Exception as error:  # the hook's own MNSError, naming the service's code
        assert "AccessDenied" in str(error)
    else:
        raise AssertionError("the injected AccessDenied did not reach the hook")
