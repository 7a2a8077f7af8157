"""The provider's exceptions: SDK errors become these, raised ``from`` the original."""

from __future__ import annotations

from airflow.exceptions import AirflowException


class FnFProviderError(AirflowException):
    """Base of every error this provider raises about MNS or Serverless Workflow.

    ``code`` is the service's error code where there is one (``QueueNotExist``,
    ``TaskAlreadyCompleted``...), ``status`` its HTTP status, ``request_id`` the service's
    request id; ``conn_id`` and ``resource`` say where it happened.
    """

    def __init__(
        self,
        message: str,
        *,
        conn_id: str | None = None,
        resource: str | None = None,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.conn_id = conn_id
        self.resource = resource
        self.code = code
        self.status = status
        self.request_id = request_id


class FnFConfigurationError(FnFProviderError):
    """A connection or an argument is missing or wrong; retrying will not help."""


# --- Security Token Service (STS) -------------------------------------------------------
class STSAssumeRoleError(FnFProviderError):
    """STS AssumeRole failed for a connection's ``role_arn``: ``code`` is STS's error code
    (``EntityNotExist.Role``, ``NoPermission``...; ``None`` when STS did not answer), ``resource``
    the role's ARN. Final unless STS did not answer or answered 5xx."""


# --- Simple Message Queue (MNS) ---------------------------------------------------------
class MNSError(FnFProviderError):
    """An MNS call failed."""


class MNSAuthenticationError(MNSError):
    """The service rejected the credentials (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch)."""


class MNSQueueNotFoundError(MNSError):
    """The queue does not exist (QueueNotExist)."""


class MNSReceiptHandleError(MNSError):
    """The receipt handle is stale, expired or malformed (MessageNotExist, ReceiptHandleError):
    the message was received again by someone else, or already deleted."""


class MNSEndpointUnreachableError(MNSError):
    """No answer from the endpoint after the hook's bounded retries."""


# --- Serverless Workflow ----------------------------------------------------------------
class ServerlessWorkflowError(FnFProviderError):
    """A Serverless Workflow call failed."""


class ServerlessWorkflowAuthenticationError(ServerlessWorkflowError):
    """The service rejected the credentials."""


class ServerlessWorkflowFlowNotFoundError(ServerlessWorkflowError):
    """FlowNotExists."""


class ServerlessWorkflowExecutionNotFoundError(ServerlessWorkflowError):
    """ExecutionNotExists."""


class ServerlessWorkflowTaskAlreadyCompletedError(ServerlessWorkflowError):
    """TaskAlreadyCompleted: the task token was reported before. Callers treat it as done."""


class ServerlessWorkflowInvalidTaskTokenError(ServerlessWorkflowError):
    """The service rejected the task token (InvalidArgument): forged, truncated or unknown."""


class ServerlessWorkflowThrottledError(ServerlessWorkflowError):
    """ResourceThrottled (429) after the hook's retries."""


class ServerlessWorkflowEndpointUnreachableError(ServerlessWorkflowError):
    """No answer from the endpoint after the hook's bounded retries."""


class ServerlessWorkflowOutputError(ServerlessWorkflowError, ValueError):
    """An Output or Input that is not a JSON object or is larger than the service's 32 KiB."""


class ServerlessWorkflowExecutionFailedError(ServerlessWorkflowError):
    """An awaited execution ended Failed, TimedOut or Stopped."""
