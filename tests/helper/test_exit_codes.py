"""Exit codes a pipeline can act on, and signals at every moment of a shift, through the CLI.

The deploy workflow answers a shift's exit status: 0 succeeded, 1 failed or rolled back, 2
bad input or a refused gate (nothing moved), 3 lock held. A signal must never turn one into
another: after an accepted success it is still 0; before anything moved it moves nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import running
from tests.helper.test_shift import FAST, shift


def test_a_signal_after_the_accepted_success_exits_0_and_says_what_was_skipped(
    aws: AwsStack,
) -> None:
    """Defect 6b: the exit gates are being judged (their DescribeRule call held in flight)
    when SIGINT arrives: the shift had succeeded, so exit 0, the config written, and a line
    saying the exit gates were not judged (a rollback answering exit 1 would undo a good
    release)."""
    config = aws.tmp / "Pulumi.prod.yaml"
    aws.proxy.inject("DescribeRule", "hold")
    process = aws.spawn(*shift(aws, "--steps", "100", *FAST, "--stack-config", str(config)))
    with running(process):
        assert aws.proxy.holding.wait(60), "the exit gates were never judged"
        assert aws.deployments()[-1]["status"] == "succeeded"
        process.send_signal(signal.SIGINT)
        aws.proxy.release()
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "SIGINT after the shift succeeded: the exit gates were not judged" in out
    assert "  cutover:activeColor: green\n" in config.read_text()
    assert aws.served() == {"blue": 0, "green": 100}


def _smoke(aws: AwsStack) -> tuple[str, object]:
    """A smoke test that writes its pid, then takes long."""
    pid = aws.tmp / "smoke.pid"
    return f"sh -c 'echo $$ > {pid}; exec sleep 60'", pid


def test_a_signal_during_the_smoke_test_moves_nothing_and_stops_the_smoke_test(
    aws: AwsStack,
) -> None:
    """Defect 6c: SIGTERM while `--smoke` runs: one line, exit 1 (not a silent 143), the
    smoke command's process group stopped, nothing journaled or moved."""
    command, pid_file = _smoke(aws)
    process = aws.spawn(*shift(aws, "--steps", "100", *FAST, "--smoke", command))
    with running(process):
        aws.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="smoke test")
        smoke_pid = int(pid_file.read_text())
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "interrupted by SIGTERM before any traffic moved; nothing was changed" in err
    assert "Traceback" not in err
    aws.wait_for(lambda: not _alive(smoke_pid), what="the smoke test to be stopped")
    assert aws.served() == {"blue": 100, "green": 0}
    assert aws.deployments() == []


def test_an_inherited_ignored_sigint_still_stops_a_shift(aws: AwsStack) -> None:
    """Defect 6c: started with SIGINT ignored (a background job, a runner that ignores it),
    Ctrl-C during the smoke test still stops the shift before anything moves."""
    command, pid_file = _smoke(aws)
    args = [
        sys.executable,
        "-m",
        "cutover",
        *shift(aws, "--steps", "100", *FAST, "--smoke", command),
    ]
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=aws.tmp,
        env={**os.environ, **aws.env},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
    )  # fmt: skip
    with running(process):
        aws.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="smoke test")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "interrupted by SIGINT before any traffic moved" in err
    assert aws.served() == {"blue": 100, "green": 0}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_status_watch_exits_1_when_its_deployment_vanishes(aws: AwsStack) -> None:
    """Defect 6a: a watch whose deployment disappears from the journal does not report
    success."""
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--mode", "manual", "--interval", "0.05s"))
    with running(process):
        aws.wait_for(lambda: aws.deployments() and aws.deployments()[0]["status"] == "paused",
                     what="pause")  # fmt: skip
        shown = aws.tmp / "watch.txt"
        with shown.open("w") as out:
            watch = subprocess.Popen(
                [sys.executable, "-m", "cutover", *aws.args("status", "--watch", "--interval", "0.1s")],
                stdout=out, stderr=subprocess.PIPE, text=True, cwd=aws.tmp,
                env={**os.environ, **aws.env},
            )  # fmt: skip
            with running(watch):
                aws.wait_for(lambda: "paused" in shown.read_text(), what="the watch's first view")
                journal = aws.tmp / "journal.json"
                data = json.loads(journal.read_text())
                data["deployments"] = {}
                journal.write_text(json.dumps(data))
                _, err = watch.communicate(timeout=30)
        assert watch.returncode == 1, err
        assert "is no longer in the journal; its outcome is unknown" in err
        process.kill()
        process.communicate()
