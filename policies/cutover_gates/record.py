"""Gate records: small JSON documents signed over canonical JSON (Ed25519 or ECDSA P-256).

A record binds one project, stack, release (version and image digest) and target color, and
carries its issue and expiry times, the signer's key id and the signature's algorithm. Kinds:
`approval` (the chairman), `security-signoff` (security automation, with findings counts),
`rollback-drill` (the helper's drill, signed with the deploy key), `emergency` (the chairman's
leave to move traffic during a change freeze), `stage-exit`. Verifying needs the trusted
public keys (`keys.py`), which live in the policy pack's config, never in the stack's.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cutover_gates import keys
from cutover_gates.contract import RECORD_KINDS

SEVERITIES = ("critical", "high", "medium", "low")
FORMAT = "cutover.gate-record/v1"
# An image digest as records bind it, and as a pinned image ends: repo@sha256:<64 hex>.
DIGEST = r"sha256:[0-9a-f]{64}"
PINNED_IMAGE = re.compile(rf"^[^\s@]+@{DIGEST}$")
# Clocks disagree a little; a record "issued" slightly in the future is still accepted.
CLOCK_SKEW = timedelta(minutes=5)


class RecordInvalid(Exception):
    """The record does not prove what it is asked to prove; the message says why."""


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` refusing duplicate keys: another parser could read a different record
    (the first value instead of the last) than the one that was signed."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(f"duplicate key {key!r}")
        found[key] = value
    return found


@dataclass(frozen=True)
class Unreadable:
    """A record that could not be parsed; judged invalid with `reason`."""

    reason: str


def parse_record(text: str | bytes) -> Any:
    """A record document from its text, strictly (UTF-8, JSON, no duplicate keys); an
    Unreadable saying why otherwise, so every judge refuses it the same way."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, object_pairs_hook=strict_object)
    except UnicodeDecodeError:
        return Unreadable("is not UTF-8 text")
    except DuplicateKey as e:
        return Unreadable(f"is ambiguous JSON ({e})")
    except (TypeError, ValueError) as e:
        return Unreadable(f"is not JSON ({e})")


@dataclass(frozen=True)
class Expected:
    """What a record must bind to count for a gate."""

    kind: str
    project: str
    stack: str
    version: str
    digest: str
    color: str


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signer(Protocol):
    """What signs a record: a key file here, or a key that never leaves AWS KMS."""

    @property
    def algorithm(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class LocalSigner:
    """An Ed25519 private key held in this process (`cutover keys new`)."""

    private_key: Ed25519PrivateKey
    algorithm: str = keys.ED25519

    @property
    def key_id(self) -> str:
        return keys.key_id(self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_time(moment: datetime) -> str:
    """A record's issuedAt, to the millisecond: it is compared with a rollback journaled to a
    fraction of a second, so an approval signed just after a rollback, in the same second,
    reads as issued after it (in whole seconds it read as not after, and was refused)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: Any, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise RecordInvalid(f"has {field} {text!r}, which is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise RecordInvalid(f"has {field} {text!r} without a time zone")
    return moment


def make_record(
    *,
    kind: str,
    project: str,
    stack: str,
    version: str,
    digest: str,
    color: str,
    issued_at: datetime,
    valid_for: timedelta,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The unsigned body of a gate record."""
    if kind not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(RECORD_KINDS)}")
    return {
        "format": FORMAT,
        "kind": kind,
        "project": project,
        "stack": stack,
        "release": {"version": version, "digest": digest},
        "color": color,
        "issuedAt": issue_time(issued_at),
        "expiresAt": timestamp(issued_at + valid_for),
        "details": details or {},
    }


def sign(body: dict[str, Any], signer: Signer | Ed25519PrivateKey) -> dict[str, Any]:
    """A signed record document: the body with the signer's key id and algorithm, and the
    signature over its canonical form."""
    if isinstance(signer, Ed25519PrivateKey):
        signer = LocalSigner(signer)
    body = {**body, "keyId": signer.key_id, "algorithm": signer.algorithm}
    signature = signer.sign(canonical(body))
    return {"record": body, "signature": base64.b64encode(signature).decode()}


def verify(
    document: Any,
    trusted_keys: Sequence[keys.TrustedKey],
    expected: Expected,
    now: datetime,
    max_age: timedelta | None = None,
) -> dict[str, Any]:
    """The record body when `document` proves `expected` at `now`; RecordInvalid otherwise.

    Checks, in order: shape, a trusted signer of the record's algorithm, the signature over
    the canonical body, the kind, issue and expiry times (and `max_age`), the signer's window
    (notBefore, notAfter; a key revoked by `now` signs nothing), and every binding (project, stack, release version and
    digest, color). `trusted_keys`: a policy's trusted keys (parse_trusted_keys).
    """
    if isinstance(document, Unreadable):
        raise RecordInvalid(document.reason)
    if not isinstance(document, dict) or set(document) != {"record", "signature"}:
        raise RecordInvalid("is not a gate record: expected {record, signature}")
    body, signature = document["record"], document["signature"]
    if not isinstance(body, dict) or not isinstance(signature, str):
        raise RecordInvalid("is not a gate record: record must be an object, signature a string")
    if body.get("format") != FORMAT:
        raise RecordInvalid(f"has an unknown format {body.get('format')!r}; expected {FORMAT}")
    _check_fields(body)

    trusted = {k.id: k for k in trusted_keys}
    signer = body.get("keyId")
    if signer not in trusted:
        raise RecordInvalid(
            f"is signed by key {signer!r}, which is not a trusted {expected.kind} key"
        )
    key = trusted[signer]
    algorithm = body.get("algorithm", keys.ED25519)
    if algorithm != key.algorithm:
        raise RecordInvalid(
            f"says it is signed with {algorithm!r}, but key {key.describe()} is a trusted "
            f"{key.algorithm} key (re-signed under another algorithm?)"
        )
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical(body))
    except (InvalidSignature, ValueError):
        raise RecordInvalid(
            f"has a signature that does not match the record (forged or changed after signing; key {key.describe()})"
        ) from None

    if body.get("kind") != expected.kind:
        raise RecordInvalid(f"is a {body.get('kind')!r} record; expected {expected.kind!r}")
    issued = parse_time(body.get("issuedAt"), "issuedAt")
    expires = parse_time(body.get("expiresAt"), "expiresAt")
    if issued > now + CLOCK_SKEW:
        raise RecordInvalid(f"was issued in the future ({timestamp(issued)})")
    if expires <= now:
        raise RecordInvalid(f"expired at {timestamp(expires)}")
    if max_age is not None and now - issued > max_age:
        raise RecordInvalid(
            f"was issued {timestamp(issued)}, older than the allowed {_age(max_age)}"
        )
    window = key.problem_at(issued, now)
    if window is not None:
        raise RecordInvalid(
            f"was issued {timestamp(issued)} by key {key.describe()}, which {window}"
        )

    release: dict[str, Any] = body["release"] if isinstance(body.get("release"), dict) else {}
    bindings = [
        ("project", body.get("project"), expected.project),
        ("stack", body.get("stack"), expected.stack),
        ("release version", release.get("version"), expected.version),
        ("release digest", release.get("digest"), expected.digest),
        ("color", body.get("color"), expected.color),
    ]
    for name, got, want in bindings:
        if got != want:
            raise RecordInvalid(f"is for {name} {got!r}; this update needs {want!r}")
    return body


_TEXT_FIELDS = ("kind", "project", "stack", "color", "issuedAt", "expiresAt", "keyId")


def _check_fields(body: dict[str, Any]) -> None:
    """Every field of the body has the type the format says, so no judge reads it differently."""
    for field in _TEXT_FIELDS:
        if not isinstance(body.get(field), str):
            raise RecordInvalid(f"has field {field} {body.get(field)!r}; expected text")
    release = body.get("release")
    if not isinstance(release, dict) or not all(
        isinstance(release.get(k), str) for k in ("version", "digest")
    ):
        raise RecordInvalid(f"has field release {release!r}; expected {{version, digest}} as text")
    if not isinstance(body.get("details", {}), dict):
        raise RecordInvalid(f"has field details {body.get('details')!r}; expected an object")
    if body.get("algorithm", keys.ED25519) not in keys.ALGORITHMS:
        raise RecordInvalid(
            f"has field algorithm {body.get('algorithm')!r}; expected one of {keys.ALGORITHMS}"
        )


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM; ValueError when it is not one."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def findings(body: dict[str, Any]) -> dict[str, int]:
    """Findings counts by severity of a security sign-off (missing severities count as 0);
    RecordInvalid when they are not whole numbers."""
    counts = body.get("details", {}).get("findings", {})
    if not isinstance(counts, dict):
        raise RecordInvalid(f"has field details.findings {counts!r}; expected an object of counts")
    for severity in SEVERITIES:
        value = counts.get(severity, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RecordInvalid(
                f"has field details.findings.{severity} {value!r}; expected a whole number"
            )
    return {s: int(counts.get(s, 0)) for s in SEVERITIES}
