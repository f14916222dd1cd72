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


# Each action at its current major, with the inputs its own action.yml declares (the ones
# these workflows may use), as checked against the actions' repositories.
ACTIONS = {
    "actions/checkout": ("v6", {"fetch-depth", "ref", "token"}),
    "actions/setup-python": ("v6", {"python-version", "cache"}),
    "aws-actions/configure-aws-credentials": ("v6", {"role-to-assume", "aws-region"}),
    "pulumi/auth-actions": (
        "v1",
        {"organization", "requested-token-type", "scope", "token-expiration", "cloud-url"},
    ),
    "pulumi/actions": (
        "v7",
        {
            "command",
            "stack-name",
            "work-dir",
            "comment-on-pr",
            "pulumi-version",
            "policyPacks",
            "policyPackConfigs",
            "refresh",
            "diff",
        },
    ),
    "actions/upload-artifact": ("v7", {"name", "path"}),
}


def test_every_action_is_at_its_current_major_with_real_inputs() -> None:
    for workflow in sorted(WORKFLOW.parent.glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job["steps"]:
                if "uses" not in step:
                    continue
                action, _, major = step["uses"].partition("@")
                assert action in ACTIONS, f"{workflow.name}: {action} is not a known action"
                want, inputs = ACTIONS[action]
                assert major == want, f"{workflow.name}: {action}@{major}; expected @{want}"
                assert set(step.get("with", {})) <= inputs, (workflow.name, action)
                if action == "pulumi/actions":
                    assert step["with"]["pulumi-version"].count(".") == 2  # pinned exactly
        text = workflow.read_text()
        assert "PULUMI_ACCESS_TOKEN" not in text  # Pulumi Cloud by OIDC (pulumi/auth-actions)
        if "pulumi/actions" in text:
            assert "policies/venv/.installed" in text  # the pack's environment, as the engine uses
