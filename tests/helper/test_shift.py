"""The `cutover` helper against moto's server: real boto3 over HTTP, the CLI as a process."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import running
from tests.harness.health import health_server

FAST = ["--bake", "0.3s", "--interval", "0.05s"]


def shift(aws: AwsStack, *extra: str, to: str = "green") -> list[str]:
    return aws.args("shift", "--to", to, *aws.gate_args(), *extra)


def test_full_shift_moves_traffic_in_steps_and_records_it(aws: AwsStack) -> None:
    result = aws.cutover(
        *shift(
            aws, "--steps", "10,50,100", *FAST, "--stack-config", str(aws.tmp / "Pulumi.prod.yaml")
        )
    )
    assert result.returncode == 0, result.stderr
    assert aws.served() == {"blue": 0, "green": 100}
    (doc,) = aws.deployments()
    assert doc["status"] == "succeeded"
    steps = [e["weights"] for e in doc["events"] if e["type"] == "step"]
    assert steps == [
        {"green": 10, "blue": 90},
        {"green": 50, "blue": 50},
        {"green": 100, "blue": 0},
    ]
    # every step's intent is journaled before it is written
    kinds = [e["type"] for e in doc["events"]]
    assert kinds.index("step-intent") < kinds.index("step")
    text = (aws.tmp / "Pulumi.prod.yaml").read_text()
    assert "  cutover:activeColor: green\n" in text and "  cutover:trafficPercent: 100\n" in text
    metrics = aws.client("cloudwatch").list_metrics(Namespace="Cutover")["Metrics"]
    assert {"DeploymentSucceeded", "ShiftSeconds", "DowntimeSeconds"} <= {
        m["MetricName"] for m in metrics
    }


@pytest.mark.parametrize("step", [0, 1, 2])
def test_alarm_at_any_step_rolls_back_to_the_exact_split_it_found(aws: AwsStack, step: int) -> None:
    aws.set_weights({"blue": 70, "green": 30}, sticky=True)
    before = aws.forward_config()
    steps = [{"green": 40, "blue": 60}, {"green": 70, "blue": 30}, {"green": 100, "blue": 0}]
    process = aws.spawn(*shift(aws, "--steps", "40,70,100", "--bake", "1s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == steps[step], what=f"step {step}")
        aws.alarm(aws.data["checkout"]["alarmNames"]["green"][0])
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert aws.forward_config() == before
    (doc,) = aws.deployments()
    assert doc["status"] == "rolled-back"
    assert "in ALARM: checkout-prod-green-5xx-rate" in doc["failure"]["detail"]
    assert doc["timings"]["restoreVerified"] is True
    events = [e["event"] for e in aws.topic_messages() if e["deployment"] == doc["id"]]
    assert events == ["started", *["step"] * (step + 1), "rolled-back", "finished"]


@pytest.mark.parametrize("step", [0, 1, 2])
def test_sigkill_at_any_step_then_rollback_restores_the_snapshot(aws: AwsStack, step: int) -> None:
    aws.set_weights({"blue": 80, "green": 20})
    before = aws.forward_config()
    steps = [{"green": 50, "blue": 50}, {"green": 75, "blue": 25}, {"green": 100, "blue": 0}]
    process = aws.spawn(*shift(aws, "--steps", "50,75,100", "--bake", "1s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == steps[step], what=f"step {step}")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    status = aws.cutover(*aws.args("status", "--output", "json"))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["deployment"]["status"] == "interrupted"
    result = aws.cutover(*aws.args("rollback"))
    assert result.returncode == 0, result.stderr
    assert aws.forward_config() == before
    assert aws.deployments()[-1]["status"] == "rolled-back"


def test_second_shift_on_the_same_listener_exits_3_naming_the_holder(aws: AwsStack) -> None:
    first = aws.spawn(*shift(aws, "--steps", "10,100", "--mode", "manual", "--interval", "0.05s"))
    with running(first):
        aws.wait_for(
            lambda: aws.deployments() and aws.deployments()[0]["status"] == "paused", what="pause"
        )
        second = aws.cutover(*shift(aws, "--steps", "100", *FAST))
        assert second.returncode == 3
        holder = aws.deployments()[0]["id"]
        assert f"locked by deployment {holder}" in second.stderr
        abort = aws.cutover(*aws.args("abort"))
        assert abort.returncode == 0, abort.stderr
        first.communicate(timeout=30)
    assert first.returncode == 1
    assert aws.served() == {"blue": 100, "green": 0}


def _dynamo_args(aws: AwsStack, *args: str) -> list[str]:
    return [*args, "--outputs", str(aws.outputs["checkout"]), "--journal", "dynamodb"]


def test_dynamodb_lock_lease_of_a_dead_holder_expires(aws: AwsStack) -> None:
    table = aws.data["checkout"]["journalTable"]
    listener = aws.data["checkout"]["listenerArn"]
    db = aws.client("dynamodb")
    holder = {
        "holder": "old@elsewhere:1",
        "deployment": "old",
        "who": "ci",
        "host": "elsewhere",
        "pid": 1,
    }
    item = {
        "pk": {"S": f"lock#{listener}"},
        "sk": {"S": "lock"},
        "holder": {"S": holder["holder"]},
        "info": {"S": json.dumps(holder)},
    }
    db.put_item(TableName=table, Item={**item, "expiresAt": {"N": str(int(time.time()) + 60)}})
    held = aws.cutover(
        *_dynamo_args(aws, "shift", "--to", "green", *aws.gate_args(), "--steps", "100", *FAST)
    )
    assert held.returncode == 3
    assert "locked by deployment old by ci on elsewhere" in held.stderr
    assert aws.served() == {"blue": 100, "green": 0}
    db.put_item(TableName=table, Item={**item, "expiresAt": {"N": str(int(time.time()) - 1)}})
    done = aws.cutover(
        *_dynamo_args(aws, "shift", "--to", "green", *aws.gate_args(), "--steps", "100", *FAST)
    )
    assert done.returncode == 0, done.stderr
    assert aws.served() == {"blue": 0, "green": 100}
    lock = db.get_item(TableName=table, Key={"pk": {"S": f"lock#{listener}"}, "sk": {"S": "lock"}})
    assert "Item" not in lock  # released


def test_sigkill_with_dynamodb_journal_then_rollback_takes_over_the_dead_lease(
    aws: AwsStack,
) -> None:
    process = aws.spawn(
        *_dynamo_args(
            aws,
            "shift",
            "--to",
            "green",
            *aws.gate_args(),
            "--steps",
            "30,100",
            "--bake",
            "2s",
            "--interval",
            "0.05s",
        )
    )
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    result = aws.cutover(*_dynamo_args(aws, "rollback"))
    assert result.returncode == 0, result.stderr
    assert aws.served() == {"blue": 100, "green": 0}


CALLS = [
    "ModifyListener",
    "DescribeListeners",
    "DescribeAlarms",
    "DescribeTargetHealth",
    "PutItem",
    "GetItem",
    "Publish",
    "PutMetricData",
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("fault", ["throttle", "5xx", "timeout"])
def test_transient_faults_on_each_call_are_retried(aws: AwsStack, call: str, fault: str) -> None:
    aws.proxy.inject(call, fault)
    result = aws.cutover(
        *_dynamo_args(
            aws,
            "shift",
            "--to",
            "green",
            *aws.gate_args(),
            "--steps",
            "50,100",
            "--bake",
            "0.2s",
            "--interval",
            "0.05s",
        )
    )
    assert result.returncode == 0, result.stderr
    assert aws.served() == {"blue": 0, "green": 100}
    assert aws.proxy.seen[call] >= 2  # the failure, then the retry


def test_persistent_guard_api_failure_is_inconclusive_and_rolls_back(aws: AwsStack) -> None:
    aws.proxy.inject("DescribeAlarms", "ok", *["5xx"] * 200)  # answers the preflight, then not
    result = aws.cutover(
        *shift(
            aws,
            "--steps",
            "50,100",
            "--bake",
            "5s",
            "--interval",
            "0.05s",
            "--max-inconclusive",
            "2",
        )
    )
    assert result.returncode == 1
    assert "guards inconclusive" in result.stderr
    assert aws.served() == {"blue": 100, "green": 0}


def test_a_write_failing_after_its_retries_gives_traffic_back(aws: AwsStack) -> None:
    # the first step's write passes; the second fails on every attempt botocore makes
    aws.proxy.inject("ModifyListener", "ok", *["5xx"] * 4)
    result = aws.cutover(*shift(aws, "--steps", "50,100", *FAST))
    assert result.returncode == 1
    assert "rolled back (error: ClientError" in result.stderr
    assert aws.served() == {"blue": 100, "green": 0}


def test_a_failed_restore_says_so_and_cutover_rollback_finishes_it(aws: AwsStack) -> None:
    aws.set_weights({"blue": 60, "green": 40})
    aws.proxy.inject("ModifyListener", "ok", *["5xx"] * 8)  # the step, then the restore, fail
    result = aws.cutover(*shift(aws, "--steps", "70,100", *FAST))
    assert result.returncode == 1
    assert "restoring the weights it found failed" in result.stderr
    assert "run `cutover rollback` to retry" in result.stderr
    assert aws.served() == {"blue": 30, "green": 70}
    rollback = aws.cutover(*aws.args("rollback"))
    assert rollback.returncode == 0, rollback.stderr
    assert aws.served() == {"blue": 60, "green": 40}


BAD_INPUTS = [
    (["--to", "purple"], "unknown color 'purple'"),
    (["--to", "green", "--steps", "50,10,100"], "steps must increase"),
    (["--to", "green", "--steps", "10,50"], "the last step must be 100"),
    (["--to", "green", "--steps", "0,100"], "each step must be 1-100"),
    (["--to", "green", "--steps", "ten"], "expected increasing percentages"),
    (["--to", "green", "--bake", "5 minutes"], "invalid duration '5 minutes'"),
    (["--to", "green", "--interval", "0s"], "must be longer than zero"),
    (["--to", "green", "--probe", "localhost:8080"], "expected URL or URL=STATUS"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS)
def test_bad_input_exits_2_and_changes_nothing(
    aws: AwsStack, extra: list[str], message: str
) -> None:
    result = aws.cutover(*aws.args("shift", *aws.gate_args(), *extra))
    assert result.returncode == 2
    assert message in result.stderr
    assert aws.served() == {"blue": 100, "green": 0}
    assert not (aws.tmp / "journal.json").exists()
    assert aws.proxy.seen["ModifyListener"] == 0


def test_missing_or_malformed_outputs_exit_2(aws: AwsStack) -> None:
    missing = aws.cutover(
        "status", "--outputs", str(aws.tmp / "nope.json"), "--journal", aws.journal()
    )
    assert missing.returncode == 2 and "cannot read it" in missing.stderr
    broken = aws.tmp / "broken.json"
    broken.write_text('{"stack": "prod"')
    malformed = aws.cutover("status", "--outputs", str(broken), "--journal", aws.journal())
    assert malformed.returncode == 2 and "not JSON" in malformed.stderr
    partial = aws.tmp / "partial.json"
    partial.write_text(json.dumps({"stack": "prod", "listenerArn": "x"}))
    incomplete = aws.cutover("status", "--outputs", str(partial), "--journal", aws.journal())
    assert incomplete.returncode == 2 and "missing outputs" in incomplete.stderr
    nothing = aws.cutover("status", "--journal", aws.journal())
    assert nothing.returncode == 2 and "pass --outputs FILE" in nothing.stderr


def test_refused_gates_exit_2_and_change_nothing(aws: AwsStack) -> None:
    records = aws.tmp / "records"
    records.mkdir()
    for path in aws.records.glob("green-*.json"):
        document = json.loads(path.read_text())
        if "approval" in path.name:
            document["record"]["release"]["version"] = "1.43.0"  # changed after signing
        (records / path.name).write_text(json.dumps(document))
    result = aws.cutover(
        *aws.args(
            "shift",
            "--to",
            "green",
            "--gates-config",
            str(aws.gates_config),
            "--records",
            str(records),
            "--steps",
            "100",
            *FAST,
        )
    )
    assert result.returncode == 2
    assert "approval gate for prod/checkout: green release 1.42.0" in result.stderr
    assert "a signature that does not match the record" in result.stderr
    assert aws.served() == {"blue": 100, "green": 0}
    assert aws.proxy.seen["ModifyListener"] == 0


def test_target_color_below_capacity_is_refused(aws: AwsStack) -> None:
    aws.targets("green", 3)
    result = aws.cutover(*shift(aws, "--steps", "100", *FAST))
    assert result.returncode == 2
    assert "green has 3 healthy targets; it needs 6" in result.stderr
    assert aws.served() == {"blue": 100, "green": 0}


def test_a_first_step_needing_more_than_min_healthy_is_refused(aws: AwsStack) -> None:
    """--min-healthy 1 lets a target with one healthy target take traffic, but not half of
    it: 50% of a capacity of 6 needs 3."""
    aws.targets("green", 1)
    result = aws.cutover(*shift(aws, "--steps", "50,100", "--min-healthy", "1", *FAST))
    assert result.returncode == 2, result.stderr
    assert (
        "prod/checkout: green has 1 healthy targets; blue 50 / green 50 needs 3 (50% of its "
        "capacity 6, rounded up)"
    ) in result.stderr
    assert aws.served() == {"blue": 100, "green": 0} and not aws.deployments()
    stepped = aws.cutover(*shift(aws, "--steps", "10,100", "--min-healthy", "1", *FAST))
    assert stepped.returncode == 1, stepped.stderr  # 10% needs 1 and goes; 100% needs 6
    (doc,) = aws.deployments()
    assert doc["failure"]["reason"] == "capacity" and aws.served() == {"blue": 100, "green": 0}
    assert "green has 1 healthy targets; blue 0 / green 100 needs 6" in doc["failure"]["detail"]


def test_failing_smoke_test_refuses_the_shift(aws: AwsStack) -> None:
    smoke = 'test "$CUTOVER_TEST_URL" = never'
    result = aws.cutover(*shift(aws, "--steps", "100", *FAST, "--smoke", smoke))
    assert result.returncode == 2
    assert "smoke test failed" in result.stderr
    ok = aws.cutover(*shift(aws, "--steps", "100", *FAST, "--smoke", 'test -n "$CUTOVER_TEST_URL"'))
    assert ok.returncode == 0, ok.stderr


def test_assisted_mode_pauses_before_100_until_promoted(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "20,100", "--mode", "assisted", *FAST))
    with running(process):
        aws.wait_for(
            lambda: aws.deployments() and aws.deployments()[0]["status"] == "paused", what="pause"
        )
        assert aws.served() == {"blue": 80, "green": 20}
        promoted = aws.cutover(*aws.args("promote"))
        assert promoted.returncode == 0, promoted.stderr
        assert "Promoted deployment" in promoted.stdout  # acted on, not merely requested
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert aws.served() == {"blue": 0, "green": 100}
    idle = aws.cutover(*aws.args("promote"))
    assert idle.returncode == 2 and "nothing to promote" in idle.stderr


def test_manual_mode_pauses_before_every_step_and_abort_restores(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "20,60,100", "--mode", "manual", *FAST))
    with running(process):
        aws.wait_for(
            lambda: aws.deployments() and aws.deployments()[0]["status"] == "paused", what="pause"
        )
        assert aws.served() == {"blue": 100, "green": 0}  # nothing moved before the first promote
        aws.cutover(*aws.args("promote"))
        aws.wait_for(lambda: aws.served() == {"blue": 80, "green": 20}, what="first step")
        aws.wait_for(lambda: aws.deployments()[0]["status"] == "paused", what="second pause")
        aws.cutover(*aws.args("abort"))
        process.communicate(timeout=30)
    assert process.returncode == 1
    assert aws.served() == {"blue": 100, "green": 0}
    idle = aws.cutover(*aws.args("abort"))
    assert idle.returncode == 0 and "nothing to abort" in idle.stdout


def test_deadline_rolls_back_instead_of_hanging(aws: AwsStack) -> None:
    """Paused before the last step (assisted) and never promoted: past --deadline, the
    traffic moved is given back (a deadline shorter than the plan itself is refused before
    anything moves: tests/helper/test_bad_input.py)."""
    result = aws.cutover(*shift(aws, "--steps", "10,100", "--mode", "assisted", *FAST,
                                "--deadline", "2s"))  # fmt: skip
    assert result.returncode == 1
    assert "deadline" in result.stderr
    assert aws.served() == {"blue": 100, "green": 0}
    (doc,) = aws.deployments()
    assert doc["failure"]["reason"] == "deadline" and doc["timings"]["restoreVerified"] is True


def test_probe_failure_rolls_back_and_counts_as_downtime(aws: AwsStack) -> None:
    with health_server() as health:
        process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "30s", "--interval",
                                   "0.05s", "--probe", health.url))  # fmt: skip
        with running(process):
            aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="the first step")
            health.status = 503
            _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert aws.served() == {"blue": 100, "green": 0}
    report = aws.cutover(*aws.args("report", "--output", "json", "--out", str(aws.tmp / "r")))
    assert report.returncode == 0, report.stderr
    data = json.loads(next((aws.tmp / "r").glob("*.json")).read_text())
    assert data["status"] == "rolled-back"
    assert data["downtimeSeconds"] > 0
    assert data["rollbackSeconds"] is not None


def test_release_train_moves_and_restores_services_in_lockstep(aws: AwsStack) -> None:
    aws.add_service("payments")
    both = [
        "--outputs",
        str(aws.outputs["checkout"]),
        "--outputs",
        str(aws.outputs["payments"]),
        "--journal",
        aws.journal(),
    ]
    process = aws.spawn(
        "shift",
        "--to",
        "green",
        *aws.gate_args(),
        "--steps",
        "50,100",
        "--bake",
        "1s",
        "--interval",
        "0.05s",
        *both,
    )
    with running(process):
        aws.wait_for(
            lambda: aws.served("payments") == {"blue": 50, "green": 50}, what="payments at 50"
        )
        assert aws.served("checkout") == {"blue": 50, "green": 50}
        aws.alarm(aws.data["payments"]["alarmNames"]["green"][2])
        process.communicate(timeout=30)
    assert process.returncode == 1
    assert aws.served("checkout") == {"blue": 100, "green": 0}
    assert aws.served("payments") == {"blue": 100, "green": 0}


def test_rollback_after_the_window_scales_the_old_color_up_before_moving_traffic(
    aws: AwsStack,
) -> None:
    done = aws.cutover(*shift(aws, "--steps", "100", *FAST))
    assert done.returncode == 0, done.stderr
    # later, after the rollback window, blue was scaled to its idle capacity
    blue = aws.data["checkout"]["services"]["blue"]
    aws.client("ecs").update_service(
        cluster=blue["cluster"], service=blue["service"], desiredCount=2
    )
    aws.targets("blue", 2)

    def ecs_registers_tasks() -> None:  # as ECS does once the scaled-up tasks pass health checks
        aws.wait_for(
            lambda: (
                aws.client("ecs").describe_services(
                    cluster=blue["cluster"], services=[blue["service"]]
                )["services"][0]["desiredCount"]
                == 6
            ),
            what="scale up",
        )
        assert aws.served() == {"blue": 0, "green": 100}  # no traffic moved yet
        time.sleep(0.5)
        aws.targets("blue", 6)

    import threading

    registrar = threading.Thread(target=ecs_registers_tasks)
    registrar.start()
    result = aws.cutover(*aws.args("rollback", "--scale-timeout", "30s"), env={})
    registrar.join()
    assert result.returncode == 0, result.stderr
    assert "scaling it back up first" in result.stdout
    assert aws.served() == {"blue": 100, "green": 0}


def test_resume_continues_an_interrupted_shift(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "30,60,100", "--bake", "1s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 40, "green": 60}, what="second step")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    result = aws.cutover(*aws.args("resume", *aws.gate_args()), timeout=60)
    assert result.returncode == 0, result.stderr
    assert aws.served() == {"blue": 0, "green": 100}
    assert aws.deployments()[-1]["status"] == "succeeded"


def test_drill_signs_a_record_the_pack_accepts(aws: AwsStack) -> None:
    records = aws.tmp / "records"
    records.mkdir()
    for path in aws.records.glob("green-*.json"):
        if "drill" not in path.name:
            (records / path.name).write_text(path.read_text())
    result = aws.cutover(
        *aws.args(
            "drill",
            "--to",
            "green",
            "--percent",
            "5",
            "--bake",
            "0.3s",
            "--interval",
            "0.05s",
            "--gates-config",
            str(aws.gates_config),
            "--records",
            str(records),
            "--key",
            str(aws.keys / "deploy.key"),
        )
    )
    assert result.returncode == 0, result.stderr
    assert aws.served() == {"blue": 100, "green": 0}
    (drill,) = records.glob("*rollback-drill.json")
    verify = aws.cutover(
        "records",
        "verify",
        str(drill),
        "--gates-config",
        str(aws.gates_config),
        "--outputs",
        str(aws.outputs["checkout"]),
    )
    assert verify.returncode == 0, verify.stdout
    assert json.loads(drill.read_text())["record"]["details"]["restoreVerified"] is True
    shifted = aws.cutover(
        *aws.args(
            "shift",
            "--to",
            "green",
            "--gates-config",
            str(aws.gates_config),
            "--records",
            str(records),
            "--steps",
            "100",
            *FAST,
        )
    )
    assert shifted.returncode == 0, shifted.stderr


def test_report_has_timeline_figures_and_plot(aws: AwsStack) -> None:
    assert aws.cutover(*shift(aws, "--steps", "50,100", *FAST)).returncode == 0
    aws.set_weights({"blue": 0, "green": 100})
    failed = aws.cutover(
        *shift(
            aws,
            "--steps",
            "50,100",
            "--mode",
            "assisted",
            *FAST,
            "--deadline",
            "1.5s",
            to="blue",
        )
    )
    assert failed.returncode == 1
    result = aws.cutover(*aws.args("report", "--plot", "--out", str(aws.tmp / "out")))
    assert result.returncode == 0, result.stderr
    (markdown,) = (aws.tmp / "out").glob("*.md")
    text = markdown.read_text()
    assert "Outcome: **rolled-back**" in text
    assert "Deployment success rate: 1/2 (50%)" in text
    assert "| restored |" in text
    (png,) = (aws.tmp / "out").glob("*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shifting_to_the_color_that_serves_everything_changes_nothing(aws: AwsStack) -> None:
    result = aws.cutover(*shift(aws, "--steps", "100", *FAST, to="blue"))
    assert result.returncode == 0, result.stderr
    assert "blue already serves all traffic; nothing to shift" in result.stdout
    assert aws.deployments() == []
    assert aws.proxy.seen["ModifyListener"] == 0


def test_config_written_back_keeps_the_shift_on_the_next_pulumi_up(aws: AwsStack) -> None:
    stack_file = aws.tmp / "Pulumi.prod.yaml"
    done = aws.cutover(*shift(aws, "--steps", "100", *FAST, "--stack-config", str(stack_file)))
    assert done.returncode == 0, done.stderr
    from cutover.stack_config import stack_config
    from tests.harness.program_runs import declare

    run = declare(stack_config(aws.tmp / "Pulumi.prod.yaml"))
    (listener,) = [r for r in run.of_type("aws:lb/listener:Listener") if r.name == "checkout-https"]
    tg_color = {
        r.state["arn"]: r.state["tags"]["cutover:color"]
        for r in run.of_type("aws:lb/targetGroup:TargetGroup")
    }
    weights = {
        tg_color[g["arn"]]: g["weight"]
        for g in listener.state["defaultActions"][0]["forward"]["targetGroups"]
    }
    assert weights == aws.served() == {"blue": 0, "green": 100}


def test_status_reports_weights_health_alarms_and_lock(aws: AwsStack) -> None:
    aws.alarm(aws.data["checkout"]["alarmNames"]["blue"][1])
    result = aws.cutover(*aws.args("status", "--output", "json"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (service,) = data["services"]
    assert service["weights"] == {"blue": 100, "green": 0}
    assert service["ready"] == {"blue": 6, "green": 6}
    assert service["readyUnit"] == "healthy targets"
    assert service["alarms"]["checkout-prod-blue-p99-latency"] == "ALARM"
    assert data["deployment"] is None and data["lock"] is None


def test_status_and_the_alarm_guard_read_every_alarm_of_a_stack_with_hundreds(
    aws: AwsStack,
) -> None:
    """DescribeAlarms takes 100 names a call: a stack naming 250 alarms has each one read,
    the one in ALARM among the last shown by status and refusing a shift at its preflight."""
    cloudwatch = aws.client("cloudwatch")
    many = [f"checkout-prod-green-extra-{i:03}" for i in range(247)]
    for name in many:
        cloudwatch.put_metric_alarm(
            AlarmName=name, MetricName="M", Namespace="N", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        )  # fmt: skip
    aws.alarm(many[-1])
    data = json.loads(aws.outputs["checkout"].read_text())
    data["alarmNames"]["green"] += many
    outputs = aws.tmp / "many-alarms.json"
    outputs.write_text(json.dumps(data))
    status = aws.cutover("status", "--output", "json", "--outputs", str(outputs),
                         "--journal", aws.journal())  # fmt: skip
    assert status.returncode == 0, status.stderr
    alarms = json.loads(status.stdout)["services"][0]["alarms"]
    assert len(alarms) == 6 + len(many) and alarms[many[-1]] == "ALARM"
    refused = aws.cutover("shift", "--to", "green", *aws.gate_args(), "--steps", "100", *FAST,
                          "--outputs", str(outputs), "--journal", aws.journal())  # fmt: skip
    assert refused.returncode == 2 and f"in ALARM: {many[-1]}" in refused.stderr, refused.stderr
    assert aws.served() == {"blue": 100, "green": 0}


def test_kpis_across_deployments_from_the_dynamodb_journal(aws: AwsStack) -> None:
    dynamo = ["--outputs", str(aws.outputs["checkout"]), "--journal", "dynamodb"]
    ok = aws.cutover("shift", "--to", "green", *aws.gate_args(), "--steps", "100", *FAST, *dynamo)
    assert ok.returncode == 0, ok.stderr
    process = aws.spawn("shift", "--to", "blue", *aws.gate_args(), "--steps", "50,100",
                        "--bake", "30s", "--interval", "0.05s", *dynamo)  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        aws.alarm(aws.data["checkout"]["alarmNames"]["blue"][0])
        process.communicate(timeout=30)
    result = aws.cutover("kpis", "--output", "json", *dynamo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["deployments"], data["succeeded"], data["successRate"]) == (2, 1, 0.5)
    assert data["rollbackSeconds"]["max"] is not None and data["rollbackSeconds"]["max"] < 5
    report = aws.cutover("kpis", "--out", str(aws.tmp / "kpis"), "--plot", *dynamo)
    assert report.returncode == 0, report.stderr
    assert "| rolled back (alarms) |" in (aws.tmp / "kpis" / "kpis.md").read_text()
    assert (aws.tmp / "kpis" / "kpis.png").stat().st_size > 1000
    recent = aws.cutover("kpis", "--output", "json", "--since", "1ms", *dynamo)
    assert json.loads(recent.stdout)["deployments"] == 0  # a key range, from now on
