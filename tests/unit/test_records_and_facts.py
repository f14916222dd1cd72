"""Gate records, the rollback window, the pack's facts and the helper's policy: pure logic."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cutover_gates.contract import METRICS_NAMESPACE, record_parameter
from cutover_gates.facts import Res, collect
from cutover_gates.keys import parse_trusted_keys, public_key_text
from cutover_gates.record import (
    Expected,
    RecordInvalid,
    canonical,
    make_record,
    sign,
    verify,
)
from cutover_gates.rollback_window import TrafficState, keeps_full_capacity, next_traffic_state
from hypothesis import given
from hypothesis import strategies as st

from cutover.routers.gateway import weight_patch
from cutover_components.helper_permissions import helper_policy

KEY = Ed25519PrivateKey.generate()
TRUSTED = parse_trusted_keys([public_key_text(KEY.public_key())])
NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64
EXPECTED = Expected("approval", "cutover", "prod", "1.43.0", DIGEST, "green")


def body(**changes: Any) -> dict[str, Any]:
    made = make_record(
        kind="approval",
        project="cutover",
        stack="prod",
        version="1.43.0",
        digest=DIGEST,
        color="green",
        issued_at=NOW - timedelta(hours=1),
        valid_for=timedelta(days=1),
    )
    made.update(changes)
    return made


def test_a_signed_record_verifies_and_returns_its_body() -> None:
    assert verify(sign(body(), KEY), TRUSTED, EXPECTED, NOW)["color"] == "green"


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"project": "other"}, "is for project 'other'"),
        ({"stack": "staging"}, "is for stack 'staging'"),
        ({"release": {"version": "1.42.0", "digest": DIGEST}}, "is for release version '1.42.0'"),
        (
            {"release": {"version": "1.43.0", "digest": "sha256:" + "c" * 64}},
            "is for release digest",
        ),
        ({"color": "blue"}, "is for color 'blue'"),
        ({"kind": "security-signoff"}, "is a 'security-signoff' record"),
    ],
)
def test_every_field_of_the_binding_is_checked(changes: dict[str, Any], phrase: str) -> None:
    with pytest.raises(RecordInvalid, match=phrase):
        verify(sign(body(**changes), KEY), TRUSTED, EXPECTED, NOW)


def test_a_record_changed_after_signing_is_refused() -> None:
    document = sign(body(), KEY)
    document["record"]["expiresAt"] = "2099-01-01T00:00:00Z"
    with pytest.raises(RecordInvalid, match="does not match the record"):
        verify(document, TRUSTED, EXPECTED, NOW)


def test_an_untrusted_signer_expiry_and_age_are_refused() -> None:
    rogue = Ed25519PrivateKey.generate()
    with pytest.raises(RecordInvalid, match="not a trusted approval key"):
        verify(sign(body(), rogue), TRUSTED, EXPECTED, NOW)
    with pytest.raises(RecordInvalid, match="expired at"):
        verify(sign(body(), KEY), TRUSTED, EXPECTED, NOW + timedelta(days=2))
    with pytest.raises(RecordInvalid, match="older than the allowed"):
        verify(sign(body(), KEY), TRUSTED, EXPECTED, NOW, max_age=timedelta(minutes=30))
    with pytest.raises(RecordInvalid, match="issued in the future"):
        verify(sign(body(), KEY), TRUSTED, EXPECTED, NOW - timedelta(hours=2))


@given(
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=5)
)
def test_canonical_json_ignores_key_order(value: dict[str, Any]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert canonical(value) == canonical(reordered)
    assert b" " not in canonical({"a": 1, "b": [1, 2]})


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(blue: int, green: int, minutes_ago: int) -> TrafficState:
    return TrafficState({"blue": blue, "green": green}, {}, {}, T0 - timedelta(minutes=minutes_ago))


@pytest.mark.parametrize(
    ("color", "weights", "previous", "keeps"),
    [
        ("blue", {"blue": 10, "green": 90}, state(0, 100, 500), True),  # receives traffic
        ("blue", {"blue": 0, "green": 100}, None, True),  # nothing known: fail safe
        ("blue", {"blue": 0, "green": 100}, state(100, 0, 5), True),  # the flip itself
        ("blue", {"blue": 0, "green": 100}, state(0, 100, 30), True),  # inside the window
        ("blue", {"blue": 0, "green": 100}, state(0, 100, 61), False),  # after the window
    ],
)
def test_keeps_full_capacity(
    color: str, weights: dict[str, int], previous: TrafficState | None, keeps: bool
) -> None:
    assert keeps_full_capacity(color, weights, previous, 60, T0) is keeps


def test_next_traffic_state_moves_its_time_only_when_weights_move() -> None:
    before = state(0, 100, 30)
    same = next_traffic_state(before, {"blue": 0, "green": 100}, {}, {}, T0)
    moved = next_traffic_state(before, {"blue": 50, "green": 50}, {}, {}, T0)
    assert same.changed_at == before.changed_at and moved.changed_at == T0


def listener(groups: list[dict[str, Any]]) -> Res:
    return Res(
        "aws:lb/listener:Listener",
        "urn:pulumi:prod::cutover::aws:lb/listener:Listener::prod",
        {
            "tags": {"cutover:role": "production"},
            "defaultActions": [{"type": "forward", "forward": {"targetGroups": groups}}],
        },
    )


def target_group(color: str) -> Res:
    return Res(
        "aws:lb/targetGroup:TargetGroup",
        f"urn:pulumi:prod::cutover::aws:lb/targetGroup:TargetGroup::{color}",
        {"arn": f"arn:{color}", "tags": {"cutover:color": color, "cutover:release": "1.0.0"}},
    )


def test_facts_collect_weights_records_and_stack_from_resources() -> None:
    record = Res(
        "aws:ssm/parameter:Parameter",
        "urn:pulumi:prod::cutover::aws:ssm/parameter:Parameter::r",
        {"name": record_parameter("prod", "green", "approval"), "value": '{"record": {}}'},
    )
    facts = collect(
        [
            listener([{"arn": "arn:blue", "weight": 10}, {"arn": "arn:green", "weight": 90}]),
            target_group("blue"),
            target_group("green"),
            record,
        ]
    )
    assert (facts.stack, facts.project) == ("prod", "cutover")
    assert facts.weights() == {"blue": 10, "green": 90}
    assert facts.records[("green", "approval")] == [{"record": {}}]
    assert facts.colors["green"].release() == "1.0.0"


def test_facts_refuse_a_listener_forwarding_elsewhere() -> None:
    facts = collect(
        [
            listener([{"arn": "arn:other", "weight": 100}]),
            target_group("blue"),
            target_group("green"),
        ]
    )
    with pytest.raises(ValueError, match="arn:other"):
        facts.weights()


def test_the_gateway_patch_tests_each_name_before_writing_its_weight() -> None:
    refs = [{"name": "checkout-blue", "weight": 30}, {"name": "checkout-green", "weight": 70}]
    assert weight_patch(refs) == [
        {"op": "test", "path": "/spec/rules/0/backendRefs/0/name", "value": "checkout-blue"},
        {"op": "add", "path": "/spec/rules/0/backendRefs/0/weight", "value": 30},
        {"op": "test", "path": "/spec/rules/0/backendRefs/1/name", "value": "checkout-green"},
        {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 70},
    ]


def test_the_helper_policy_scopes_writes_and_holds_metrics_to_one_namespace() -> None:
    document = helper_policy("arn:listener", ["arn:alarm"], "arn:table", ["arn:svc"], "arn:topic")
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["MoveTraffic"]["Resource"] == ["arn:listener"]
    assert statements["Journal"]["Resource"] == ["arn:table"]
    assert statements["ScaleColors"]["Resource"] == ["arn:svc"]
    wildcard = {sid for sid, s in statements.items() if s["Resource"] == ["*"]}
    assert wildcard == {"ReadLoadBalancer", "Metrics"}
    assert (
        statements["Metrics"]["Condition"]["StringEquals"]["cloudwatch:namespace"]
        == METRICS_NAMESPACE
    )
    without_ecs = helper_policy("arn:l", [], "arn:t", [], "arn:s")
    assert "ScaleColors" not in {s["Sid"] for s in without_ecs["Statement"]}
    assert copy.deepcopy(document) == document
