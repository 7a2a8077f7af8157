"""The Serverless Workflow emulator's console page, rendered by real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fnf_emulator.server import Emulator
from fnf_emulator_helpers import FnF, fnf_client, mns_queue

from tests.support import REFERENCE_FLOW

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

CAUGHT_FLOW = (
    REFERENCE_FLOW
    + """    catch:
      - errors: [FnF.ALL]
        goto: Recover
  - type: pass
    name: Recover
"""
)


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        *extra,
        url,
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=90, check=True)


CLOUDFLOW = """\
Type: StateMachine
Name: cloudflow
SpecVersion: v1
StartAt: Route
States:
  - Type: Choice
    Name: Route
    Branches:
      - Condition: $Input.kind == "batch"
        Next: Fan
    Default: Skip
  - Type: Parallel
    Name: Fan
    Branches:
      - StartAt: Each
        States:
          - Type: Map
            Name: Each
            ItemsPath: $Input.items
            Processor:
              StartAt: Work
              States:
                - Type: Task
                  Name: Work
                  Action: MNS:SendMessage
                  TaskMode: WaitForCustomCallback
                  Parameters:
                    resourceArn: acs:mns:cn-hangzhou:123:/queues/fnf-demo/messages
                    message:
                      item.$: $Input
                      TaskToken.$: $Context.Current.TaskToken
                  End: true
            End: true
      - StartAt: Audit
        States:
          - Type: Pass
            Name: Audit
            OutputConstructor:
              audited: true
            End: true
    End: true
  - Type: Succeed
    Name: Skip
"""


@pytest.fixture
def executions(tmp_path: Path):
    with Emulator() as stack:
        fnf = FnF(fnf_client(stack.fnf_endpoint))
        queue = mns_queue(stack, "fnf-demo")
        fnf.create_flow("demo", REFERENCE_FLOW)
        fnf.create_flow("caught", CAUGHT_FLOW)
        fnf.start("demo", "ok-1", {"order": 42})
        message = queue.receive_message(5)
        fnf.succeed(json.loads(message.message_body)["task_token"], {"key": "value"})
        queue.delete_message(message.receipt_handle)
        fnf.start("caught", "bad-1")
        message = queue.receive_message(5)
        fnf.fail(json.loads(message.message_body)["task_token"], "AirflowDagFailed", "dag run failed")
        queue.delete_message(message.receipt_handle)
        assert fnf.describe("demo", "ok-1", wait=5)["Status"] == "Succeeded"
        assert fnf.describe("caught", "bad-1", wait=5)["Status"] == "Succeeded"
        fnf.create_flow("cloudflow", CLOUDFLOW)
        fnf.start("cloudflow", "cf-1", {"kind": "batch", "items": ["a", "b"]})
        for _ in range(2):
            message = queue.receive_message(5)
            body = json.loads(message.message_body)
            fnf.succeed(body["TaskToken"], {"done": body["item"].upper()})
            queue.delete_message(message.receipt_handle)
        assert fnf.describe("cloudflow", "cf-1", wait=5)["Status"] == "Succeeded"
        yield stack


def test_console_pages_are_plain_html(executions: Emulator) -> None:
    with urllib.request.urlopen(executions.fnf_endpoint + "/console/") as response:
        index = response.read().decode()
    assert "demo" in index and "caught" in index and "/console/flows/demo/executions/ok-1" in index
    with urllib.request.urlopen(executions.fnf_endpoint + "/console/flows/demo") as response:
        assert "fnf-demo" in response.read().decode()  # the definition is shown
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(executions.fnf_endpoint + "/console/flows/demo/executions/nope")
    assert info.value.code == 404


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_execution_page_in_headless_chromium(executions: Emulator, tmp_path: Path) -> None:
    url = executions.fnf_endpoint + "/console/flows/demo/executions/ok-1"
    dom = chromium(url, tmp_path, "--dump-dom").stdout
    assert '<td id="status"><span class="status Succeeded">Succeeded</span></td>' in dom
    assert "acs:mns:::/queues/fnf-demo/messages" in dom  # the flow definition
    # The path: Start -> Task_1 -> End, coloured by outcome.
    assert dom.count('class="node ') == 3
    assert 'data-name="Start"' in dom
    assert 'data-name="Task_1" data-status="Succeeded"' in dom
    assert 'data-name="End" data-status="Succeeded"' in dom
    assert "#1e8e3e" in dom  # green
    # Each step's input and output.
    assert '"order": 42' in dom and '"key": "value"' in dom

    failed = chromium(
        executions.fnf_endpoint + "/console/flows/caught/executions/bad-1", tmp_path, "--dump-dom"
    ).stdout
    assert 'data-name="Task_1" data-status="Failed"' in failed
    assert 'data-name="Recover" data-status="Succeeded"' in failed
    assert "AirflowDagFailed: dag run failed" in failed

    cloudflow = chromium(
        executions.fnf_endpoint + "/console/flows/cloudflow/executions/cf-1", tmp_path, "--dump-dom"
    ).stdout
    # The CloudFlow path: the Choice, the Parallel, its branches, the Map's two iterations.
    assert 'data-name="Route" data-status="Succeeded"' in cloudflow
    assert 'data-name="Fan" data-status="Succeeded" data-scope' not in cloudflow
    assert 'data-name="Each" data-status="Succeeded" data-scope="Fan branch 0"' in cloudflow
    assert 'data-name="Audit" data-status="Succeeded" data-scope="Fan branch 1"' in cloudflow
    assert 'data-name="Work" data-status="Succeeded" data-scope="Each #0"' in cloudflow
    assert 'data-name="Work" data-status="Succeeded" data-scope="Each #1"' in cloudflow
    assert cloudflow.count('class="node ') == 2 + 6  # Start, End; Route, Fan, Each, Audit, Work twice
    assert "(Map)" in cloudflow and "(Parallel)" in cloudflow
    # Each state's input and output: the Map's items in, the Parallel's branches out.
    assert '"Items": [' in cloudflow and '"Branch1": {' in cloudflow and '"done": "B"' in cloudflow

    shot = tmp_path / "execution.png"
    chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=1200,900")
    assert shot.stat().st_size > 10_000
