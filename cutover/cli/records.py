"""Gate records: signing keys, the chairman's approval, security sign-offs, and verifying records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cutover.cli.common import COLOR, DURATION, say


@click.group()
def keys() -> None:
    """Signing keys for gate records."""


@keys.command("new")
@click.option("--name", required=True, help="e.g. chairman, security, deploy")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for NAME.key and NAME.pub (created if missing).",
)
def keys_new(name: str, out: Path) -> None:
    """Make an Ed25519 key pair: NAME.key (mode 0600) and NAME.pub; prints the public key.

    \b
    Example:
      cutover keys new --name chairman --out ~/.cutover
    """
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cutover_gates.record import key_id, private_key_pem, public_key_text

    out.mkdir(parents=True, exist_ok=True)
    private, public = out / f"{name}.key", out / f"{name}.pub"
    if private.exists():
        from cutover.errors import ConfigError

        raise ConfigError(f"{private} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    text = public_key_text(key.public_key())
    public.write_text(text + "\n")
    say(
        f"private key: {private} (keep it secret)\npublic key:  {public}\nkey id:      {key_id(key.public_key())}"
    )
    say(text)


def private_key(path: Path | None, env: str) -> Any:
    """The Ed25519 signing key from --key FILE or the PEM in $`env`."""
    import os

    from cutover_gates.record import load_private_key

    from cutover.errors import ConfigError

    if path is not None:
        try:
            pem = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"--key {path}: cannot read it ({e.strerror})") from None
    elif os.environ.get(env):
        pem = os.environ[env].encode()
    else:
        raise ConfigError(f"no signing key: pass --key FILE or set ${env} to the PEM")
    try:
        return load_private_key(pem)
    except ValueError as e:
        raise ConfigError(f"the signing key is not an Ed25519 PEM private key ({e})") from None


def record_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--project", default="cutover", show_default=True, help="The Pulumi project."
            ),
            click.option(
                "--stack",
                "stack_name",
                required=True,
                help="The stack the release goes to, e.g. prod.",
            ),
            click.option(
                "--color", required=True, type=COLOR, help="The color the release runs on."
            ),
            click.option(
                "--release", "version", help="Release version (default: from --stack-file)."
            ),
            click.option("--digest", help="Image digest sha256:... (default: from --stack-file)."),
            click.option(
                "--stack-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Pulumi.<stack>.yaml to read the color's release and digest from.",
            ),
            click.option(
                "--valid-for",
                type=DURATION,
                default="24h",
                show_default=True,
                help="How long the record is valid.",
            ),
            click.option(
                "--key",
                "key_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Signing key (PEM); default: $CUTOVER_SIGNING_KEY.",
            ),
            click.option(
                "--out",
                type=click.Path(dir_okay=False, path_type=Path),
                required=True,
                help="The record file to write.",
            ),
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
    out: Path,
    details: dict[str, Any],
) -> None:
    import re
    from datetime import UTC, datetime, timedelta

    from cutover_gates.contract import digest_of
    from cutover_gates.record import DIGEST, make_record

    from cutover.errors import ConfigError
    from cutover.gate_record import write_signed

    if stack_file is not None and (version is None or digest is None):
        from cutover.offline import stack_config

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
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist; create it first")
    key = private_key(key_file, env)
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
    write_signed(out, body, key)
    say(f"Signed {kind} for {stack_name} {color} release {version}: {out}")


@click.command()
@record_options
def approve(**kw: Any) -> None:
    """The chairman's approval of one release for one stack and color.

    \b
    Example:
      cutover approve --stack prod --color green --stack-file Pulumi.prod.yaml \\
        --key ~/.cutover/chairman.key --out gates/prod/green-approval.json
    """
    _write_record("approval", "CUTOVER_SIGNING_KEY", details={}, **kw)


@click.command()
@record_options
@click.option("--scanner", required=True, help="The scanner that produced the findings.")
@click.option(
    "--findings",
    "findings_text",
    default="",
    help="Counts by severity, e.g. critical=0,high=2,medium=5.",
)
def signoff(scanner: str, findings_text: str, **kw: Any) -> None:
    """A security sign-off of one release, with findings counts by severity.

    \b
    Example:
      cutover signoff --stack prod --color green --stack-file Pulumi.prod.yaml \\
        --scanner trivy --findings critical=0,high=2 --key ci-keys/security.key \\
        --out gates/prod/green-signoff.json
    """
    from cutover_gates.record import SEVERITIES

    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in findings_text.split(","))):
        severity, _, number = part.partition("=")
        if severity not in SEVERITIES or not number.isdigit():
            raise click.BadParameter(
                f"--findings {part!r}; expected SEVERITY=COUNT with SEVERITY in {', '.join(SEVERITIES)}"
            )
        counts[severity] = int(number)
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
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--gates-config",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The policy pack config JSON whose trusted keys judge the records.",
)
@click.option(
    "--outputs",
    "outputs_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also check each record binds this stack's current release for its color.",
)
def records_verify(files: tuple[Path, ...], gates_config: Path, outputs_file: Path | None) -> None:
    """Check records against the pack config's trusted keys; exit 2 if any is not valid.

    \b
    Example:
      cutover records verify gates/prod/*.json --gates-config gates/pack-config.json
    """
    from datetime import UTC, datetime

    from cutover_gates.contract import TRUSTED_KEYS_OF
    from cutover_gates.gate import judge
    from cutover_gates.record import Expected, RecordInvalid, Unreadable, parse_record

    from cutover.errors import GateRefused
    from cutover.outputs import load_outputs
    from cutover.pack_config import load_gates_config

    pack_config = load_gates_config(gates_config)
    outputs = load_outputs(str(outputs_file)) if outputs_file else None
    bad = 0
    for path in files:
        try:
            document = parse_record(path.read_bytes())
        except OSError as e:
            document = None
            reason = f"cannot be read ({e.strerror})"
        body = document.get("record") if isinstance(document, dict) else None
        body = body if isinstance(body, dict) else {}
        kind, color = str(body.get("kind", "")), str(body.get("color", ""))
        try:
            if document is None:
                raise RecordInvalid(reason)
            if isinstance(document, Unreadable):
                raise RecordInvalid(document.reason)
            if kind not in TRUSTED_KEYS_OF:
                raise RecordInvalid(f"has kind {kind!r}; expected one of {sorted(TRUSTED_KEYS_OF)}")
            release: dict[str, Any] = body.get("release") or {}
            if not isinstance(release, dict):
                release = {}
            if outputs is not None and color in outputs.releases:
                release = outputs.releases[color]
            expected = Expected(
                kind,
                outputs.project if outputs else str(body.get("project")),
                outputs.stack if outputs else str(body.get("stack")),
                str(release.get("version")),
                str(release.get("digest")),
                color,
            )
            config = pack_config.get(TRUSTED_KEYS_OF.get(kind, ""), {})
            judge(kind, document, expected, config, datetime.now(UTC))
        except RecordInvalid as e:
            bad += 1
            say(f"INVALID {path}: {e}")
            continue
        say(
            f"valid   {path}: {kind} for {body['stack']} {color} {body['release']['version']} "
            f"(key {body['keyId']}, expires {body['expiresAt']})"
        )
    if bad:
        raise GateRefused(f"{bad} of {len(files)} record(s) are not valid")
