"""Serverless Workflow / CloudFlow (FnF, API 2019-03-15) emulator: flows of both definition
languages, whose task steps talk to MNS queues.

Modules: :mod:`.api` (RPC wire format, signature V1), :mod:`.definitions` (which language a
definition is in), the front ends :mod:`.fdl` (``type: flow``; with :mod:`.paths`, JSON paths and
mappings, and :mod:`.conditions`, choice conditions) and :mod:`.cloudflow` (``Type:
StateMachine``; with :mod:`.expressions`, its lark grammar and built-in functions), both compiling
to :mod:`.program` (what the engine runs), :mod:`.engine` (one execution engine and scheduler for
both), :mod:`.store` (SQLite persistence), :mod:`.tokens` (task tokens), :mod:`.throttle` (token
buckets), :mod:`.console` (HTML pages) and :mod:`.service` (the :class:`~.service.FnFService` the
server hosts).

Behaviour the public material does not pin down, chosen as the most plausible and marked
*unconfirmed* where it is implemented:

- Error codes: an invalid definition, name, Input or token answers 400 ``InvalidArgument``; a
  missing parameter 400 ``MissingRequiredParams``; Input/Output over 32 KiB 400 ``EntityTooLarge``;
  an unknown action 400 ``ActionNotSupported``; a bad STS token 403 ``InvalidSecurityToken``, a
  temporary AccessKey without its token 400 ``MissingSecurityToken`` and one past its expiration
  403 ``InvalidSecurityToken.Expired`` (the API gateway's codes, shared with the STS emulator);
  Timestamp skew over 15 minutes 403 ``RequestTimeTooSkewed``.
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

CloudFlow (``Type: StateMachine``), where its documentation leaves the choice open:

- Recognition: a definition with ``Type: StateMachine`` (or CloudFlow's ``StartAt``/``States``/
  ``SpecVersion`` and no ``steps``) is CloudFlow's; unknown fields are rejected at every level, the
  top-level ``Name`` need not equal the flow's name, unreachable states are accepted, a loop with
  no way to an End/Succeed/Fail state is rejected.
- Tokens: the service does not put the token into the message by itself; the flow places it with
  a ``.$`` key (``TaskToken.$: $Context.Current.TaskToken``). Messages are sent as raw text (not
  base64); an object or array ``message`` is sent as ``json.dumps`` of it.
- Data: ``$Input`` in an InputConstructor is the state's raw input (the previous state's output);
  in Output/Global constructors it is the constructed input. Without an OutputConstructor a Task's
  output is its result (RequestComplete: ``{"MessageId", "MessageBodyMD5"}``; a callback: the
  reported Output), a Parallel's ``{"Branch0": ...}``, a Map's ``{"Items": [...]}``, any other
  state's its input. ``.$`` keys are evaluated at any depth of a constructor or of Parameters. A path
  that leads nowhere is null. A Map element that is not an object is its iteration's input as is.
  A Catch without OutputConstructor passes the failed state's input on. Input and output are each
  held to 64 KiB (``FnF.DataSizeLimitExceeded`` fails the execution, not catchable); so is
  ReportTaskSucceeded's Output for a CloudFlow task (the API reference gives no size).
- ``$Context``: ``Execution.{Name, Input, RoleArn}`` (RoleArn: the flow's), ``Current.{Name,
  Input, Output, Error.{Code, Detail}, RetryCount, TaskToken}``; ReportTaskFailed's Error and Cause
  are ``Error.Code`` and ``Error.Detail``; RetryCount counts the retries done so far.
- Expressions: ``==`` is type-strict, ordering compares two numbers or two strings (else false),
  ``in`` tests an array's values or an object's keys, a Choice Condition is tested for truthiness.
  Built-ins: ``regexMatchString(pattern, string)`` (Go's argument order, a search, not a full
  match), ``randomInt(lo, hi)`` gives lo <= n < hi, ``format`` writes non-strings as JSON.
- Error names: ``FnF.TaskTimeout`` (a task past its Timeout, as for FDL), ``FnF.Timeout`` (an Express
  execution past 5 minutes, status TimedOut), ``FnF.ExpressionEvaluationFailed`` (an expression
  that cannot be evaluated, a ``Seconds.$``/``Timeout.$`` out of range), ``FnF.InvalidParameters``
  (a computed priority, delay or resourceArn out of range), ``FnF.InvalidCollection`` (ItemsPath not
  an array), ``Emulator.ActionNotSupported`` (actions other than MNS:SendMessage to a queue: FC,
  HTTP, OpenAPI, MNS topics; accepted by CreateFlow, failed at run time, catchable), ``MNS.<Code>``.
  These are retried and caught like any task error. A Fail state ends the execution even inside a
  Parallel branch or a Map iteration; a Succeed state ends its scope.
- Retry: ``MaxAttempts`` and ``IntervalSeconds`` are required (documented), ``BackoffRate``
  defaults to 1, ``MaxBackoffSeconds`` to 86,400; Retry on a Parallel or Map runs the whole state
  again. MaxConcurrency (or MaxConcuccency) is 1..40 and defaults to 40. WaitForSystemCallback is
  rejected for MNS:SendMessage.
- API: StartExecution on an Express CloudFlow flow and StartSyncExecution on a Standard flow answer
  400 InvalidArgument; StartSyncExecution waits up to 5 minutes and answers without FlowDefinition
  and Input; an Express execution keeps its history (DescribeExecution and GetExecutionHistory
  work). ``Qualifier`` is recorded and filters ListExecutions (versions and aliases are not
  emulated); ``MapRunName`` matches nothing (distributed Map is not emulated); ``MetadataOnly``
  drops FlowDefinition, Input and Output. CreateFlow's Environment and ExternalStorageLocation are
  kept and returned as given.
- History: StepEntered of a step inside a branch or an iteration carries ``in: {step, branch |
  iteration | choice}`` in its EventDetail (the console draws the path from it).
"""
