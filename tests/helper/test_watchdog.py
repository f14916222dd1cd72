"""The watchdog against moto's server: a shift whose process stopped renewing is given back.

"Elsewhere" needs no root: the shift's process is stopped (SIGSTOP: alive, renewing nothing,
as a process on a lost runner or a sleeping laptop), so its lease can only run out, never be
seen dead. Leases are 10 s with calls bounded to cover one write (tests/harness/cli_runs.py),
and every wait is on what the journal or the listener says, never on a sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cutover_components.watchdog import RUNTIME
from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import OUTLIVED, frozen, running
from tests.harness.program_runs import declare, prod_config
from tests.harness.runtimes import interpreter as runtime_interpreter

HOST = __import__("socket").gethostname()


def dynamo(aws: AwsStack, *args: str) -> list[str]:
    return [*args, "--outputs", str(aws.outputs["checkout"]), "--journal", "dynamodb"]


def spawn_outlived(aws: AwsStack, *args: str) -> subprocess.Popen[str]:
    """`cutover ARGS` as a process whose lease the tests will outlive."""
    return subprocess.Popen(
        [sys.executable, "-m", "cutover", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **aws.env, **OUTLIVED},
        cwd=aws.tmp,
    )


def watchdog(aws: AwsStack) -> subprocess.CompletedProcess[str]:
    return aws.cutover(*dynamo(aws, "watchdog", "--once"), env=OUTLIVED)


def latest(aws: AwsStack) -> dict:
    table = aws.data["checkout"]["journalTable"]
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    docs = [json.loads(__import__("zlib").decompress(i["docz"]["B"])) for i in items if "docz" in i]
    return max(docs, key=lambda d: d["id"])


def latest_status(aws: AwsStack) -> str | None:
    try:
        return str(latest(aws)["status"])
    except ValueError:
        return None


@pytest.mark.parametrize("phase", ["baking", "paused"])
def test_a_shift_that_stopped_renewing_is_restored_once_its_lease_runs_out(
    aws: AwsStack, phase: str
) -> None:
    aws.set_weights({"blue": 70, "green": 30}, sticky=True)
    before = aws.forward_config()
    mode = ["--mode", "manual"] if phase == "paused" else []
    process = spawn_outlived(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                             "--steps", "60,100", "--bake", "60s", "--interval", "0.1s", *mode))  # fmt: skip
    with running(process):
        if phase == "paused":
            aws.wait_for(lambda: latest_status(aws) == "paused", what="the pause")
        else:
            aws.wait_for(lambda: aws.served() == {"blue": 40, "green": 60}, what="first step")
        with frozen(process):
            early = watchdog(aws)
            assert early.returncode == 0, early.stderr
            assert "left" in early.stdout and "alive and renewing" in early.stdout
            assert latest_status(aws) in ("in-progress", "paused")
            aws.outlive_leases()
            passed = watchdog(aws)
    assert passed.returncode == 0, passed.stderr
    assert "restored" in passed.stdout and "blue 70 / green 30" in passed.stdout
    assert aws.forward_config() == before
    doc = latest(aws)
    assert doc["status"] == "rolled-back"
    assert doc["failure"]["reason"] == "watchdog"
    assert doc["failure"]["detail"].startswith(f"holder ci on {HOST} stopped renewing at ")
    assert doc["timings"]["restoreVerified"] is True
    events = [m["event"] for m in aws.topic_messages() if m["deployment"] == doc["id"]]
    assert "rolled-back" in events
    again = watchdog(aws)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def stop_at_first_step_and_outlive_its_lease(aws: AwsStack) -> subprocess.Popen[str]:
    """A shift stopped while its first step (50/50) bakes; returns (stopped) once its lease
    has run out. The caller kills it (`frozen`)."""
    process = spawn_outlived(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                             "--steps", "50,100", "--bake", "60s", "--interval", "0.1s"))  # fmt: skip
    aws.wait_for(
        lambda: aws.served() == {"blue": 50, "green": 50},
        what="first step",
    )
    return process


def test_two_passes_at_once_restore_once(aws: AwsStack) -> None:
    process = stop_at_first_step_and_outlive_its_lease(aws)
    with running(process), frozen(process):
        aws.outlive_leases()
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda _: watchdog(aws), range(2)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert sum(r.stdout.count("restored") for r in results) == 1, [r.stdout for r in results]
    doc = latest(aws)
    assert [e["type"] for e in doc["events"]].count("restored") == 1
    assert aws.served() == {"blue": 100, "green": 0}


def test_a_live_shift_is_never_touched(aws: AwsStack) -> None:
    process = aws.spawn(*dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                        "--steps", "30,100", "--mode", "manual", "--bake", "0s",
                        "--interval", "0.1s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: latest_status(aws) == "paused", what="the first pause")
        aws.cutover(*dynamo(aws, "promote"))
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        aws.wait_for(lambda: latest_status(aws) == "paused", what="the second pause")
        result = watchdog(aws)
        assert result.returncode == 0, result.stderr
        assert "alive and renewing" in result.stdout
        assert aws.served() == {"blue": 70, "green": 30}
        promoted = aws.cutover(*dynamo(aws, "promote"))
        assert promoted.returncode == 0, promoted.stderr
        process.communicate(timeout=60)
    assert process.returncode == 0
    assert aws.served() == {"blue": 0, "green": 100}


def test_a_dead_shift_past_its_deadline_says_so(aws: AwsStack) -> None:
    """Paused before its last step (assisted), then frozen: its deadline, longer than its
    plan, passes while it is gone."""
    process = spawn_outlived(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                             "--steps", "20,100", "--mode", "assisted", "--bake", "0.3s",
                             "--interval", "0.1s", "--deadline", "5s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 80, "green": 20}, what="first step")
        with frozen(process):
            aws.outlive_leases()
            result = watchdog(aws)
    assert result.returncode == 0, result.stderr
    assert "past its deadline" in latest(aws)["failure"]["detail"]
    assert aws.served() == {"blue": 100, "green": 0}


def lambda_site(folder: Path) -> Path:
    """A site folder with only what the Lambda Python runtime ships: boto3 and botocore (and
    their own dependencies)."""
    import boto3

    site_packages = Path(boto3.__file__).resolve().parents[1]
    site = folder / "lambda-runtime"
    site.mkdir()
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        (site / name).symlink_to(site_packages / name)
    return site


def test_the_lambda_handler_runs_from_exactly_what_the_program_packages(aws: AwsStack) -> None:
    """On the Lambda's runtime version (python3.12), with only what that runtime ships."""
    run = declare(prod_config())
    (function,) = [r for r in run.resources if r.type == "aws:lambda/function:Function"]
    assert function.inputs["handler"] == "cutover.engine.watchdog.handler"
    env = json.loads(function.inputs["environment"]["variables"]["CUTOVER_OUTPUTS"])
    # every output the helper reads; not its own, nor previousTraffic (the pack's only)
    assert env == {k: v for k, v in run.outputs.items() if k not in ("watchdog", "previousTraffic")}
    code = aws.tmp / "code"
    for name, entry in function.inputs["code"]["archive"].items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry["asset"]["path"], code / name)
    site = lambda_site(aws.tmp)
    lambda_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        **aws.env,
        **OUTLIVED,
        "PYTHONPATH": f"{code}:{site}",
        "CUTOVER_OUTPUTS": json.dumps(aws.data["checkout"]),
    }
    # the Lambda's own Python, without site-packages: only the archive and boto3
    interpreter = [runtime_interpreter(RUNTIME), "-S"]
    for absent in ("click", "cryptography", "kubernetes", "matplotlib", "pulumi", "yaml"):
        probe = subprocess.run([*interpreter, "-c", f"import {absent}"], env=lambda_env,
                               capture_output=True, cwd=aws.tmp)  # fmt: skip
        assert probe.returncode != 0, f"{absent} is importable in the Lambda stand-in runtime"

    aws.set_weights({"blue": 85, "green": 15})
    before = aws.forward_config()
    invoke = "import json; from cutover.engine.watchdog import handler; print(json.dumps(handler({}, None)))"
    process = stop_at_first_step_and_outlive_its_lease(aws)
    with running(process), frozen(process):
        aws.outlive_leases()
        result = subprocess.run([*interpreter, "-c", invoke], env=lambda_env, capture_output=True,
                                text=True, cwd=aws.tmp, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout.strip().splitlines()[-1])["findings"]
    assert [f["action"] for f in findings] == ["restored"]
    assert aws.forward_config() == before
    assert latest(aws)["failure"]["reason"] == "watchdog"


def test_a_frozen_shift_that_lost_its_lease_never_moves_traffic_again(aws: AwsStack) -> None:
    """Frozen (SIGSTOP: a laptop asleep, a VM paused) past its lease: the watchdog gives the
    traffic back; woken, the shift finds its lease or its journal item taken and stops
    without moving traffic again (exit 1)."""
    process = spawn_outlived(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                             "--steps", "30,100", "--bake", "4s", "--interval", "0.1s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        os.kill(process.pid, __import__("signal").SIGSTOP)
        aws.outlive_leases()
        passed = watchdog(aws)
        assert "restored" in passed.stdout, passed.stdout + passed.stderr
        assert aws.served() == {"blue": 100, "green": 0}
        os.kill(process.pid, __import__("signal").SIGCONT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "taken over" in err
    assert aws.served() == {"blue": 100, "green": 0}  # the next step (100%) was never written
    assert latest(aws)["status"] == "rolled-back"


def test_each_restore_is_told_to_its_own_stack_only(aws: AwsStack) -> None:
    """Defect 7: two services sharing one journal table, a dead shift on each. One pass
    restores both; each deployment's events go to its own stack's topic, never the other's."""
    aws.add_service("payments")
    shared = aws.tmp / "payments-shared-journal.json"
    shared.write_text(json.dumps({**aws.data["payments"],
                                  "journalTable": aws.data["checkout"]["journalTable"]}))  # fmt: skip
    aws.topic_messages("payments")  # subscribe before anything is published
    checkout = spawn_outlived(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                              "--steps", "50,100", "--bake", "60s", "--interval", "0.1s"))  # fmt: skip
    payments = spawn_outlived(aws, "shift", "--to", "green", *aws.gate_args(), "--steps", "20,100",
                              "--bake", "60s", "--interval", "0.1s", "--outputs", str(shared),
                              "--journal", "dynamodb")  # fmt: skip
    with running(checkout), running(payments):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="checkout's step")
        aws.wait_for(
            lambda: aws.served("payments") == {"blue": 80, "green": 20}, what="payments' step"
        )
        with frozen(checkout), frozen(payments):
            aws.outlive_leases()
            passed = aws.cutover("watchdog", "--once", "--outputs", str(aws.outputs["checkout"]),
                                 "--outputs", str(shared), "--journal", "dynamodb", env=OUTLIVED)  # fmt: skip
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.count("restored") == 2, passed.stdout
    assert aws.served() == {"blue": 100, "green": 0}
    assert aws.served("payments") == {"blue": 100, "green": 0}
    told = {s: {m["deployment"] for m in aws.topic_messages(s)} for s in ("checkout", "payments")}
    assert len(told["checkout"]) == 1 and len(told["payments"]) == 1, told
    assert told["checkout"].isdisjoint(told["payments"]), told
