"""What the execution engine runs: a flow compiled from either definition language.

Both front ends, :mod:`.fdl` (``version: v1``, ``type: flow``) and :mod:`.cloudflow`
(``Type: StateMachine``), compile a definition into a :class:`Flow`: lists of :class:`Step` (a
scope: the flow's top level, a choice branch, a parallel branch, an iteration), each step with a
behaviour (:attr:`Step.kind`) and the id of the step that follows it in its scope. The engine
(:mod:`.engine`) schedules, times, persists and restarts every flow the same way; what differs
between the languages, how data moves between steps, is the flow's :class:`Semantics`.

Each list has an id (``root``, ``<step id>/c0`` for a choice's first branch, ``/d`` its default,
``/b1`` a parallel's second branch, ``/it`` an iteration) and each step ``<list id>/<index>``; the
engine persists these ids, so they depend on the definition alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fnf_emulator.fnf.conditions import Condition
    from fnf_emulator.fnf.engine import Execution
    from fnf_emulator.fnf.expressions import Expression, Template
    from fnf_emulator.fnf.paths import FieldMapping, Path

ALL_ERRORS = "FnF.ALL"
TASK_TIMEOUT_ERROR = "FnF.TaskTimeout"
"""A callback task past its timeout, in both languages (used by every official FDL sample;
*unconfirmed*, for CloudFlow as much as for FDL)."""

KINDS = ("task", "pass", "choice", "parallel", "foreach", "wait", "succeed", "fail")
"""What a step does, whatever its language calls it (a CloudFlow Map is a ``foreach``)."""


class DefinitionError(ValueError):
    """An invalid flow definition, of either language; the message names the step and the field."""


class StateError(Exception):
    """A step fails with this error name and cause (retry and catch rules see it)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class Abort(Exception):
    """The whole execution fails (limits); no retry or catch rule applies."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


@dataclass(frozen=True)
class RetryRule:
    errors: tuple[str, ...]
    interval_seconds: float
    max_interval_seconds: float
    max_attempts: int
    multiplier: float

    def delay(self, done: int) -> float:
        """Seconds before retry number ``done + 1``."""
        return float(min(self.interval_seconds * self.multiplier**done, self.max_interval_seconds))


@dataclass(frozen=True)
class CatchRule:
    errors: tuple[str, ...]
    goto: str
    """The name of the step (in the same scope) that runs next."""
    output: Template | None = None
    """CloudFlow: the rule's OutputConstructor, the next step's input."""


def matches(errors: tuple[str, ...], error: str) -> bool:
    return ALL_ERRORS in errors or error in errors


@dataclass
class Step:
    id: str
    type: str
    """The type as the definition writes it (``task``, ``Task``, ``Map``...), shown to users."""
    name: str
    kind: str = ""
    """The behaviour, one of :data:`KINDS` (defaults to ``type``)."""
    end: bool = False
    next: str | None = None
    """The id of the step that follows in the same scope; None: the scope ends after this step."""
    # FDL data
    input_mappings: list[FieldMapping] | None = None
    output_mappings: list[FieldMapping] | None = None
    error_mappings: list[FieldMapping] | None = None
    # CloudFlow data
    input_template: Template | None = None
    output_template: Template | None = None
    global_template: Template | None = None
    # task
    waits: bool = False
    """A callback task: it gets a token and pauses until ReportTask* or its timeout."""
    queue_name: str = ""
    resource_arn: str = ""
    pattern: str = "requestResponse"
    action: str = ""
    task_mode: str = ""
    parameters: Template | None = None
    timeout_seconds: float | None = None
    timeout_expr: Expression | None = None
    service_params: dict[str, Any] = field(default_factory=dict)
    retry: list[RetryRule] = field(default_factory=list)
    catch: list[CatchRule] = field(default_factory=list)
    # choice: (condition, list id or None, goto or None); default likewise
    choices: list[tuple[Condition | Expression, str | None, str | None]] = field(default_factory=list)
    default: tuple[str | None, str | None] | None = None
    # parallel: list ids of branches; foreach / Map: list id of the iteration
    branches: list[str] = field(default_factory=list)
    iteration: str | None = None
    collection: Path | None = None
    items_expr: Expression | None = None
    item: str = ""
    index: str | None = None
    max_concurrency: int = 0
    # wait
    duration: float | None = None
    duration_expr: Expression | None = None
    timestamp: float | None = None
    # fail
    error: str = ""
    cause: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = self.type


@dataclass
class Flow:
    version: str
    steps: dict[str, Step]
    """Step id -> step."""
    lists: dict[str, list[str]]
    """List id -> step ids, in the order the definition writes them."""
    input_mappings: list[FieldMapping] | None = None
    output_mappings: list[FieldMapping] | None = None
    timeout_seconds: float | None = None
    starts: dict[str, str | None] = field(default_factory=dict)
    """List id -> the step a scope of that list starts with (None: an empty list)."""
    semantics: Semantics | None = None
    language: str = "fdl"
    """``fdl`` or ``cloudflow``."""

    def sibling(self, list_id: str, name: str) -> str:
        """The id of step ``name`` in list ``list_id``."""
        for sid in self.lists[list_id]:
            if self.steps[sid].name == name:
                return sid
        raise KeyError(name)

    def sibling_index(self, list_id: str, name: str) -> int:
        return self.lists[list_id].index(self.sibling(list_id, name))

    def start_of(self, list_id: str) -> str | None:
        if list_id in self.starts:
            return self.starts[list_id]
        ids = self.lists[list_id]
        return ids[0] if ids else None

    @property
    def sem(self) -> Semantics:
        assert self.semantics is not None
        return self.semantics


class Semantics(Protocol):
    """How data moves through the steps of one language; the engine calls these at each transition.

    ``scope`` and ``frame`` are the engine's persisted frames (plain dicts): a scope has ``input``
    and ``local`` (FDL: the level's ``$local``; CloudFlow: the output of the last state, which is
    the next state's input), a step frame has ``input`` (the step's input) and may have
    ``error`` and ``retries``.
    """

    max_report_bytes: int
    """The largest ReportTaskSucceeded Output for a task of this language."""
    succeed_ends_execution: bool
    """FDL: a succeed step ends the execution; CloudFlow: a Succeed state ends its scope."""
    records_local: bool
    """Whether StepSucceeded events carry the step's ``local`` (FDL) besides its output."""

    def begin(self, ex: Execution) -> dict[str, Any]: ...

    def scope_local(self, inp: Any) -> Any: ...

    def step_input(self, ex: Execution, scope: dict[str, Any], step: Step, token: str | None) -> Any: ...

    def chosen(self, ex: Execution, step: Step, frame: dict[str, Any]) -> int | None:
        """The index of the first choice whose condition holds (None: the default)."""
        ...

    def items(self, ex: Execution, step: Step, frame: dict[str, Any]) -> Any: ...

    def iteration_input(self, step: Step, inp: Any, item: Any, index: int) -> Any: ...

    def wait_until(self, ex: Execution, step: Step, frame: dict[str, Any], now: float) -> float:
        """When a wait step ends (a time stamp)."""
        ...

    def message(
        self, ex: Execution, step: Step, frame: dict[str, Any], token: str | None
    ) -> tuple[str, str, int, int]:
        """(queue, body, priority, delay) of a task's MNS message; raises :class:`StateError`."""
        ...

    def sent(self, message_id: str, body: str) -> Any:
        """A task's result once its message is sent (no callback)."""
        ...

    def task_timeout(self, ex: Execution, step: Step, frame: dict[str, Any]) -> float | None: ...

    def combine(self, step: Step, results: list[Any]) -> Any:
        """A parallel's or foreach's result from its branches' or iterations' results."""
        ...

    def output(self, ex: Execution, step: Step, frame: dict[str, Any], result: Any) -> Any:
        """The step's output from its result (checks the size limits)."""
        ...

    def absorb(self, scope: dict[str, Any], output: Any) -> None:
        """Record a finished step's output in its scope."""
        ...

    def caught(
        self, ex: Execution, step: Step, frame: dict[str, Any], rule: CatchRule, scope: dict[str, Any]
    ) -> None:
        """A caught failure: what the catch target sees (``frame['error']`` holds Code/Detail)."""
        ...

    def flow_output(self, ex: Execution, local: Any) -> Any: ...

    def fail_info(self, ex: Execution, step: Step, frame: dict[str, Any]) -> tuple[str, str]:
        """(error, cause) of a fail step."""
        ...
