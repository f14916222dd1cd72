"""Gates that fail closed, through the CLI: keys that never touch disk (AWS KMS, on moto's
server: ECDSA P-256), signers the pack config does not trust refused before anything is
written or moved, sign-offs that must name their findings, stage-exit verdicts, key names."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness.aws_stack import AwsStack
from tests.harness.program_runs import ROOT

RELEASE = ["--stack", "prod", "--color", "green", "--stack-file", str(ROOT / "Pulumi.prod.yaml")]


def kms_key(aws: AwsStack, alias: str) -> str:
    kms = aws.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return alias


def test_the_chairman_approves_with_a_kms_key_and_every_judge_accepts_it(aws: AwsStack) -> None:
    alias = kms_key(aws, "alias/cutover-chairman-approve")
    shown = aws.cutover("keys", "show", "--kms-key", alias, "--name", "chairman")
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)
    assert entry["algorithm"] == "ecdsa-p256-sha256" and entry["name"] == "chairman"
    gates = json.loads(aws.gates_config.read_text())
    gates["chairman-approval"] = {"trustedKeys": [entry]}
    config = aws.tmp / "kms-gates.json"
    config.write_text(json.dumps(gates))
    records = aws.tmp / "records"
    records.mkdir()
    for source in aws.records.glob("green-*.json"):
        if "approval" not in source.name:
            (records / source.name).write_text(source.read_text())
    approval = records / "green-approval.json"
    signed = aws.cutover("approve", *RELEASE, "--kms-key", alias, "--gates-config", str(config),
                         "--out", str(approval))  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    body = json.loads(approval.read_text())["record"]
    assert body["algorithm"] == "ecdsa-p256-sha256"
    verified = aws.cutover("records", "verify", str(approval), "--gates-config", str(config))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "gate    approval for prod green 1.42.0: holds: 1 of 1 approval record(s) (chairman" in (
        verified.stdout
    )
    shift = aws.cutover("shift", "--to", "green", "--steps", "100", "--bake", "0s",
                        "--gates-config", str(config), "--records", str(records),
                        "--outputs", str(aws.outputs["checkout"]),
                        "--journal", aws.journal())  # fmt: skip
    assert shift.returncode == 0, shift.stderr
    assert aws.served() == {"blue": 0, "green": 100}


def test_a_key_the_pack_does_not_trust_signs_nothing(aws: AwsStack) -> None:
    """`approve`, `drill` and `exit-gates` with a key the pack config does not trust for that
    record kind: refused before anything is written (or any traffic moves); a good record in
    place stays."""
    keys = aws.keys
    out = aws.tmp / "approval.json"
    refused = aws.cutover("approve", *RELEASE, "--key", str(keys / "security.key"),
                          "--gates-config", str(aws.gates_config), "--out", str(out))  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "is not a trusted approval key" in refused.stderr and not out.exists()
    drill = aws.cutover("drill", "--to", "green", "--bake", "0s", *aws.gate_args(),
                        "--key", str(keys / "chairman.key"),
                        "--outputs", str(aws.outputs["checkout"]), "--journal", aws.journal())  # fmt: skip
    assert drill.returncode == 2 and "not a trusted rollback-drill key" in drill.stderr
    assert aws.deployments() == [] and aws.served() == {"blue": 100, "green": 0}
    shifted = aws.cutover("shift", "--to", "green", "--steps", "100", "--bake", "0s",
                          *aws.gate_args(), "--outputs", str(aws.outputs["checkout"]),
                          "--journal", aws.journal())  # fmt: skip
    assert shifted.returncode == 0, shifted.stderr
    before = {p.name: p.read_text() for p in aws.records.glob("*.json")}
    gates = aws.cutover("exit-gates", *aws.gate_args(), "--key", str(keys / "chairman.key"),
                        "--outputs", str(aws.outputs["checkout"]), "--journal", aws.journal())  # fmt: skip
    assert gates.returncode == 2 and "not a trusted stage-exit key" in gates.stderr
    assert {p.name: p.read_text() for p in aws.records.glob("*.json")} == before


def test_a_signoff_must_name_its_findings(aws: AwsStack) -> None:
    """An empty CI variable, a left-out option, a severity twice, or one the pack limits left
    out: refused, nothing written (a missing scan is not a clean one)."""
    gates = json.loads(aws.gates_config.read_text())
    gates["security-signoff"]["maxFindings"] = {"critical": 0, "high": 5}
    config = aws.tmp / "limits.json"
    config.write_text(json.dumps(gates))
    out = aws.tmp / "signoff.json"
    common = ["signoff", *RELEASE, "--key", str(aws.keys / "security.key"), "--scanner", "trivy",
              "--gates-config", str(config), "--out", str(out)]  # fmt: skip
    cases = {
        "left out": ([], "Missing option '--findings'"),
        "empty": (["--findings", ""], "Invalid value for '--findings': empty"),
        "twice": (["--findings", "critical=0,critical=5,high=0"], "names critical twice"),
        "limited, not named": (["--findings", "critical=0"], "names no high count"),
    }
    for name, (args, said) in cases.items():
        result = aws.cutover(*common, *args)
        assert result.returncode == 2 and said in result.stderr, (name, result.stderr)
        assert not out.exists(), name
    good = aws.cutover(*common, "--findings", "critical=0,high=2")
    assert good.returncode == 0, good.stderr


def test_a_failed_stage_exit_verdict_is_shown_and_exits_1(aws: AwsStack) -> None:
    """The deployment was rolled back, so the signed stage-exit verdict is failed: `records
    verify` shows it and exits 1, unless --allow-failed."""
    records = aws.tmp / "records"
    records.mkdir()
    for source in aws.records.glob("*.json"):
        if "stage-exit" not in source.name:
            (records / source.name).write_text(source.read_text())
    gate_args = ["--gates-config", str(aws.gates_config), "--records", str(records)]
    aws.alarm(aws.data["checkout"]["alarmNames"]["green"][0])
    aws.cutover("shift", "--to", "green", "--steps", "100", "--bake", "0.3s", "--interval", "0.05s",
                *gate_args, "--outputs", str(aws.outputs["checkout"]), "--journal", aws.journal())  # fmt: skip
    aws.alarm(aws.data["checkout"]["alarmNames"]["green"][0], "OK")
    judged = aws.cutover("exit-gates", *gate_args, "--key", str(aws.keys / "deploy.key"),
                         "--outputs", str(aws.outputs["checkout"]), "--journal", aws.journal())  # fmt: skip
    assert judged.returncode == 1, judged.stderr
    (record,) = records.glob("*-stage-exit.json")
    verified = aws.cutover(
        "records", "verify", str(record), "--gates-config", str(aws.gates_config)
    )
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "verdict: FAILED" in verified.stdout
    allowed = aws.cutover("records", "verify", str(record), "--gates-config",
                          str(aws.gates_config), "--allow-failed")  # fmt: skip
    assert allowed.returncode == 0 and "verdict: FAILED" in allowed.stdout


def test_key_names_are_plain_names(tmp_path: Path, aws: AwsStack) -> None:
    for name in ("../evil", "", "a/b", ".hidden"):
        made = aws.cutover("keys", "new", "--name", name, "--out", str(tmp_path / "keys"))
        said = "empty; expected a key name" if not name else "expected a plain name"
        assert made.returncode == 2 and said in made.stderr, name
    assert not (tmp_path / "evil.key").exists() and not (tmp_path / "keys").exists()
