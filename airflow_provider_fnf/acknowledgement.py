"""Settling a received MNS message: the provider's one acknowledgement contract.

Every part of the provider that settles a message (the receiver, the report operator, the
failure callbacks, the dispatcher's reconciliation) does it through :class:`MNSMessageAcknowledger`,
in dramatiq's vocabulary:

======================  ===================================================================
``ack``                 delete the message by its receipt handle: its work is accounted for
``nack``                dead-letter it: send the raw body, verbatim, to the dead-letter queue,
                        then delete it
``release``             make it visible again almost at once (visibility 1 s): not ours to work on
``lease``               make it invisible for a processing lease (visibility N s); the old
                        receipt handle stops working, the new one is returned
``settle_poison``       apply a poison policy: ``dead_letter`` (nack), ``delete`` (ack) or
                        ``leave`` (nothing: it comes back after its visibility timeout)
======================  ===================================================================

**A stale receipt handle** (MNS answers MessageNotExist or ReceiptHandleError) is decided here,
once: the message was deleted already, or its visibility ran out and it was received again, and
the newer delivery, which holds the only working handle, settles it. It is not an error for the
caller: the call returns ``"stale"`` (``lease`` returns None) and logs one warning. Every other
error (network, credentials, a missing queue) propagates as the hook raised it; the caller
decides, and nothing is lost: an unsettled message comes back after its visibility timeout.

A message is given as the parsed-message dict (:func:`airflow_provider_fnf.messages.parse_message`)
or any mapping with its ``message_id``, ``queue_name``, ``receipt_handle`` and, to dead-letter,
``raw_body``. A message deleted on receipt has no receipt handle: ``ack`` then has nothing to do
(``"no_receipt_handle"``) and ``nack`` still keeps the body in the dead-letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, get_args

from airflow_provider_fnf.exceptions import MNSReceiptHandleError
from airflow_provider_fnf.limits import MNS_MIN_VISIBILITY_TIMEOUT

if TYPE_CHECKING:
    from airflow_provider_fnf.hooks.mns import MNSHook

log = logging.getLogger(__name__)

PoisonPolicy = Literal["dead_letter", "delete", "leave"]
"""What happens to a message nobody can ever work on."""
POISON_POLICIES: tuple[PoisonPolicy, ...] = get_args(PoisonPolicy)

SettleOutcome = Literal["deleted", "dead_lettered", "left", "released", "stale", "no_receipt_handle"]
"""What settling a message did."""


def resolve_poison_policy(
    poison_policy: PoisonPolicy | None, dead_letter_queue_name: str | None
) -> PoisonPolicy:
    """``dead_letter`` when a dead-letter queue is named, else ``leave``, unless set explicitly."""
    if poison_policy is not None:
        return poison_policy
    return "dead_letter" if dead_letter_queue_name else "leave"


class MNSMessageAcknowledger:
    """Settles messages of one MNS connection (see the module docstring for the contract).

    :param mns_hook: the hook to call; the receiver passes its own, so that a dead-lettered body
        is sent with the body encoding it was received with.
    """

    def __init__(self, mns_hook: MNSHook) -> None:
        self.mns_hook = mns_hook

    @classmethod
    def for_connection(
        cls, mns_conn_id: str | None, body_encoding: str | None = None
    ) -> MNSMessageAcknowledger:
        """For a message received with connection ``mns_conn_id`` and ``body_encoding`` (a
        dead-lettered body is sent in the encoding it was received in)."""
        from airflow_provider_fnf.hooks.mns import BODY_ENCODINGS, MNSHook

        encoding = body_encoding if body_encoding in BODY_ENCODINGS else "raw"
        return cls(MNSHook(mns_conn_id or "mns_default", body_encoding=encoding))  # type: ignore[arg-type]

    def ack(self, message: Mapping[str, Any]) -> SettleOutcome:
        """Delete the message: its work is accounted for."""
        mid, queue, handle = _identity(message)
        if not handle:
            log.info("Message %s on MNS queue %s has no receipt handle (deleted on receipt)", mid, queue)
            return "no_receipt_handle"
        return self._delete(mid, queue, handle, done="deleted")

    def nack(self, message: Mapping[str, Any], dead_letter_queue_name: str) -> SettleOutcome:
        """Send the raw body, verbatim, to ``dead_letter_queue_name``, then delete the message.

        When the send fails, the error propagates and the message is not deleted. ``"stale"``
        means the body was sent but another delivery now holds the message: it may reach the
        dead-letter queue once more.
        """
        mid, queue, handle = _identity(message)
        dead_id = self.mns_hook.send_message(dead_letter_queue_name, str(message.get("raw_body") or ""))
        log.info(
            "Sent message %s of MNS queue %s to dead-letter queue %s as message %s",
            mid,
            queue,
            dead_letter_queue_name,
            dead_id,
        )
        if not handle:
            return "dead_lettered"
        return self._delete(mid, queue, handle, done="dead_lettered")

    def release(self, message: Mapping[str, Any], reason: str) -> SettleOutcome:
        """Make the message visible again almost at once: the service's minimum visibility, 1 s
        (the documented range of ChangeMessageVisibility starts at 1)."""
        mid, queue, handle = _identity(message)
        if not handle:
            return "no_receipt_handle"
        try:
            self.mns_hook.change_message_visibility(queue, handle, MNS_MIN_VISIBILITY_TIMEOUT)
        except MNSReceiptHandleError as error:
            return _stale(mid, queue, "released", error)
        log.info("Released message %s on MNS queue %s: %s", mid, queue, reason)
        return "released"

    def lease(self, message: Mapping[str, Any], seconds: int) -> tuple[str, int] | None:
        """Make the message invisible for ``seconds``; return its new receipt handle and next
        visible time (epoch ms), or None when the handle was stale (not ours to work on)."""
        mid, queue, handle = _identity(message)
        try:
            new_handle, next_visible = self.mns_hook.change_message_visibility(queue, handle or "", seconds)
        except MNSReceiptHandleError as error:
            _stale(mid, queue, "leased", error)
            return None
        log.debug("Leased message %s on MNS queue %s until %s", mid, queue, next_visible)
        return new_handle, next_visible

    def settle_poison(
        self, message: Mapping[str, Any], policy: PoisonPolicy, dead_letter_queue_name: str | None
    ) -> SettleOutcome:
        """Apply a poison policy: ``dead_letter`` (nack), ``delete`` (ack) or ``leave``."""
        if policy == "leave":
            mid, queue, _ = _identity(message)
            log.info("Left message %s on MNS queue %s (poison_policy 'leave')", mid, queue)
            return "left"
        if policy == "dead_letter":
            if not dead_letter_queue_name:
                raise ValueError(
                    f"poison_policy 'dead_letter' for queue {message['queue_name']!r} needs a dead-letter queue"
                )
            return self.nack(message, dead_letter_queue_name)
        return self.ack(message)

    def _delete(self, message_id: str, queue_name: str, handle: str, *, done: SettleOutcome) -> SettleOutcome:
        try:
            self.mns_hook.delete_message(queue_name, handle)
        except MNSReceiptHandleError as error:
            return _stale(message_id, queue_name, "deleted", error)
        log.info("Deleted message %s from MNS queue %s", message_id, queue_name)
        return done


def _identity(message: Mapping[str, Any]) -> tuple[str, str, str | None]:
    return str(message.get("message_id") or "?"), str(message["queue_name"]), message.get("receipt_handle")


def _stale(message_id: str, queue_name: str, what: str, error: MNSReceiptHandleError) -> SettleOutcome:
    log.warning(
        "Message %s on MNS queue %s was not %s: its receipt handle is stale (%s); it was received again "
        "since, and that delivery settles it, or it is gone already",
        message_id,
        queue_name,
        what,
        error.code or "stale",
    )
    return "stale"
