"""The gate judgement shared by the pack and the helper: every record kind bounded in age by
default, no record from the future, a revoked key's records refused whatever they claim, a
rolled-back release cleared only by a newer approval, and emergencies asked for only in a
freeze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cutover_gates.config_schema import GateConfig
from cutover_gates.contract import (
    APPROVAL,
    EMERGENCY,
    ROLLBACK_DRILL,
    SECURITY_SIGNOFF,
    STAGE_EXIT,
    TRUSTED_KEYS_OF,
    Outcome,
    OutcomeUnreadable,
    Status,
)
from cutover_gates.gate import judge, judge_gate
from cutover_gates.keys import public_key_text
from cutover_gates.record import CLOCK_SKEW, Expected, RecordInvalid, make_record, sign
from cutover_gates.rules import gate_config
from hypothesis import given
from hypothesis import strategies as st

KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64
# What each kind is bounded by when its policy's config says nothing (the schema's defaults).
DEFAULT_BOUND = {
    APPROVAL: timedelta(hours=168),
    SECURITY_SIGNOFF: timedelta(hours=168),
    EMERGENCY: timedelta(hours=24),
    ROLLBACK_DRILL: timedelta(days=7),
    STAGE_EXIT: timedelta(days=7),
}
DETAILS = {SECURITY_SIGNOFF: {"scanner": "trivy", "findings": {"critical": 0}}}


def signed(kind: str, issued: datetime, valid: timedelta = timedelta(days=400)) -> Any:
    body = make_record(kind=kind, project="cutover", stack="prod", version="1.43.0",
                       digest=DIGEST, color="green", issued_at=issued, valid_for=valid,
                       details=DETAILS.get(kind, {}))  # fmt: skip
    return sign(body, KEY)


def config_of(kind: str, **given: Any) -> GateConfig:
    """The typed config of `kind`'s policy trusting KEY, as the pack reads it."""
    trusted = {"trustedKeys": [public_key_text(KEY.public_key())], **given}
    return gate_config({TRUSTED_KEYS_OF[kind]: trusted}, kind)


def judged(kind: str, document: Any, **given: Any) -> dict[str, Any]:
    expected = Expected(kind, "cutover", "prod", "1.43.0", DIGEST, "green")
    return judge(kind, document, expected, config_of(kind, **given), NOW)


@given(kind=st.sampled_from(sorted(DEFAULT_BOUND)), minutes=st.integers(0, 60 * 24 * 30))
def test_every_kind_is_bounded_in_age_by_default(kind: str, minutes: int) -> None:
    issued = NOW - timedelta(minutes=minutes)
    document = signed(kind, issued)
    if NOW - issued > DEFAULT_BOUND[kind]:
        with pytest.raises(RecordInvalid, match="older than the allowed"):
            judged(kind, document)
    else:
        assert judged(kind, document)["kind"] == kind


def test_the_emergency_bound_is_the_change_freeze_policys_max_age_hours() -> None:
    assert TRUSTED_KEYS_OF[EMERGENCY] == "change-freeze"
    two_days = signed(EMERGENCY, NOW - timedelta(hours=48))
    with pytest.raises(RecordInvalid, match="older than the allowed 24 hours"):
        judged(EMERGENCY, two_days)
    assert judged(EMERGENCY, two_days, maxAgeHours=72)["kind"] == EMERGENCY


@given(kind=st.sampled_from(sorted(DEFAULT_BOUND)), seconds=st.integers(-3600, 86400))
def test_a_record_from_the_future_counts_only_within_the_clock_skew(
    kind: str, seconds: int
) -> None:
    issued = NOW + timedelta(seconds=seconds)
    document = signed(kind, issued)
    if issued > NOW + CLOCK_SKEW:
        with pytest.raises(RecordInvalid, match="was issued in the future"):
            judged(kind, document)
    else:
        assert judged(kind, document)["kind"] == kind


@given(issued_ago=st.integers(0, 10_000), revoked_ago=st.integers(0, 10_000))
def test_a_key_revoked_by_now_signs_nothing_whatever_issue_time_it_claims(
    issued_ago: int, revoked_ago: int
) -> None:
    """Issued before the revocation or after it: once it has come, nothing of the key counts."""
    revoked = NOW - timedelta(minutes=revoked_ago)
    entry = {"algorithm": "ed25519", "publicKey": public_key_text(KEY.public_key()),
             "name": "chairman", "revoked": revoked.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    expected = Expected(APPROVAL, "cutover", "prod", "1.43.0", DIGEST, "green")
    document = signed(APPROVAL, NOW - timedelta(minutes=issued_ago))
    config = gate_config({"chairman-approval": {"trustedKeys": [entry], "maxAgeHours": 10**6}},
                         APPROVAL)  # fmt: skip
    with pytest.raises(RecordInvalid, match="which was revoked at"):
        judge(APPROVAL, document, expected, config, NOW)


ROLLED_AT = NOW - timedelta(hours=1)


def rollback_of(version: str, digest: str = DIGEST) -> Outcome:
    return Outcome("d-1", Status.ROLLED_BACK, "green", version, digest, ROLLED_AT.timestamp(),
                   "5xx rate 6%", "watchdog")  # fmt: skip


@given(minutes=st.integers(-300, 59))
def test_an_approval_must_be_newer_than_the_rollback_of_its_release(minutes: int) -> None:
    expected = Expected(APPROVAL, "cutover", "prod", "1.43.0", DIGEST, "green")
    config = config_of(APPROVAL)
    approval = signed(APPROVAL, ROLLED_AT + timedelta(minutes=minutes))
    problem = judge_gate(expected, [approval], config, NOW, rollback_of("1.43.0"))
    if minutes <= 0:
        assert problem is not None and "was rolled back on this stack at" in problem
        assert "(deployment d-1: 5xx rate 6%; watchdog)" in problem
    else:
        assert problem is None
    # another release's rollback, or none, asks nothing more of this one
    assert judge_gate(expected, [approval], config, NOW, rollback_of("1.42.0")) is None
    assert judge_gate(expected, [approval], config, NOW, None) is None


def test_an_approval_signed_in_the_second_of_the_rollback_counts_only_after_it() -> None:
    """An approval signed 0.3 s after a rollback, within the same second, is issued after it
    (the README's rehearsal signs one right after its rollback); one 0.3 s before is not."""
    expected = Expected(APPROVAL, "cutover", "prod", "1.43.0", DIGEST, "green")
    rolled = ROLLED_AT + timedelta(seconds=0.5)
    outcome = Outcome("d-1", Status.ROLLED_BACK, "green", "1.43.0", DIGEST, rolled.timestamp(),
                      "5xx rate 6%", "watchdog")  # fmt: skip
    after = signed(APPROVAL, rolled + timedelta(seconds=0.3))
    before = signed(APPROVAL, rolled - timedelta(seconds=0.3))
    assert judge_gate(expected, [after], config_of(APPROVAL), NOW, outcome) is None
    refused = judge_gate(expected, [before], config_of(APPROVAL), NOW, outcome)
    assert refused is not None and "was rolled back on this stack at" in refused


def test_an_outcome_that_cannot_be_read_fails_the_approval_closed() -> None:
    expected = Expected(APPROVAL, "cutover", "prod", "1.43.0", DIGEST, "green")
    config = config_of(APPROVAL)
    problem = judge_gate(expected, [signed(APPROVAL, NOW)], config, NOW,
                         OutcomeUnreadable("the stack's journal could not be read (timeout)"))  # fmt: skip
    assert problem is not None
    assert "cannot be cleared" in problem and "could not be read (timeout)" in problem


def test_an_emergency_is_asked_for_only_within_a_freeze_window() -> None:
    expected = Expected(EMERGENCY, "cutover", "prod", "1.43.0", DIGEST, "green")
    window = {"start": "2026-11-27T07:00:00Z", "end": "2026-11-27T09:00:00Z", "reason": "audit"}
    config = config_of(EMERGENCY, windows=[window])
    assert judge_gate(expected, [], config, NOW + timedelta(hours=2)) is None
    problem = judge_gate(expected, [], config, NOW)
    assert problem is not None
    assert problem.startswith("This update moves traffic during the change freeze audit")
    assert judge_gate(expected, [signed(EMERGENCY, NOW)], config, NOW) is None
