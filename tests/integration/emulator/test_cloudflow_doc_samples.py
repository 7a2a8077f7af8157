"""The CloudFlow documentation's samples (tests/data/cloudflow/, reformatted) run to the outcome the
documentation describes, through the unmodified SDKs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fnf_emulator.server import Emulator
from fnf_emulator_helpers import FnF, fnf_client, mns_queue
from mns.mns_exception import MNSServerException

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "cloudflow"


@pytest.fixture
def fnf(emulator: Emulator) -> FnF:
    return FnF(fnf_client(emulator.fnf_endpoint))


def run(fnf: FnF, sample: str, inp: dict[str, Any] | None = None, execution: str = "e1") -> dict[str, Any]:
    if execution == "e1":
        fnf.create_flow(sample, (SAMPLES / f"{sample}.yaml").read_text())
    fnf.start(sample, execution, inp)
    return fnf.describe(sample, execution, wait=10)


def path(fnf: FnF, sample: str, execution: str = "e1") -> list[str]:
    return [e["StepName"] for e in fnf.history(sample, execution) if e["Type"] == "StepEntered"]


@pytest.mark.parametrize(
    ("sample", "inp", "output"),
    [
        ("pass", {"ignored": True}, {"FieldA": 123}),
        ("map", {}, {"Items": [{"a": "b"}, {"c": "d"}]}),
        ("succeed", {"x": 1}, {"Branch0": {"x": 1}}),
        ("wait", {"x": 1}, {"x": 1}),
        ("wait_expression", {"timeout": 1}, {"timeout": 1}),
        ("global_variables", {"key_a": "from-input"}, {"variable_a": "from-input", "variable_b": "from-a"}),
    ],
)
def test_sample_runs_to_its_documented_output(
    fnf: FnF, sample: str, inp: dict[str, Any], output: Any
) -> None:
    done = run(fnf, sample, inp)
    assert done["Status"] == "Succeeded"
    assert json.loads(done["Output"]) == output


def test_choice_sample_takes_pass2_when_ready_and_pass1_otherwise(fnf: FnF) -> None:
    assert run(fnf, "choice", {"status": "ready"})["Status"] == "Succeeded"
    assert path(fnf, "choice") == ["Choice1", "Pass2"]
    assert run(fnf, "choice", {"status": "waiting"}, execution="e2")["Status"] == "Succeeded"
    assert path(fnf, "choice", "e2") == ["Choice1", "Pass1"]


def test_succeed_sample_ends_the_branch_early(fnf: FnF) -> None:
    run(fnf, "succeed")
    assert path(fnf, "succeed") == ["Parallel1", "Succeed1"]


def test_fail_sample_fails_with_code_and_detail(fnf: FnF) -> None:
    assert run(fnf, "fail")["Status"] == "Failed"
    assert json.loads(fnf.history("fail", "e1")[-1]["EventDetail"]) == {
        "error": "MyError",
        "cause": "something went wrong",
    }


def test_mns_sample_sends_the_message_as_json_delayed(emulator: Emulator, fnf: FnF) -> None:
    queue = mns_queue(emulator, "fnf-mns-queues")
    done = run(fnf, "mns_send_message")
    assert done["Status"] == "Succeeded"
    assert json.loads(done["Output"])["MessageId"]
    with pytest.raises(MNSServerException):  # delaySeconds: 10
        queue.receive_message(0)


def test_error_handling_sample_retries_then_catches(emulator: Emulator, fnf: FnF) -> None:
    queue = mns_queue(emulator, "fnf-doc-samples")
    fnf.create_flow("error_handling", (SAMPLES / "error_handling.yaml").read_text())
    fnf.start("error_handling", "e1")
    first = queue.receive_message(5)
    fnf.fail(json.loads(first.message_body)["TaskToken"], "MyCustomError", "first attempt")
    queue.delete_message(first.receipt_handle)
    second = queue.receive_message(5)  # the Retry rule: one more attempt after 1 s
    fnf.fail(json.loads(second.message_body)["TaskToken"], "MyCustomError", "second attempt")
    queue.delete_message(second.receipt_handle)
    done = fnf.describe("error_handling", "e1", wait=10)
    assert done["Status"] == "Succeeded"
    assert json.loads(done["Output"]) == {"errorCode": "MyCustomError", "errorDetail": "second attempt"}
    assert path(fnf, "error_handling") == ["Work", "Recover"]
