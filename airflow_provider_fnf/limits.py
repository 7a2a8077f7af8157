"""Limits of Simple Message Queue (MNS) and Serverless Workflow, in one place.

The provider checks what users pass against these numbers. The local emulator
(``fnf-emulator``) keeps its own copy, written from the same published limits, so a limit that
is wrong here is caught by the emulator.
"""

# --- Simple Message Queue (MNS) ---------------------------------------------------------
MNS_MAX_BATCH_SIZE = 16
"""Most messages in one batch send, receive, peek or delete."""
MNS_MAX_WAIT_SECONDS = 30
"""Longest long poll (``waitseconds`` / PollingWaitSeconds)."""
MNS_MIN_VISIBILITY_TIMEOUT = 1
MNS_MAX_VISIBILITY_TIMEOUT = 43_200
MNS_MAX_DELAY_SECONDS = 604_800
MNS_MIN_MESSAGE_SIZE_LIMIT = 1_024
MNS_MAX_MESSAGE_SIZE = 65_536
"""64 KiB: the largest message body, and the default MaximumMessageSize."""
MNS_MIN_RETENTION_SECONDS = 60
MNS_MAX_RETENTION_SECONDS = 604_800
MNS_MIN_PRIORITY = 1
MNS_MAX_PRIORITY = 16

# --- Serverless Workflow (FnF, API 2019-03-15) --------------------------------------------
FNF_MAX_OUTPUT_BYTES = 32 * 1024
"""32 KiB per event: ReportTaskSucceeded's Output and an execution's Input."""
FNF_MAX_ERROR_CHARS = 128
FNF_MAX_CAUSE_CHARS = 4_096
FNF_MAX_NAME_CHARS = 128
FNF_MAX_DESCRIBE_WAIT_SECONDS = 60
FNF_MAX_LIST_LIMIT = 100
FNF_MAX_HISTORY_LIMIT = 1_000
FNF_QUOTA_DEFAULT = (10, 2)
"""The published quota of ReportTaskSucceeded and ReportTaskFailed (and every action without
its own): a burst of 10, then 2 per second per account (429 ResourceThrottled beyond)."""

# --- Security Token Service (STS AssumeRole, API 2015-04-01) -------------------------------
STS_MIN_SESSION_DURATION_SECONDS = 900
"""Shortest session AssumeRole grants (DurationSeconds)."""
STS_MAX_SESSION_DURATION_SECONDS = 43_200
"""Longest session a role can allow (its maximum session duration, 3,600 s unless raised)."""
STS_MIN_ROLE_SESSION_NAME_CHARS = 2
STS_MAX_ROLE_SESSION_NAME_CHARS = 64
STS_MIN_EXTERNAL_ID_CHARS = 2
STS_MAX_EXTERNAL_ID_CHARS = 1_224
STS_MAX_POLICY_CHARS = 1_024
"""Longest inline session policy of an AssumeRole request."""
