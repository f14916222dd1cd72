"""Gates that fail closed and stand up to an audit, judged by the real pack over the analyzer
protocol: a sign-off that names no findings, N of M approvers, revoked and expired keys,
ECDSA (KMS) keys and an algorithm swapped under a key id, change freezes and emergencies, and
the first deployment of a stack. None gets through; none crashes a judge."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cutover_gates.contract import Outcome, Status
from cutover_gates.record import make_record, sign

from cutover.outputs import parse_outputs
from cutover.preflight import check_gates
from cutover.preview.pack import PolicyPackProcess
from cutover.preview.program import ProgramRun, Resource
from tests.harness.program_runs import declare, prod_config
from tests.harness.records import (
    KEYS,
    PACK_CONFIG,
    EcdsaSigner,
    analyze,
    entry,
    only,
    record,
    release,
    with_records,
)

NOW = datetime.now(UTC)
P256 = EcdsaSigner(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def configured(pack: PolicyPackProcess) -> Iterator[Any]:
    """Configure the pack for one test; the shared config again after."""

    def configure(**policies: dict[str, Any]) -> None:
        pack.configure({**PACK_CONFIG, **policies})

    try:
        yield configure
    finally:
        pack.configure(PACK_CONFIG)


def test_a_signoff_that_names_no_findings_is_no_clean_scan(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    empty = record("security-signoff", details={"scanner": "trivy", "findings": {}})
    only(analyze(pack, with_records(flip, "security-signoff", [empty])), "security-signoff",
         "does not report its critical findings")  # fmt: skip
    configured(**{"security-signoff": {**PACK_CONFIG["security-signoff"],
                                       "maxFindings": {"critical": 0, "high": 5}}})  # fmt: skip
    partial = record("security-signoff", details={"scanner": "trivy", "findings": {"critical": 0}})
    only(analyze(pack, with_records(flip, "security-signoff", [partial])), "security-signoff",
         "does not report its high findings")  # fmt: skip


TWO_OF_THREE = {
    "trustedKeys": [entry("chairman"), entry("cfo"), entry("cto")],
    "required": 2,
}


def test_two_of_three_approvers_are_needed_and_one_signer_counts_once(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    configured(**{"chairman-approval": TWO_OF_THREE})
    one = [record("approval", key="chairman")]
    only(analyze(pack, with_records(flip, "approval", one)), "chairman-approval",
         "1 of 2 approval record(s) (chairman")  # fmt: skip
    twice = [record("approval", key="chairman"), record("approval", key="chairman",
                                                        issued=NOW - timedelta(minutes=1))]  # fmt: skip
    only(analyze(pack, with_records(flip, "approval", twice)), "chairman-approval",
         "one signer counts once")  # fmt: skip
    two = [record("approval", key="chairman"), record("approval", key="cfo")]
    assert analyze(pack, with_records(flip, "approval", two)) == []


def test_a_missing_signature_names_who_may_still_give_it(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    """Not "ask the chairman": the trusted keys that have not signed and may sign now, by name."""
    configured(**{"chairman-approval": TWO_OF_THREE})
    one = with_records(flip, "approval", [record("approval", key="chairman")])
    only(analyze(pack, one), "chairman-approval", f"1 more needed. Ask cfo ({_id('cfo')}) or "
         f"cto ({_id('cto')}) to sign with `cutover approve`.")  # fmt: skip
    revoked = _z(NOW - timedelta(hours=1))
    configured(**{"chairman-approval": {**TWO_OF_THREE, "trustedKeys": [
        entry("chairman"), entry("cfo"), entry("cto", revoked=revoked)]}})  # fmt: skip
    only(analyze(pack, one), "chairman-approval",
         f"1 more needed. Ask cfo ({_id('cfo')}) to sign with `cutover approve`.")  # fmt: skip


def test_a_rolled_back_release_needs_a_newer_approval_at_every_door(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    """Green's release was rolled back on this stack: the approval signed before the rollback
    is refused by the pack and by the helper's gates (`check_gates`, what shift, resume,
    promote and drill judge) in the same words; one signed after it passes both."""
    rolled_at = NOW - timedelta(minutes=30)
    outcome = Outcome("20261127T0800-green", Status.ROLLED_BACK, "green", *release("green"),
                      rolled_at.timestamp(), "5xx rate 6% against 0.5%", "watchdog")  # fmt: skip
    outputs = parse_outputs(flip.outputs, "the flip's outputs")
    before = record("approval", issued=rolled_at - timedelta(minutes=5))
    after = record("approval", issued=NOW - timedelta(minutes=5))
    for approval, refused in ((before, True), (after, False)):
        resources = _published(with_records(flip, "approval", [approval]), outcome)
        diagnostics = analyze(pack, resources)
        problems = check_gates(outputs, "green", ["approval"], PACK_CONFIG,
                               [(Path("approval.json"), approval)], {"green": outcome})  # fmt: skip
        if not refused:
            assert (diagnostics, problems) == ([], [])
            continue
        only(diagnostics, "chairman-approval", "was rolled back on this stack at")
        said = diagnostics[0].message.split("\n", 1)[1]  # after the policy's description
        assert "deployment 20261127T0800-green: 5xx rate 6% against 0.5%; watchdog" in said
        assert problems == [f"approval gate for prod/checkout: {said}"]


def _published(resources: list[Resource], outcome: Outcome) -> list[Resource]:
    """`resources` with the program's published latest outcome of `outcome`'s color."""
    name = f"/cutover/prod/gates/{outcome.color}/latest-deployment"
    for r in resources:
        if r.type == "aws:ssm/parameter:Parameter" and r.state["name"] == name:
            r.state["value"] = r.inputs["value"] = json.dumps(outcome.to_json())
    return resources


def test_a_revoked_key_signs_nothing_once_revoked_whatever_issue_time_it_claims(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    """The issue time is the signer's word: whoever holds a lost key back-dates a record to
    before the revocation. Once the revocation has come, no record of the key counts."""
    revoked = NOW - timedelta(hours=1)
    configured(**{"chairman-approval": {"trustedKeys": [entry("chairman", revoked=_z(revoked))]}})
    after = record("approval", issued=NOW - timedelta(minutes=5))
    back_dated = record("approval", issued=revoked - timedelta(minutes=5))
    for document in (after, back_dated):
        only(analyze(pack, with_records(flip, "approval", [document])), "chairman-approval",
             f"by key chairman ({_id('chairman')}), which was revoked at {_z(revoked)}")  # fmt: skip
    # a revocation still to come refuses only what claims to be issued from then on
    configured(**{"chairman-approval": {"trustedKeys": [
        entry("chairman", revoked=_z(NOW + timedelta(hours=1)))]}})  # fmt: skip
    assert analyze(pack, with_records(flip, "approval", [after])) == []


def test_a_key_listed_twice_is_refused_whatever_the_order(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    """Revoked under one name, trusted under another: which entry judges the key's records
    must never depend on their order, so the config itself is refused, naming both."""
    revoked = entry("chairman", revoked=_z(NOW - timedelta(hours=1)))
    alias = {**entry("chairman"), "name": "cto"}
    for keys in ([revoked, alias], [alias, revoked]):
        configured(**{"chairman-approval": {"trustedKeys": keys}})
        only(analyze(pack, with_records(flip, "approval", [record("approval")])),
             "chairman-approval", f"lists key {_id('chairman')} twice")  # fmt: skip


def test_a_key_outside_its_validity_is_refused(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    ended = NOW - timedelta(hours=2)
    configured(**{"chairman-approval": {"trustedKeys": [entry("chairman", notAfter=_z(ended)),
                                                        entry("cfo", notBefore=_z(ended))]}})  # fmt: skip
    only(analyze(pack, with_records(flip, "approval", [record("approval", key="chairman")])),
         "chairman-approval", f"which may sign only until {_z(ended)}")  # fmt: skip
    # rotation: the new key took over when the old one's window closed
    assert analyze(pack, with_records(flip, "approval", [record("approval", key="cfo")])) == []


def test_an_ecdsa_key_verifies_and_an_ed25519_signature_under_its_id_does_not(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    configured(**{"chairman-approval": {"trustedKeys": [P256.entry(name="chairman-kms")]}})
    signed = record("approval", key=P256)
    assert signed["record"]["algorithm"] == "ecdsa-p256-sha256"
    assert analyze(pack, with_records(flip, "approval", [signed])) == []
    swapped = copy.deepcopy(signed)
    swapped["record"]["algorithm"] = "ed25519"
    body = {k: v for k, v in swapped["record"].items() if k not in ("keyId", "algorithm")}
    resigned = sign(body, KEYS["rogue"])
    resigned["record"]["keyId"] = P256.key_id  # the trusted ECDSA key's id, an Ed25519 signature
    for forged in (swapped, resigned):
        only(analyze(pack, with_records(flip, "approval", [forged])), "chairman-approval",
             "re-signed under another algorithm?")  # fmt: skip


FREEZE = {
    "trustedKeys": [entry("chairman")],
    "windows": [
        {"start": (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "end": (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": "year end"},
    ],
}  # fmt: skip


def test_a_freeze_refuses_traffic_moves_without_an_emergency_for_that_release(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    configured(**{"change-freeze": FREEZE})
    only(analyze(pack, flip.resources), "change-freeze",
         "This update moves traffic during the change freeze year end")  # fmt: skip
    other = record("emergency", version="1.41.0", digest=release("blue")[1],
                   details={"reason": "INC-1"})  # fmt: skip
    resources = _add(flip, "emergency", [other])
    only(analyze(pack, resources), "change-freeze", "is for release version '1.41.0'")
    rogue = record("emergency", key="rogue", details={"reason": "INC-1"})
    only(analyze(pack, _add(flip, "emergency", [rogue])), "change-freeze",
         "which is not a trusted emergency key")  # fmt: skip
    mine = record("emergency", details={"reason": "INC-4711: payment outage"})
    assert analyze(pack, _add(flip, "emergency", [mine])) == []


def test_every_record_kind_is_bounded_in_age_by_default(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    """Without `maxAgeHours`, an approval signed 8 days ago (valid for 30) no longer counts,
    nor an emergency 30 hours old; the change freeze takes `maxAgeHours` for its records."""
    old = record("approval", issued=NOW - timedelta(days=8), valid=timedelta(days=30))
    only(analyze(pack, with_records(flip, "approval", [old])), "chairman-approval",
         "older than the allowed 7 days")  # fmt: skip
    configured(**{"change-freeze": FREEZE})
    stale = record("emergency", issued=NOW - timedelta(hours=30), valid=timedelta(days=3),
                   details={"reason": "INC-1"})  # fmt: skip
    only(analyze(pack, _add(flip, "emergency", [stale])), "change-freeze",
         "older than the allowed 24 hours")  # fmt: skip
    configured(**{"change-freeze": {**FREEZE, "maxAgeHours": 48}})
    assert analyze(pack, _add(flip, "emergency", [stale])) == []


def test_a_weekly_freeze_window_in_its_time_zone(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    from zoneinfo import ZoneInfo

    local = NOW.astimezone(ZoneInfo("Pacific/Auckland"))
    today = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    weekly = {"weekly": {"days": [today], "from": "00:00", "to": "24:00"},
              "timeZone": "Pacific/Auckland", "reason": "the whole of today"}  # fmt: skip
    configured(**{"change-freeze": {**FREEZE, "windows": [weekly]}})
    only(analyze(pack, flip.resources), "change-freeze", f"{today.capitalize()} 00:00-00:00")
    tomorrow = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(local.weekday() + 1) % 7]
    later = {**weekly, "weekly": {**weekly["weekly"], "days": [tomorrow], "from": "23:59"}}
    configured(**{"change-freeze": {**FREEZE, "windows": [later]}})
    assert analyze(pack, flip.resources) == []


def _add(run: ProgramRun, kind: str, documents: list[Any]) -> list[Resource]:
    """The run's resources plus `kind` records for green (as if listed in cutover:gateRecords)."""
    resources = copy.deepcopy(run.resources)
    template = next(r for r in resources if r.type == "aws:ssm/parameter:Parameter"
                    and "/green/approval/" in r.state["name"])  # fmt: skip
    for i, document in enumerate(documents):
        added = copy.deepcopy(template)
        added.urn = f"{template.urn}-{kind}-{i}"
        added.state["name"] = added.inputs["name"] = f"/cutover/prod/gates/green/{kind}/{i:016x}"
        added.state["value"] = added.inputs["value"] = json.dumps(document)
        resources.append(added)
    return resources


def test_forged_shapes_never_crash_a_judge(
    pack: PolicyPackProcess, flip: ProgramRun, configured: Any
) -> None:
    configured(**{"chairman-approval": TWO_OF_THREE})
    good = record("approval", key="chairman")
    shapes: list[Any] = [
        {**good, "record": {**good["record"], "algorithm": "rsa"}},
        {**good, "record": {**good["record"], "algorithm": 7}},
        {**good, "record": {**good["record"], "keyId": None}},
        {**good, "signature": "!!!"},
        {"record": "x", "signature": "y"},
        [],
        "text",
    ]
    for shape in shapes:
        diagnostics = analyze(pack, with_records(flip, "approval", [shape, good]))
        assert {d.policy for d in diagnostics} == {"chairman-approval"}, shape
        assert "1 of 2" in diagnostics[0].message, (shape, diagnostics[0].message)


def test_the_first_deployment_needs_approval_and_signoff_but_no_drill(
    pack: PolicyPackProcess, tmp_path: Any
) -> None:
    """A new stack's first traffic: nothing can be rolled back to, so no drill; the release
    that gets the traffic still needs its approval and sign-off."""
    paths = []
    for kind in ("approval", "security-signoff"):
        path = tmp_path / f"blue-{kind}.json"
        path.write_text(json.dumps(record(kind, color="blue")))
        paths.append(str(path))
    first = declare({**prod_config(), "cutover:gateRecords": paths})
    assert analyze(pack, first.resources) == []
    bare = declare(prod_config())
    diagnostics = analyze(pack, bare.resources)
    assert {d.policy for d in diagnostics} == {"chairman-approval", "security-signoff"}


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(name: str) -> str:
    from cutover_gates.keys import key_id

    return key_id(KEYS[name].public_key())


def test_make_record_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown record kind"):
        make_record(kind="blessing", project="p", stack="s", version="1", digest="d", color="blue",
                    issued_at=NOW, valid_for=timedelta(days=1))  # fmt: skip
