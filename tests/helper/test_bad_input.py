"""Bad input, through the real CLI against the rehearsal stack: each wrong flag is refused
with exit 2 and one line on stderr naming it, never a traceback, and the refused command
leaves no trace: nothing journaled or locked, the weights as they were, no file written or
changed (issue 28)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.aws_stack import AwsStack
from tests.helper.test_shift import shift

Case = Callable[[AwsStack], list[str]]


def _file(aws: AwsStack, name: str, content: str | bytes) -> str:
    path = aws.tmp / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def _outputs_with(aws: AwsStack, **changed: object) -> str:
    data = {**json.loads(aws.outputs["checkout"].read_text()), **changed}
    return _file(aws, "changed-outputs.json", json.dumps(data))


def _analysed(aws: AwsStack) -> list[str]:
    """A shift on the stack with its analysis on (one-minute windows, published at once)."""
    data = json.loads(aws.outputs["checkout"].read_text())
    analysis = {**data["analysis"], "enabled": True, "periodSeconds": 60, "delaySeconds": 0}
    outputs = _outputs_with(aws, analysis=analysis)
    return ["shift", "--to", "green", *aws.gate_args(), "--outputs", outputs,
            "--journal", aws.journal()]  # fmt: skip


# (the flag or variable the line must name, the invocation, its environment)
CASES: dict[str, tuple[str, Case, dict[str, str]]] = {
    "a deadline shorter than the plan": (
        "--deadline",
        lambda aws: shift(aws, "--steps", "10,100", "--bake", "2s", "--deadline", "3s"),
        {},
    ),
    # a bake or a verification too short for the enabled analysis (issue 28, item 15)
    "a bake the analysis cannot judge": (
        "--bake",
        lambda aws: [*_analysed(aws), "--steps", "10,100", "--bake", "1s"],
        {},
    ),
    "a verification the analysis cannot judge": (
        "--verify-for",
        lambda aws: [*_analysed(aws), "--steps", "100", "--bake", "60s", "--verify-for", "30s"],
        {},
    ),
}


def _tree(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folders`: its size and modification time."""
    return {
        str(p): (p.stat().st_size, p.stat().st_mtime_ns)
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_no_trace(aws: AwsStack, case: str) -> None:
    named, invocation, env = CASES[case]
    args = invocation(aws)
    before = _tree(aws.tmp, aws.records, aws.keys)
    result = aws.cutover(*args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and named in lines[0], lines[0]
    assert _tree(aws.tmp, aws.records, aws.keys) == before  # nothing written, journaled, locked
    assert aws.served() == {"blue": 100, "green": 0}
    assert (
        aws.client("dynamodb").scan(TableName=aws.data["checkout"]["journalTable"])["Items"] == []
    )
