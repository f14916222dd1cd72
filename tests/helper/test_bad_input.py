"""Bad input, through the real CLI against the rehearsal stack: each wrong flag, file or
environment value is refused with exit 2 and one line on stderr naming it, never a
traceback, and the refused command leaves no trace: nothing journaled or locked, the weights
as they were, no file written or changed (issue 28, items 10, 11, 12, 15 and 16)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.aws_stack import AwsStack
from tests.helper.test_shift import FAST, shift

Case = Callable[[AwsStack], list[str]]

GARBLED = "config:\n  cutover:activeColor: [blue\n"


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


def _release(aws: AwsStack, *extra: str, key: str = "chairman") -> list[str]:
    return ["--stack", "prod", "--color", "green", "--stack-file", str(aws.tmp / "Pulumi.prod.yaml"),
            "--gates-config", str(aws.gates_config), "--key", str(aws.keys / f"{key}.key"),
            *extra]  # fmt: skip


def _shift_into(aws: AwsStack, stack_config: str) -> list[str]:
    """A shift whose --stack-config holds `stack_config`."""
    path = _file(aws, "Pulumi.written.yaml", stack_config)
    return shift(aws, "--steps", "100", *FAST, "--stack-config", path)


def _signoff(aws: AwsStack, *extra: str) -> list[str]:
    return ["signoff", *_release(aws, key="security"), "--out", str(aws.tmp / "s.json"), *extra]


# (the flag or variable the line must name, the invocation, its environment)
CASES: dict[str, tuple[str, Case, dict[str, str]]] = {
    # item 10: the id file's folder is checked before anything is journaled
    "id file in a missing folder": (
        "--id-file",
        lambda aws: shift(aws, "--steps", "100", *FAST, "--id-file", "/nonexistent/dir/id"),
        {},
    ),
    "id file a folder": (
        "--id-file",
        lambda aws: shift(aws, "--steps", "100", *FAST, "--id-file", str(aws.tmp)),
        {},
    ),
    # item 11: empty values, empty steps, durations without bound, a deadline too short
    "empty steps": ("--steps", lambda aws: shift(aws, "--steps", "", *FAST), {}),
    "an empty step": ("--steps", lambda aws: shift(aws, "--steps", "10,,100", *FAST), {}),
    "empty smoke test": (
        "--smoke",
        lambda aws: shift(aws, "--steps", "100", *FAST, "--smoke", ""),
        {},
    ),
    "a bake of ages": (
        "--bake",
        lambda aws: shift(aws, "--steps", "100", "--bake", "99999999999999h"),
        {},
    ),
    "a deadline shorter than the plan": (
        "--deadline",
        lambda aws: shift(aws, "--steps", "10,100", "--bake", "2s", "--deadline", "3s"),
        {},
    ),
    "empty probe": ("--probe", lambda aws: shift(aws, "--steps", "100", *FAST, "--probe", ""), {}),
    "empty records": (
        "--records",
        lambda aws: aws.args(
            "shift",
            "--to",
            "green",
            "--steps",
            "100",
            *FAST,
            "--gates-config",
            str(aws.gates_config),
            "--records",
            "",
        ),
        {},
    ),  # fmt: skip
    "empty outputs": (
        "--outputs",
        lambda aws: ["status", "--outputs", "", "--journal", aws.journal()],
        {},
    ),
    "empty journal": (
        "--journal",
        lambda aws: ["status", "--outputs", str(aws.outputs["checkout"]), "--journal", ""],
        {},
    ),
    "missing stack config": (
        "--stack-config",
        lambda aws: shift(aws, "--steps", "100", *FAST, "--stack-config", "/nonexistent.yaml"),
        {},
    ),
    "garbled stack config": ("--stack-config", lambda aws: _shift_into(aws, GARBLED), {}),
    "stack config without config": (
        "--stack-config",
        lambda aws: _shift_into(aws, "not a stack file\n"),
        {},
    ),
    **{
        f"{command} into a garbled stack config": (
            "--stack-config",
            lambda aws, command=command: aws.args(
                command, "--stack-config", _file(aws, "Pulumi.g.yaml", GARBLED)
            ),
            {},
        )
        for command in ("rollback", "abort")
    },
    "resume into a missing stack config": (
        "--stack-config",
        lambda aws: aws.args("resume", "--stack-config", str(aws.tmp / "missing.yaml")),
        {},
    ),
    # item 12: an empty id is not "the latest"
    "rollback of an empty id": (
        "--deployment",
        lambda aws: aws.args("rollback", "--deployment", "", "--if-moved"),
        {},
    ),
    "report of an empty id": (
        "--deployment",
        lambda aws: aws.args("report", "--deployment", ""),
        {},
    ),
    # item 15: a bake or a verification too short for the enabled analysis
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
    # item 16: what ended in a traceback
    "approve into /proc": (
        "--out",
        lambda aws: ["approve", *_release(aws), "--out", "/proc/approval.json"],
        {},
    ),
    "approve with an empty out": (
        "--out",
        lambda aws: ["approve", *_release(aws), "--out", ""],
        {},
    ),
    "report into /proc": ("--out", lambda aws: aws.args("report", "--out", "/proc/r"), {}),
    "kpis into /proc": ("--out", lambda aws: aws.args("kpis", "--out", "/proc/k"), {}),
    "keys into /proc": (
        "--out",
        lambda aws: ["keys", "new", "--name", "x", "--out", "/proc/x"],
        {},
    ),
    "binary outputs": (
        "--outputs",
        lambda aws: [
            "status",
            "--outputs",
            _file(aws, "bin.json", b"\xff\xfe\x00\x81"),
            "--journal",
            aws.journal(),
        ],
        {},
    ),  # fmt: skip
    "latin-1 outputs": (
        "--outputs",
        lambda aws: [
            "status",
            "--outputs",
            _file(aws, "latin.json", '{"stack": "caf\xe9"}'.encode("latin-1")),
            "--journal",
            aws.journal(),
        ],
        {},
    ),  # fmt: skip
    "analysis a string": (
        "--outputs",
        lambda aws: [
            "shift",
            "--to",
            "green",
            "--steps",
            "100",
            *FAST,
            *aws.gate_args(),
            "--outputs",
            _outputs_with(aws, analysis="on"),
            "--journal",
            aws.journal(),
        ],
        {},
    ),  # fmt: skip
    "read timeout abc": (
        "CUTOVER_AWS_READ_TIMEOUT",
        lambda aws: aws.args("status"),
        {"CUTOVER_AWS_READ_TIMEOUT": "abc"},
    ),
    "lease seconds abc": (
        "CUTOVER_LEASE_SECONDS",
        lambda aws: shift(aws, "--steps", "100", *FAST),
        {"CUTOVER_LEASE_SECONDS": "abc"},
    ),
    "an empty deploy key": (
        "CUTOVER_DEPLOY_KEY",
        lambda aws: aws.args("exit-gates", *aws.gate_args()),
        {"CUTOVER_DEPLOY_KEY": ""},
    ),
    "approve for an empty stack": (
        "--stack",
        lambda aws: ["approve", *_release(aws), "--stack", "", "--out", str(aws.tmp / "a.json")],
        {},
    ),
    "approve for an empty project": (
        "--project",
        lambda aws: ["approve", *_release(aws), "--project", "", "--out", str(aws.tmp / "a.json")],
        {},
    ),
    "approve valid for ages": (
        "--valid-for",
        lambda aws: [
            "approve",
            *_release(aws),
            "--valid-for",
            "100000d",
            "--out",
            str(aws.tmp / "a.json"),
        ],
        {},
    ),  # fmt: skip
    "drill valid past the pack's age limit": (
        "--valid-for",
        lambda aws: aws.args(
            "drill",
            "--to",
            "green",
            *aws.gate_args(),
            "--bake",
            "0.3s",
            "--key",
            str(aws.keys / "deploy.key"),
            "--valid-for",
            "30d",
        ),
        {},
    ),  # fmt: skip
    "signoff by an empty scanner": (
        "--scanner",
        lambda aws: _signoff(aws, "--scanner", "", "--findings", "critical=0"),
        {},
    ),
    "signoff of findings the pack refuses": (
        "--findings",
        lambda aws: _signoff(aws, "--scanner", "trivy", "--findings", "critical=1,high=0"),
        {},
    ),
    "signoff of an empty finding": (
        "--findings",
        lambda aws: _signoff(aws, "--scanner", "trivy", "--findings", "critical=0,,high=1"),
        {},
    ),
    # usage errors: one line too (issue 32, item 5)
    "an unknown color": ("--to", lambda aws: shift(aws, "--steps", "100", "--to", "purple"), {}),
    "an unknown option": ("--bogus", lambda aws: aws.args("status", "--bogus"), {}),
    "a missing option": ("--stack", lambda aws: ["approve", "--color", "green"], {}),
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
