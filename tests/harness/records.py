"""Signed gate records and the pack config that trusts their keys, for every test layer."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cutover_gates.contract import KINDS
from cutover_gates.keys import key_id, public_key_text
from cutover_gates.record import make_record, private_key_pem, sign

from cutover.preflight import pack_config_trusting
from cutover.preview.pack import Diagnostic, PolicyPackProcess
from cutover.preview.program import ProgramRun, Resource
from tests.harness.program_runs import declare, prod_config

KEYS = {name: Ed25519PrivateKey.generate() for name in ("chairman", "security", "deploy", "rogue",
                                                         "cfo", "cto")}  # fmt: skip


def release(color: str) -> tuple[str, str]:
    fleet = prod_config()["cutover:colors"][color]
    return fleet["release"], fleet["image"].split("@", 1)[1]


def record(
    kind: str,
    color: str = "green",
    key: Any = None,
    stack: str = "prod",
    version: str | None = None,
    digest: str | None = None,
    issued: datetime | None = None,
    valid: timedelta = timedelta(days=2),
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    own_version, own_digest = release(color)
    signer = key or {"approval": "chairman", "emergency": "chairman",
                     "security-signoff": "security"}.get(kind, "deploy")  # fmt: skip
    body = make_record(
        kind=kind,
        project="cutover",
        stack=stack,
        version=version or own_version,
        digest=digest or own_digest,
        color=color,
        issued_at=issued or datetime.now(UTC) - timedelta(minutes=5),
        valid_for=valid,
        details=details
        if details is not None
        else {"scanner": "trivy", "findings": {"critical": 0, "high": 2}}
        if kind == "security-signoff"
        else {},
    )
    return sign(body, KEYS[signer] if isinstance(signer, str) else signer)


PACK_CONFIG = {
    "chairman-approval": {"trustedKeys": [public_key_text(KEYS["chairman"].public_key())]},
    "security-signoff": {"trustedKeys": [public_key_text(KEYS["security"].public_key())]},
    "rollback-tested": {"trustedKeys": [public_key_text(KEYS["deploy"].public_key())]},
}


def declare_with_green_records(folder: Path, config: dict[str, Any], **kwargs: Any) -> ProgramRun:
    """Run the program with green's three records written to files named in cutover:gateRecords."""
    paths = []
    for kind in ("approval", "security-signoff", "rollback-drill"):
        path = folder / f"green-{kind}.json"
        path.write_text(json.dumps(record(kind)))
        paths.append(str(path))
    return declare({**config, "cutover:gateRecords": paths}, **kwargs)


@dataclass(frozen=True)
class EcdsaSigner:
    """A P-256 key signing as a KMS ECC_NIST_P256 key signs (ECDSA_SHA_256, a DER signature),
    for records whose verification the pack is tested on; the helper itself signs ECDSA only
    through KMS (tests/helper/test_kms.py, against moto's KMS)."""

    key: ec.EllipticCurvePrivateKey
    algorithm: str = "ecdsa-p256-sha256"

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))

    def entry(self, **extra: Any) -> dict[str, Any]:
        public = self.key.public_key()
        return {"algorithm": self.algorithm, "publicKey": public_key_text(public), **extra}


def entry(name: str, **extra: Any) -> dict[str, Any]:
    """The trustedKeys entry of one of KEYS, with a window (notBefore, notAfter, revoked)."""
    return {"algorithm": "ed25519", "publicKey": public_key_text(KEYS[name].public_key()),
            "name": name, **extra}  # fmt: skip


def forged(document: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(document)
    forged["signature"] = sign(forged["record"], KEYS["rogue"])["signature"]
    return forged


def analyze(pack: PolicyPackProcess, resources: list[Resource]) -> list[Diagnostic]:
    """Everything the engine would get back: the stack policies and each resource's policies."""
    return pack.analyze_stack(resources) + pack.analyze_each(resources)


def only(diagnostics: list[Diagnostic], policy: str, phrase: str) -> None:
    """Exactly the named policy is violated, mandatorily, with a message containing `phrase`."""
    assert diagnostics, f"expected a {policy} violation, got none"
    assert {d.policy for d in diagnostics} == {policy}, [(d.policy, d.message) for d in diagnostics]
    assert all(d.mandatory for d in diagnostics)
    assert any(phrase in d.message for d in diagnostics), [d.message for d in diagnostics]


def write_signed_records(folder: Path, keys: dict[str, Any], name: str = "{color}-{kind}") -> None:
    """A record of each kind in `keys` (kind -> private key) for both colors' prod releases."""
    for color in ("blue", "green"):
        fleet = prod_config()["cutover:colors"][color]
        for kind, key in keys.items():
            body = make_record(
                kind=kind,
                project="cutover",
                stack="prod",
                version=fleet["release"],
                digest=fleet["image"].split("@", 1)[1],
                color=color,
                issued_at=datetime.now(UTC),
                valid_for=timedelta(days=7) if kind == "rollback-drill" else timedelta(days=2),
                details={
                    "approval": {},
                    "security-signoff": {"scanner": "trivy", "findings": {"critical": 0}},
                    "rollback-drill": {"rollbackSeconds": 0.05},
                }[kind],
            )
            path = folder / f"{name.format(color=color, kind=kind)}.json"
            path.write_text(json.dumps(sign(body, key)))


def signed_records(folder: Path) -> tuple[Path, Path]:
    """Approval, sign-off and drill records for both colors, each kind signed by its own new
    key; the pack config trusting those keys, and the deploy key's file."""
    keys = {kind: Ed25519PrivateKey.generate() for kind in KINDS}
    write_signed_records(folder, keys)
    gates = folder.parent / "gates.json"
    trusted = {kind: public_key_text(key.public_key()) for kind, key in keys.items()}
    gates.write_text(json.dumps(pack_config_trusting(trusted)))
    deploy_key = folder.parent / "deploy.key"
    deploy_key.write_bytes(private_key_pem(keys["rollback-drill"]))
    return gates, deploy_key


def with_records(
    run: ProgramRun, kind: str, documents: list[Any], color: str = "green"
) -> list[Resource]:
    """The run's resources with `kind`'s records for `color` replaced by `documents`, one SSM
    parameter each (as the program publishes N of M records)."""
    resources = copy.deepcopy(run.resources)
    prefix = f"/cutover/prod/gates/{color}/{kind}/"
    template = next(r for r in resources if r.type == "aws:ssm/parameter:Parameter"
                    and r.state["name"].startswith(prefix))  # fmt: skip
    kept = [
        r for r in resources if not (r.type == template.type and r.state["name"].startswith(prefix))
    ]
    for i, document in enumerate(documents):
        added = copy.deepcopy(template)
        added.urn = f"{template.urn}-{i}"
        added.state["name"] = added.inputs["name"] = f"{prefix}{i:016x}"
        added.state["value"] = added.inputs["value"] = json.dumps(document)
        kept.append(added)
    return kept
