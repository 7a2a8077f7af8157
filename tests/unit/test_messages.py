"""Parsed-message dicts, task tokens, run ids, asset-event helper and filters (pure logic)."""

from __future__ import annotations

import base64
import json
import re
from types import SimpleNamespace

import pytest

from airflow_provider_fnf.hooks.mns import MNSMessage
from airflow_provider_fnf.messages import (
    DEFAULT_TOKEN_KEYS,
    MESSAGE_KEYS,
    JSONPathError,
    decode_task_token,
    extract_task_token,
    jsonpath_find,
    message_matches,
    messages_from_asset_events,
    parse_message,
    poison_reason,
    run_id_for,
    salvage_task_token,
    trigger_dag_run_kwargs,
)


def make_token(flow: str = "order-flow", execution: str = "exec-42") -> str:
    return base64.b64encode(f"v1#{flow}#{execution}#17#c2lnbmF0dXJl".encode()).decode()


def mns_message(body: str, **overrides) -> MNSMessage:
    fields = {
        "message_id": "5F290C926D472878-2-14D9529A8FA-200000001",
        "receipt_handle": "1-ODU4OTkzNDU5My0xNDMyNzI3Mjg3LTItOA",
        "body": body,
        "dequeue_count": 1,
        "enqueue_time": 1_764_356_000_000,
        "first_dequeue_time": 1_764_356_000_500,
        "next_visible_time": 1_764_356_030_500,
        "priority": 8,
        "body_md5": None,
        "decode_error": None,
    }
    fields.update(overrides)
    return MNSMessage(**fields)


def test_parse_message_gives_the_flat_contract_dict():
    token = make_token()
    message = mns_message(json.dumps({"task_token": token, "key": "value"}))

    parsed = parse_message(message, queue_name="fnf-demo", mns_conn_id="mns_default")

    assert tuple(parsed) == MESSAGE_KEYS
    assert parsed["body"] == {"task_token": token, "key": "value"}
    assert parsed["task_token"] == token
    assert (parsed["flow_name"], parsed["execution_name"]) == ("order-flow", "exec-42")
    assert parsed["queue_name"] == "fnf-demo"
    assert parsed["mns_conn_id"] == "mns_default"
    assert parsed["receipt_handle"] == message.receipt_handle
    assert parsed["dequeue_count"] == 1
    json.dumps(parsed)  # JSON-safe


def test_parse_message_accepts_the_dict_form_of_a_message():
    message = mns_message('{"taskToken": "opaque-token-123"}')
    assert parse_message(message.to_dict(), queue_name="q", mns_conn_id="c") == parse_message(
        message, queue_name="q", mns_conn_id="c"
    )


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("[1, 2]", [1, 2]),
        ('"just a string"', "just a string"),
        ('{"truncated": ', '{"truncated": '),
    ],
)
def test_body_is_json_only_when_it_parses(raw, body):
    parsed = parse_message(mns_message(raw), queue_name="q", mns_conn_id="c")
    assert parsed["body"] == body
    assert parsed["raw_body"] == raw
    assert parsed["task_token"] is None


@pytest.mark.parametrize(
    ("body", "keys", "expected"),
    [
        ({"task_token": "A-token", "taskToken": "B-token"}, ("task_token", "taskToken"), "A-token"),
        ({"taskToken": "B-token"}, ("task_token", "taskToken"), "B-token"),
        ({"task_token": "", "taskToken": "B-token"}, ("task_token", "taskToken"), "B-token"),
        ({"task_token": 12345}, ("task_token",), None),
        # CloudFlow: TaskToken.$: $Context.Current.TaskToken, found with the default keys
        ({"TaskToken": "CF-token", "key": "value"}, DEFAULT_TOKEN_KEYS, "CF-token"),
        # the previous generation's keys come first
        ({"TaskToken": "CF-token", "task_token": "A-token"}, DEFAULT_TOKEN_KEYS, "A-token"),
        ({"TaskToken": "CF-token", "task_token": ""}, DEFAULT_TOKEN_KEYS, "CF-token"),
        ({"ctx": {"token": "nested-token"}}, ("ctx.token",), "nested-token"),
        ({"ctx.token": "literal-dotted"}, ("ctx.token",), "literal-dotted"),
        ({"callback": "C-token"}, ("callback",), "C-token"),
        (["task_token"], ("task_token",), None),
    ],
)
def test_token_extraction_by_configurable_keys(body, keys, expected):
    assert extract_task_token(body, keys) == expected


def test_custom_token_keys_reach_the_parsed_message():
    parsed = parse_message(
        mns_message('{"cb": "custom-token-1"}'), queue_name="q", mns_conn_id="c", token_keys=("cb",)
    )
    assert parsed["task_token"] == "custom-token-1"


@pytest.mark.parametrize(
    "token",
    [
        make_token("flow_a", "run-1"),
        make_token("flow_a", "run-1").rstrip("="),
        base64.urlsafe_b64encode(b"v1#flow_a#run-1#3#sig??>>").decode(),
    ],
)
def test_token_decoding_finds_flow_and_execution(token):
    assert decode_task_token(token) == ("flow_a", "run-1")


@pytest.mark.parametrize("token", [None, "", "not base64 at all!", base64.b64encode(b"hello").decode(), "YQ"])
def test_opaque_tokens_decode_to_nothing(token):
    assert decode_task_token(token) == (None, None)


def test_salvage_reads_a_token_from_broken_json():
    assert salvage_task_token('{"task_token": "tok-123", "x": ') == "tok-123"
    assert salvage_task_token('{"taskToken":"tok-456"') == "tok-456"
    assert salvage_task_token("no token here") is None


@pytest.mark.parametrize(
    ("raw", "kwargs", "fragment"),
    [
        ("not json", {}, "not valid JSON"),
        ("[1]", {}, "not an object"),
        ('{"key": "value"}', {}, "no task token under any of the keys task_token, taskToken"),
        ('{"task_token": "t-12345"}', {"max_receive_count": 2, "dequeue_count": 3}, "received 3 times"),
        ('{"task_token": "t-12345"}', {"decode_error": "Incorrect padding"}, "could not be decoded"),
    ],
)
def test_poison_reasons_say_what_is_wrong(raw, kwargs, fragment):
    dequeue_count = kwargs.pop("dequeue_count", 1)
    parsed = parse_message(mns_message(raw, dequeue_count=dequeue_count), queue_name="q", mns_conn_id="c")
    reason = poison_reason(parsed, **kwargs)
    assert reason is not None and fragment in reason


def test_a_good_message_is_not_poison_and_tokenless_is_fine_when_not_required():
    good = parse_message(
        mns_message('{"task_token": "t-12345"}', dequeue_count=2), queue_name="q", mns_conn_id="c"
    )
    assert poison_reason(good, max_receive_count=2) is None
    plain = parse_message(mns_message("plain"), queue_name="q", mns_conn_id="c")
    assert poison_reason(plain, require_task_token=False) is None


def test_run_id_is_queue_and_message_id():
    assert run_id_for("fnf-demo", "5F290C926D472878-2-14D9529A8FA-200000001") == (
        "mns__fnf-demo__5F290C926D472878-2-14D9529A8FA-200000001"
    )


@pytest.mark.parametrize(
    ("queue", "message_id"),
    [("q", "id/with spaces#and?"), ("q" * 200, "M" * 200), ("q", "ünïcode")],
)
def test_run_ids_follow_airflow_rules_and_stay_unique(queue, message_id):
    run_id = run_id_for(queue, message_id)
    assert re.fullmatch(r"[A-Za-z0-9_.~:+-]+", run_id)
    assert len(run_id) <= 250
    assert run_id == run_id_for(queue, message_id)
    assert run_id != run_id_for(queue, message_id + "x")


def test_sanitised_ids_do_not_collide():
    assert run_id_for("q", "a/b") != run_id_for("q", "a_b")


def test_run_id_needs_both_parts():
    with pytest.raises(ValueError, match="queue name and a message id"):
        run_id_for("q", "")


def test_trigger_dag_run_kwargs_for_a_mapped_trigger_dag_run_operator():
    parsed = parse_message(mns_message('{"task_token": "t-12345"}'), queue_name="q1", mns_conn_id="c")
    kwargs = trigger_dag_run_kwargs(parsed)
    assert kwargs == {"trigger_run_id": run_id_for("q1", parsed["message_id"]), "conf": parsed}


def _payload(*messages):
    return {"status": "success", "queue_name": "q", "mns_conn_id": "c", "messages": list(messages)}


def test_messages_from_asset_events_flattens_and_deduplicates():
    m1 = {"message_id": "M1", "dequeue_count": 1, "receipt_handle": "h1-old", "queue_name": "q"}
    m1_again = {"message_id": "M1", "dequeue_count": 2, "receipt_handle": "h1-new", "queue_name": "q"}
    m2 = {"message_id": "M2", "dequeue_count": 1, "receipt_handle": "h2", "queue_name": "q"}
    events = {
        "asset-a": [
            SimpleNamespace(extra={"from_trigger": True, "payload": _payload(m1, m2)}),
            SimpleNamespace(extra={"from_trigger": True, "payload": _payload(m1_again)}),
        ],
        "asset-b": [SimpleNamespace(extra={"manual": True}), {"extra": {"payload": _payload(m2)}}],
    }

    messages = messages_from_asset_events(events)

    assert [m["message_id"] for m in messages] == ["M1", "M2"]
    assert messages[0]["receipt_handle"] == "h1-new"  # only the newest delivery's handle works


@pytest.mark.parametrize("events", [None, {}, [], {"a": []}, [SimpleNamespace(extra=None)]])
def test_messages_from_no_events_is_empty(events):
    assert messages_from_asset_events(events) == []


def test_messages_from_a_list_of_events():
    m = {"message_id": "M9", "queue_name": "q"}
    assert messages_from_asset_events([{"extra": {"payload": _payload(m)}}]) == [m]


BODY = {
    "task_token": "t",
    "kind": "resize",
    "order": {"id": 7, "items": [{"sku": "A"}, {"sku": "B"}]},
    "tags": ["x", "y"],
    "odd key": 1,
}


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("$.kind", ["resize"]),
        ("$['kind']", ["resize"]),
        ('$["odd key"]', [1]),
        ("$.order.id", [7]),
        ("$.order.items[1].sku", ["B"]),
        ("$.order.items[-1].sku", ["B"]),
        ("$.order.items[*].sku", ["A", "B"]),
        ("$.tags.*", ["x", "y"]),
        ("$..sku", ["A", "B"]),
        ("$.missing", []),
        ("$.order.items[5]", []),
        ("$", [BODY]),
        # jsonpath-ng's extensions, as Amazon's SqsSensor parses them
        ("$.order.items[?(@.sku == 'B')].sku", ["B"]),
        ("$.order.items[0:1].sku", ["A"]),
        ("$.order.items[?(@.sku != 'A')].sku", ["B"]),
    ],
)
def test_jsonpath(path, found):
    assert jsonpath_find(path, BODY) == found


@pytest.mark.parametrize("path", ["$.[", "$..", "$.a[?(@.b >)]", "", "foo bar"])
def test_a_bad_jsonpath_is_a_clear_error(path):
    with pytest.raises(JSONPathError, match="JSONPath"):
        jsonpath_find(path, BODY)


@pytest.mark.parametrize(
    ("filtering", "values", "expected"),
    [
        (None, None, True),
        ("$.kind", None, True),
        ("$.nope", None, False),
        ("$.kind", ["resize", "crop"], True),
        ("$.kind", ["crop"], False),
        ("$..sku", ["B"], True),
        (lambda m: m["body"]["order"]["id"] == 7, None, True),
        (lambda m: m["flow_name"] == "other", None, False),
    ],
)
def test_message_filters(filtering, values, expected):
    message = {"body": BODY, "flow_name": None}
    assert message_matches(message, filtering, values) is expected


def test_jsonpath_filter_on_a_non_json_body_does_not_match():
    assert message_matches({"body": "plain text"}, "$.kind") is False


def test_messages_from_asset_events_registers_every_task_token_with_the_masker():
    from airflow.sdk.log import _secrets_masker

    token = "not-a-documented-shape-" + "x" * 20
    events = [
        {
            "extra": {
                "from_trigger": True,
                "payload": {"messages": [{"message_id": "m1", "task_token": token}]},
            }
        }
    ]
    messages_from_asset_events(events)
    assert token not in _secrets_masker().redact(f"returned {token}")


def test_a_cloudflow_message_parses_like_a_serverless_workflow_one():
    """Same conf, same run id: a worker DAG serves both generations unchanged."""
    old = parse_message(
        mns_message('{"task_token": "tok-1", "key": "value"}'), queue_name="q", mns_conn_id="c"
    )
    new = parse_message(
        mns_message('{"TaskToken": "tok-1", "key": "value"}'), queue_name="q", mns_conn_id="c"
    )
    assert new["task_token"] == old["task_token"] == "tok-1"
    assert new["body"]["key"] == old["body"]["key"] == "value"
    assert set(new) == set(old) == set(MESSAGE_KEYS)
    assert run_id_for(new["queue_name"], new["message_id"]) == run_id_for(
        old["queue_name"], old["message_id"]
    )


def test_the_default_token_keys_and_their_order():
    assert DEFAULT_TOKEN_KEYS == ("task_token", "taskToken", "TaskToken")
    assert salvage_task_token('{"TaskToken":"tok-789", "key": ') == "tok-789"
