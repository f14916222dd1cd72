"""`cutover exit-gates` against moto: each gate passes with its evidence and fails when that
evidence is removed; with --key it signs a stage-exit record `records verify` accepts."""

from __future__ import annotations

import json

import pytest

from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import running

FAST = ["--bake", "0.3s", "--interval", "0.05s"]


@pytest.fixture
def shifted(aws: AwsStack) -> AwsStack:
    """A successful shift to green, as the stage leaves production."""
    result = aws.cutover(*aws.args("shift", "--to", "green", *aws.gate_args(), "--steps", "100",
                                   *FAST))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Exit gates of prod/checkout:" in result.stdout  # judged at the end of the shift
    assert "PASS  deployment successful" in result.stdout
    return aws


def exit_gates(aws: AwsStack, *extra: str) -> tuple[int, dict[str, dict]]:
    result = aws.cutover(*aws.args("exit-gates", *aws.gate_args(), "--output", "json", *extra))
    assert result.returncode in (0, 1), result.stderr
    (service,) = json.loads(result.stdout)["services"]
    return result.returncode, {g["gate"]: g for g in service["gates"]}


def test_all_three_gates_hold_after_a_shift_and_a_signed_record_is_verified(
    shifted: AwsStack,
) -> None:
    result = shifted.cutover(
        *shifted.args("exit-gates", *shifted.gate_args(), "--key", str(shifted.keys / "deploy.key"))
    )
    assert result.returncode == 0, result.stderr
    assert "PASS  monitoring active: 6 alarms with actions, none in ALARM; dashboard" in (
        result.stdout
    )
    assert "PASS  rollback tested: a valid rollback-drill record for green" in result.stdout
    (record,) = shifted.records.glob("*-stage-exit.json")
    body = json.loads(record.read_text())["record"]
    assert body["kind"] == "stage-exit" and body["color"] == "green"
    assert body["details"]["passed"] is True
    assert [g["gate"] for g in body["details"]["gates"]] == [
        "deployment successful",
        "monitoring active",
        "rollback tested",
    ]
    verified = shifted.cutover(
        "records", "verify", str(record), "--gates-config", str(shifted.gates_config),
        "--outputs", str(shifted.outputs["checkout"]),
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.startswith(f"valid   {record}: stage-exit for prod green")
    record.write_text(record.read_text().replace('"passed": true', '"passed": false', 1))
    forged = shifted.cutover(
        "records", "verify", str(record), "--gates-config", str(shifted.gates_config)
    )
    assert forged.returncode == 2 and "signature that does not match" in forged.stdout


def test_deployment_successful_fails_when_the_routing_no_longer_serves_what_it_left(
    shifted: AwsStack,
) -> None:
    shifted.set_weights({"blue": 100, "green": 0})
    code, gates = exit_gates(shifted)
    assert code == 1
    assert not gates["deployment successful"]["passed"]
    assert (
        "serves blue 100 / green 0, not the blue 0 / green 100 it left"
        in (gates["deployment successful"]["evidence"])
    )
    assert gates["monitoring active"]["passed"] and gates["rollback tested"]["passed"]


def test_deployment_successful_fails_after_a_rolled_back_shift(aws: AwsStack) -> None:
    process = aws.spawn(*aws.args("shift", "--to", "green", *aws.gate_args(), "--steps", "50,100",
                                  "--bake", "30s", "--interval", "0.05s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="the first step")
        aws.alarm(aws.data["checkout"]["alarmNames"]["green"][0])
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    code, gates = exit_gates(aws)
    assert code == 1
    assert (
        ": rolled-back (guard failed: alarms: in ALARM"
        in (gates["deployment successful"]["evidence"])
    )


@pytest.mark.parametrize("removed", ["alarm", "dashboard", "schedule"])
def test_monitoring_active_fails_when_a_monitor_is_gone(shifted: AwsStack, removed: str) -> None:
    data = shifted.data["checkout"]
    cloudwatch = shifted.client("cloudwatch")
    if removed == "alarm":
        shifted.alarm(data["alarmNames"]["blue"][0])
        expected = f"alarm {data['alarmNames']['blue'][0]} is in ALARM"
    elif removed == "dashboard":
        cloudwatch.delete_dashboards(DashboardNames=[data["dashboard"]])
        expected = f"dashboard {data['dashboard']} does not exist"
    else:
        shifted.client("events").disable_rule(Name=data["watchdog"]["schedule"])
        expected = f"the watchdog's schedule {data['watchdog']['schedule']} is DISABLED"
    try:
        code, gates = exit_gates(shifted)
    finally:  # the session's stack is shared: put the monitor back
        if removed == "dashboard":
            cloudwatch.put_dashboard(DashboardName=data["dashboard"], DashboardBody="{}")
        elif removed == "schedule":
            shifted.client("events").enable_rule(Name=data["watchdog"]["schedule"])
    assert code == 1
    assert not gates["monitoring active"]["passed"]
    assert expected in gates["monitoring active"]["evidence"]
    assert gates["deployment successful"]["passed"]


def test_rollback_tested_fails_without_a_drill_record_for_the_serving_release(
    shifted: AwsStack,
) -> None:
    drill = shifted.records / "green-drill.json"
    kept = drill.read_bytes()
    drill.unlink()
    try:
        code, gates = exit_gates(shifted)
    finally:
        drill.write_bytes(kept)
    assert code == 1
    assert not gates["rollback tested"]["passed"]
    assert (
        "rollback-drill gate for prod/checkout: green release"
        in (gates["rollback tested"]["evidence"])
    )
    assert "has no rollback-drill record" in gates["rollback tested"]["evidence"]


def test_the_report_has_an_exit_gates_table(shifted: AwsStack) -> None:
    out = shifted.tmp / "reports"
    result = shifted.cutover(*shifted.args("report", "--out", str(out), *shifted.gate_args()))
    assert result.returncode == 0, result.stderr
    (markdown,) = out.glob("*.md")
    text = markdown.read_text()
    assert "## Exit gates" in text
    assert "| prod/checkout | deployment successful | pass |" in text
    assert "| prod/checkout | rollback tested | pass |" in text


def test_a_verification_cut_short_by_promote_full_is_not_a_successful_deployment(
    aws: AwsStack,
) -> None:
    process = aws.spawn(*aws.args("shift", "--to", "green", *aws.gate_args(), "--steps", "100",
                                  *FAST, "--verify-for", "60s"))  # fmt: skip
    aws.wait_for(
        lambda: any(e["type"] == "verifying" for d in aws.deployments() for e in d["events"]),
        what="the verification at 100%",
    )
    promoted = aws.cutover(*aws.args("promote", "--full"))
    assert promoted.returncode == 0, promoted.stderr
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Verification cut short by `cutover promote --full`." in out
    code, gates = exit_gates(aws)
    assert code == 1
    assert (
        "not verified at 100% (the stack asks 0s; --verify-for was 60s, not completed)"
        in (gates["deployment successful"]["evidence"])
    )
