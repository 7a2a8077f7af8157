"""Choice conditions and JSON paths of the Serverless Workflow emulator (pure logic)."""

from __future__ import annotations

import pytest
from fnf_emulator.fnf.conditions import ConditionError, parse_condition
from fnf_emulator.fnf.paths import (
    MISSING,
    PathError,
    apply_mappings,
    parse_mappings,
    parse_path,
)

INPUT = {
    "status": "ready",
    "count": 3,
    "ratio": 0.5,
    "hasMore": True,
    "empty": "",
    "items": [{"name": "a"}, {"name": "b"}],
    "nested": {"deep": {"value": 7}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('$.status == "ready"', True),
        ("$.status == 'ready'", True),
        ('$.status != "ready"', False),
        ("$.hasMore", True),
        ("!$.hasMore", False),
        ("$.empty", False),
        ("$.missing", False),
        ("$.missing == null", True),
        ("$.count > 2", True),
        ("$.count >= 3 && $.ratio < 1", True),
        ('$.count < 3 || $.status == "ready"', True),
        ("!($.count == 3)", False),
        ("$.nested.deep.value == 7", True),
        ('$input.items[1].name == "b"', True),
        ('$.items[-1].name == "b"', True),
        ('$.count == "3"', False),  # a number never equals a string
        ('$.count > "2"', False),  # ordering across types is false
        ('$.status > "a"', True),  # strings order lexically
        ("$.hasMore == true", True),
        ("$.ratio == 5e-1", True),
    ],
)
def test_condition_evaluates(text: str, expected: bool) -> None:
    assert parse_condition(text).evaluate({"input": INPUT}) is expected


@pytest.mark.parametrize(
    "text",
    ["", "$.a ==", "status == 1", '$.a == "unclosed', "($.a", "$.a = 1", "__import__('os')", "$.a[", 42],
)
def test_bad_condition_is_rejected(text: object) -> None:
    with pytest.raises(ConditionError):
        parse_condition(text)


def test_paths_and_wildcards() -> None:
    roots = {"input": INPUT, "local": [{"x": 1}, {"x": 2}, {}]}
    assert parse_path("$local[*].x").get(roots) == [1, 2, None]
    assert parse_path("$input.items[0]").get(roots) == {"name": "a"}
    assert parse_path('$input["status"]').get(roots) == "ready"
    assert parse_path("$").get(roots) == INPUT
    assert parse_path("$input.nope.deeper").get(roots) is MISSING


@pytest.mark.parametrize(
    "text", ["$inputs.x", "input.x", "$input.", "$input[x]", "$local..a", "$context.a b"]
)
def test_bad_path_is_rejected(text: str) -> None:
    with pytest.raises(PathError):
        parse_path(text)


def test_mappings_references_and_constants() -> None:
    mappings = parse_mappings(
        [
            {"target": "token", "source": "$context.task.token"},
            {"target": "key", "source": "value"},
            {"target": "n", "source": 5},
            {"target": "names", "source": "$local[*].name"},
            {"target": "list", "source": ["A", "B"]},
        ],
        "step 'x': inputMappings",
    )
    out = apply_mappings(
        mappings, {"input": {}, "local": [{"name": "a"}], "context": {"task": {"token": "T"}}}
    )
    assert out == {"token": "T", "key": "value", "n": 5, "names": ["a"], "list": ["A", "B"]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([{"target": "a"}], "source is required"),
        ([{"source": "$input.a"}], "target must be"),
        ([{"target": "a", "source": "$inputs.a"}], "not a valid reference"),
        ([{"target": "a", "source": "$input..a"}], "expected a key name"),
        ({"target": "a"}, "must be a list"),
    ],
)
def test_bad_mappings_name_step_and_field(raw: object, message: str) -> None:
    with pytest.raises(PathError, match=message) as info:
        parse_mappings(raw, "step 'Task_1': inputMappings")
    assert "step 'Task_1': inputMappings" in str(info.value)
