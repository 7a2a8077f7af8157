"""The parsed-message dict every part of the provider shares, and the pure logic around it.

A message received from Simple Message Queue (MNS) becomes one flat, JSON-safe dict (see
:func:`parse_message`). It is what the sensor pushes to XCom, what the trigger yields, and what
a dispatched worker run gets as ``dag_run.conf``; the report operator reads its task token,
queue name, receipt handle, message id and connection id from it.

This module does no I/O: it parses, extracts task tokens, derives run ids and filters
(``message_filtering`` JSONPath expressions through jsonpath-ng).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_fnf.masking import mask_task_token

if TYPE_CHECKING:
    from jsonpath_ng import JSONPath

DEFAULT_TOKEN_KEYS: tuple[str, ...] = ("task_token", "taskToken", "TaskToken")
"""Where a callback step's task token is looked for in a JSON body, in this order; the first
non-empty string wins. Both generations leave the key to the flow author:

- ``task_token``, ``taskToken``: Serverless Workflow's conventions (``waitForCallback``, the
  ``inputMappings`` target of ``$context.task.token``; the reference document uses ``task_token``).
- ``TaskToken``: CloudFlow's (``WaitForCustomCallback``,
  ``TaskToken.$: $Context.Current.TaskToken`` in the ``MNS:SendMessage`` message), last so that
  a body carrying an older key as well reads as before.
"""

RUN_ID_PREFIX = "mns"
RUN_ID_MAX_CHARS = 250
"""Airflow stores run ids in a 250-character column."""
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")
"""Airflow's default ``[scheduler] allowed_run_id_pattern`` is ``^[A-Za-z0-9_.~:+-]+$``."""

MESSAGE_KEYS: tuple[str, ...] = (
    "message_id",
    "receipt_handle",
    "queue_name",
    "mns_conn_id",
    "dequeue_count",
    "enqueue_time",
    "body",
    "raw_body",
    "task_token",
    "flow_name",
    "execution_name",
    "poison_policy",
    "dead_letter_queue_name",
    "body_encoding",
)
"""The keys of a parsed message, the contract shared with the report operator and the DAGs.

The last three are how the message is settled should it turn out to be poison later, when
Serverless Workflow rejects its task token: the receiving side's policy travels with the message
(and so with a dispatched run's conf), and the report side needs no second configuration."""

_NOT_JSON = object()


# --- parsing -------------------------------------------------------------------------------
def _field(message: Any, name: str, default: Any = None) -> Any:
    if isinstance(message, Mapping):
        return message.get(name, default)
    return getattr(message, name, default)


def parse_body(raw_body: str) -> Any:
    """The body as JSON when it is JSON, else the raw text unchanged."""
    value = _json_or_marker(raw_body)
    return raw_body if value is _NOT_JSON else value


def _json_or_marker(raw_body: str) -> Any:
    if not isinstance(raw_body, str) or not raw_body.strip():
        return _NOT_JSON
    try:
        return json.loads(raw_body)
    except (ValueError, RecursionError):
        # RecursionError: JSON nested deeper than the interpreter can decode; unusable, so poison.
        return _NOT_JSON


def body_is_json(raw_body: str) -> bool:
    return _json_or_marker(raw_body) is not _NOT_JSON


def _lookup(body: Any, key: str) -> Any:
    """``key`` in a JSON object; a dotted key (``input.task_token``) walks nested objects when
    the literal key is absent."""
    if not isinstance(body, Mapping):
        return None
    if key in body:
        return body[key]
    current: Any = body
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def extract_task_token(body: Any, token_keys: Sequence[str] = DEFAULT_TOKEN_KEYS) -> str | None:
    """The first non-empty string found under ``token_keys`` in a parsed JSON body, else None."""
    for key in token_keys:
        value = _lookup(body, key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def salvage_task_token(raw_body: str, token_keys: Sequence[str] = DEFAULT_TOKEN_KEYS) -> str | None:
    """A task token read from text that is not valid JSON (truncated or hand-edited bodies), so
    that an unusable message can still be reported as failed. Only a plain ``"key": "value"``
    pair is recognised."""
    if not isinstance(raw_body, str):
        return None
    for key in token_keys:
        leaf = key.rsplit(".", 1)[-1]
        match = re.search(rf'"{re.escape(leaf)}"\s*:\s*"([^"\\]+)"', raw_body)
        if match:
            return match.group(1)
    return None


def decode_task_token(task_token: str | None) -> tuple[str | None, str | None]:
    """(flow name, execution name) read from a task token, or (None, None).

    Tokens observed from Serverless Workflow are base64 of ``v1#<flow>#<execution>#<event>#<signature>``.
    The shape is not documented: callers must treat the token as opaque and the names as hints.
    """
    if not task_token or not isinstance(task_token, str):
        return None, None
    text = task_token.strip()
    padded = text + "=" * (-len(text) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded = decoder(padded.encode("ascii")).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeError):
            continue
        parts = decoded.split("#")
        if len(parts) >= 3 and parts[0].startswith("v") and parts[1] and parts[2]:
            return parts[1], parts[2]
    return None, None


def parse_message(
    message: Any,
    *,
    queue_name: str,
    mns_conn_id: str,
    token_keys: Sequence[str] = DEFAULT_TOKEN_KEYS,
    poison_policy: str = "leave",
    dead_letter_queue_name: str | None = None,
    body_encoding: str = "raw",
) -> dict[str, Any]:
    """Turn one received message (an ``MNSMessage`` or its ``to_dict()``) into the flat dict.

    ``body`` is the JSON-parsed body when the body is JSON, else the raw text; ``task_token`` is
    the first string found under ``token_keys``; ``flow_name`` and ``execution_name`` come from
    the token when it can be decoded. ``poison_policy``, ``dead_letter_queue_name`` and
    ``body_encoding`` are the receiving side's, carried along (see :data:`MESSAGE_KEYS`).
    """
    raw_body = _field(message, "body")
    if raw_body is None:
        raw_body = ""
    if isinstance(raw_body, bytes):
        raw_body = raw_body.decode("utf-8", errors="replace")
    body = parse_body(raw_body)
    token = extract_task_token(body, token_keys)
    flow_name, execution_name = decode_task_token(token)
    return {
        "message_id": _field(message, "message_id"),
        "receipt_handle": _field(message, "receipt_handle"),
        "queue_name": queue_name,
        "mns_conn_id": mns_conn_id,
        "dequeue_count": int(_field(message, "dequeue_count", 0) or 0),
        "enqueue_time": _field(message, "enqueue_time"),
        "body": body,
        "raw_body": raw_body,
        "task_token": token,
        "flow_name": flow_name,
        "execution_name": execution_name,
        "poison_policy": poison_policy,
        "dead_letter_queue_name": dead_letter_queue_name,
        "body_encoding": body_encoding,
    }


def poison_reason(
    message: Mapping[str, Any],
    *,
    token_keys: Sequence[str] = DEFAULT_TOKEN_KEYS,
    require_task_token: bool = True,
    max_receive_count: int | None = None,
    decode_error: str | None = None,
) -> str | None:
    """Why a parsed message cannot be worked on, or None when it can.

    A message is poison when its body could not be decoded, is not valid JSON, carries no task
    token (when one is required), or was received more than ``max_receive_count`` times.
    """
    if decode_error:
        return f"its body could not be decoded ({decode_error})"
    if (too_often := receive_count_reason(message, max_receive_count)) is not None:
        return too_often
    if not require_task_token:
        return None
    if not body_is_json(message.get("raw_body", "")):
        return "its body is not valid JSON"
    if not isinstance(message.get("body"), Mapping):
        return "its body is JSON but not an object"
    if not message.get("task_token"):
        return f"its body has no task token under any of the keys {', '.join(token_keys)}"
    return None


def receive_count_reason(message: Mapping[str, Any], max_receive_count: int | None) -> str | None:
    """Why a message received more than ``max_receive_count`` times is poison, or None."""
    count = int(message.get("dequeue_count") or 0)
    if max_receive_count is not None and count > max_receive_count:
        return f"it was received {count} times, more than the limit of {max_receive_count}"
    return None


# --- run ids and asset events ------------------------------------------------------------
def run_id_for(queue_name: str, message_id: str) -> str:
    """The DAG run id of the one run a message starts: ``mns__{queue_name}__{message_id}``.

    Characters Airflow does not accept in a run id become ``_``; an id longer than Airflow's 250
    characters is cut and ends with a digest of the whole, so it stays unique and stable.
    """
    if not queue_name or not message_id:
        raise ValueError(
            f"A run id needs a queue name and a message id (got queue_name={queue_name!r}, message_id={message_id!r})"
        )
    raw = f"{RUN_ID_PREFIX}__{queue_name}__{message_id}"
    safe = _RUN_ID_UNSAFE.sub("_", raw)
    if safe == raw and len(raw) <= RUN_ID_MAX_CHARS:
        return raw
    # Replaced characters could make two ids collide, a cut one too: a digest keeps them apart.
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
    return safe[: RUN_ID_MAX_CHARS - len(digest) - 2] + "__" + digest


def trigger_dag_run_kwargs(message: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for a mapped ``TriggerDagRunOperator``: one run per message.

    ``TriggerDagRunOperator.partial(...).expand_kwargs(sensor.output.map(trigger_dag_run_kwargs))``
    """
    return {
        "trigger_run_id": run_id_for(message["queue_name"], message["message_id"]),
        "conf": dict(message),
    }


def _event_payload(event: Any) -> Any:
    extra = _field(event, "extra")
    if isinstance(extra, Mapping):
        return extra.get("payload")
    return None


def _iter_events(triggering_asset_events: Any) -> Iterable[Any]:
    if triggering_asset_events is None:
        return
    if isinstance(triggering_asset_events, Mapping):
        for events in triggering_asset_events.values():
            yield from events
        return
    # A list of events (one asset) or a lazy mapping-like object without Mapping's ABC.
    if hasattr(triggering_asset_events, "values") and callable(triggering_asset_events.values):
        for events in triggering_asset_events.values():
            yield from events
        return
    yield from triggering_asset_events


def messages_from_payload(payload: Any) -> list[dict[str, Any]]:
    """The parsed messages of one trigger event payload (``{"messages": [...], ...}``)."""
    if not isinstance(payload, Mapping):
        return []
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return []
    return [dict(m) for m in messages if isinstance(m, Mapping) and m.get("message_id")]


def dedupe_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One dict per message id, in first-seen order. When a message was delivered more than
    once, the latest delivery (highest dequeue count, then the later one) wins: only its receipt
    handle still works."""
    chosen: dict[str, dict[str, Any]] = {}
    for message in messages:
        mid = message.get("message_id")
        if not mid:
            continue
        previous = chosen.get(mid)
        if previous is None or int(message.get("dequeue_count") or 0) >= int(
            previous.get("dequeue_count") or 0
        ):
            chosen[mid] = dict(message)  # replacing a value keeps the first-seen position
    return list(chosen.values())


def messages_from_asset_events(triggering_asset_events: Any) -> list[dict[str, Any]]:
    """Every message carried by a run's ``triggering_asset_events``, de-duplicated by message id.

    Airflow batches watcher events: one run may be triggered by several events, each carrying
    up to 16 messages. Handle every message this returns, idempotently.

    Accepts the context's mapping ``{asset: [AssetEvent, ...]}``, a list of events, or event
    dicts with an ``extra`` key; events that did not come from our trigger are ignored. Every
    task token returned is registered with Airflow's secrets masker first. A ``@task`` that
    returns these messages should say ``@task(show_return_value_in_logs=False)``: with
    LocalExecutor, Airflow also echoes each task log line to the scheduler's output, and that
    copy is not masked.
    """
    collected: list[dict[str, Any]] = []
    for event in _iter_events(triggering_asset_events):
        collected.extend(messages_from_payload(_event_payload(event)))
    messages = dedupe_messages(collected)
    for message in messages:
        # The task returning these messages is logged ("Returned value was: ..."), by the task's
        # supervisor process: registering the tokens here also registers them there.
        token = message.get("task_token")
        mask_task_token(token if isinstance(token, str) else None)
    return messages


# --- filters -------------------------------------------------------------------------------
class JSONPathError(ValueError):
    """A ``message_filtering`` expression jsonpath-ng cannot parse."""


MessageFilter = Callable[[dict[str, Any]], bool]


@functools.lru_cache(maxsize=256)
def compile_jsonpath(expression: str) -> JSONPath:
    """The parsed expression, with jsonpath-ng's extensions (filters such as ``[?(@.n > 1)]``,
    as Airflow's Amazon ``SqsSensor`` parses it).

    :raises JSONPathError: naming the expression and what the parser found.
    """
    from jsonpath_ng.exceptions import JSONPathError as ParserError
    from jsonpath_ng.ext import parse

    if not isinstance(expression, str) or not expression.strip():
        raise JSONPathError(f"A JSONPath expression must be a non-empty string (got {expression!r})")
    try:
        return parse(expression)
    except (ParserError, ValueError, TypeError) as err:  # jsonpath-ng's lexer and parser errors
        raise JSONPathError(f"Invalid JSONPath {expression!r}: {err}") from None


def jsonpath_find(expression: str, document: Any) -> list[Any]:
    """The values a JSONPath expression matches in ``document``."""
    return [match.value for match in compile_jsonpath(expression).find(document)]


def message_matches(
    message: Mapping[str, Any],
    message_filtering: str | MessageFilter | None,
    match_values: Sequence[Any] | None = None,
) -> bool:
    """Whether a parsed message passes the filter.

    - None: every message passes.
    - a callable: called with the parsed message dict; truthy passes.
    - a JSONPath string, applied to the parsed JSON ``body``: the message passes when the path
      matches something and, if ``match_values`` is given, one matched value is among them.
    """
    if message_filtering is None:
        return True
    if callable(message_filtering):
        return bool(message_filtering(dict(message)))
    found = jsonpath_find(message_filtering, message.get("body"))
    if not found:
        return False
    if match_values is None:
        return True
    return any(value in match_values for value in found)
