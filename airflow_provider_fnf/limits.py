"""Limits of Simple Message Queue (MNS), Serverless Workflow and CloudFlow, in one place.

The provider checks what users pass against these numbers. Serverless Workflow and CloudFlow
are two generations of one service (one API, 2019-03-15): where their limits differ, each has
its own constant and :data:`FNF_SERVICE_LIMITS` says which applies to a connection (its extra
``service``). The local emulator (``fnf-emulator``) keeps its own copy, written from the same
published limits, so a limit that is wrong here is caught by the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass

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

# --- Serverless Workflow and CloudFlow (FnF, API 2019-03-15) -----------------------------
SERVERLESS_WORKFLOW_MAX_EVENT_BYTES = 32 * 1024
"""32 KiB of event data in the previous service, Serverless Workflow: ReportTaskSucceeded's
Output and an execution's Input (the limits page: "32 KiB (Serverless workflow)")."""
CLOUDFLOW_MAX_EVENT_BYTES = 64 * 1024
"""64 KiB of event data in CloudFlow: a state's input and output, so ReportTaskSucceeded's
Output and an execution's Input (the limits page: "64 KiB (CloudFlow)"; inputs and outputs:
"cannot exceed 64 KiB")."""
FNF_MAX_ERROR_CHARS = 128
"""ReportTaskFailed's Error: 1..128 characters, in both generations."""
FNF_MAX_CAUSE_CHARS = 4_096
"""ReportTaskFailed's Cause: 1..4,096 characters, in both generations."""
CLOUDFLOW_EXPRESS_MAX_SECONDS = 300
"""An Express execution (StartSyncExecution) runs at most 5 minutes."""
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


# --- what differs between the two generations of Serverless Workflow ---------------------
@dataclass(frozen=True)
class FnFServiceLimits:
    """The limits the provider checks that depend on the service generation."""

    service: str
    """The service's name, for error messages: ``Serverless Workflow`` or ``CloudFlow``."""
    max_event_bytes: int
    """ReportTaskSucceeded's Output and an execution's Input, in UTF-8 bytes of JSON."""
    max_error_chars: int = FNF_MAX_ERROR_CHARS
    max_cause_chars: int = FNF_MAX_CAUSE_CHARS


SERVERLESS_WORKFLOW_LIMITS = FnFServiceLimits("Serverless Workflow", SERVERLESS_WORKFLOW_MAX_EVENT_BYTES)
CLOUDFLOW_LIMITS = FnFServiceLimits("CloudFlow", CLOUDFLOW_MAX_EVENT_BYTES)
FNF_SERVICE_LIMITS: dict[str, FnFServiceLimits] = {
    "serverless_workflow": SERVERLESS_WORKFLOW_LIMITS,
    "cloudflow": CLOUDFLOW_LIMITS,
}
"""The ``fnf`` connection's extra ``service`` -> the limits checked for it."""
FNF_DEFAULT_SERVICE = "serverless_workflow"
"""Without extra ``service``, the smaller limits: an Output they accept is accepted by both."""
