"""One output convention (issue 32, item 5): `--output json` on every command that reports,
stdout then one JSON document and what is said on the way on stderr; one watchdog pass
without `--once`; and on a terminal, the wait drawn in place is cleared before the lines
that follow it (an abort's restore, the config written back)."""

from __future__ import annotations

import json
import os
import re

from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import running
from tests.helper.test_live_view import on_terminal, read_screen, read_to_close
from tests.helper.test_shift import FAST, shift


def test_shift_rollback_and_approve_answer_in_json(aws: AwsStack) -> None:
    shifted = aws.cutover(*shift(aws, "--steps", "50,100", *FAST, "--output", "json"))
    assert shifted.returncode == 0, shifted.stderr
    done = json.loads(shifted.stdout)  # stdout is the document, and only it
    assert (done["status"], done["target"], done["kind"]) == ("succeeded", "green", "shift")
    assert done["plan"][-1] == {"green": 100, "blue": 0} and done["failure"] is None
    assert "Step 2/2: serving blue 0 / green 100" in shifted.stderr  # said on the way

    back = aws.cutover(
        *aws.args("rollback", "--deployment", done["deployment"], "--output", "json")
    )
    assert back.returncode == 0, back.stderr
    gave = json.loads(back.stdout)
    assert (gave["deployment"], gave["gaveBack"]) == (done["deployment"], True)
    assert aws.served() == {"blue": 100, "green": 0}

    record = aws.tmp / "approval.json"
    approved = aws.cutover(
        "approve", "--stack", "prod", "--color", "green", "--stack-file",
        str(aws.tmp / "Pulumi.prod.yaml"), "--gates-config", str(aws.gates_config),
        "--key", str(aws.keys / "chairman.key"), "--out", str(record), "--output", "json",
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    signed = json.loads(approved.stdout)
    assert (signed["record"], signed["kind"], signed["release"]) == (
        str(record),
        "approval",
        "1.42.0",
    )
    assert signed["message"].startswith("Signed approval for prod green release 1.42.0")


def test_a_shift_rolled_back_still_answers_in_json_and_says_why_on_stderr(aws: AwsStack) -> None:
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "30s", "--interval", "0.05s",
                               "--output", "json"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        aws.alarm(aws.data["checkout"]["alarmNames"]["green"][0])
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    failed = json.loads(out)
    assert failed["status"] == "rolled-back" and "ALARM" in failed["failure"]["detail"]
    assert err.strip().splitlines()[-1].startswith("error: deployment ")


def test_one_watchdog_pass_is_the_default(aws: AwsStack) -> None:
    plain = aws.cutover(*aws.args("watchdog"))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "nothing to do: no deployment in progress\n"
    once = aws.cutover(*aws.args("watchdog", "--once", "--output", "json"))
    assert once.returncode == 0 and json.loads(once.stdout)["findings"] == []


def test_an_abort_on_a_terminal_clears_the_wait_before_the_restore_is_said(
    aws: AwsStack,
) -> None:
    config = aws.tmp / "Pulumi.prod.yaml"
    process, main = on_terminal(aws, *shift(aws, "--steps", "50,100", "--bake", "30s",
                                            "--interval", "0.2s", "--stack-config", str(config)))  # fmt: skip
    try:
        screen = read_screen(main, lambda s: b"s left" in s)
        aborted = aws.cutover(*aws.args("abort"))
        assert aborted.returncode == 0, aborted.stderr
        screen += read_to_close(main)
        process.wait(timeout=30)
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
    text = screen.decode(errors="replace")
    assert "Wrote cutover:activeColor=blue, cutover:trafficPercent=100" in text, text
    # what the terminal shows, line by line: escape sequences dropped, each line as its last
    # carriage return leaves it
    shown = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line).split("\r")[-1]
             for line in text.replace("\r\n", "\n").split("\n")]  # fmt: skip
    restore = [line for line in shown if "Wrote cutover:activeColor=blue" in line]
    assert restore and all(line.startswith("Wrote ") for line in restore), restore
    assert not any("baked " in line and "Rolling back" in line for line in shown), shown
