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
    assert "cancelled" in rollback["if"] and "steps.shift.outputs.code == '1'" in rollback["if"]
    assert shift["timeout-minutes"] * 60 > deadline
    assert job["timeout-minutes"] >= shift["timeout-minutes"] + rollback["timeout-minutes"]
    commit = next(s for s in job["steps"] if "git push" in s.get("run", ""))
    assert commit["if"] == "always() && steps.shift.outcome == 'success'"
    assert "gh pr create" in commit["run"]
