"""The policy pack, started as the engine starts it and driven over the analyzer gRPC protocol,
against the resources the program declares under mocks."""

from __future__ import annotations

import copy
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cutover.errors import ConfigError
from cutover.preview.pack import PolicyPackProcess
from cutover.preview.program import ProgramRun, Resource
from cutover.preview.unread import with_outcomes
from tests.harness.program_runs import ROOT, declare, previous_outputs, prod_config
from tests.harness.records import (
    PACK_CONFIG,
    analyze,
    declare_with_green_records,
    forged,
    only,
    record,
    release,
)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown-string sentinel


def with_record(run: ProgramRun, kind: str, document: Any, color: str = "green") -> list[Resource]:
    """The run's resources with the SSM parameter of one record replaced (None: removed)."""
    resources = copy.deepcopy(run.resources)
    name = f"/cutover/prod/gates/{color}/{kind}/"  # one parameter per signer's key id
    kept = []
    for r in resources:
        if r.type == "aws:ssm/parameter:Parameter" and r.state["name"].startswith(name):
            if document is None:
                continue
            r.state["value"] = r.inputs["value"] = json.dumps(document)
        kept.append(r)
    return kept


def changed(run: ProgramRun, typ: str, color: str, **props: Any) -> list[Resource]:
    resources = copy.deepcopy(run.resources)
    for r in resources:
        if r.type == typ and r.state.get("tags", {}).get("cutover:color") == color:
            r.state.update(props)
            r.inputs.update(props)
    return resources


def test_valid_production_flip_passes_every_policy(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    assert analyze(pack, flip.resources) == []


def test_a_journal_the_program_could_not_read_fails_the_approval_closed(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    """At `pulumi up`: whether green's release was rolled back since its approval is unknown,
    so the gate refuses (the offline preview names the fact instead: test_preview.py)."""
    unread = with_outcomes(flip.resources, "prod", {"unreadable": "NoCredentialsError: none"})
    only(analyze(pack, unread), "chairman-approval", "the stack's journal could not be read")


def test_pack_describes_its_policies_with_config_schemas(pack: PolicyPackProcess) -> None:
    name, _, policies = pack.info()
    assert name == "cutover-gates"
    assert [p.name for p in policies] == [
        "chairman-approval",
        "security-signoff",
        "rollback-tested",
        "change-freeze",
        "rollback-ready",
        "watchdog-active",
        "monitoring-active",
        "weights-valid",
        "zero-downtime-settings",
        "release-pinned",
        "probes-required",
        "deregistration-covers-requests",
        "keep-alive-outlasts-idle-timeout",
        "stop-outlasts-draining",
        "stickiness-within-rollback-window",
        "forward-only-rules",
        "healthy-before-weight",
        "warm-capacity",
    ]
    assert all(p.level == "mandatory" for p in policies)
    assert all("productionStacks" in p.schema["properties"] for p in policies)
    assert (ROOT / "policies" / "PulumiPolicy.yaml").read_text().count("version: ") == 1


def _edited(document: dict[str, Any]) -> dict[str, Any]:
    edited = copy.deepcopy(document)
    edited["record"]["expiresAt"] = "2099-01-01T00:00:00Z"
    return edited


APPROVAL_CASES = {
    "forged signature": (forged(record("approval")), "a signature that does not match the record"),
    "untrusted key": (record("approval", key="rogue"), "which is not a trusted approval key"),
    "expired": (
        record("approval", issued=datetime.now(UTC) - timedelta(days=3), valid=timedelta(days=1)),
        "expired at",
    ),
    "other stack": (record("approval", stack="staging"), "is for stack 'staging'"),
    "other digest": (record("approval", digest="sha256:" + "0" * 64), "is for release digest"),
    "other color": (
        record("approval", color="blue", version="1.42.0", digest=release("green")[1]),
        "is for color 'blue'; this update needs 'green'",
    ),
    "changed after signing": (
        _edited(record("approval")),
        "a signature that does not match the record",
    ),
    "old release replayed": (
        record("approval", version="1.41.0", digest=release("blue")[1]),
        "is for release version '1.41.0'; this update needs '1.42.0'",
    ),
    "missing": (None, "has no approval record. Ask the holder of key"),
}


@pytest.mark.parametrize("case", APPROVAL_CASES)
def test_chairman_approval_refuses(pack: PolicyPackProcess, flip: ProgramRun, case: str) -> None:
    document, phrase = APPROVAL_CASES[case]
    only(analyze(pack, with_record(flip, "approval", document)), "chairman-approval", phrase)


def test_approval_for_another_color_is_refused_even_in_the_right_slot(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    # a blue approval published where green's should be
    blue_record = record("approval", color="blue")
    only(
        analyze(pack, with_record(flip, "approval", blue_record)),
        "chairman-approval",
        "is for release version",
    )


def test_security_signoff_is_required(pack: PolicyPackProcess, flip: ProgramRun) -> None:
    only(
        analyze(pack, with_record(flip, "security-signoff", None)),
        "security-signoff",
        "has no security-signoff record",
    )


def test_critical_finding_is_refused(pack: PolicyPackProcess, flip: ProgramRun) -> None:
    signoff = record(
        "security-signoff", details={"scanner": "trivy", "findings": {"critical": 1, "high": 0}}
    )
    only(
        analyze(pack, with_record(flip, "security-signoff", signoff)),
        "security-signoff",
        "reports 1 critical (allowed 0) found by trivy",
    )


def test_signoff_from_the_chairman_key_is_not_a_security_signoff(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    signoff = record("security-signoff", key="chairman")
    only(
        analyze(pack, with_record(flip, "security-signoff", signoff)),
        "security-signoff",
        "not a trusted security-signoff key",
    )


def test_old_drill_is_refused(pack: PolicyPackProcess, flip: ProgramRun) -> None:
    drill = record(
        "rollback-drill", issued=datetime.now(UTC) - timedelta(days=10), valid=timedelta(days=30)
    )
    only(
        analyze(pack, with_record(flip, "rollback-drill", drill)),
        "rollback-tested",
        "older than the allowed 7 days",
    )


def test_scaling_down_the_old_color_in_the_flip_is_refused(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    resources = changed(flip, "aws:ecs/service:Service", "blue", desiredCount=2)
    only(analyze(pack, resources), "rollback-ready", "scales it to 2 of its capacity 6")


def test_deleting_the_old_color_in_the_flip_is_refused(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    resources = [
        r
        for r in flip.resources
        if not (r.type == "aws:ecs/service:Service" and r.state["tags"]["cutover:color"] == "blue")
    ]
    only(analyze(pack, resources), "rollback-ready", "removes its service")


def test_weight_to_a_zero_capacity_color_is_refused(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    resources = changed(flip, "aws:ecs/service:Service", "green", desiredCount=0)
    diagnostics = analyze(pack, resources)
    # green is also below its capacity while serving, which rollback-ready reports too
    assert {d.policy for d in diagnostics} == {"warm-capacity", "rollback-ready"}
    assert any(
        "green receives 100 of 100 weight, a share that needs 6" in d.message
        and "but runs 0" in d.message
        for d in diagnostics
        if d.policy == "warm-capacity"
    )


def test_missing_alarms_are_refused(pack: PolicyPackProcess, flip: ProgramRun) -> None:
    resources = [
        r
        for r in flip.resources
        if not (
            r.type == "aws:cloudwatch/metricAlarm:MetricAlarm"
            and r.state["tags"].get("cutover:color") == "green"
            and "latency" in r.name
        )
    ]
    only(analyze(pack, resources), "monitoring-active", "for TargetResponseTime")


def test_alarm_on_the_other_colors_target_group_does_not_count(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    resources = copy.deepcopy(flip.resources)
    blue_tg = next(
        r.state["arnSuffix"]
        for r in resources
        if r.type == "aws:lb/targetGroup:TargetGroup" and r.state["tags"]["cutover:color"] == "blue"
    )
    for r in resources:
        if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and r.name == (
            "checkout-green-unhealthy-hosts"
        ):
            r.state["dimensions"]["TargetGroup"] = blue_tg
    only(analyze(pack, resources), "monitoring-active", "for UnHealthyHostCount")


def test_moving_traffic_onto_a_cold_color_is_refused(
    tmp_path: Path, pack: PolicyPackProcess
) -> None:
    # green ran an older release before this update: it is deployed and flipped at once
    config = prod_config()
    config["cutover:activeColor"] = "green"
    run = declare_with_green_records(
        tmp_path,
        config,
        previous=previous_outputs(
            {"blue": 100, "green": 0}, 600, releases={"blue": "1.41.0", "green": "1.40.0"}
        ),
    )
    only(
        analyze(pack, run.resources),
        "weights-valid",
        "not already running release 1.42.0 at full capacity (6)",
    )


def test_unknown_weights_at_preview_fail_closed(pack: PolicyPackProcess, flip: ProgramRun) -> None:
    resources = copy.deepcopy(flip.resources)
    for r in resources:
        if r.type == "aws:lb/listener:Listener" and r.name == "checkout-https":
            r.state["defaultActions"][0]["forward"]["targetGroups"][1]["arn"] = UNKNOWN
    diagnostics = pack.analyze_stack(resources)
    gates = {"chairman-approval", "security-signoff", "rollback-tested", "weights-valid"}
    failed_closed = {d.policy for d in diagnostics if "Failing closed" in d.message}
    assert gates <= failed_closed
    assert all(d.mandatory for d in diagnostics if d.policy in gates)


def test_steady_update_without_traffic_move_needs_no_new_records(
    pack: PolicyPackProcess,
) -> None:
    # blue has served 1.41.0 since long ago; this update only changes alarm thresholds
    config = prod_config()
    config["cutover:alarms"]["p99LatencySeconds"] = 2
    run = declare(config, previous=previous_outputs({"blue": 100, "green": 0}, 6000))
    assert analyze(pack, run.resources) == []


def test_resource_policies_check_settings_and_pinning(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    service = next(r for r in flip.resources if r.type == "aws:ecs/service:Service")
    bad_service = copy.deepcopy(service)
    bad_service.inputs["deploymentMinimumHealthyPercent"] = 50
    only(pack.analyze(bad_service), "zero-downtime-settings", "drop to 50% healthy")

    alb = next(r for r in flip.resources if r.type == "aws:lb/loadBalancer:LoadBalancer")
    unprotected = copy.deepcopy(alb)
    unprotected.inputs["enableDeletionProtection"] = False
    only(pack.analyze(unprotected), "zero-downtime-settings", "Deletion protection is off")

    task = next(r for r in flip.resources if r.type == "aws:ecs/taskDefinition:TaskDefinition")
    tagged = copy.deepcopy(task)
    containers = json.loads(tagged.inputs["containerDefinitions"])
    containers[0]["image"] = "registry.example/checkout:1.42.0"
    tagged.inputs["containerDefinitions"] = json.dumps(containers)
    only(pack.analyze(tagged), "release-pinned", "is not pinned by digest")


def test_violations_are_advisory_off_production(flip: ProgramRun) -> None:
    with PolicyPackProcess(ROOT / "policies", stack="staging", project="cutover") as staging:
        staging.configure(PACK_CONFIG)
        diagnostics = staging.analyze_stack(with_record(flip, "approval", None))
    assert [d.policy for d in diagnostics] == ["chairman-approval"]
    assert diagnostics[0].level == "advisory"


def test_production_stacks_in_the_config_decide_mandatory_or_advisory(flip: ProgramRun) -> None:
    """`productionStacks` names the stacks whose violations block: `live`, listed there, is
    mandatory and `prod-sandbox`, left out, advisory, whatever the built-in patterns say."""
    missing = with_record(flip, "approval", None)
    for stack, patterns, level in (("live", ["live"], "mandatory"),
                                   ("prod-sandbox", ["prod"], "advisory")):  # fmt: skip
        config = {**PACK_CONFIG["chairman-approval"], "productionStacks": patterns}
        with PolicyPackProcess(ROOT / "policies", stack=stack, project="cutover") as process:
            process.configure({**PACK_CONFIG, "chairman-approval": config})
            diagnostics = process.analyze_stack(missing)
        assert [(d.policy, d.level) for d in diagnostics] == [("chairman-approval", level)], stack


def test_config_sets_enforcement_levels(pack: PolicyPackProcess, flip: ProgramRun) -> None:
    try:
        pack.configure(
            {
                **PACK_CONFIG,
                "chairman-approval": {
                    **PACK_CONFIG["chairman-approval"],
                    "enforcementLevel": "advisory",
                },
            }
        )
        diagnostics = pack.analyze_stack(with_record(flip, "approval", None))
        assert [(d.policy, d.level) for d in diagnostics] == [("chairman-approval", "advisory")]
    finally:
        pack.configure(PACK_CONFIG)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"chairman-approval": {"trustedKeys": "abc"}},
            "chairman-approval.trustedKeys: 'abc' is not of type 'array'",
        ),
        ({"chairman-approval": {"trustedKeys": ["not-a-key"]}}, "does not match"),
        (
            {"chairman-approval": {"trustedkeys": []}},
            "Additional properties are not allowed ('trustedkeys'",
        ),
        (
            {"security-signoff": {"maxFindings": {"critical": -1}}},
            "security-signoff.maxFindings.critical",
        ),
        (
            {"rollback-tested": {"maxAgeDays": "week"}},
            "rollback-tested.maxAgeDays: 'week' is not of type 'number'",
        ),
        ({"all": "strict"}, "all: got 'strict'"),
        ({"chairman-approvals": {}}, "unknown policy 'chairman-approvals'"),
    ],
)
def test_invalid_pack_config_is_refused(
    pack: PolicyPackProcess, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        pack.configure(config)
    assert message in str(error.value)
    pack.configure(PACK_CONFIG)


def test_the_shipped_pack_config_is_valid(pack: PolicyPackProcess) -> None:
    shipped = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    try:
        pack.configure(shipped)
    finally:
        pack.configure(PACK_CONFIG)


def test_a_listener_that_is_not_a_blue_green_split_fails_every_gate_closed(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    resources = copy.deepcopy(flip.resources)
    for r in resources:
        if r.type == "aws:lb/listener:Listener" and r.name == "checkout-https":
            r.state["defaultActions"][0]["forward"]["targetGroups"].pop()
    diagnostics = pack.analyze_stack(resources)
    assert {"chairman-approval", "security-signoff", "rollback-tested", "weights-valid"} <= {
        d.policy for d in diagnostics
    }
    weights = next(d for d in diagnostics if d.policy == "weights-valid")
    assert "forwards to ['blue']; expected blue and green" in weights.message


def test_malformed_records_are_violations_of_their_own_gate(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    """Never a failed RPC, never "see weights-valid": the gate names what is wrong."""
    signoff = record(
        "security-signoff", details={"scanner": "trivy", "findings": {"critical": "none"}}
    )
    only(
        analyze(pack, with_record(flip, "security-signoff", signoff)),
        "security-signoff",
        "has field details.findings.critical 'none'; expected a whole number",
    )
    resources = with_record(flip, "approval", record("approval"))
    for r in resources:
        if r.type == "aws:ssm/parameter:Parameter" and "/green/approval/" in r.state["name"]:
            doubled = r.state["value"].replace('"color":', '"color": "blue", "color":', 1)
            r.state["value"] = r.inputs["value"] = doubled
    only(analyze(pack, resources), "chairman-approval", "is ambiguous JSON (duplicate key 'color')")


WATCHDOG_CASES = {
    "no watchdog at all": (
        lambda r: (
            r.state.get("tags", {}).get("cutover:role") == "watchdog"
            or r.type == "aws:cloudwatch/eventTarget:EventTarget"
        ),
        None,
        "lacks an enabled schedule, a schedule target on the watchdog function, an alarm",
    ),
    "schedule disabled": (
        lambda r: r.type == "aws:cloudwatch/eventRule:EventRule",
        {"state": "DISABLED"},
        "lacks an enabled schedule",
    ),
    "target elsewhere": (
        lambda r: r.type == "aws:cloudwatch/eventTarget:EventTarget",
        {"arn": "arn:aws:lambda:eu-west-1:123456789012:function:other"},
        "lacks a schedule target on the watchdog function",
    ),
    "alarm without actions": (
        lambda r: (
            r.type == "aws:cloudwatch/metricAlarm:MetricAlarm"
            and r.state["tags"].get("cutover:role") == "watchdog"
        ),
        {"alarmActions": []},
        "lacks an alarm with actions on the watchdog's errors",
    ),
}


@pytest.mark.parametrize("case", WATCHDOG_CASES)
def test_moving_traffic_without_a_running_watchdog_is_refused(
    pack: PolicyPackProcess, flip: ProgramRun, case: str
) -> None:
    pick, change, phrase = WATCHDOG_CASES[case]
    resources = []
    for r in copy.deepcopy(flip.resources):
        if pick(r):
            if change is None:
                continue
            r.state.update(change)
            r.inputs.update(change)
        resources.append(r)
    only(analyze(pack, resources), "watchdog-active", phrase)


def test_the_pack_starts_as_the_engines_shim_starts_it(pack: PolicyPackProcess) -> None:
    """`<virtualenv>/bin/python -u -m pulumi.policy <engine> .` in the pack's folder, the
    virtualenv named by PulumiPolicy.yaml's runtime options, as pulumi-analyzer-policy-python."""
    pack_dir = ROOT / "policies"
    assert pack.command == [
        str((pack_dir / "venv").resolve() / "bin" / "python"),
        "-u",
        "-m",
        "pulumi.policy",
        "127.0.0.1:0",
        ".",
    ]
    assert pack.command[0] != sys.executable  # the pack's own environment, not the helper's
    _, _, policies = pack.info()
    assert len(policies) == 18
    for policy in policies:
        assert policy.display_name and policy.remediation, policy.name
        assert policy.severity in ("low", "medium", "high", "critical"), policy.name
        assert "cutover" in policy.tags
    by_name = {p.name: p for p in policies}
    assert by_name["chairman-approval"].severity == "critical"
    assert "cutover approve" in by_name["chairman-approval"].remediation
    # each description is written once, as its check's docstring, whole
    assert by_name["probes-required"].description == (
        "Every container of a Deployment declares a readiness and a liveness probe."
    )
    assert by_name["chairman-approval"].description.startswith("Every color whose share")
    assert by_name["chairman-approval"].description.endswith("(from its journal).")
    assert all("\n" not in p.description and "  " not in p.description for p in policies)


def test_a_pack_without_its_environment_fails_as_the_shim_says(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", copy, ignore=shutil.ignore_patterns("venv"))
    with pytest.raises(ConfigError, match="is not a virtual environment; create it"):
        PolicyPackProcess(copy, stack="prod", project="cutover")


def test_gate_violations_name_the_production_listener(
    pack: PolicyPackProcess, flip: ProgramRun
) -> None:
    listener = next(
        r.urn
        for r in flip.resources
        if r.type == "aws:lb/listener:Listener"
        and r.state["tags"].get("cutover:role") == "production"
    )
    diagnostics = pack.analyze_stack(with_record(flip, "approval", None))
    assert diagnostics and {d.urn for d in diagnostics} == {listener}
