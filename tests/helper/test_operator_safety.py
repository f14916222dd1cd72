"""Never unwatched, never a traceback: guards through pauses, signals, promote and rollback during
a shift, and every failure path, through the real CLI against moto's server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import running
from tests.helper.test_shift import FAST, shift

ALARM = "checkout-prod-green-5xx-rate"


def paused(aws: AwsStack) -> bool:
    found = aws.deployments()
    return bool(found) and found[-1]["status"] == "paused"


def test_a_firing_alarm_while_paused_rolls_back(aws: AwsStack) -> None:
    aws.set_weights({"blue": 80, "green": 20})
    before = aws.forward_config()
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--mode", "manual", *FAST))
    with running(process):
        aws.wait_for(lambda: paused(aws), what="the first pause")
        aws.alarm(ALARM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert aws.forward_config() == before
    (doc,) = aws.deployments()
    assert doc["status"] == "rolled-back"
    assert doc["failure"]["reason"] == "guard failed"
    assert f"alarms: in ALARM: {ALARM}" in doc["failure"]["detail"]
    assert f"in ALARM: {ALARM}" in err


def test_the_deadline_applies_while_paused(aws: AwsStack) -> None:
    process = aws.spawn(
        *shift(aws, "--steps", "20,100", "--mode", "manual", *FAST, "--deadline", "1s")
    )
    with running(process):
        _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "deadline" in err
    assert aws.served() == {"blue": 100, "green": 0}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_bake_restores_the_snapshot_and_exits_1(
    aws: AwsStack, sig: signal.Signals
) -> None:
    aws.set_weights({"blue": 70, "green": 30}, sticky=True)
    before = aws.forward_config()
    process = aws.spawn(*shift(aws, "--steps", "60,100", "--bake", "30s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 40, "green": 60}, what="first step")
        process.send_signal(sig)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert aws.forward_config() == before
    assert f"interrupted by {sig.name}" in err
    assert "Restored the weights it found (blue 70 / green 30)" in out
    assert "Traceback" not in err
    (doc,) = aws.deployments()
    assert doc["failure"] == {"reason": "signal", "detail": f"interrupted by {sig.name}"}
    status = aws.cutover(*aws.args("status", "--output", "json"))
    assert json.loads(status.stdout)["deployment"]["status"] == "rolled-back"


def test_a_second_signal_does_not_cut_the_restore_short(aws: AwsStack) -> None:
    aws.set_weights({"blue": 90, "green": 10})
    before = aws.forward_config()
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "30s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        # slow the restoring write so the second signal lands during it
        aws.proxy.inject("ModifyListener", "timeout")
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert aws.forward_config() == before
    assert "it will not cut that short" in out
    assert "Traceback" not in err
    assert aws.deployments()[0]["status"] == "rolled-back"


def test_a_drill_interrupted_gives_traffic_back_too(aws: AwsStack) -> None:
    aws.set_weights({"blue": 100, "green": 0})
    key = aws.keys / "deploy.key"
    process = aws.spawn(
        *aws.args(
            "drill", "--to", "green", "--percent", "5", "--bake", "30s", "--interval", "0.05s"
        ),
        *aws.gate_args(),
        "--key",
        str(key),
    )
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 95, "green": 5}, what="drill step")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert aws.served() == {"blue": 100, "green": 0}
    assert aws.deployments()[0]["status"] == "rolled-back"


def test_promote_during_a_bake_is_refused_and_nothing_is_stored(aws: AwsStack) -> None:
    process = aws.spawn(
        *shift(
            aws, "--steps", "20,100", "--mode", "assisted", "--bake", "3s", "--interval", "0.05s"
        )
    )
    with running(process):
        # the first step served and journaled (until then the shift is still "writing" it)
        aws.wait_for(
            lambda: any(e["type"] == "step" for d in aws.deployments() for e in d["events"]),
            what="first step",
        )
        early = aws.cutover(*aws.args("promote"))
        assert early.returncode == 2, early.stderr
        assert "is baking step 1/2 (blue 80 / green 20)" in early.stderr
        assert "s left" in early.stderr
        aws.wait_for(lambda: paused(aws), what="the pause before 100%")
        time.sleep(0.5)  # the early promote must not have been kept for this pause
        assert paused(aws) and aws.served() == {"blue": 80, "green": 20}
        promoted = aws.cutover(*aws.args("promote"))
        assert promoted.returncode == 0, promoted.stderr
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert aws.served() == {"blue": 0, "green": 100}


def test_promote_full_skips_the_remaining_pauses_and_bakes(aws: AwsStack) -> None:
    process = aws.spawn(
        *shift(
            aws,
            "--steps",
            "10,40,70,100",
            "--mode",
            "manual",
            "--bake",
            "60s",
            "--interval",
            "0.05s",
        )
    )
    with running(process):
        aws.wait_for(lambda: paused(aws), what="the first pause")
        started = time.monotonic()
        full = aws.cutover(*aws.args("promote", "--full"))
        assert full.returncode == 0, full.stderr
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 30  # not four 60 s bakes
    assert aws.served() == {"blue": 0, "green": 100}
    (doc,) = aws.deployments()
    steps = [e["weights"]["green"] for e in doc["events"] if e["type"] == "step"]
    assert steps == [10, 40, 70, 100]  # every step still written and read back
    assert [e["type"] for e in doc["events"]].count("paused") == 1
    assert out.count("guards checked once") == 4


def test_rollback_during_a_live_shift_asks_it_and_waits_for_the_restore(aws: AwsStack) -> None:
    aws.set_weights({"blue": 75, "green": 25})
    before = aws.forward_config()
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "60s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        result = aws.cutover(*aws.args("rollback"))
        assert result.returncode == 0, result.stderr
        assert "blue 75 / green 25 served again" in result.stdout
        assert aws.forward_config() == before  # restored when the command returns
        process.communicate(timeout=30)
    assert process.returncode == 1


def test_rollback_says_so_when_the_holder_does_not_restore_in_time(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "60s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        os.kill(process.pid, signal.SIGSTOP)  # alive, holding its lease, not acting
        try:
            result = aws.cutover(*aws.args("rollback", "--timeout", "1s"))
        finally:
            os.kill(process.pid, signal.SIGCONT)
        assert result.returncode == 1
        # the journal file may be mid-write when the holder froze: either way, said plainly
        assert (
            "has not given traffic back after 1s" in result.stderr
            or "held the journal for 5s without letting go" in result.stderr
        ), result.stderr
        if "held the journal" in result.stderr:  # its request never landed: ask again
            again = aws.cutover(*aws.args("rollback"))
            assert again.returncode == 0, again.stderr
        process.communicate(timeout=30)  # once it runs again it acts on the abort
    assert process.returncode == 1
    assert aws.served() == {"blue": 100, "green": 0}


def test_abort_prints_the_restored_split(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "30,100", "--bake", "60s", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        result = aws.cutover(*aws.args("abort"))
        process.communicate(timeout=30)
    assert result.returncode == 0, result.stderr
    assert "blue 100 / green 0 served again" in result.stdout


def test_a_listener_that_does_not_exist_is_named_at_preflight(aws: AwsStack) -> None:
    data = dict(aws.data["checkout"])
    data["listenerArn"] = data["listenerArn"].rsplit("/", 1)[0] + "/0000000000000000"
    outputs = aws.tmp / "gone.json"
    outputs.write_text(json.dumps(data))
    result = aws.cutover(
        "shift", "--to", "green", "--steps", "100", *aws.gate_args(),
        "--outputs", str(outputs), "--journal", aws.journal(),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"listener {data['listenerArn']} does not exist" in result.stderr
    assert not (aws.tmp / "journal.json").exists()


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


def _run(aws: AwsStack, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "cutover", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=aws.tmp,
    )


def test_the_region_comes_from_the_outputs_arns_when_none_is_set(aws: AwsStack) -> None:
    env = _without({**os.environ, **aws.env}, "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")
    env.update(AWS_CONFIG_FILE=str(aws.tmp / "none"), AWS_EC2_METADATA_DISABLED="true")
    result = _run(aws, env, *aws.args("status"))
    assert result.returncode == 0, result.stderr
    assert "blue 100 / green 0" in result.stdout


def test_no_credentials_exit_2_naming_where_they_were_looked_for(aws: AwsStack) -> None:
    env = _without(
        {**os.environ, **aws.env}, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"
    )
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(aws.tmp / "none"),
        AWS_CONFIG_FILE=str(aws.tmp / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = _run(aws, env, *aws.args("status"))
    assert result.returncode == 2
    assert "no AWS credentials: looked in AWS_ACCESS_KEY_ID" in result.stderr
    assert "Traceback" not in result.stderr and "retries" not in result.stderr


def test_a_restore_not_confirmed_in_time_says_exactly_that(aws: AwsStack) -> None:
    process = aws.spawn(
        *shift(
            aws,
            "--steps",
            "40,100",
            "--bake",
            "60s",
            "--interval",
            "0.05s",
            "--verify-timeout",
            "1s",
        )
    )
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 60, "green": 40}, what="first step")
        process.kill()
        process.communicate()
    aws.proxy.inject("DescribeListeners", *["5xx"] * 400)
    result = aws.cutover(*aws.args("rollback"))
    aws.proxy.clear()
    assert result.returncode == 1
    assert "restored weights written (blue 100 / green 0); not yet confirmed served after 1s" in (
        result.stderr
    )
    assert "verified served" not in result.stdout
    assert aws.deployments()[0]["timings"]["restoreVerified"] is False
    assert aws.served() == {"blue": 100, "green": 0}


def test_a_journal_that_cannot_be_written_after_a_restore_is_said_plainly(aws: AwsStack) -> None:
    dynamo = ["--outputs", str(aws.outputs["checkout"]), "--journal", "dynamodb"]
    process = aws.spawn("shift", "--to", "green", *aws.gate_args(), "--steps", "40,100",
                        "--bake", "60s", "--interval", "0.05s", *dynamo)  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 60, "green": 40}, what="first step")
        process.kill()
        process.communicate()
    # the dead holder's lease is taken over (a refused write, then one that wins), then nothing saves
    aws.proxy.inject("PutItem", "ok", "ok", *["5xx"] * 200)
    result = aws.cutover("rollback", *dynamo)
    aws.proxy.clear()
    assert result.returncode == 1
    assert "traffic was given back (blue 100 / green 0), but the journal could not be updated" in (
        result.stderr
    )
    assert aws.served() == {"blue": 100, "green": 0}


def test_a_config_broken_during_the_shift_warns_but_the_shift_succeeded(aws: AwsStack) -> None:
    """A stack config that is fine when the shift starts (a bad one is refused before
    anything moves) but garbled while it bakes: the success stands, with a warning and the
    commands to run."""
    config = aws.tmp / "Pulumi.prod.yaml"
    process = aws.spawn(*shift(aws, "--steps", "100", "--bake", "3s", "--interval", "0.05s",
                               "--stack-config", str(config)))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 0, "green": 100}, what="the step")
        config.write_text("not a stack file\n")
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "succeeded, but the stack's config was not updated" in err
    assert "pulumi config set cutover:activeColor green" in err
    assert aws.deployments()[0]["status"] == "succeeded"
    assert config.read_text() == "not a stack file\n"


@pytest.mark.parametrize("bad", ["folder", "dangling link", "duplicate keys"])
def test_an_unreadable_record_file_is_named_and_nothing_moves(aws: AwsStack, bad: str) -> None:
    import shutil

    records = aws.tmp / "records"
    shutil.copytree(aws.records, records)
    target = records / "zz-bad.json"
    if bad == "folder":
        target.mkdir()
    elif bad == "dangling link":
        target.symlink_to(aws.tmp / "gone.json")
    else:
        target.write_text('{"record": {}, "record": {}, "signature": ""}')
    result = aws.cutover(
        *aws.args("shift", "--to", "green", "--steps", "100", *FAST),
        "--gates-config", str(aws.gates_config), "--records", str(records),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"--records: {target}" in result.stderr
    assert "Traceback" not in result.stderr
    assert aws.served() == {"blue": 100, "green": 0}
