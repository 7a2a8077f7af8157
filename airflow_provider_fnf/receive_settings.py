"""What receiving from an MNS queue is told to do: one settings object, validated in one place.

:class:`MNSReceiveSettings` is what :class:`~airflow_provider_fnf.sensors.mns.MNSSensor`,
:class:`~airflow_provider_fnf.triggers.mns.MNSMessageTrigger` (and through it
``MessageQueueTrigger(scheme="mns")``) and :class:`~airflow_provider_fnf.receiver.MNSMessageReceiver`
take. The sensor and the trigger accept each of its fields as a keyword argument of the same
name, as users write them (``MNSSensor(task_id=..., queue_name="jobs", lease_seconds=600)``); the
trigger serializes it as JSON (:meth:`MNSReceiveSettings.to_json`) and is rebuilt from that.

Adding an option is one field below and its check in :meth:`MNSReceiveSettings.__post_init__`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow_provider_fnf import limits
from airflow_provider_fnf.acknowledgement import POISON_POLICIES, PoisonPolicy, resolve_poison_policy
from airflow_provider_fnf.hooks.mns import BODY_ENCODINGS, BodyEncoding
from airflow_provider_fnf.messages import DEFAULT_TOKEN_KEYS, JSONPathError, MessageFilter, compile_jsonpath

DEFAULT_LEASE_SECONDS = 3_600
"""Processing lease set on receipt: long enough for a typical run, well under MNS's 43,200 s."""
DEFAULT_WAIT_TIME_SECONDS = 20
"""Long poll per receive call: below MNS's 30 s maximum and the SDK's socket timeout."""
DEFAULT_MAX_RECEIVE_COUNT = 10
"""A message received more often than this is poison. A message comes back once for every lease
that ends without its deletion; normal operation causes few of those (a run outliving its lease,
a triggerer or worker dying while it holds the message, an asset event the scheduler missed, a
transient error: one more receive each), so 10 is well above them. It bounds how long a message
nobody can settle goes round: at most ``lease_seconds`` x 10 from its first receipt (10 h with
the default lease of 3,600 s, 50 min with the examples' 300 s), then it follows
``poison_policy``."""
POISON_ERROR_NAME = "Airflow.PoisonMessage"
"""The error reported to Serverless Workflow for an unusable message whose token could be read."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class MNSReceiveSettings:
    """How to receive from one MNS queue and settle what arrives.

    :param queue_name: the MNS queue to read.
    :param mns_conn_id: the ``mns`` connection.
    :param fnf_conn_id: the ``fnf`` connection, used to report poison messages' tasks failed.
    :param max_messages: messages per receive call, 1..16.
    :param wait_time_seconds: long-poll seconds per receive call, 0..30.
    :param lease_seconds: processing lease set on each message received, 1..43,200 (default 3,600).
    :param delete_on_receipt: opt-in: delete each message as soon as it is received instead of
        leasing it. Delivery then becomes at most once: if the run fails before reporting, the
        task token is lost and the flow waits for its step's timeout.
    :param token_keys: keys under which the task token is looked for in a JSON body, in order;
        a dotted key walks nested objects. Default ``task_token``, ``taskToken`` (Serverless
        Workflow's conventions), ``TaskToken`` (CloudFlow's).
    :param message_filtering: a JSONPath expression applied to the body (jsonpath-ng with its
        extensions, as Amazon's ``SqsSensor``), or, in ``MNSSensor`` only, a callable taking the
        parsed message dict. Non-matching messages are released at once.
    :param message_filtering_match_values: with a JSONPath, the values one of which must match.
    :param require_task_token: a body that is not a JSON object with a task token is poison.
    :param max_receive_count: a message received more often than this is poison (default 10,
        see :data:`DEFAULT_MAX_RECEIVE_COUNT`; None: no limit). Counted by MNS over every
        receive, so on a queue shared with other consumers' filters their receives count too;
        only messages that pass this consumer's own filter are judged by it.
    :param poison_policy: ``dead_letter`` (send the raw body to ``dead_letter_queue_name``, then
        delete), ``delete`` or ``leave``; default ``dead_letter`` when ``dead_letter_queue_name``
        is set, else ``leave``.
    :param dead_letter_queue_name: the queue poison messages are moved to.
    :param report_poison_failures: report a poison message's task failed when a token can be read.
    :param poison_error_name: the error name reported for poison messages (what the flow's
        retry/catch matches).
    :param body_encoding: ``raw`` (what Serverless Workflow sends), ``base64`` or ``auto``.
    """

    queue_name: str
    mns_conn_id: str = "mns_default"
    fnf_conn_id: str = "fnf_default"
    max_messages: int = limits.MNS_MAX_BATCH_SIZE
    wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    delete_on_receipt: bool = False
    token_keys: tuple[str, ...] = DEFAULT_TOKEN_KEYS
    message_filtering: str | MessageFilter | None = None
    message_filtering_match_values: tuple[Any, ...] | None = None
    require_task_token: bool = True
    max_receive_count: int | None = DEFAULT_MAX_RECEIVE_COUNT
    poison_policy: PoisonPolicy | None = None
    dead_letter_queue_name: str | None = None
    report_poison_failures: bool = True
    poison_error_name: str = POISON_ERROR_NAME
    body_encoding: BodyEncoding = "raw"

    def __post_init__(self) -> None:
        """Every check of every option, each error naming the option and the queue."""
        # Lists from users and from JSON become tuples: the settings are immutable and hashable.
        if isinstance(self.token_keys, list):
            object.__setattr__(self, "token_keys", tuple(self.token_keys))
        if isinstance(self.message_filtering_match_values, list):
            object.__setattr__(
                self, "message_filtering_match_values", tuple(self.message_filtering_match_values)
            )

        if not isinstance(self.queue_name, str) or not self.queue_name.strip():
            raise ValueError(f"queue_name must be a non-empty string, got {self.queue_name!r}")
        where = f"queue {self.queue_name!r}"
        for name in ("mns_conn_id", "fnf_conn_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} for {where} must be a connection id, got {value!r}")
        _check_int(where, "max_messages", self.max_messages, 1, limits.MNS_MAX_BATCH_SIZE, "an MNS batch")
        _check_int(
            where,
            "wait_time_seconds",
            self.wait_time_seconds,
            0,
            limits.MNS_MAX_WAIT_SECONDS,
            "MNS long poll",
        )
        _check_int(
            where,
            "lease_seconds",
            self.lease_seconds,
            limits.MNS_MIN_VISIBILITY_TIMEOUT,
            limits.MNS_MAX_VISIBILITY_TIMEOUT,
            "MNS visibility timeout",
        )
        keys = self.token_keys
        if not isinstance(keys, tuple) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise ValueError(f"token_keys for {where} must be a non-empty list of key names, got {keys!r}")
        if isinstance(self.message_filtering, str):
            try:
                compile_jsonpath(self.message_filtering)  # a bad expression fails when the DAG is parsed
            except JSONPathError as err:
                raise JSONPathError(f"message_filtering for {where}: {err}") from None
        elif self.message_filtering is not None and not callable(self.message_filtering):
            raise ValueError(
                f"message_filtering for {where} must be a JSONPath string, a callable or None, "
                f"got {type(self.message_filtering).__name__}"
            )
        count = self.max_receive_count
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError(
                f"max_receive_count for {where} must be a positive integer or None, got {count!r}"
            )
        if self.poison_policy is not None and self.poison_policy not in POISON_POLICIES:
            raise ValueError(
                f"poison_policy for {where} must be one of {', '.join(POISON_POLICIES)}, got {self.poison_policy!r}"
            )
        if self.effective_poison_policy == "dead_letter" and not self.dead_letter_queue_name:
            raise ValueError(f"poison_policy 'dead_letter' for {where} needs dead_letter_queue_name")
        if self.dead_letter_queue_name is not None and self.dead_letter_queue_name == self.queue_name:
            raise ValueError(f"dead_letter_queue_name must differ from the queue it serves ({where})")
        name = self.poison_error_name
        if not isinstance(name, str) or not 1 <= len(name) <= limits.FNF_MAX_ERROR_CHARS:
            raise ValueError(
                f"poison_error_name for {where} must be 1..{limits.FNF_MAX_ERROR_CHARS} characters, got {name!r}"
            )
        if self.body_encoding not in BODY_ENCODINGS:
            raise ValueError(
                f"body_encoding for {where} must be one of {', '.join(BODY_ENCODINGS)}, got {self.body_encoding!r}"
            )

    @property
    def effective_poison_policy(self) -> PoisonPolicy:
        return resolve_poison_policy(self.poison_policy, self.dead_letter_queue_name)

    # -- options as keyword arguments, and JSON -------------------------------------------------
    @classmethod
    def option_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def split_options(cls, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``kwargs`` as (the settings' options, everything else)."""
        names = cls.option_names()
        options = {k: v for k, v in kwargs.items() if k in names}
        return options, {k: v for k, v in kwargs.items() if k not in names}

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-safe keyword arguments; ``MNSReceiveSettings(**settings.to_json())``
        gives them back. A callable ``message_filtering`` cannot be serialized: drop it first."""
        if callable(self.message_filtering):
            raise ValueError(
                f"MNSReceiveSettings for queue {self.queue_name!r}: a callable message_filtering cannot "
                "be serialized (only MNSSensor runs one, in its worker)"
            )
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["token_keys"] = list(self.token_keys)
        if self.message_filtering_match_values is not None:
            values["message_filtering_match_values"] = list(self.message_filtering_match_values)
        return values

    def settling_fields(self) -> dict[str, Any]:
        """What each received message carries of these settings, to be settled by them wherever
        it turns out to be poison (see :data:`airflow_provider_fnf.messages.MESSAGE_KEYS`)."""
        return {
            "poison_policy": self.effective_poison_policy,
            "dead_letter_queue_name": self.dead_letter_queue_name,
            "body_encoding": self.body_encoding,
        }

    def without_callable_filter(self) -> MNSReceiveSettings:
        """These settings with a callable filter (and its match values) taken out."""
        if not callable(self.message_filtering):
            return self
        return dataclasses.replace(self, message_filtering=None, message_filtering_match_values=None)


def accepts_receive_options(init: F) -> F:
    """Declare every option of :class:`MNSReceiveSettings` as a keyword-only parameter of ``init``
    (an ``__init__`` that takes them through ``**kwargs``), in its signature.

    Airflow reads an operator's signature to apply ``default_args`` and to check ``partial()``
    and ``expand()`` arguments, and ``help()`` shows it: with this they see each option as if it
    were written out, while the options themselves are declared once, as fields.
    """
    signature = inspect.signature(init)
    params = list(signature.parameters.values())
    variadic = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    named = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in named}
    options = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=f.default if f.default is not dataclasses.MISSING else inspect.Parameter.empty,
            annotation=f.type,
        )
        for f in dataclasses.fields(MNSReceiveSettings)
        if f.name not in taken
    ]
    init.__signature__ = signature.replace(parameters=[*named, *options, *variadic])  # type: ignore[attr-defined]
    return init


def _check_int(where: str, name: str, value: Any, low: int, high: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} for {where} must be {low}..{high} ({what}), got {value!r}")
