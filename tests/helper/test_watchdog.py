"""The watchdog against moto's server: a shift whose process died elsewhere is given back.

The shift runs in its own UTS namespace with another hostname (`unshare --uts`), as a CI
runner elsewhere would: its lease can only expire, never be seen dead. Leases are 2 s long
(CUTOVER_LEASE_SECONDS, as production may set it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness.aws_stack import AwsStack
from tests.helper.test_shift import running

LEASE = 2
ELSEWHERE = "runner-elsewhere"


def dynamo(aws: AwsStack, *args: str) -> list[str]:
    return [*args, "--outputs", str(aws.outputs["checkout"]), "--journal", "dynamodb"]


def spawn_elsewhere(aws: AwsStack, *args: str) -> subprocess.Popen[str]:
    """`cutover ARGS` as a process on another host (its own hostname)."""
    command = " ".join([sys.executable, "-m", "cutover", *args])
    return subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", f"hostname {ELSEWHERE} && exec {command}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **aws.env, "CUTOVER_LEASE_SECONDS": str(LEASE), "USER": "ci"},
        cwd=aws.tmp,
    )


def watchdog(aws: AwsStack) -> subprocess.CompletedProcess[str]:
    return aws.cutover(*dynamo(aws, "watchdog", "--once"))


def latest(aws: AwsStack) -> dict:
    table = aws.data["checkout"]["journalTable"]
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    import json

    docs = [json.loads(i["doc"]["S"]) for i in items if "doc" in i]
    return max(docs, key=lambda d: d["id"])


@pytest.mark.parametrize("phase", ["baking", "paused"])
def test_a_shift_killed_elsewhere_is_restored_once_its_lease_expires(
    aws: AwsStack, phase: str
) -> None:
    aws.set_weights({"blue": 70, "green": 30}, sticky=True)
    before = aws.forward_config()
    mode = ["--mode", "manual"] if phase == "paused" else []
    process = spawn_elsewhere(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                              "--steps", "60,100", "--bake", "60s", "--interval", "0.1s", *mode))  # fmt: skip
    with running(process):
        if phase == "paused":
            aws.wait_for(lambda: latest_status(aws) == "paused", what="the pause")
        else:
            aws.wait_for(lambda: aws.served() == {"blue": 40, "green": 60}, what="first step")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    killed = time.time()
    early = watchdog(aws)
    assert early.returncode == 0, early.stderr
    assert "left" in early.stdout and "alive and renewing" in early.stdout
    assert latest_status(aws) in ("in-progress", "paused")
    time.sleep(max(0.0, killed + LEASE + 1.1 - time.time()))
    passed = watchdog(aws)
    assert passed.returncode == 0, passed.stderr
    assert "restored" in passed.stdout and "blue 70 / green 30" in passed.stdout
    assert aws.forward_config() == before
    doc = latest(aws)
    assert doc["status"] == "rolled-back"
    assert doc["failure"]["reason"] == "watchdog"
    assert doc["failure"]["detail"].startswith(
        f"watchdog: holder ci on {ELSEWHERE} stopped renewing at "
    )
    assert doc["timings"]["restoreVerified"] is True
    events = [m["event"] for m in aws.topic_messages() if m["deployment"] == doc["id"]]
    assert "rolled-back" in events
    again = watchdog(aws)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def latest_status(aws: AwsStack) -> str | None:
    try:
        return str(latest(aws)["status"])
    except ValueError:
        return None


def test_two_passes_at_once_restore_once(aws: AwsStack) -> None:
    process = spawn_elsewhere(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                              "--steps", "50,100", "--bake", "60s", "--interval", "0.1s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    time.sleep(LEASE + 1.1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: watchdog(aws), range(2)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert sum(r.stdout.count("restored") for r in results) == 1, [r.stdout for r in results]
    doc = latest(aws)
    assert [e["type"] for e in doc["events"]].count("restored") == 1
    assert aws.served() == {"blue": 100, "green": 0}


def test_a_live_shift_is_never_touched(aws: AwsStack) -> None:
    process = aws.spawn(*dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                        "--steps", "30,100", "--bake", "1.5s", "--interval", "0.1s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        result = watchdog(aws)
        assert result.returncode == 0, result.stderr
        assert "alive and renewing" in result.stdout
        assert aws.served() == {"blue": 70, "green": 30}
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert aws.served() == {"blue": 0, "green": 100}


def test_a_dead_shift_past_its_deadline_says_so(aws: AwsStack) -> None:
    process = spawn_elsewhere(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                              "--steps", "20,100", "--bake", "60s", "--interval", "0.1s",
                              "--deadline", "3s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 80, "green": 20}, what="first step")
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
    time.sleep(LEASE + 1.1)
    result = watchdog(aws)
    assert result.returncode == 0, result.stderr
    assert "past its deadline" in latest(aws)["failure"]["detail"]
    assert aws.served() == {"blue": 100, "green": 0}
