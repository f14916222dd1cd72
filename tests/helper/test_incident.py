"""After something went wrong, nothing makes it worse: through the real CLI against moto.

- a restore writes what is served back into the stack's config, or prints the commands;
- where the config could not follow (the watchdog has no stack file), the pack refuses the
  next update that sends traffic back to the release that was rolled back, naming the
  rollback, until an approval newer than it exists (the program reads the stack's journal);
- a pipeline gives back only the deployment its own run started, and only if it moved
  traffic and did not succeed (`--id-file`, `rollback --deployment ID --if-moved`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.harness.aws_stack import AwsStack
from tests.harness.program_runs import ROOT
from tests.harness.records import PACK_CONFIG, record
from tests.helper.test_shift import FAST, shift


def dynamo(aws: AwsStack, *args: str) -> list[str]:
    return [*args, "--outputs", str(aws.outputs["checkout"]), "--journal", "dynamodb"]


def test_a_rollback_writes_the_split_it_restored_into_the_stack_config(aws: AwsStack) -> None:
    config = aws.tmp / "Pulumi.prod.yaml"
    done = aws.cutover(*shift(aws, "--steps", "100", *FAST, "--stack-config", str(config)))
    assert done.returncode == 0, done.stderr
    assert "  cutover:activeColor: green\n" in config.read_text()
    back = aws.cutover(*aws.args("rollback", "--stack-config", str(config)))
    assert back.returncode == 0, back.stderr
    assert aws.served() == {"blue": 100, "green": 0}
    text = config.read_text()
    assert "  cutover:activeColor: blue\n" in text and "  cutover:trafficPercent: 100\n" in text
    assert "Wrote cutover:activeColor=blue, cutover:trafficPercent=100" in back.stdout


def test_a_rollback_without_a_stack_file_prints_the_commands(aws: AwsStack) -> None:
    aws.set_weights({"blue": 70, "green": 30})
    done = aws.cutover(*shift(aws, "--steps", "100", *FAST))
    assert done.returncode == 0, done.stderr
    back = aws.cutover(*aws.args("rollback"))
    assert back.returncode == 0, back.stderr
    assert "pulumi config set cutover:activeColor blue" in back.stdout
    assert "pulumi config set cutover:trafficPercent 70" in back.stdout


def _preview(
    aws: AwsStack, tmp: Path, approval: dict, previous_weights: dict
) -> subprocess.CompletedProcess[str]:
    """`cutover preview` of the stack file sending all traffic to green, with valid gate
    records, against the stack's real outputs (its journal on moto) as the previous update."""
    paths = []
    for kind in ("approval", "security-signoff", "rollback-drill"):
        path = tmp / f"green-{kind}.json"
        path.write_text(json.dumps(approval if kind == "approval" else record(kind)))
        paths.append(str(path))
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    stack["config"]["cutover:activeColor"] = "green"
    stack["config"]["cutover:gateRecords"] = paths
    (tmp / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack))
    (tmp / "pack.json").write_text(json.dumps(PACK_CONFIG))
    previous = dict(aws.data["checkout"])
    changed = datetime.now(UTC) - timedelta(hours=2)
    previous["traffic"] = {
        "weights": previous_weights,
        "releases": {"blue": "1.41.0", "green": "1.42.0"},
        "desiredCounts": {"blue": 6, "green": 6},
        "changedAt": changed.isoformat(timespec="seconds"),
    }
    (tmp / "previous.json").write_text(json.dumps(previous))
    return subprocess.run(
        [sys.executable, "-m", "cutover", "preview", "--project-dir", str(ROOT),
         "--policy-pack", str(ROOT / "policies"), "--stack-file", str(tmp / "Pulumi.prod.yaml"),
         "--policy-pack-config", str(tmp / "pack.json"), "--previous", str(tmp / "previous.json")],
        capture_output=True, text=True, cwd=tmp, timeout=180, env={**__import__("os").environ, **aws.env},
    )  # fmt: skip


@pytest.mark.parametrize(
    "previous_weights",
    [{"blue": 100, "green": 0}, {"blue": 0, "green": 100}],
    ids=["config-never-applied", "applied-then-restored"],
)
def test_the_pack_refuses_traffic_back_to_a_rolled_back_release_until_a_newer_approval(
    aws: AwsStack, previous_weights: dict[str, int]
) -> None:
    """The watchdog (or a rollback without a stack file) restored blue; the stack file still
    says green. Whether the last `pulumi up` applied green or not, the next one is refused,
    naming the rollback; a new approval lets it through."""
    approved = record("approval", issued=datetime.now(UTC) - timedelta(minutes=30))
    done = aws.cutover(*dynamo(aws, "shift", "--to", "green", *aws.gate_args(), "--steps", "100",
                               *FAST))  # fmt: skip
    assert done.returncode == 0, done.stderr
    back = aws.cutover(*dynamo(aws, "rollback"))
    assert back.returncode == 0, back.stderr
    rolled_back = max(d for d in _ids(aws))
    refused = _preview(aws, aws.tmp, approved, previous_weights)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "FAIL  chairman-approval" in refused.stdout
    assert "was rolled back on this stack at" in refused.stdout
    assert f"deployment {rolled_back}" in refused.stdout
    assert "rollback by " in refused.stdout  # by whom: `cutover rollback` by its user and host
    newer = record("approval", issued=datetime.now(UTC))
    passed = _preview(aws, aws.tmp, newer, previous_weights)
    assert "PASS  chairman-approval" in passed.stdout, passed.stdout + passed.stderr


def _ids(aws: AwsStack) -> list[str]:
    table = aws.data["checkout"]["journalTable"]
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    return [i["sk"]["S"] for i in items if i["pk"]["S"].startswith("deploy#")]


def test_a_journal_that_cannot_be_read_is_named_by_the_preview_and_left_to_pulumi_up(
    aws: AwsStack,
) -> None:
    """The journal unreachable: the preview judges what it read and names the approval gate
    as not judged (the pack itself fails it closed at `pulumi up`: tests/pack)."""
    unreachable = {**aws.env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    approved = record("approval")
    original = dict(aws.env)
    aws.env.update(unreachable)
    try:
        result = _preview(aws, aws.tmp, approved, {"blue": 100, "green": 0})
    finally:
        aws.env.clear()
        aws.env.update(original)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  NOT JUDGED  chairman-approval (gate) [mandatory]" in result.stdout
    assert "in the stack's journal (EndpointConnectionError: Could not connect" in result.stdout
    assert "  PASS  security-signoff (gate) [mandatory]" in result.stdout


# -- a pipeline gives back only what its own run moved ------------------------------------


def test_a_run_that_failed_before_moving_anything_gives_nothing_back(aws: AwsStack) -> None:
    """Defect 1: after a succeeded shift to green, a run towards blue fails at its first
    call. Its give-back step finds that its own deployment never moved traffic (or that it
    never started), and writes nothing: green keeps serving, no ungated flip to blue."""
    done = aws.cutover(*shift(aws, "--steps", "100", *FAST))
    assert done.returncode == 0, done.stderr
    id_file = aws.tmp / "deployment-id"
    aws.proxy.inject("DescribeListeners", *["5xx"] * 20)  # the run's very first call fails
    failed = aws.cutover(*shift(aws, "--steps", "100", *FAST, to="blue"),
                         "--id-file", str(id_file))  # fmt: skip
    aws.proxy.clear()
    assert failed.returncode == 1, failed.stderr
    assert not id_file.exists()  # it never started a deployment: nothing of its own to give back
    latest = aws.deployments()[-1]["id"]
    give_back = aws.cutover(*aws.args("rollback", "--deployment", latest, "--if-moved"))
    assert give_back.returncode == 0, give_back.stderr
    assert "it succeeded; nothing to give back" in give_back.stdout
    assert aws.served() == {"blue": 0, "green": 100}


def test_a_run_that_moved_traffic_and_was_cancelled_is_given_back_by_its_id(aws: AwsStack) -> None:
    aws.set_weights({"blue": 80, "green": 20})
    id_file = aws.tmp / "deployment-id"
    process = aws.spawn(*shift(aws, "--steps", "50,100", "--bake", "60s", "--interval", "0.05s"),
                        "--id-file", str(id_file))  # fmt: skip
    aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
    deployment = id_file.read_text().strip()
    process.kill()  # the runner is lost: the shift cannot give back itself
    process.communicate()
    give_back = aws.cutover(*aws.args("rollback", "--deployment", deployment, "--if-moved"))
    assert give_back.returncode == 0, give_back.stderr
    assert aws.served() == {"blue": 80, "green": 20}
    again = aws.cutover(*aws.args("rollback", "--deployment", deployment, "--if-moved"))
    assert "it already gave its traffic back; nothing to give back" in again.stdout
    assert aws.served() == {"blue": 80, "green": 20}


# -- a journal that holds anything ------------------------------------------------------------


def test_unreadable_journal_items_are_skipped_named_and_the_dead_shift_beside_them_restored(
    aws: AwsStack,
) -> None:
    """Defect 5: an item with no document and one from a newer release (an unknown status)
    beside a dead shift. The watchdog restores the shift, names both items once, and fails
    the pass only after (exit 1: a damaged item is worth an alarm); status, kpis, report and
    exit-gates read on, naming them, never a traceback."""
    from cutover.deployment import scope_of
    from tests.harness.cli_runs import OUTLIVED, frozen
    from tests.helper.test_watchdog import spawn_outlived, watchdog

    scope = scope_of([aws.data["checkout"]["listenerArn"]])
    table, db = aws.data["checkout"]["journalTable"], aws.client("dynamodb")
    process = spawn_outlived(aws, *dynamo(aws, "shift", "--to", "green", *aws.gate_args(),
                             "--steps", "50,100", "--bake", "60s", "--interval", "0.1s"))  # fmt: skip
    aws.wait_for(lambda: aws.served() == {"blue": 50, "green": 50}, what="first step")
    with frozen(process):
        newer = {"id": "20991231T000000Z-bbbbbb", "scope": scope, "status": "verifying-canary"}
        for sk, extra in (
            ("20991231T000000Z-aaaaaa", {}),
            (newer["id"], {"doc": {"S": json.dumps(newer)}}),
        ):
            db.put_item(TableName=table, Item={"pk": {"S": f"deploy#{scope}"}, "sk": {"S": sk},
                                               "status": {"S": "in-progress"}, **extra})  # fmt: skip
            db.put_item(TableName=table, Item={"pk": {"S": "active"}, "sk": {"S": f"{scope}#{sk}"}})
        aws.outlive_leases()
        passed = watchdog(aws)
    assert passed.returncode == 1, passed.stdout + passed.stderr
    assert "restored" in passed.stdout
    assert aws.served() == {"blue": 100, "green": 0}
    assert (
        "1 journal item(s) could not be read (every other deployment was looked after)"
        in passed.stderr
    )
    assert passed.stderr.count("skipped 2 journal items that do not parse") == 1
    assert "20991231T000000Z-aaaaaa: missing 'doc'" in passed.stderr
    assert "'verifying-canary' is not one this release knows" in passed.stderr
    for command in (["status", "--output", "json"], ["kpis", "--output", "json"],
                    ["report", "--out", str(aws.tmp / "r")],
                    ["exit-gates", *aws.gate_args()]):  # fmt: skip
        result = aws.cutover(*dynamo(aws, *command), env=OUTLIVED)
        assert result.returncode in (0, 1), (command, result.stderr)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        if command[0] != "status":  # status reads the newest owner's deployment only
            assert "skipped 2 journal items that do not parse" in result.stderr, command
    kpis = json.loads(aws.cutover(*dynamo(aws, "kpis", "--output", "json")).stdout)
    assert kpis["skippedJournalItems"] == 2
