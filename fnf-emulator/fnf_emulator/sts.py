"""The Security Token Service (STS, API 2015-04-01) of the emulator: ``AssumeRole`` for the RAM
roles it was given (``--ram-role``), in the RPC wire format with signature V1, as Serverless
Workflow's API (:mod:`fnf_emulator.fnf.api`).

alibabacloud-credentials' ``RamRoleArnCredentialsProvider`` sends
``GET /?Action=AssumeRole&Version=2015-04-01&RoleArn=...&RoleSessionName=...&DurationSeconds=...``
[``&ExternalId=...&Policy=...``] with the common parameters, **over HTTPS only**: run the
emulator with ``--tls`` for it. The answer::

    {"RequestId": ..., "AssumedRoleUser": {"Arn": "<role arn>/<session>", "AssumedRoleId": "<id>:<session>"},
     "Credentials": {"AccessKeyId": "STS....", "AccessKeySecret": ..., "SecurityToken": ...,
                     "Expiration": "2026-12-01T10:00:00Z"}}

The credentials are accepted by MNS and Serverless Workflow until the expiration, and answered
as expired after it (:mod:`fnf_emulator.identities`). Errors (JSON ``Code``, ``Message``,
``RequestId``, ``HostId``, ``Recommend``): 404 ``EntityNotExist.Role`` for a role the emulator was
not given; 403 ``NoPermission`` when the role's trust does not name the caller or its
``ExternalId`` condition is not met (*unconfirmed*: the service answers both with this code; the
emulator's message says which); 400 ``InvalidParameter.RoleArn``, ``.RoleSessionName``,
``.DurationSeconds``, ``.ExternalId``, ``.PolicyGrammar`` and ``MissingRoleArn``,
``MissingRoleSessionName`` for bad arguments.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from fnf_emulator import limits
from fnf_emulator.core import Request, Response, ServiceError
from fnf_emulator.fnf import api
from fnf_emulator.identities import ROLE_ARN, Identities, RamRole

HOST_ID = "sts.emulator.local"
ROLE_SESSION_NAME = re.compile(r"[\w.@\-]+")
EXTERNAL_ID = re.compile(r"[\w=,.@:/\-]+")
RECOMMEND = "Check the role, its trust and the request's parameters (fnf-emulator --ram-role)."


class STSService:
    """AssumeRole over the RPC wire format; the roles and issued credentials live in ``identities``."""

    name = "sts"

    def __init__(self, identities: Identities) -> None:
        self.identities = identities

    # --- core.Service --------------------------------------------------------------------------
    def operation(self, request: Request) -> str:
        return dict(parse_qsl(request.query)).get("Action") or request.headers.get("x-acs-action") or "Unknown"

    def handle(self, request: Request) -> Response:
        rid = api.new_request_id()
        try:
            if request.path not in ("", "/"):
                raise ServiceError(404, "InvalidAction.NotFound", f"No API at path {request.path}.")
            params = api.params_of(request)
            caller = api.verify_signature(request, params, self.identities, time.time(), service="sts")
            version = params.get("Version")
            if version != limits.STS_API_VERSION:
                raise ServiceError(
                    400, "InvalidVersion", f"Version {version!r} is not supported; use {limits.STS_API_VERSION}."
                )
            action = params.get("Action", "")
            if action != "AssumeRole":
                raise ServiceError(400, "InvalidAction.NotFound", f"The action {action!r} is not supported.")
            body = self._assume_role(params, caller)
        except ServiceError as error:
            return self._error(error, rid)
        body["RequestId"] = rid
        return api.json_response(200, body, rid)

    def error_response(self, request: Request, error: ServiceError) -> Response:
        return self._error(error, api.new_request_id())

    def reset(self) -> None:
        """The roles and issued credentials are the emulator's identities; it resets them."""

    def close(self) -> None:
        pass

    # --- AssumeRole ------------------------------------------------------------------------------
    def _assume_role(self, params: dict[str, str], caller: str) -> dict[str, Any]:
        arn = params.get("RoleArn", "")
        if not arn:
            raise ServiceError(400, "MissingRoleArn", "RoleArn is mandatory for this action.")
        if not ROLE_ARN.fullmatch(arn):
            raise ServiceError(
                400,
                "InvalidParameter.RoleArn",
                f"The parameter RoleArn is wrongly formed: {arn!r} (acs:ram::<account id>:role/<name>).",
            )
        session_name = params.get("RoleSessionName", "")
        if not session_name:
            raise ServiceError(400, "MissingRoleSessionName", "RoleSessionName is mandatory for this action.")
        if not (
            limits.STS_MIN_ROLE_SESSION_NAME_CHARS <= len(session_name) <= limits.STS_MAX_ROLE_SESSION_NAME_CHARS
            and ROLE_SESSION_NAME.fullmatch(session_name)
        ):
            raise ServiceError(
                400,
                "InvalidParameter.RoleSessionName",
                f"The parameter RoleSessionName is wrongly formed: {limits.STS_MIN_ROLE_SESSION_NAME_CHARS}.."
                f"{limits.STS_MAX_ROLE_SESSION_NAME_CHARS} characters of letters, digits, '.', '@', '-' and '_'.",
            )
        role = self.identities.role(arn)
        if role is None:
            raise ServiceError(404, "EntityNotExist.Role", f"The role not exists: {arn}.")
        duration = self._duration(params, role)
        self._check_external_id(params.get("ExternalId"), role)
        self._check_policy(params.get("Policy"))
        if role.trusted_access_key_ids is not None and self._source_key(caller) not in role.trusted_access_key_ids:
            raise ServiceError(
                403,
                "NoPermission",
                f"You are not authorized to assume the role {role.arn}: its trust policy does not name "
                f"the caller (AccessKey {caller}).",
            )
        issued = self.identities.issue(role, session_name, duration, caller)
        expiration = datetime.fromtimestamp(issued.expiration, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "AssumedRoleUser": {
                "Arn": f"{role.arn}/{session_name}",
                "AssumedRoleId": f"{role.role_id}:{session_name}",
            },
            "Credentials": {
                "AccessKeyId": issued.access_key_id,
                "AccessKeySecret": issued.access_key_secret,
                "SecurityToken": issued.security_token,
                "Expiration": expiration,
            },
        }

    def _source_key(self, caller: str) -> str:
        """The AccessKey ID a trust list names: temporary credentials act for the key that got them."""
        issued = self.identities.issued(caller)
        return issued.source_access_key_id if issued is not None else caller

    @staticmethod
    def _duration(params: dict[str, str], role: RamRole) -> int:
        text = params.get("DurationSeconds") or str(limits.STS_DEFAULT_DURATION_SECONDS)
        try:
            duration = int(text)
        except ValueError:
            duration = -1
        if not limits.STS_MIN_DURATION_SECONDS <= duration <= role.max_session_duration:
            raise ServiceError(
                400,
                "InvalidParameter.DurationSeconds",
                f"The Min/Max value of DurationSeconds is {limits.STS_MIN_DURATION_SECONDS}/"
                f"{role.max_session_duration} seconds for role {role.arn}, got {text!r}.",
            )
        return duration

    @staticmethod
    def _check_external_id(external_id: str | None, role: RamRole) -> None:
        if external_id is not None and not (
            limits.STS_MIN_EXTERNAL_ID_CHARS <= len(external_id) <= limits.STS_MAX_EXTERNAL_ID_CHARS
            and EXTERNAL_ID.fullmatch(external_id)
        ):
            raise ServiceError(
                400,
                "InvalidParameter.ExternalId",
                f"The parameter ExternalId is wrongly formed: {limits.STS_MIN_EXTERNAL_ID_CHARS}.."
                f"{limits.STS_MAX_EXTERNAL_ID_CHARS} characters of letters, digits and =,.@:/-_.",
            )
        if role.external_id is not None and external_id != role.external_id:
            given = "does not match it" if external_id else "gives none"
            raise ServiceError(
                403,
                "NoPermission",
                f"You are not authorized to assume the role {role.arn}: its trust policy requires an "
                f"sts:ExternalId and the request {given}.",
            )

    @staticmethod
    def _check_policy(policy: str | None) -> None:
        if policy is None:
            return
        try:
            document = json.loads(policy)
        except ValueError:
            document = None
        if len(policy) > limits.STS_MAX_POLICY_CHARS or not isinstance(document, dict) or "Statement" not in document:
            raise ServiceError(
                400,
                "InvalidParameter.PolicyGrammar",
                f"The parameter Policy has not passed grammar check: a JSON policy document with a "
                f"Statement, at most {limits.STS_MAX_POLICY_CHARS} characters.",
            )

    @staticmethod
    def _error(error: ServiceError, request_id: str) -> Response:
        body = {
            "RequestId": request_id,
            "HostId": HOST_ID,
            "Code": error.code,
            "Message": error.message,
            "Recommend": RECOMMEND,
        }
        response = api.json_response(error.status, body, request_id)
        response.error_code = error.code
        return response
