"""The emulator's identities: RAM roles from the command line, and which credentials it accepts
when (long-term pairs, fixed STS tokens, temporary credentials until they expire)."""

from __future__ import annotations

import pytest
from fnf_emulator.identities import Identities, IdentityRejected, RamRole, Rejection

ROLE = "acs:ram::1234567890123456:role/worker"


def test_a_role_from_the_command_line():
    role = RamRole.parse(
        f"{ROLE},external_id=ext-1,trust=key-a+key-b,max_session_duration=7200,session-seconds=3"
    )
    assert role == RamRole(
        ROLE,
        external_id="ext-1",
        trusted_access_key_ids=frozenset({"key-a", "key-b"}),
        max_session_duration=7200,
        session_seconds=3,
    )
    assert role.account_id == "1234567890123456" and role.role_id.isdigit()
    assert RamRole.parse(ROLE) == RamRole(ROLE)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("arn:aws:iam::1:role/x", "acs:ram::<account id>:role/<name>"),
        (f"{ROLE},colour=blue", "unknown option 'colour'"),
        (f"{ROLE},external_id", "is not name=value"),
        (f"{ROLE},session_seconds=soon", "whole number of seconds"),
        (f"{ROLE},session_seconds=0", "at least 1"),
        (f"{ROLE},max_session_duration=60", "900..43200"),
    ],
)
def test_a_bad_role_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=None) as info:
        RamRole.parse(text)
    assert says in str(info.value)


def rejection(identities: Identities, key: str, token: str | None, now: float) -> Rejection | None:
    try:
        identities.verify(key, token, now)
    except IdentityRejected as rejected:
        return rejected.reason
    return None


def test_temporary_credentials_are_accepted_with_their_token_until_they_expire():
    identities = Identities(
        {"long-term": "secret"}, {"fixed-token": "long-term"}, roles=[RamRole(ROLE, session_seconds=5)]
    )
    role = identities.role(ROLE.upper())  # ARNs are not case-sensitive
    assert role is not None
    issued = identities.issue(role, "session", 900, "long-term", now=100.0)
    assert issued.expiration == 105 and issued.access_key_id.startswith("STS.")
    assert (
        identities.verify(issued.access_key_id, issued.security_token, now=104.9) == issued.access_key_secret
    )
    assert (
        rejection(identities, issued.access_key_id, issued.security_token, 105.0)
        is Rejection.SECURITY_TOKEN_EXPIRED
    )
    assert rejection(identities, issued.access_key_id, None, 101.0) is Rejection.SECURITY_TOKEN_MISSING
    assert (
        rejection(identities, issued.access_key_id, "fixed-token", 101.0) is Rejection.SECURITY_TOKEN_INVALID
    )
    assert (
        rejection(identities, "long-term", issued.security_token, 101.0) is Rejection.SECURITY_TOKEN_INVALID
    )
    assert rejection(identities, "long-term", "fixed-token", 1e12) is None  # a fixed token never expires
    assert rejection(identities, "nobody", None, 101.0) is Rejection.UNKNOWN_ACCESS_KEY


def test_the_session_lifetime_override_and_the_reset():
    identities = Identities({"k": "s"}, session_seconds=7)
    identities.add_role(RamRole(ROLE))
    assert identities.issue(identities.role(ROLE), "s", 3600, "k", now=0.0).expiration == 7
    identities.reset()
    assert identities.role(ROLE) is None  # added, not configured
    assert len(identities.issued_credentials()) == 1  # issued credentials outlive a reset


def test_issued_credentials_survive_a_restart_with_a_data_directory(tmp_path):
    first = Identities({"k": "s"}, roles=[RamRole(ROLE)], data_dir=str(tmp_path))
    issued = first.issue(first.role(ROLE), "s", 900, "k")
    again = Identities({"k": "s"}, data_dir=str(tmp_path))
    assert again.verify(issued.access_key_id, issued.security_token) == issued.access_key_secret
    assert (tmp_path / "sts-credentials.json").stat().st_mode & 0o077 == 0
