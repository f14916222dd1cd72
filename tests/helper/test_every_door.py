"""Every door, through the real CLI against moto's server (issue 28): one owner per listener,
one gate judge for every move, and a closed terminal or output that gives traffic back.

Frozen drivers are SIGSTOPped processes whose leases the tests outlive (tests/harness/
cli_runs.py); every wait is on what the journal or the listener says, never on a sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

from cutover.deployment import Deployment, Options, scope_of
from cutover.journal.file import FileJournal
from cutover.journal.owner import Owner
from tests.harness.aws_stack import AwsStack
from tests.harness.cli_runs import OUTLIVED, frozen, running
from tests.helper.test_watchdog import dynamo, latest, spawn_outlived, watchdog

ROOT = Path(__file__).resolve().parents[2]
BLUE = {"blue": 100, "green": 0}
GREEN = {"blue": 0, "green": 100}


def stack_file(aws: AwsStack) -> Path:
    """A copy of the shipped stack file, for the write-back to follow what is served."""
    path = aws.tmp / "Pulumi.prod.yaml"
    shutil.copy(ROOT / "Pulumi.prod.yaml", path)
    return path


def shift(aws: AwsStack, *extra: str) -> list[str]:
    return ["shift", "--to", "green", *aws.gate_args(), "--interval", "0.05s", *extra]


def approved_again(aws: AwsStack) -> Path:
    """The records with a new approval of green's release, signed now (after a rollback)."""
    records = aws.tmp / "records-now"
    shutil.copytree(aws.records, records, dirs_exist_ok=True)
    signed = aws.cutover("approve", "--stack", "prod", "--color", "green", "--stack-file",
                         str(ROOT / "Pulumi.prod.yaml"), "--gates-config", str(aws.gates_config),
                         "--key", str(aws.keys / "chairman.key"),
                         "--out", str(records / "green-approval.json"))  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    return records


def test_a_woken_shift_never_undoes_a_newer_release(aws: AwsStack) -> None:
    """Defect 1: frozen past its lease, restored by the watchdog, woken after a newer shift
    succeeded: it exits 1 saying a newer deployment took the listener, writes no weights and
    no stack config; the newer release stays served and written."""
    config = stack_file(aws)
    old = spawn_outlived(aws, *dynamo(aws, *shift(aws, "--steps", "30,100", "--bake", "60s",
                                                  "--stack-config", str(config))))  # fmt: skip
    with running(old):
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        os.kill(old.pid, signal.SIGSTOP)  # a laptop asleep: it comes back later
        aws.outlive_leases()
        assert "restored" in watchdog(aws).stdout
        records = approved_again(aws)  # green was rolled back on this stack: a new approval
        newer = aws.cutover(*dynamo(aws, "shift", "--to", "green", "--gates-config",
                                    str(aws.gates_config), "--records", str(records), "--steps",
                                    "100", "--bake", "0s", "--interval", "0.05s",
                                    "--stack-config", str(config)), env=OUTLIVED)  # fmt: skip
        assert newer.returncode == 0, newer.stderr
        assert aws.served() == GREEN
        os.kill(old.pid, signal.SIGCONT)
        _, err = old.communicate(timeout=60)
    assert old.returncode == 1, err
    assert "took its listeners since" in err, err
    assert aws.served() == GREEN
    assert "  cutover:activeColor: green\n" in config.read_text()
    assert latest(aws)["status"] == "succeeded"


def test_a_shift_refuses_to_start_over_an_interrupted_one_and_names_it(aws: AwsStack) -> None:
    """Defect 2: a shift killed at 50/50 still owns the listener: a new shift exits 3,
    naming it and what to do, and journals nothing; `rollback --deployment A --if-moved`
    (the pipeline's cleanup) then gives A's traffic back."""
    killed = aws.spawn(*aws.args(*shift(aws, "--steps", "50,100", "--bake", "60s")))
    with running(killed):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=10)
    (interrupted,) = aws.deployments()
    journal = (aws.tmp / "journal.json").read_text()
    refused = aws.cutover(*aws.args(*shift(aws, "--steps", "100", "--bake", "0s")))
    assert refused.returncode == 3, refused.stderr
    assert f"deployment {interrupted['id']}" in refused.stderr
    assert (
        "`cutover resume` continues it, `cutover rollback` gives its traffic back" in refused.stderr
    )
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert (aws.tmp / "journal.json").read_text() == journal
    assert aws.served() == {"blue": 50, "green": 50}
    cleanup = aws.cutover(*aws.args("rollback", "--deployment", interrupted["id"], "--if-moved"))
    assert cleanup.returncode == 0, cleanup.stderr
    assert aws.served() == BLUE


def test_abort_finds_the_running_shift_whatever_its_id_says(aws: AwsStack) -> None:
    """Defect 5: a finished shift from a host whose clock was ten minutes fast has the later
    id; `abort` still finds the shift running now (the journal's epochs order them) and
    gives its traffic back."""
    key = aws.data["checkout"]["listenerArn"]
    fast = Deployment(
        id=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + 600)) + "-fa57fa",
        scope=scope_of([key]), listeners=[key], services=["prod/checkout"],
        options=Options(target="blue", steps=[100]), snapshot={}, plan=[BLUE],
        started_at=time.time(), generation=1, epochs={key: 1},
    )  # fmt: skip
    journal = FileJournal(aws.tmp / "journal.json")
    assert journal.take(key, Owner(1, fast.id, fast.scope))
    journal.save(fast)
    fast.status = __import__("cutover_gates.contract").contract.Status.SUCCEEDED
    journal.save(fast)
    process = aws.spawn(*aws.args(*shift(aws, "--steps", "30,100", "--bake", "60s")))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        aborted = aws.cutover(*aws.args("abort"))
        process.communicate(timeout=30)
    assert aborted.returncode == 0, aborted.stderr
    assert "No shift in progress" not in aborted.stdout
    assert "blue 100 / green 0 served again" in aborted.stdout
    assert aws.served() == BLUE


def test_a_release_train_is_given_back_by_the_watchdog_of_its_other_stack(aws: AwsStack) -> None:
    """Defect 4: a train over two stacks, its driver frozen past its lease: the payments
    stack's own watchdog (its outputs only) gives both services back."""
    aws.add_service("payments")
    shared = aws.tmp / "payments-shared-journal.json"
    shared.write_text(json.dumps({**aws.data["payments"],
                                  "journalTable": aws.data["checkout"]["journalTable"]}))  # fmt: skip
    train = spawn_outlived(aws, *shift(aws, "--steps", "40,100", "--bake", "60s"), "--outputs",
                           str(aws.outputs["checkout"]), "--outputs", str(shared),
                           "--journal", "dynamodb")  # fmt: skip
    with running(train):
        aws.wait_for(lambda: aws.served("payments") == {"blue": 60, "green": 40}, what="the step")
        with frozen(train):
            aws.outlive_leases()
            passed = aws.cutover("watchdog", "--once", "--outputs", str(shared), "--journal",
                                 "dynamodb", env=OUTLIVED)  # fmt: skip
            assert passed.returncode == 0, passed.stdout + passed.stderr
            assert "restored" in passed.stdout, passed.stdout
            assert aws.served("checkout") == BLUE and aws.served("payments") == BLUE


def test_resume_judges_the_gates_again(aws: AwsStack) -> None:
    """Defect 7: a shift killed at 50/50 whose approval is gone since: `resume` is refused
    (exit 2, nothing moved, still interrupted); `rollback` then gives its traffic back."""
    killed = aws.spawn(*aws.args(*shift(aws, "--steps", "50,100", "--bake", "60s")))
    with running(killed):
        aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=10)
    records = aws.tmp / "records-now"
    shutil.copytree(aws.records, records)
    for path in records.glob("green-approval*.json"):
        path.unlink()
    refused = aws.cutover(*aws.args("resume", "--gates-config", str(aws.gates_config),
                                    "--records", str(records)))  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "approval gate for prod/checkout: green release" in refused.stderr
    assert aws.served() == {"blue": 50, "green": 50}
    assert aws.deployments()[-1]["status"] == "in-progress"
    back = aws.cutover(*aws.args("rollback"))
    assert back.returncode == 0, back.stderr
    assert aws.served() == BLUE


def test_a_shift_judges_the_gates_before_every_step(aws: AwsStack) -> None:
    """Defect 7, in a running shift: the approval is withdrawn while it bakes its first
    step; before its next move it gives traffic back, saying which gate."""
    records = aws.tmp / "records-now"
    shutil.copytree(aws.records, records)
    process = aws.spawn(*aws.args("shift", "--to", "green", "--gates-config",
                                  str(aws.gates_config), "--records", str(records), "--steps",
                                  "30,100", "--bake", "3s", "--interval", "0.05s"))  # fmt: skip
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 70, "green": 30}, what="first step")
        for path in records.glob("green-approval*.json"):
            path.unlink()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "rolled back (gates: approval gate for prod/checkout: green release" in err
    assert aws.served() == BLUE
    assert {"blue": 0, "green": 100} not in [e.get("weights") for d in aws.deployments()
                                             for e in d["events"] if e["type"] == "step"]  # fmt: skip


def test_sighup_gives_traffic_back_like_sigterm(aws: AwsStack) -> None:
    """Defect 13: the terminal closes (SIGHUP) during a bake: the split it found is back,
    exit 1, journaled rolled-back."""
    process = aws.spawn(*aws.args(*shift(aws, "--steps", "40,100", "--bake", "60s")))
    with running(process):
        aws.wait_for(lambda: aws.served() == {"blue": 60, "green": 40}, what="first step")
        process.send_signal(signal.SIGHUP)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert "interrupted by SIGHUP" in err
    assert aws.served() == BLUE
    assert aws.deployments()[-1]["status"] == "rolled-back"


def test_a_closed_output_gives_traffic_back(aws: AwsStack) -> None:
    """Defect 13: `cutover shift ... | head -2`: once its reader is gone, the shift's next line
    finds its output closed and gives traffic back, exit 1, rather than leave it split."""
    process = aws.spawn(*aws.args(*shift(aws, "--steps", "40,100", "--bake", "2s")))
    with running(process):
        assert process.stdout is not None
        for _ in range(2):
            process.stdout.readline()
        process.stdout.close()  # the reader (head -2) is gone
        aws.wait_for(lambda: process.poll() is not None, timeout=60, what="the shift to stop")
    assert process.returncode == 1
    assert aws.served() == BLUE
    (doc,) = aws.deployments()
    assert doc["status"] == "rolled-back"
    assert doc["failure"]["detail"] == "interrupted by a closed output"


def test_a_release_rolled_back_needs_an_approval_issued_since(aws: AwsStack) -> None:
    """Defect 6: after green's release was rolled back on this stack, the approval signed
    before the rollback moves no traffic onto it again (the same rule as the pack, from the
    journal's outcomes), and the recorded rollback stays; a new approval lets it move."""
    done = aws.cutover(*aws.args(*shift(aws, "--steps", "100", "--bake", "0s")))
    assert done.returncode == 0, done.stderr
    back = aws.cutover(*aws.args("rollback"))
    assert back.returncode == 0, back.stderr
    journal = (aws.tmp / "journal.json").read_text()
    again = aws.cutover(*aws.args(*shift(aws, "--steps", "100", "--bake", "0s")))
    assert again.returncode == 2, again.stderr
    assert "was rolled back on this stack" in again.stderr, again.stderr
    assert (aws.tmp / "journal.json").read_text() == journal
    assert aws.served() == BLUE
    records = approved_again(aws)
    moved = aws.cutover(*aws.args("shift", "--to", "green", "--gates-config",
                                  str(aws.gates_config), "--records", str(records),
                                  "--steps", "100", "--bake", "0s", "--interval", "0.05s"))  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert aws.served() == GREEN
