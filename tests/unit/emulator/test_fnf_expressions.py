"""CloudFlow expressions of the emulator: grammar, evaluation without eval, built-in functions."""

from __future__ import annotations

from typing import Any

import pytest
from fnf_emulator.fnf.expressions import ExpressionError, compile_template, parse_expression

ENV: dict[str, Any] = {
    "Input": {"status": "ready", "n": 3, "items": [1, 2, 2, "a"], "m": {"k": "v"}, "csv": "a,b,c"},
    "Context": {"Execution": {"Name": "e1"}, "Current": {"TaskToken": "tok", "RetryCount": 1}},
    "Global": {"g": 7},
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('$Input.status == "ready"', True),
        ("$Input.status==`ready`", True),
        ("$Input.status == 'ready'", True),
        ("$Input.n > 1 && $Input.n <= 3", True),
        ("$Input.n >= 4 || $Input.status != `ready`", False),
        ("!($Input.n < 1)", True),
        ("$Input.n == 3.0", True),
        ('$Input.n == "3"', False),  # type-strict
        ("-$Input.n < 0", True),
        ('"k" in $Input.m', True),
        ('"a" in $Input.items', True),
        ("9 in $Input.items", False),
        ("$Input.items[1]", 2),
        ("$Input.items[-1]", "a"),
        ('$Input["m"].k', "v"),
        ("$Input.missing.deeper", None),
        ("$Context.Current.TaskToken", "tok"),
        ("$Global.g", 7),
        ('{"a": [1, true, null], "b": $Input.n}', {"a": [1, True, None], "b": 3}),
        ('format("hello {}", "world")', "hello world"),
        ("format('{}-{}', $Context.Execution.Name, $Input.n)", "e1-3"),
        ("length([1, 2, 3])", 3),
        ('length({"name": "Tom", "age": 10})', 2),
        ('length("name")', 4),
        ('arrayContains(["Tom", 10], 10)', True),
        ('arrayContains(["Tom", 10], "Jack")', False),
        ("arrayUnique([1, 2, 3, 1])", [1, 2, 3]),
        ('split($Input.csv, ",")', ["a", "b", "c"]),
        ('regexMatchString("^re", $Input.status)', True),
        ('regexMatchString("^[0-9]+$", $Input.status)', False),
        ("get($Input.items, 0)", 1),
        ('get($Input.m, "k")', "v"),
        ("intAdd($Input.n, -1)", 2),
        ("toArray(1, 2)", [1, 2]),
        ("mapKeys($Input.m)", ["k"]),
        ("mapValues($Input.m)", ["v"]),
        (
            'jsonMerge({"name": "Tom", "age": 10}, {"name": "Tom", "address": "beijing"})',
            {"name": "Tom", "age": 10, "address": "beijing"},
        ),
        ('stringToJson(\'{"name": "Tom", "age": 10}\')', {"name": "Tom", "age": 10}),
        ('jsonToString({"a": 1})', '{"a":1}'),
        ('fromBase64("Rm5G")', "FnF"),
        ('toBase64("FnF")', "Rm5G"),
        ('hash("abc", "MD5")', "900150983cd24fb0d6963f7d28e17f72"),
        ("length(arrayUnique(split(format('{},{}', 'x', 'x'), ',')))", 1),
    ],
)
def test_expressions_evaluate(text: str, value: Any) -> None:
    assert parse_expression(text).evaluate(ENV) == value


def test_random_int_stays_in_its_range_and_uuid_is_fresh() -> None:
    draws = {parse_expression("randomInt(1, 4)").evaluate(ENV) for _ in range(200)}
    assert draws == {1, 2, 3}
    uuid = parse_expression("uuid()")
    assert uuid.evaluate(ENV) != uuid.evaluate(ENV)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$Input.", "ends too early"),
        ("$Input.n ==", "ends too early"),
        ("$input.n", "does not parse at column 1"),
        ("$Input.n = 1", "does not parse at column"),
        ("status == ready", "does not parse"),
        ("nope(1)", "unknown function 'nope'"),
        ("length(1, 2)", "length() takes 1 argument(s), got 2"),
        ("intAdd(1)", "intAdd() takes 2 argument(s), got 1"),
        ("{1: 2}", "object keys must be strings"),
        ("length(" * 11 + "[]" + ")" * 11, "more than 10 deep"),
        ("", "non-empty string"),
    ],
)
def test_bad_expressions_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('intAdd("1", 2)', "intAdd(): the first argument must be an integer"),
        ("length(1)", "length(): the argument must be an array or an object or a string"),
        ("get([1], 5)", "out of range"),
        ('format("{} {}", 1)', "2 placeholder(s) but 1 value(s)"),
        ('stringToJson("{")', "not JSON"),
        ('hash("a", "CRC")', "algorithm must be one of"),
        ("randomInt(3, 1)", "must be greater"),
    ],
)
def test_bad_arguments_fail_at_run_time(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text).evaluate(ENV)
    assert message in str(info.value)


def test_templates_evaluate_dollar_keys_at_any_depth_and_keep_literals() -> None:
    template = compile_template(
        {
            "literal": "$Input.n",
            "n.$": "$Input.n",
            "message": {"TaskToken.$": "$Context.Current.TaskToken", "list": [{"x.$": "$Global.g"}, 1]},
        },
        "state 'S': InputConstructor",
    )
    assert template.render(ENV) == {
        "literal": "$Input.n",
        "n": 3,
        "message": {"TaskToken": "tok", "list": [{"x": 7}, 1]},
    }
    assert template.roots == {"Input", "Context", "Global"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"a.$": 12},
            "state 'S': Parameters.a.$: a key ending in .$ holds an expression, not the literal 12",
        ),
        ({"m": {"b.$": "$Input."}}, "state 'S': Parameters.m.b.$: expression '$Input.' ends too early"),
        ({"a.$": "hello"}, "state 'S': Parameters.a.$: expression 'hello' does not parse"),
    ],
)
def test_template_errors_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_template(raw, "state 'S': Parameters")
    assert message in str(info.value)
