"""The deploy workflow never abandons traffic: read as GitHub reads it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cutover.durations import parse_duration

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "deploy.yml"


def test_a_cancelled_or_failed_shift_is_rolled_back_within_the_jobs_time() -> None:
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]
    steps = {s.get("id") or s.get("name"): s for s in job["steps"]}
    shift = steps["shift"]
    deadline = parse_duration(re.search(r"--deadline (\S+)", shift["run"]).group(1))
    rollback = next(s for s in job["steps"] if "cutover rollback" in s.get("run", ""))
    # whatever ended the shift (a failure, a cancel), the run gives back only its own deployment
    assert (
        rollback["if"]
        == "always() && steps.shift.outcome != 'success' && steps.shift.outcome != 'skipped'"
    )
    assert '--id-file "$RUNNER_TEMP/deployment-id"' in shift["run"]
    assert '--deployment "$(cat "$RUNNER_TEMP/deployment-id")" --if-moved' in rollback["run"]
    assert "nothing of its own to give back" in rollback["run"]
    assert shift["timeout-minutes"] * 60 > deadline
    assert job["timeout-minutes"] >= shift["timeout-minutes"] + rollback["timeout-minutes"]
    commit = next(s for s in job["steps"] if "git push" in s.get("run", ""))
    assert commit["if"] == "always() && steps.shift.outcome == 'success'"
    # the stage's exit gates are judged after a successful shift and signed with the deploy key
    gates = next(s for s in job["steps"] if "cutover exit-gates" in s.get("run", ""))
    assert gates["if"] == "always() && steps.shift.outcome == 'success'"
    assert gates["env"]["CUTOVER_DEPLOY_KEY"] == "${{ secrets.CUTOVER_DEPLOY_KEY }}"
    assert "gh pr create" in commit["run"]


# Each action pinned to the full commit of the release its comment names, as read from the
# action's own repository (git rev-parse "<tag>^{commit}"), with the inputs its action.yml at
# that commit declares (the ones these workflows may use).
ACTIONS = {
    "actions/checkout": (
        "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1", {"fetch-depth", "persist-credentials"}
    ),
    "actions/setup-python": (
        "5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0",
        {"python-version", "cache", "cache-dependency-path"},
    ),
    "aws-actions/configure-aws-credentials": (
        "e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3", {"role-to-assume", "aws-region"}
    ),
    "pulumi/auth-actions": (
        "141415910c3beb54e03b48e9057c204c97b956f2", "v2.1.0",
        {"organization", "requested-token-type"},
    ),
    "pulumi/actions": (
        "8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0",
        {"command", "stack-name", "comment-on-pr", "pulumi-version", "policyPacks",
         "policyPackConfigs"},
    ),
    "actions/upload-artifact": (
        "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0", {"name", "path"}
    ),
}  # fmt: skip


def test_every_action_is_pinned_to_a_reviewed_commit_and_the_pipeline_is_least_privilege() -> None:
    for workflow in sorted(WORKFLOW.parent.glob("*.yml")):
        text = workflow.read_text()
        document = yaml.safe_load(text)
        assert document["permissions"] == {}, workflow.name  # each job says what it needs
        for name, job in document["jobs"].items():
            assert "permissions" in job, (workflow.name, name)
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (workflow.name, step.get("name"))
                if "uses" not in step:
                    continue
                action, _, commit = step["uses"].partition("@")
                assert action in ACTIONS, f"{workflow.name}: {action} is not a reviewed action"
                want, version, inputs = ACTIONS[action]
                assert commit == want, f"{workflow.name}: {action}@{commit}; expected {want}"
                assert f"{action}@{commit}  # {version}" in text, (workflow.name, action)
                assert set(step.get("with", {})) <= inputs, (workflow.name, action)
                if action == "actions/checkout":
                    assert step["with"]["persist-credentials"] is False, workflow.name
                if action == "pulumi/actions":
                    assert step["with"]["pulumi-version"].count(".") == 2  # pinned exactly
        assert "PULUMI_ACCESS_TOKEN" not in text  # Pulumi Cloud by OIDC (pulumi/auth-actions)
        if "pulumi/actions" in text:
            assert "policies/venv/.installed" in text  # the pack's environment, as the engine uses
