"""Keys and gate records from the command line: what approvers and security automation run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.harness.program_runs import ROOT


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
    signed = cutover(
        "approve",
        "--stack",
        "prod",
        "--color",
        "green",
        "--stack-file",
        str(ROOT / "Pulumi.prod.yaml"),
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

    gates = tmp_path / "gates.json"
    gates.write_text(json.dumps({"chairman-approval": {"trustedKeys": [public]}}))
    valid = cutover("records", "verify", str(record), "--gates-config", str(gates))
    assert valid.returncode == 0 and valid.stdout.startswith("valid")

    tampered = tmp_path / "tampered.json"
    document = json.loads(record.read_text())
    document["record"]["color"] = "blue"
    tampered.write_text(json.dumps(document))
    refused = cutover("records", "verify", str(record), str(tampered), "--gates-config", str(gates))
    assert refused.returncode == 2
    assert "INVALID" in refused.stdout and "1 of 2 record(s) are not valid" in refused.stderr


def test_signing_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    cutover("keys", "new", "--name", "security", "--out", str(tmp_path))
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
        "--out",
        str(out),
    ]
    bad_digest = cutover(*common, "--digest", "sha256:abc")
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
        "--out",
        str(out),
        env={"CUTOVER_SIGNING_KEY": ""},
    )
    assert no_key.returncode == 2 and "no signing key" in no_key.stderr
    assert not out.exists()
