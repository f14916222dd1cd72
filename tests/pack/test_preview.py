"""`cutover preview`: the program under mocks and the real pack over gRPC, as one command."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.harness.program_runs import ROOT, previous_outputs
from tests.harness.records import PACK_CONFIG, record

# Nothing for boto3 to find credentials in: no keys, no files, no instance metadata.
NO_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def without_credentials() -> dict[str, str]:
    """This environment with every AWS credential taken away (a fork's pull request)."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**kept, **NO_CREDENTIALS}


def preview(
    tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cutover",
            "preview",
            "--project-dir",
            str(ROOT),
            "--policy-pack",
            str(ROOT / "policies"),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=120,
        env=env,
    )


def flip_to_green(tmp: Path, approval: dict[str, Any] | None = None) -> list[str]:
    """A stack file moving traffic to green with its records, the pack config and the previous outputs."""
    documents = {k: record(k) for k in ("approval", "security-signoff", "rollback-drill")}
    if approval is not None:
        documents["approval"] = approval
    paths = []
    for kind, document in documents.items():
        path = tmp / f"green-{kind}.json"
        path.write_text(json.dumps(document))
        paths.append(str(path))
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    stack["config"]["cutover:activeColor"] = "green"
    stack["config"]["cutover:gateRecords"] = paths
    (tmp / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack))
    (tmp / "pack.json").write_text(json.dumps(PACK_CONFIG))
    (tmp / "previous.json").write_text(json.dumps(previous_outputs({"blue": 100, "green": 0}, 600)))
    return [
        "--stack-file",
        str(tmp / "Pulumi.prod.yaml"),
        "--policy-pack-config",
        str(tmp / "pack.json"),
        "--previous",
        str(tmp / "previous.json"),
    ]


def test_gated_flip_passes(tmp_path: Path) -> None:
    result = preview(tmp_path, *flip_to_green(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "green  weight 100  desired 6  release 1.42.0" in result.stdout
    assert "port 443: forward blue 100 → 0, green 0 → 100" in result.stdout
    listener = next(line for line in result.stdout.splitlines() if "port 443: forward" in line)
    assert listener.startswith("  ~ lb:Listener")  # updated, as pulumi preview marks it
    assert "Resources: 1 to update," in result.stdout
    assert "PASS  security-signoff (gate) [mandatory]" in result.stdout
    # previous outputs that name no journal: its outcomes are said unread, never passed silently
    assert "NOT JUDGED  chairman-approval (gate) [mandatory]" in result.stdout
    assert "(the previous outputs name no journal to read)." in result.stdout
    assert "No mandatory policy is violated by what was read." in result.stdout


def journal_named(tmp: Path) -> None:
    """The previous outputs as `pulumi stack output --json` gives them: naming the journal."""
    previous = json.loads((ROOT / "tests" / "unit" / "data" / "outputs.json").read_text())
    previous.update(json.loads((tmp / "previous.json").read_text()))
    (tmp / "previous.json").write_text(json.dumps(previous))


def test_without_credentials_no_policy_fails_for_the_journal_it_could_not_read(
    tmp_path: Path,
) -> None:
    """A fork's preview: the journal cannot be read, so the gate that depends on its outcomes
    is named as not judged, and every other policy is judged."""
    args = flip_to_green(tmp_path)
    journal_named(tmp_path)
    result = preview(tmp_path, *args, env=without_credentials())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "  NOT JUDGED  chairman-approval (gate) [mandatory]: it depends on a fact not read " \
        "here (below); `pulumi up` judges it" in lines  # fmt: skip
    assert "  PASS  security-signoff (gate) [mandatory]" in lines
    assert "  PASS  rollback-tested (gate) [mandatory]" in lines
    assert lines[-3:] == [
        "Not read here: how the latest shift towards each color ended, in the stack's journal "
        "(NoCredentialsError: Unable to locate credentials).",
        "Not judged here, for `pulumi up` to judge where it can be read: chairman-approval.",
        "No mandatory policy is violated by what was read.",
    ]
    assert "Blocked" not in result.stdout and "FAIL" not in result.stdout
    data = json.loads(
        preview(tmp_path, *args, "--output", "json", env=without_credentials()).stdout
    )
    assert data["blocked"] is False and data["notJudged"] == ["chairman-approval"]
    assert "NoCredentialsError" in data["notRead"][0]["why"]
    judged = {p["name"]: p["judged"] for p in data["policies"]}
    assert judged["chairman-approval"] is False and judged["security-signoff"] is True


def test_without_credentials_a_record_that_fails_on_its_own_still_blocks(tmp_path: Path) -> None:
    """What was read is judged: a forged approval fails whatever the journal would say."""
    forged = copy.deepcopy(record("approval"))
    forged["record"]["expiresAt"] = "2099-01-01T00:00:00Z"
    args = flip_to_green(tmp_path, approval=forged)
    journal_named(tmp_path)
    result = preview(tmp_path, *args, env=without_credentials())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  chairman-approval (gate) [mandatory]: green release 1.42.0" in result.stdout
    assert "a signature that does not match the record" in result.stdout
    assert "NOT JUDGED" not in result.stdout
    assert result.stdout.rstrip().endswith(
        "Blocked: a mandatory policy is violated by what was read."
    )


def test_forged_approval_blocks_with_exit_1(tmp_path: Path) -> None:
    forged = copy.deepcopy(record("approval"))
    forged["record"]["expiresAt"] = "2099-01-01T00:00:00Z"
    result = preview(tmp_path, *flip_to_green(tmp_path, approval=forged), "--output", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["blocked"] is True
    violations = {p["name"]: p["violations"] for p in data["policies"]}
    assert (
        "a signature that does not match the record"
        in violations["chairman-approval"][0]["message"]
    )
    assert violations["weights-valid"] == []


def test_without_records_the_prod_stack_is_blocked_by_the_gates(tmp_path: Path) -> None:
    result = preview(tmp_path, "--stack", "prod")
    assert result.returncode == 1
    assert "FAIL  chairman-approval (gate) [mandatory]: blue release 1.41.0" in result.stdout
    assert "PASS  monitoring-active [mandatory]" in result.stdout


def test_bad_input_exits_2(tmp_path: Path) -> None:
    missing = preview(tmp_path, "--stack", "qa")
    assert (
        missing.returncode == 2 and "no " in missing.stderr and "Pulumi.qa.yaml" in missing.stderr
    )
    (tmp_path / "bad.json").write_text(json.dumps({"chairman-approval": {"trustedKeys": 5}}))
    invalid = preview(tmp_path, "--policy-pack-config", str(tmp_path / "bad.json"))
    assert (
        invalid.returncode == 2
        and "chairman-approval.trustedKeys: 5 is not of type 'array'" in invalid.stderr
    )


def test_the_kubernetes_example_previews_with_the_same_gates(tmp_path: Path) -> None:
    example = ROOT / "examples" / "kubernetes" / "Pulumi.prod.yaml"
    (tmp_path / "pack.json").write_text(json.dumps(PACK_CONFIG))
    steady = tmp_path / "steady.json"
    steady.write_text(json.dumps(previous_outputs({"blue": 100, "green": 0}, 600)))
    args = ["--stack-file", str(example), "--policy-pack-config", str(tmp_path / "pack.json")]
    # nothing moves: every policy passes
    result = preview(tmp_path, *args, "--previous", str(steady), "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {r["type"] for r in report["resources"]} >= {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
    }
    # the same file moving traffic to green without records: refused by the gates
    stack = yaml.safe_load(example.read_text())
    stack["config"]["cutover:activeColor"] = "green"
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack))
    args[1] = str(tmp_path / "Pulumi.prod.yaml")
    moved = preview(tmp_path, *args, "--previous", str(steady))
    assert moved.returncode == 1
    assert "FAIL  chairman-approval" in moved.stdout
    assert "green release 1.42.0" in moved.stdout
    version = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())["version"]
    assert f"Policies (cutover-gates@{version})" in moved.stdout


def test_three_previews_are_byte_identical(tmp_path: Path) -> None:
    texts = {preview(tmp_path).stdout for _ in range(3)}
    assert len({preview(tmp_path, "--output", "json").stdout for _ in range(2)}) == 1
    assert len(texts) == 1
    (text,) = texts
    rows = [line for line in text.splitlines() if line.startswith("    ")]
    starts = {re.match(r"    \S+ +", line).end() for line in rows}  # names start in one column
    assert len(starts) == 1, starts


def test_json_preview_has_operations_and_before_after_weights(tmp_path: Path) -> None:
    result = preview(tmp_path, *flip_to_green(tmp_path), "--output", "json")
    assert result.returncode == 0, result.stderr
    resources = json.loads(result.stdout)["resources"]
    (listener,) = [r for r in resources if "weights" in r]
    assert listener["operation"] == "update"
    assert listener["weights"] == {
        "before": {"blue": 100, "green": 0},
        "after": {"blue": 0, "green": 100},
    }
    assert {r["operation"] for r in resources} <= {"update", "same", "unknown"}


def test_a_blocked_preview_says_so_once(tmp_path: Path) -> None:
    forged = copy.deepcopy(record("approval"))
    forged["record"]["expiresAt"] = "2099-01-01T00:00:00Z"
    result = preview(tmp_path, *flip_to_green(tmp_path, forged))
    assert result.returncode == 1
    assert result.stdout.count("Blocked") == 1 and result.stderr == ""


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                          cwd=repo, capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def test_the_pull_request_preview_compares_each_stack_file_with_its_base(tmp_path: Path) -> None:
    """.ci/preview-changed, as the pull-request workflow runs it: a changed stack file is
    previewed against its base-branch version (a change that moves no traffic is not Blocked,
    one that moves traffic without its gates is), an added one as a new stack's first update,
    and a deleted one is said, not previewed (never a failed job)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    prod = (ROOT / "Pulumi.prod.yaml").read_text()
    (repo / "Pulumi.prod.yaml").write_text(prod)
    (repo / "Pulumi.old.yaml").write_text(prod)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    base = _git(repo, "rev-parse", "HEAD")
    (repo / "Pulumi.prod.yaml").write_text(
        prod.replace("errorRatePercent: 1", "errorRatePercent: 2")
    )
    (repo / "Pulumi.staging.yaml").write_text(
        prod.replace(
            "  cutover:activeColor: blue",
            "  cutover:activeColor: blue\n  cutover:production: false",
        )
    )
    _git(repo, "rm", "-q", "Pulumi.old.yaml")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "change")

    def previewed() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".ci" / "preview-changed"), base], cwd=repo,
                              capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "PROJECT": str(ROOT)})  # fmt: skip

    quiet = previewed()
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    summary = quiet.stdout
    assert "## old: stack file deleted" in summary
    assert "## cutover preview: prod, against its base-branch version (exit 0)" in summary
    assert "## cutover preview: staging, as a new stack's first update (exit 0)" in summary
    assert "Blocked" not in summary and "::warning::" not in quiet.stderr
    assert "the stack's first update: nothing to roll back to yet, so no drill" in summary
    # the base branch names no journal: whether traffic was rolled back since is said unread,
    # and the gates that depend on it are left to `pulumi up`, not failed and not passed
    assert "Not read here: how the latest shift towards each color ended" in summary
    assert "NOT JUDGED  chairman-approval (gate)" in summary

    (repo / "Pulumi.prod.yaml").write_text(
        prod.replace("  cutover:activeColor: blue", "  cutover:activeColor: green")
    )
    _git(repo, "commit", "-qam", "move traffic")
    moved = previewed()
    assert moved.returncode == 0, moved.stdout + moved.stderr  # a warning, not a failed job
    assert "## cutover preview: prod, against its base-branch version (exit 1)" in moved.stdout
    assert "Blocked: a mandatory policy is violated by what was read." in moved.stdout
    assert "::warning::stack prod" in moved.stderr


def test_a_program_in_pulumi_yamls_main_is_run_and_its_failure_is_one_line(tmp_path: Path) -> None:
    """The program is Pulumi.yaml's `main` (here a folder), as the engine runs it; when it
    raises, the preview fails with one line naming where, never a traceback."""
    project, program = tmp_path / "project", tmp_path / "program"
    project.mkdir()
    program.mkdir()
    (project / "Pulumi.yaml").write_text("name: cutover\nmain: ../program\nruntime: python\n")
    (project / "Pulumi.prod.yaml").write_text("config: {}\n")
    (program / "__main__.py").write_text("raise RuntimeError('no cluster named here')\n")
    result = subprocess.run(
        [sys.executable, "-m", "cutover", "preview", "--project-dir", str(project),
         "--policy-pack", str(ROOT / "policies")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: the program {program / '__main__.py'} failed at {program / '__main__.py'}:1: "
        "RuntimeError: no cluster named here"
    ]
