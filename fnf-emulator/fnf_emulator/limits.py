"""The limits the emulated services enforce: Simple Message Queue (MNS), Serverless Workflow and CloudFlow.

The emulator's own copy, written from the services' published limits: the provider keeps its
own in ``airflow_provider_fnf.limits``, so a limit that is wrong on the client side is caught by
the emulator instead of being wrong on both sides.
"""

# --- Simple Message Queue (MNS) ---------------------------------------------------------
MNS_MAX_BATCH_SIZE = 16
"""Most messages in one batch send, receive, peek or delete."""
MNS_MAX_WAIT_SECONDS = 30
"""Longest long poll (``waitseconds`` / PollingWaitSeconds)."""
MNS_MIN_VISIBILITY_TIMEOUT = 1
MNS_MAX_VISIBILITY_TIMEOUT = 43_200
MNS_DEFAULT_VISIBILITY_TIMEOUT = 30
MNS_MAX_DELAY_SECONDS = 604_800
MNS_MIN_MESSAGE_SIZE_LIMIT = 1_024
MNS_MAX_MESSAGE_SIZE = 65_536
"""64 KiB: the largest message body, and the default MaximumMessageSize."""
MNS_MIN_RETENTION_SECONDS = 60
MNS_MAX_RETENTION_SECONDS = 604_800
MNS_DEFAULT_RETENTION_SECONDS = 345_600
MNS_MIN_PRIORITY = 1
MNS_MAX_PRIORITY = 16
MNS_DEFAULT_PRIORITY = 8
MNS_API_VERSION = "2015-06-06"
MNS_DEFAULT_DELAY_SECONDS = 0
MNS_DEFAULT_POLLING_WAIT_SECONDS = 0
MNS_MAX_QUEUE_NAME_LENGTH = 256
"""A queue name starts with a letter and holds letters, digits and hyphens."""
MNS_MAX_LIST_QUEUES = 1_000
"""Most queues in one ListQueue page (``x-mns-ret-number``)."""
MNS_MAX_CLOCK_SKEW_SECONDS = 900
"""A request whose Date header is further than this from the server's clock has expired."""

# --- Serverless Workflow (FnF, API 2019-03-15; FDL flows, ``type: flow``) -------------------
FNF_MAX_OUTPUT_BYTES = 32 * 1024
"""32 KiB per event: ReportTaskSucceeded's Output and an execution's Input (previous service)."""
FNF_MAX_ERROR_CHARS = 128
FNF_MAX_CAUSE_CHARS = 4_096
FNF_MAX_NAME_CHARS = 128
FNF_MAX_DESCRIBE_WAIT_SECONDS = 60
FNF_MAX_LIST_LIMIT = 100
FNF_MAX_HISTORY_LIMIT = 1_000
FNF_MAX_FOREACH_CONCURRENCY = 100
FNF_MAX_EVENTS_PER_EXECUTION = 5_000
FNF_MAX_REQUEST_BYTES = 1024 * 1024
# Token buckets per action (burst, refill per second), as published.
FNF_QUOTA_START_EXECUTION = (100, 100)
FNF_QUOTA_DESCRIBE_EXECUTION = (50, 5)
FNF_QUOTA_GET_EXECUTION_HISTORY = (50, 5)
FNF_QUOTA_DEFAULT = (10, 2)
"""Every other action, ReportTaskSucceeded and ReportTaskFailed included."""

# --- CloudFlow (the same API; ``Type: StateMachine`` flows) ----------------------------------
CLOUDFLOW_MAX_STATE_BYTES = 64 * 1024
"""A state's input, and its output, is a JSON object of at most 64 KiB (documented); so is an
execution's Input (the first state's input) and an event's data."""
CLOUDFLOW_MAX_REPORT_OUTPUT_BYTES = 64 * 1024
"""ReportTaskSucceeded's Output for a CloudFlow task becomes the state's ``$Output``, so it is held to
the state limit (*unconfirmed*: the API reference does not give a size)."""
CLOUDFLOW_MAX_GLOBAL_KEY_BYTES = 128
CLOUDFLOW_MAX_GLOBAL_VALUE_BYTES = 256 * 1024
CLOUDFLOW_MAX_PARALLEL_BRANCHES = 50
CLOUDFLOW_MAX_MAP_CONCURRENCY = 40
"""Most iterations of an inline Map at once (documented as "up to 40"); also the default."""
CLOUDFLOW_MAX_TASK_TIMEOUT_SECONDS = 604_800
CLOUDFLOW_MIN_WAIT_SECONDS = 1
CLOUDFLOW_MAX_WAIT_SECONDS_STANDARD = 300
CLOUDFLOW_MAX_WAIT_SECONDS_EXPRESS = 20
CLOUDFLOW_MAX_RETRY_INTERVAL_SECONDS = 86_400
CLOUDFLOW_EXPRESS_MAX_SECONDS = 300
"""An Express execution lasts at most 5 minutes."""
CLOUDFLOW_STANDARD_MAX_SECONDS = 365 * 86_400
"""A Standard execution lasts at most a year."""

# --- Security Token Service (STS, API 2015-04-01) ------------------------------------------
STS_API_VERSION = "2015-04-01"
STS_MIN_DURATION_SECONDS = 900
"""Shortest session AssumeRole grants (DurationSeconds)."""
STS_MAX_DURATION_SECONDS = 43_200
"""Longest session a role's maximum session duration can allow."""
STS_DEFAULT_DURATION_SECONDS = 3_600
"""DurationSeconds when the request gives none, and a role's maximum session duration unless set."""
STS_MIN_ROLE_SESSION_NAME_CHARS = 2
STS_MAX_ROLE_SESSION_NAME_CHARS = 64
STS_MIN_EXTERNAL_ID_CHARS = 2
STS_MAX_EXTERNAL_ID_CHARS = 1_224
STS_MAX_POLICY_CHARS = 1_024
"""Longest inline Policy of an AssumeRole request (*unconfirmed*: the documents give 1,024 and 2,048)."""
