"""Signing gate records: the helper's side of `cutover_gates.record`.

`new_key_pair` makes a signer's Ed25519 key files. One way to sign, for every command that does (`approve`, `signoff`, `drill`, `exit-gates`):
the signer is a key file (`--key`, or the PEM in an environment variable) or a key that never
leaves AWS KMS (`--kms-key`: Ed25519 or ECDSA P-256); before anything is written it must be a
key the pack config trusts for that record kind, within its window; and a record that
verifies is never overwritten by one that does not. `drill` and `exit-gates` sign the release
a stack's color runs, named `<stack>-<color>-<version>-<kind>.json` in the records folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_der_public_key
from cutover_gates.contract import TRUSTED_KEYS_OF, Color
from cutover_gates.keys import KMS_SPECS, TrustedKey, key_id, public_key_text
from cutover_gates.record import (
    Expected,
    LocalSigner,
    RecordInvalid,
    Signer,
    load_private_key,
    make_record,
    parse_record,
    private_key_pem,
    sign,
    verify,
)
from cutover_gates.rules import gate_config
from cutover_gates.stack_outputs import StackOutputs

from cutover.aws import client as aws_client
from cutover.durations import format_duration
from cutover.environment import text
from cutover.errors import ConfigError, GateRefused

# KMS signs messages of at most this many bytes with MessageType RAW.
KMS_MESSAGE_LIMIT = 4096


class KmsSigner:
    """A key in AWS KMS (id, ARN or alias): ECC_NIST_EDWARDS25519 signs ED25519_SHA_512, and
    ECC_NIST_P256 signs ECDSA_SHA_256, both over the raw canonical record (MessageType RAW);
    the private key never leaves KMS. `client`: a boto3 KMS client (default: the helper's)."""

    def __init__(self, key: str, client: Any = None) -> None:
        if client is None:
            client = aws_client("kms")
        self.key, self.client = key, client
        try:
            found = client.get_public_key(KeyId=key)
        except client.exceptions.NotFoundException:
            raise ConfigError(f"--kms-key {key}: no such KMS key") from None
        # KeySpec; older answers name it by its deprecated name, CustomerMasterKeySpec
        spec = found.get("KeySpec") or found.get("CustomerMasterKeySpec")
        if spec not in KMS_SPECS or found.get("KeyUsage") != "SIGN_VERIFY":
            raise ConfigError(
                f"--kms-key {key}: a {spec} key for {found.get('KeyUsage')}; expected a "
                f"SIGN_VERIFY key of spec {' or '.join(KMS_SPECS)}"
            )
        self.algorithm, self.kms_algorithm = KMS_SPECS[spec]
        self.arn = str(found.get("KeyId", key))
        self.public_key = load_der_public_key(found["PublicKey"])
        self.key_id = key_id(self.public_key)  # type: ignore[arg-type]

    def sign(self, message: bytes) -> bytes:
        if len(message) > KMS_MESSAGE_LIMIT:
            raise ConfigError(
                f"the record is {len(message)} bytes; KMS signs at most {KMS_MESSAGE_LIMIT}"
            )
        answer = self.client.sign(
            KeyId=self.key,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=self.kms_algorithm,
        )
        return bytes(answer["Signature"])

    def trusted_entry(self, name: str) -> dict[str, Any]:
        """The `trustedKeys` entry that trusts this key."""
        key = TrustedKey(self.algorithm, self.public_key, name=name, kms=self.arn)  # type: ignore[arg-type]
        return key.to_json()


def signer_of(key_file: Path | None, kms_key: str | None, env: str) -> Signer:
    """The signer of --key FILE, --kms-key KEY, or the PEM in $`env`; ConfigError otherwise."""
    if key_file is not None and kms_key:
        raise ConfigError("give --key or --kms-key, not both")
    if kms_key:
        return KmsSigner(kms_key)
    in_environment = text(env) if key_file is None else None
    if key_file is not None:
        try:
            pem = key_file.read_bytes()
        except OSError as e:
            raise ConfigError(f"--key {key_file}: cannot read it ({e.strerror})") from None
    elif in_environment is not None:
        pem = in_environment.encode()
    else:
        raise ConfigError(
            f"no signing key: pass --key FILE, --kms-key KEY, or set ${env} to the PEM"
        )
    try:
        return LocalSigner(load_private_key(pem))
    except ValueError as e:
        raise ConfigError(f"the signing key is not an Ed25519 PEM private key ({e})") from None


def check_trusted(signer: Signer, kind: str, pack_config: dict[str, Any], now: datetime) -> None:
    """GateRefused (nothing written) unless the pack config trusts `signer` for `kind` now."""
    policy = TRUSTED_KEYS_OF[kind]
    try:
        keys = {k.id: k for k in gate_config(pack_config, kind).trusted_keys}
    except ValueError as e:
        raise ConfigError(f"--gates-config: {e}") from None
    key = keys.get(signer.key_id)
    if key is None:
        raise GateRefused(
            f"key {signer.key_id} is not a trusted {kind} key in --gates-config ({policy}."
            "trustedKeys); a record it signs would not count, so nothing was written"
        )
    if key.algorithm != signer.algorithm:
        raise GateRefused(
            f"key {key.describe()} is trusted as {key.algorithm}, but signs {signer.algorithm}; "
            "nothing was written"
        )
    problem = key.problem_at(now, now)
    if problem is not None:
        raise GateRefused(f"key {key.describe()} {problem}; nothing was written")


def check_valid_for(kind: str, valid_for: float, pack_config: dict[str, Any]) -> None:
    """ConfigError (nothing signed) when a `kind` record valid for `valid_for` seconds would
    claim longer than the pack accepts one after its issue (its age limit)."""
    try:
        limit = gate_config(pack_config, kind).max_age
    except (TypeError, ValueError):
        return  # a malformed limit is the pack config's to name (its validation)
    if valid_for > limit.total_seconds():
        raise ConfigError(
            f"--valid-for {format_duration(valid_for)} is longer than the pack accepts a {kind} "
            f"record ({format_duration(limit.total_seconds())} after its issue, "
            f"{TRUSTED_KEYS_OF[kind]} in --gates-config); give at most that"
        )


def _verifies(document: Any, kind: str, pack_config: dict[str, Any], now: datetime) -> bool:
    """Whether a record document verifies (trusted signer, signature, times, its own bindings)."""
    body = document.get("record") if isinstance(document, dict) else None
    if not isinstance(body, dict) or body.get("kind") != kind:
        return False
    found = body.get("release")
    release: dict[str, Any] = found if isinstance(found, dict) else {}
    expected = Expected(kind, str(body.get("project")), str(body.get("stack")),
                        str(release.get("version")), str(release.get("digest")),
                        str(body.get("color")))  # fmt: skip
    try:
        verify(document, gate_config(pack_config, kind).trusted_keys, expected, now)
    except (RecordInvalid, ValueError):
        return False
    return True


def write_signed(
    path: Path, body: dict[str, Any], signer: Signer, pack_config: dict[str, Any]
) -> dict[str, Any]:
    """Sign `body` and write the record to `path`, after checking the signer is trusted, and
    never over a record there that verifies when this one would not; the document."""
    now = datetime.now(UTC)
    kind = str(body["kind"])
    check_trusted(signer, kind, pack_config, now)
    document = sign(body, signer)
    if path.exists():
        try:
            old = parse_record(path.read_bytes())
        except OSError:
            old = None
        if _verifies(old, kind, pack_config, now) and not _verifies(
            document, kind, pack_config, now
        ):
            raise GateRefused(
                f"{path} holds a {kind} record that verifies, and the new one would not; "
                "nothing was written"
            )
    try:
        path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as e:
        raise ConfigError(f"cannot write the record {path}: {e.strerror}") from None
    return document


def sign_release_record(
    outputs: StackOutputs,
    color: Color,
    kind: str,
    details: dict[str, Any],
    signer: Signer,
    valid_for: float,
    folder: Path,
    pack_config: dict[str, Any],
) -> Path:
    """Sign a `kind` record of the release `color` runs on this stack into `folder`; its path."""
    release = outputs.releases[color]
    body = make_record(
        kind=kind,
        project=outputs.project,
        stack=outputs.stack,
        version=release.version,
        digest=release.digest,
        color=color,
        issued_at=datetime.now(UTC),
        valid_for=timedelta(seconds=valid_for),
        details=details,
    )
    path = folder / f"{outputs.stack}-{color}-{release.version}-{kind}.json"
    write_signed(path, body, signer, pack_config)
    return path


@dataclass(frozen=True)
class KeyPair:
    private: Path  # NAME.key, mode 0600
    public: Path  # NAME.pub
    text: str  # the public key as `trustedKeys` takes it
    key_id: str


def new_key_pair(name: str, out: Path) -> KeyPair:
    """Make an Ed25519 key pair in `out` (never over an existing key); ConfigError when `name`
    is not a plain name or its key exists."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name):
        raise ConfigError(
            f"--name {name!r}; expected a plain name (letters, digits, - and _, e.g. chairman), "
            "no path"
        )
    private, public = out / f"{name}.key", out / f"{name}.pub"
    if private.exists():
        raise ConfigError(f"{private} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    text = public_key_text(key.public_key())
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_key_pem(key))
        public.write_text(text + "\n")
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write the key pair ({e.strerror})") from None
    return KeyPair(private, public, text, key_id(key.public_key()))
