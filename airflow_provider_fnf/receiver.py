"""Receiving task messages from an MNS queue: one synchronous pipeline for the sensor and the trigger.

One call of :meth:`MNSMessageReceiver.receive_batch` long-polls the queue once (up to 16
messages) and settles every message it got before handing any back:

- a **poison** message (body not decodable, not JSON, no task token, or received more than
  ``max_receive_count`` times) is logged by message id; if a task token can be read, the task is
  reported failed to Serverless Workflow with ``poison_error_name`` so the flow's retry/catch can
  act; then the poison policy runs: ``dead_letter`` (send the raw body to the dead-letter queue,
  then delete), ``delete``, or ``leave`` (untouched: it comes back after the visibility timeout);
- a message the **filter** rejects is released at once (visibility 1 s), not left in flight;
- every other message gets its **processing lease**: its visibility is set to ``lease_seconds``
  so it is not delivered again while its run works. The lease gives a new receipt handle, which
  is the one handed back. With ``delete_on_receipt`` (an explicit opt-in) it is deleted instead:
  a run that fails afterwards loses the task, which then waits for the flow's timeout.

The SDK is synchronous and not thread-safe: the trigger runs this in a dedicated thread. The hooks
are built lazily in whichever thread first uses them (the MNS hook keeps one SDK client per
thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_fnf.acknowledgement import MNSMessageAcknowledger, SettleOutcome
from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    FnFProviderError,
    MNSAuthenticationError,
    MNSQueueNotFoundError,
    ServerlessWorkflowAuthenticationError,
    ServerlessWorkflowInvalidTaskTokenError,
    ServerlessWorkflowTaskAlreadyCompletedError,
)
from airflow_provider_fnf.masking import mask_task_token_by_shape
from airflow_provider_fnf.messages import (
    message_matches,
    parse_message,
    poison_reason,
    receive_count_reason,
    salvage_task_token,
)
from airflow_provider_fnf.receive_settings import MNSReceiveSettings
from airflow_provider_fnf.reporting import log_rejected_token

if TYPE_CHECKING:
    from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
    from airflow_provider_fnf.hooks.mns import MNSHook

log = logging.getLogger(__name__)

PoisonOutcome = SettleOutcome | Literal["kept"]
"""What handling a poison message did; ``kept`` when a step failed and it comes back later."""

LEASE_MATCH_TOLERANCE_SECONDS = 2.0
"""How far a received message's visibility may be from ``lease_seconds`` and still count as the
lease (time spent in flight, clock differences); outside it the lease is set explicitly."""


def _receive_was_the_lease(raw: Any, lease_seconds: int) -> bool:
    """True when the receive made the message invisible for about ``lease_seconds`` already."""
    next_visible = (
        raw.get("next_visible_time") if isinstance(raw, Mapping) else getattr(raw, "next_visible_time", None)
    )
    if not isinstance(next_visible, int) or next_visible <= 0:
        return False
    remaining = next_visible / 1000 - time.time()
    return abs(remaining - lease_seconds) <= LEASE_MATCH_TOLERANCE_SECONDS


def is_retryable(error: BaseException) -> bool:
    """Whether receiving again later can succeed: the one place that decides it for the receiver.

    Wrong credentials, a missing queue and bad configuration are permanent; network errors,
    throttling and the service's 5xx answers are transient.
    """
    if isinstance(
        error,
        (
            FnFConfigurationError,
            MNSAuthenticationError,
            MNSQueueNotFoundError,
            ServerlessWorkflowAuthenticationError,
        ),
    ):
        return False
    if isinstance(error, FnFProviderError):
        return error.status is None or error.status >= 500 or error.status == 429
    return isinstance(error, (OSError, TimeoutError, ConnectionError))


@dataclass
class ReceiveResult:
    """What one receive did: the messages to work on (leased) and what was settled otherwise."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    received: int = 0
    released: list[str] = field(default_factory=list)
    poisoned: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Messages whose lease could not be set: they come back by themselves, nothing is lost."""


class MNSMessageReceiver:
    """Receives, classifies and leases messages (see the module docstring). Synchronous."""

    def __init__(
        self,
        settings: MNSReceiveSettings,
        *,
        mns_hook: MNSHook | None = None,
        fnf_hook: ServerlessWorkflowHook | None = None,
    ) -> None:
        self.settings = settings
        self._mns_hook = mns_hook
        self._fnf_hook = fnf_hook

    @property
    def mns_hook(self) -> MNSHook:
        if self._mns_hook is None:
            from airflow_provider_fnf.hooks.mns import MNSHook

            self._mns_hook = MNSHook(self.settings.mns_conn_id, body_encoding=self.settings.body_encoding)
        return self._mns_hook

    @property
    def acknowledger(self) -> MNSMessageAcknowledger:
        """Settles messages with this receiver's MNS hook (and so its body encoding)."""
        return MNSMessageAcknowledger(self.mns_hook)

    @property
    def fnf_hook(self) -> ServerlessWorkflowHook:
        if self._fnf_hook is None:
            from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook

            self._fnf_hook = ServerlessWorkflowHook(self.settings.fnf_conn_id)
        return self._fnf_hook

    # -- one batch -------------------------------------------------------------------------
    def receive_batch(
        self,
        wait_seconds: int | None,
        max_messages: int | None = None,
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> ReceiveResult:
        """Long-poll once and settle everything received. Raises the hook's errors for the
        receive call itself; errors settling one message are logged and never lose it."""
        s = self.settings
        batch = self.mns_hook.receive_messages(
            s.queue_name, max_messages or s.max_messages, wait_seconds=wait_seconds
        )
        result = ReceiveResult(received=len(batch))
        if batch and should_stop is not None and should_stop():
            # Our consumer went away during the long poll (trigger cancelled): hand the messages
            # back at once instead of leasing them to nobody.
            for raw in batch:
                message = parse_message(raw, queue_name=s.queue_name, mns_conn_id=s.mns_conn_id)
                if self.release(message, reason="its consumer stopped while it was being received"):
                    result.released.append(message["message_id"])
            return result
        failure: Exception | None = None
        for raw in batch:
            try:
                self._settle(raw, result)
            except Exception as error:  # a bug, e.g. in a user's filter: raised below, nothing lost
                log.exception(
                    "Could not settle message %s from MNS queue %s",
                    getattr(raw, "message_id", "?"),
                    s.queue_name,
                )
                failure = failure or error
        if failure is not None:
            # Hand nothing out of a batch that failed; what was leased becomes visible again now.
            for message in result.messages:
                if message.get("receipt_handle"):
                    self.release(message, reason="its batch could not be settled")
            raise failure
        if batch:
            log.info(
                "Received %d message(s) from MNS queue %s: %d to work on, %d released by the filter, "
                "%d poison, %d dropped",
                len(batch),
                s.queue_name,
                len(result.messages),
                len(result.released),
                len(result.poisoned),
                len(result.dropped),
            )
        return result

    def _settle(self, raw: Any, result: ReceiveResult) -> None:
        s = self.settings
        message = parse_message(
            raw,
            queue_name=s.queue_name,
            mns_conn_id=s.mns_conn_id,
            token_keys=s.token_keys,
            **s.settling_fields(),
        )
        mask_task_token_by_shape(message["task_token"])
        mid = message["message_id"]
        reason = poison_reason(
            message,
            token_keys=s.token_keys,
            require_task_token=s.require_task_token,
            decode_error=getattr(raw, "decode_error", None)
            if not isinstance(raw, Mapping)
            else raw.get("decode_error"),
        )
        if reason is not None:
            result.poisoned.append(mid)
            self.handle_poison(message, reason)
            return
        if s.message_filtering is not None and not message_matches(
            message, s.message_filtering, s.message_filtering_match_values
        ):
            self.release(message)
            result.released.append(mid)
            return
        # Judged after the filter: a message another consumer's filter is waiting for is not ours.
        reason = receive_count_reason(message, s.max_receive_count)
        if reason is not None:
            result.poisoned.append(mid)
            self.handle_poison(message, reason)
            return
        if s.delete_on_receipt:
            try:
                deleted = self.acknowledger.ack(message)
            except FnFProviderError as error:
                deleted = None
                log.warning(
                    "Could not delete message %s on receipt from MNS queue %s (%s)", mid, s.queue_name, error
                )
            if deleted != "deleted":
                # Not handed out now: it will be delivered again (or its newer delivery is handed out).
                result.dropped.append(mid)
                return
            log.info("Deleted message %s from MNS queue %s on receipt (delete_on_receipt)", mid, s.queue_name)
            message["receipt_handle"] = None
            result.messages.append(message)
            return
        if _receive_was_the_lease(raw, s.lease_seconds):
            # The queue's own VisibilityTimeout equals the lease: the receive already leased it,
            # so the ChangeMessageVisibility call (one per message, MNS has no batch form) is saved.
            log.debug("Message %s on MNS queue %s is leased by its receive", mid, s.queue_name)
            result.messages.append(message)
            return
        try:
            leased = self.acknowledger.lease(message, s.lease_seconds)
        except FnFProviderError as error:
            leased = None
            log.warning(
                "Could not set the %d s processing lease on message %s from MNS queue %s (%s)",
                s.lease_seconds,
                mid,
                s.queue_name,
                error,
            )
        if leased is None:
            # Not handing it out is safe: it becomes visible again by itself and is received
            # again; handing it out without a lease could start the same work twice.
            result.dropped.append(mid)
            return
        message["receipt_handle"] = leased[0]
        result.messages.append(message)

    # -- settling ----------------------------------------------------------------------------
    def release(self, message: Mapping[str, Any], reason: str = "it does not match the filter") -> bool:
        """Make a message visible again almost at once (see
        :meth:`~airflow_provider_fnf.acknowledgement.MNSMessageAcknowledger.release`). A release that
        fails loses nothing: the message becomes visible after its visibility timeout."""
        try:
            return self.acknowledger.release(message, reason) == "released"
        except FnFProviderError as error:
            log.warning(
                "Could not release message %s on MNS queue %s (%s): it becomes visible after its "
                "visibility timeout",
                message["message_id"],
                self.settings.queue_name,
                error,
            )
            return False

    def handle_poison(self, message: Mapping[str, Any], reason: str) -> PoisonOutcome:
        """Report (when a token can be read) and apply the poison policy. Returns what was done;
        ``kept`` when a step failed and the message was left for a later delivery."""
        s = self.settings
        mid = message["message_id"]
        policy = s.effective_poison_policy
        log.error(
            "Poison message %s on MNS queue %s (received %d times): %s; policy %s",
            mid,
            s.queue_name,
            message.get("dequeue_count", 0),
            reason,
            policy,
        )
        token = message.get("task_token") or salvage_task_token(message.get("raw_body", ""), s.token_keys)
        mask_task_token_by_shape(token)
        rejected: ServerlessWorkflowInvalidTaskTokenError | None = None
        if token and s.report_poison_failures:
            cause = f"Airflow could not use message {mid} from MNS queue {s.queue_name}: {reason}."
            try:
                self.fnf_hook.report_task_failed(token, s.poison_error_name, cause)
                log.info("Reported the task of poison message %s as failed (%s)", mid, s.poison_error_name)
            except ServerlessWorkflowTaskAlreadyCompletedError:
                log.info("The task of poison message %s was already completed", mid)
            except ServerlessWorkflowInvalidTaskTokenError as error:
                # No flow waits on a token the service rejects: retrying cannot help, so the
                # message goes on to its policy instead of coming back forever.
                rejected = error
            except FnFProviderError as error:
                log.warning(
                    "Could not report the task of poison message %s as failed (%s): the message is "
                    "kept and handled again on its next delivery",
                    mid,
                    error,
                )
                return "kept"
        try:
            settled = self.acknowledger.settle_poison(message, policy, s.dead_letter_queue_name)
        except FnFProviderError as error:
            log.warning(
                "Could not settle poison message %s of MNS queue %s by policy %s (%s): it is kept",
                mid,
                s.queue_name,
                policy,
                error,
            )
            return "kept"
        if rejected is not None:
            log_rejected_token(
                log, rejected, message_id=mid, queue_name=s.queue_name, policy=policy, settled=settled
            )
        return settled
