"""Keys and gate records from the command line: what approvers and security automation run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cutover_gates.keys import key_id

from tests.harness.program_runs import ROOT
from tests.harness.records import KEYS, entry, record


def cutover(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cutover", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_keys_sign_and_verify_end_to_end(tmp_path: Path) -> None:
    made = cutover("keys", "new", "--name", "chairman", "--out", str(tmp_path))
    assert made.returncode == 0, made.stderr
    key = tmp_path / "chairman.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = (tmp_path / "chairman.pub").read_text().strip()
    assert public in made.stdout
    again = cutover("keys", "new", "--name", "chairman", "--out", str(tmp_path))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr

    record = tmp_path / "approval.json"
    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps({"chairman-approval": {"trustedKeys": [public]}}))
    signed = cutover(
        "approve",
        "--stack",
        "prod",
        "--color",
        "green",
        "--stack-file",
        str(ROOT / "Pulumi.prod.yaml"),
        "--gates-config",
        str(gates),
        "--out",
        str(record),
        env={"CUTOVER_SIGNING_KEY": key.read_text()},
    )
    assert signed.returncode == 0, signed.stderr
    body = json.loads(record.read_text())["record"]
    assert (body["kind"], body["color"], body["release"]["version"]) == (
        "approval",
        "green",
        "1.42.0",
    )
    assert body["release"]["digest"].startswith("sha256:9a3e5c7b")
    assert body["algorithm"] == "ed25519"

    valid = cutover("records", "verify", str(record), "--gates-config", str(gates))
    assert valid.returncode == 0 and valid.stdout.startswith("valid")

    tampered = tmp_path / "tampered.json"
    document = json.loads(record.read_text())
    document["record"]["color"] = "blue"
    tampered.write_text(json.dumps(document))
    refused = cutover("records", "verify", str(record), str(tampered), "--gates-config", str(gates))
    assert refused.returncode == 2
    assert "INVALID" in refused.stdout and "1 of 2 record(s) are not valid" in refused.stderr

    # every record valid, but the gate wants two approvers: the pack would refuse it
    two = tmp_path / "two-approvers.json"
    two.write_text(json.dumps({"chairman-approval": {"trustedKeys": [public], "required": 2}}))
    short = cutover("records", "verify", str(record), "--gates-config", str(two))
    assert short.returncode == 2, short.stdout
    assert "does not hold: 1 of 2 approval record(s)" in short.stdout
    assert short.stderr == "error: 1 gate(s) do not hold (each is named in the output)\n"


def test_signing_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    made = cutover("keys", "new", "--name", "security", "--out", str(tmp_path))
    public = (tmp_path / "security.pub").read_text().strip()
    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps({"security-signoff": {"trustedKeys": [public]},
                                 "chairman-approval": {"trustedKeys": [public]}}))  # fmt: skip
    assert made.returncode == 0
    out = tmp_path / "signoff.json"
    common = [
        "signoff",
        "--stack",
        "prod",
        "--color",
        "green",
        "--release",
        "1.42.0",
        "--scanner",
        "trivy",
        "--key",
        str(tmp_path / "security.key"),
        "--gates-config",
        str(gates),
        "--out",
        str(out),
    ]
    bad_digest = cutover(*common, "--digest", "sha256:abc", "--findings", "critical=0")
    assert bad_digest.returncode == 2 and "expected sha256:<64 hex digits>" in bad_digest.stderr
    bad_findings = cutover(*common, "--digest", "sha256:" + "a" * 64, "--findings", "severe=1")
    assert bad_findings.returncode == 2 and "expected SEVERITY=COUNT" in bad_findings.stderr
    no_key = cutover(
        "approve",
        "--stack",
        "prod",
        "--color",
        "green",
        "--release",
        "1.42.0",
        "--digest",
        "sha256:" + "a" * 64,
        "--gates-config",
        str(gates),
        "--out",
        str(out),
        env={"CUTOVER_SIGNING_KEY": ""},
    )
    assert no_key.returncode == 2
    assert "CUTOVER_SIGNING_KEY is set but empty" in no_key.stderr  # not "no key given"
    assert not out.exists()


def _signed_approval(tmp_path: Path) -> tuple[Path, Path]:
    """A valid approval file and a gates config trusting its key."""
    cutover("keys", "new", "--name", "chairman", "--out", str(tmp_path))
    public = (tmp_path / "chairman.pub").read_text().strip()
    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps({"chairman-approval": {"trustedKeys": [public]}}))
    record = tmp_path / "approval.json"
    signed = cutover(
        "approve", "--stack", "prod", "--color", "green",
        "--stack-file", str(ROOT / "Pulumi.prod.yaml"), "--out", str(record),
        "--key", str(tmp_path / "chairman.key"), "--gates-config", str(gates),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    return record, gates


def test_malformed_records_are_refused_with_one_line_each(tmp_path: Path) -> None:
    record, gates = _signed_approval(tmp_path)
    text = record.read_text()
    document = json.loads(text)
    cases = {
        "binary.json": b"\xff\xfe not utf-8",
        # the same key twice: another parser could read the other value than the signed one
        "twice.json": text.replace(
            '"color": "green"', '"color": "blue", "color": "green"'
        ).encode(),
        "details.json": json.dumps(
            {**document, "record": {**document["record"], "details": "x"}}
        ).encode(),
        "kind.json": json.dumps({**document, "record": {**document["record"], "kind": 7}}).encode(),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    files = [str(tmp_path / n) for n in cases]
    result = cutover("records", "verify", *files, "--gates-config", str(gates))
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(line.startswith("INVALID") for line in lines)
    assert "is not UTF-8 text" in lines[0]
    assert "duplicate key 'color'" in lines[1]
    assert "has field details 'x'; expected an object" in lines[2]
    assert "has field kind 7" in lines[3] or "has kind '7'" in lines[3]
    assert "Traceback" not in result.stderr


def test_signing_into_a_missing_folder_or_from_broken_yaml_exits_2(tmp_path: Path) -> None:
    _, gates = _signed_approval(tmp_path)
    common = [
        "approve",
        "--stack",
        "prod",
        "--color",
        "green",
        "--key",
        str(tmp_path / "chairman.key"),
        "--gates-config",
        str(gates),
    ]
    missing = cutover(*common, "--stack-file", str(ROOT / "Pulumi.prod.yaml"),
                      "--out", str(tmp_path / "nope" / "x.json"))  # fmt: skip
    assert missing.returncode == 2
    assert "folder" in missing.stderr and "does not exist" in missing.stderr
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config:\n  cutover:colors: [unclosed\n")
    yaml_error = cutover(*common, "--stack-file", str(broken), "--out", str(tmp_path / "x.json"))
    assert yaml_error.returncode == 2 and "is not valid YAML" in yaml_error.stderr
    for result in (missing, yaml_error):
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_gates_config_errors_name_the_flag_and_follow_the_pack_schema(tmp_path: Path) -> None:
    record, _ = _signed_approval(tmp_path)
    bad = tmp_path / "bad-gates.json"
    bad.write_text(json.dumps({"chairman-approval": {"trustedKeys": "not-a-list"}}))
    result = cutover("records", "verify", str(record), "--gates-config", str(bad))
    assert result.returncode == 2
    assert f"--gates-config {bad}: chairman-approval.trustedKeys" in result.stderr
    assert "--policy-pack-config" not in result.stderr
    twice = tmp_path / "twice-gates.json"
    twice.write_text('{"chairman-approval": {}, "chairman-approval": {"trustedKeys": []}}')
    ambiguous = cutover("records", "verify", str(record), "--gates-config", str(twice))
    assert ambiguous.returncode == 2 and "duplicate key" in ambiguous.stderr


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_revoked_keys_back_dated_record_is_refused(tmp_path: Path) -> None:
    """The issue time is the signer's word: once a key is revoked, a record claiming to be
    issued before the revocation is refused too, naming the revocation."""
    revoked = datetime.now(UTC) - timedelta(hours=1)
    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps(
        {"chairman-approval": {"trustedKeys": [entry("chairman", revoked=_z(revoked))]}}))  # fmt: skip
    back_dated = tmp_path / "approval.json"
    back_dated.write_text(json.dumps(record("approval", issued=revoked - timedelta(minutes=5))))
    result = cutover("records", "verify", str(back_dated), "--gates-config", str(gates))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("INVALID")
    assert "by key chairman (" in result.stdout
    assert f"which was revoked at {_z(revoked)}" in result.stdout


def test_an_approval_is_bounded_in_age_without_max_age_hours(tmp_path: Path) -> None:
    """An approval signed 8 days ago for 30 no longer counts: every kind has a default bound."""
    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps({"chairman-approval": {"trustedKeys": [entry("chairman")]}}))
    old = tmp_path / "approval.json"
    old.write_text(json.dumps(record("approval", issued=datetime.now(UTC) - timedelta(days=8),
                                     valid=timedelta(days=30))))  # fmt: skip
    result = cutover("records", "verify", str(old), "--gates-config", str(gates))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "older than the allowed 7 days" in result.stdout


def test_a_key_listed_twice_in_one_policy_is_refused_naming_both(tmp_path: Path) -> None:
    """Revoked as 'chairman', trusted again as 'cto': the config is refused in one line."""
    revoked = entry("chairman", revoked=_z(datetime.now(UTC) - timedelta(hours=1)))
    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps(
        {"chairman-approval": {"trustedKeys": [revoked, {**entry("chairman"), "name": "cto"}]}}))  # fmt: skip
    approval = tmp_path / "approval.json"
    approval.write_text(json.dumps(record("approval")))
    result = cutover("records", "verify", str(approval), "--gates-config", str(gates))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert f"--gates-config {gates}: chairman-approval.trustedKeys: lists key " in line
    assert "twice ('chairman' and 'cto')" in line


def test_a_gate_that_does_not_hold_names_whom_to_ask(tmp_path: Path) -> None:
    """Two of three approvers, one signed: `records verify` names the two who may still."""
    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps({"chairman-approval": {
        "trustedKeys": [entry("chairman"), entry("cfo"), entry("cto")], "required": 2}}))  # fmt: skip
    approval = tmp_path / "approval.json"
    approval.write_text(json.dumps(record("approval", key="chairman")))
    result = cutover("records", "verify", str(approval), "--gates-config", str(gates))
    gate = result.stdout.splitlines()[-1]
    assert gate.startswith("gate    approval for prod green 1.42.0: does not hold: 1 of 2")
    assert gate.endswith("1 more needed. Ask cfo (" + _id("cfo") + ") or cto (" + _id("cto")
                         + ") to sign with `cutover approve`.")  # fmt: skip


def _id(name: str) -> str:
    return key_id(KEYS[name].public_key())
