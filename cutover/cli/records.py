"""Gate records: signing keys, the chairman's approval, security sign-offs, and verifying records."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from cutover_gates.contract import APPROVAL, EMERGENCY, SECURITY_SIGNOFF_POLICY, digest_of
from cutover_gates.gate import limits_of
from cutover_gates.record import DIGEST, make_record

from cutover.cli.common import (
    COLOR,
    FILE,
    NEW_FILE,
    OUT_FOLDER,
    VALIDITY,
    Parsed,
    signing_key_options,
    text,
)
from cutover.cli.output import output_option, result, say
from cutover.errors import ConfigError, DeploymentFailed, GateRefused
from cutover.gate_record import KmsSigner, check_valid_for, new_key_pair, signer_of, write_signed
from cutover.inputs import findings
from cutover.outputs import load_outputs
from cutover.pack_config import load_gates_config
from cutover.records_check import check_files
from cutover.stack_config import stack_config


@click.group()
def keys() -> None:
    """Signing keys for gate records."""


@keys.command("new")
@click.option(
    "--name", required=True, type=text("a key name"), help="e.g. chairman, security, deploy"
)
@click.option(
    "--out",
    type=OUT_FOLDER,
    required=True,
    help="Folder for NAME.key and NAME.pub (created if missing).",
)
@output_option
def keys_new(name: str, out: Path, fmt: str) -> None:
    """Make an Ed25519 key pair: NAME.key (mode 0600) and NAME.pub; prints the public key.

    \b
    Example:
      cutover keys new --name chairman --out ~/.cutover
    """
    made = new_key_pair(name, out)
    line = (
        f"private key: {made.private} (keep it secret)\npublic key:  {made.public}\n"
        f"key id:      {made.key_id}\n{made.text}"
    )
    result(line, {"private": str(made.private), "public": str(made.public),
                  "keyId": made.key_id, "publicKey": made.text})  # fmt: skip


@keys.command("show")
@click.option(
    "--kms-key",
    required=True,
    type=text("a KMS key id, ARN or alias"),
    help="A KMS key id, ARN or alias (alias/chairman).",
)
@click.option(
    "--name",
    type=text("who holds the key"),
    help="Who holds it, e.g. chairman (shown in verdicts).",
)
def keys_show(kms_key: str, name: str | None) -> None:
    """Print the `trustedKeys` entry that trusts a KMS signing key (ECC_NIST_EDWARDS25519 or
    ECC_NIST_P256): paste it into the policy's trustedKeys in the pack config. Its output is
    that JSON entry.

    \b
    Example:
      cutover keys show --kms-key alias/cutover-chairman --name chairman
    """
    say(json.dumps(KmsSigner(kms_key).trusted_entry(name or "")))


def signing_options(env: str) -> Any:
    """--key FILE or --kms-key KEY (or the PEM in $`env`), and the --gates-config whose trusted
    keys the signer must be in."""

    def add(fn: Any) -> Any:
        fn = signing_key_options(env, "Signing key")(fn)
        return click.option(
            "--gates-config",
            type=FILE,
            required=True,
            help="The policy pack config JSON: the key must be trusted there for this record.",
        )(fn)

    return add


def record_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--project",
                type=text("the Pulumi project"),
                default="cutover",
                show_default=True,
                help="The Pulumi project.",
            ),
            click.option(
                "--stack",
                "stack_name",
                type=text("a stack name, e.g. prod"),
                required=True,
                help="The stack the release goes to, e.g. prod.",
            ),
            click.option(
                "--color", required=True, type=COLOR, help="The color the release runs on."
            ),
            click.option(
                "--release",
                "version",
                type=text("a release version"),
                help="Release version (default: from --stack-file).",
            ),
            click.option(
                "--digest",
                type=text("an image digest sha256:..."),
                help="Image digest sha256:... (default: from --stack-file).",
            ),
            click.option(
                "--stack-file",
                type=FILE,
                help="Pulumi.<stack>.yaml to read the color's release and digest from.",
            ),
            click.option(
                "--valid-for",
                type=VALIDITY,
                default="24h",
                show_default=True,
                help="How long the record is valid (at most the pack's age limit for it).",
            ),
            click.option(
                "--out",
                type=NEW_FILE,
                required=True,
                help="The record file to write (its folder must exist).",
            ),
            output_option,
        ]
    ):
        fn = option(fn)
    return fn


def _write_record(
    kind: str,
    env: str,
    project: str,
    stack_name: str,
    color: str,
    version: str | None,
    digest: str | None,
    stack_file: Path | None,
    valid_for: float,
    key_file: Path | None,
    kms_key: str | None,
    gates_config: Path,
    out: Path,
    fmt: str,
    details: dict[str, Any],
) -> None:
    """Sign one release record into `out`: every value checked, and the signer trusted for
    it, before anything is written."""
    if stack_file is not None and (version is None or digest is None):
        colors = stack_config(stack_file).get("cutover:colors", {})
        fleet = colors.get(color, {}) if isinstance(colors, dict) else {}
        version = version or fleet.get("release")
        image = str(fleet.get("image", ""))
        digest = digest or digest_of(image) or None
    if not version or not digest:
        raise ConfigError(
            "give --release and --digest, or --stack-file with the color's release and pinned image"
        )
    if not re.fullmatch(DIGEST, digest):
        raise ConfigError(f"--digest {digest!r}; expected sha256:<64 hex digits>")
    pack_config = load_gates_config(gates_config)
    check_valid_for(kind, valid_for, pack_config)
    signer = signer_of(key_file, kms_key, env)
    body = make_record(
        kind=kind,
        project=project,
        stack=stack_name,
        version=version,
        digest=digest,
        color=color,
        issued_at=datetime.now(UTC),
        valid_for=timedelta(seconds=valid_for),
        details=details,
    )
    write_signed(out, body, signer, pack_config)
    result(f"Signed {kind} for {stack_name} {color} release {version}: {out}",
           {"record": str(out), "kind": kind, "stack": stack_name, "color": color,
            "release": version, "digest": digest, "expiresAt": body["expiresAt"]})  # fmt: skip


@click.command()
@record_options
@signing_options("CUTOVER_SIGNING_KEY")
@click.option(
    "--emergency",
    is_flag=True,
    help="An emergency record: leave to move traffic during a change freeze (needs --reason).",
)
@click.option(
    "--reason",
    type=text("why traffic must move during the freeze"),
    help="Why, for an --emergency record (said in the pack's verdicts).",
)
def approve(emergency: bool, reason: str | None, **kw: Any) -> None:
    """The chairman's approval of one release for one stack and color (or, with --emergency,
    leave to move traffic onto it during a change freeze).

    \b
    Examples:
      cutover approve --stack prod --color green --stack-file Pulumi.prod.yaml \\
        --gates-config policies/config/prod.json --key ~/.cutover/chairman.key \\
        --out gates/prod/green-approval.json
      cutover approve --stack prod --color green --stack-file Pulumi.prod.yaml \\
        --gates-config policies/config/prod.json --kms-key alias/cutover-chairman \\
        --emergency --reason "INC-4711: payment outage fix" --out gates/prod/green-emergency.json
    """
    if emergency and not (reason or "").strip():
        raise ConfigError("--emergency needs --reason: say why traffic must move during the freeze")
    if reason and not emergency:
        raise ConfigError("--reason is for --emergency records only")
    kind = EMERGENCY if emergency else APPROVAL
    details = {"reason": reason.strip()} if emergency and reason else {}
    _write_record(kind, "CUTOVER_SIGNING_KEY", details=details, **kw)


@click.command()
@record_options
@signing_options("CUTOVER_SIGNING_KEY")
@click.option(
    "--scanner",
    required=True,
    type=text("the scanner's name, e.g. trivy"),
    help="The scanner that produced the findings.",
)
@click.option(
    "--findings",
    "findings_text",
    type=Parsed("COUNTS", findings),
    required=True,
    help="Counts by severity, e.g. critical=0,high=2,medium=5: every severity the pack's "
    "maxFindings limits must be named.",
)
def signoff(scanner: str, findings_text: dict[str, int], **kw: Any) -> None:
    """A security sign-off of one release, with findings counts by severity.

    \b
    Example:
      cutover signoff --stack prod --color green --stack-file Pulumi.prod.yaml \\
        --scanner trivy --findings critical=0,high=2 --key ci-keys/security.key \\
        --out gates/prod/green-signoff.json
    """
    counts = findings_text
    limits = limits_of(load_gates_config(kw["gates_config"]).get(SECURITY_SIGNOFF_POLICY) or {})
    said = ", ".join(f"{s} <= {n}" for s, n in limits.items())
    missing = [s for s in limits if s not in counts]
    if missing:
        raise ConfigError(
            f"--findings names no {', '.join(missing)} count, which the pack's maxFindings "
            f"limits ({said}): give every one, e.g. critical=0 (a missing scan is not a clean one)"
        )
    over = [f"{s}={counts[s]}" for s in limits if counts[s] > int(limits[s])]
    if over:
        raise GateRefused(
            f"--findings {','.join(over)}: more than the pack's maxFindings allow ({said}); a "
            "sign-off of them would not count, so nothing was signed: fix them and scan again"
        )
    _write_record(
        "security-signoff",
        "CUTOVER_SIGNING_KEY",
        details={"scanner": scanner, "findings": counts},
        **kw,
    )


@click.group()
def records() -> None:
    """Gate record files."""


@records.command("verify")
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "--gates-config",
    type=FILE,
    required=True,
    help="The policy pack config JSON whose trusted keys judge the records.",
)
@click.option(
    "--outputs",
    "outputs_file",
    type=FILE,
    help="Also check each record binds this stack's current release for its color.",
)
@click.option(
    "--allow-failed",
    is_flag=True,
    help="Exit 0 for a valid stage-exit record whose verdict is failed (shown either way).",
)
@output_option
def records_verify(
    files: tuple[Path, ...],
    gates_config: Path,
    outputs_file: Path | None,
    allow_failed: bool,
    fmt: str,
) -> None:
    """Check records against the pack config's trusted keys, each on its own, then each gate
    as the pack judges it (N of M signers); exit 2 if a record is not valid or a gate does
    not hold (the pack would refuse it), 1 if a stage-exit verdict is failed (unless
    --allow-failed).

    \b
    Example:
      cutover records verify gates/prod/*.json --gates-config gates/pack-config.json
    """
    pack_config = load_gates_config(gates_config)
    outputs = load_outputs(str(outputs_file)) if outputs_file else None
    checked = check_files(list(files), pack_config, outputs)
    if fmt == "json":
        result(None, {"lines": checked.lines, "invalid": checked.invalid,
                      "gatesNotHolding": checked.unmet_gates,
                      "failedVerdicts": checked.failed_verdicts})  # fmt: skip
    else:
        for line in checked.lines:
            say(line)
    if checked.invalid:
        raise GateRefused(f"{checked.invalid} of {len(files)} record(s) are not valid")
    if checked.unmet_gates:
        raise GateRefused(
            f"{checked.unmet_gates} gate(s) do not hold (each is named in the output)"
        )
    if checked.failed_verdicts and not allow_failed:
        raise DeploymentFailed(
            f"{checked.failed_verdicts} stage-exit verdict(s) failed (--allow-failed to accept)"
        )
