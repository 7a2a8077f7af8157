"""Serverless Workflow (FnF, API 2019-03-15) emulator: FDL flows whose task steps talk to MNS queues.

Modules: :mod:`.api` (RPC wire format, signature V1), :mod:`.fdl` (definition parsing and
validation), :mod:`.paths` (JSON paths and mappings), :mod:`.conditions` (choice conditions, a
small safe evaluator), :mod:`.engine` (execution engine and scheduler), :mod:`.store` (SQLite
persistence), :mod:`.tokens` (task tokens), :mod:`.throttle` (token buckets), :mod:`.console`
(HTML pages) and :mod:`.service` (the :class:`~.service.FnFService` the server hosts).

Behaviour the public material does not pin down, chosen as the most plausible and marked
*unconfirmed* where it is implemented:

- Error codes: an invalid definition, name, Input or token answers 400 ``InvalidArgument``; a
  missing parameter 400 ``MissingRequiredParams``; Input/Output over 32 KiB 400 ``EntityTooLarge``;
  an unknown action 400 ``ActionNotSupported``; a bad STS token 403 ``InvalidSecurityToken``
  (checked only when the emulator is given STS tokens); Timestamp skew over 15 minutes 403
  ``RequestTimeTooSkewed``.
- Error names inside flows: ``FnF.TaskTimeout`` (callback step timeout), ``FnF.Timeout`` (flow
  timeout, status TimedOut), ``FnF.DataSizeLimitExceeded`` (a step's data over 32 KiB: the
  execution fails, not catchable), ``FnF.InvalidCollection`` (foreach over a non-array),
  ``MNS.<Code>`` (the message could not be sent, e.g. ``MNS.QueueNotExist``).
- Retry: ``maxAttempts`` counts retries after the first attempt, per rule; the first rule whose
  errors match decides; the n-th retry waits ``intervalSeconds * multiplier**(n-1)`` capped by
  ``maxIntervalSeconds``. Every attempt of a callback step gets a fresh token and message; a
  report with an older attempt's token answers TaskAlreadyCompleted.
- catch applies to task steps; errorMappings (``$local.error``/``$local.cause``) become the
  failed step's output, merged into the parent's ``$local`` before the goto target runs. An
  uncaught failure inside a parallel branch or foreach iteration cancels its siblings and fails
  the enclosing step. ``fail`` steps end the execution and cannot be caught.
- A requestResponse MNS step's ``$local`` is ``{"MessageId": ...}``; a waitForCallback step's
  ``$local`` is the reported Output alone.
- ``$context`` is ``{"execution": {"name", "input", "startedTime"}, "flow": {"name"},
  "step": {"name"}, "task": {"token"}}`` (token only in waitForCallback task steps). A mapping
  reference that leads nowhere yields null.
- Conditions: ``==`` is type-strict (1 is not "1"), ordering compares two numbers or two
  strings and is false otherwise, a path alone tests truthiness.
- History: per step StepEntered, (TaskScheduled, TaskSubmitted | TaskSubmitFailed, TaskSucceeded
  | TaskFailed | TaskTimedOut), StepSucceeded | StepFailed, StepExited; ScheduleEventId is the
  step's StepEntered id; EventDetail is JSON with ``input``/``output``/``local``/``error``/
  ``cause`` keys.
- Lists: executions in start order; NextToken is the next item's name (event id for history);
  default page sizes 100 (flows, executions) and 1000 (history).
- StartExecution without Input stores ``{}``; a waitForCallback step in an Express flow is
  rejected at CreateFlow; unknown fields in a definition are rejected (catches typos);
  ``serviceParams.Priority`` is required; DeleteFlow drops the flow's executions, running or not.
- DescribeExecution also returns ``ErrorCode``/``ErrorMessage`` for failed executions (the SDK's
  model ignores them).
"""
