"""The keys gate records are signed with, as the pack's config trusts them.

Two algorithms: `ed25519` (a key file from `cutover keys new`, or an AWS KMS key of spec
ECC_NIST_EDWARDS25519 signing with ED25519_SHA_512 over the raw message) and
`ecdsa-p256-sha256` (an AWS KMS key of spec ECC_NIST_P256 signing with ECDSA_SHA_256; DER
signatures). A trusted key is an entry of a policy's `trustedKeys`: the base64 of a raw Ed25519
key (the original form), or an object naming its algorithm and public key, and optionally who
holds it, when it may sign (`notBefore`, `notAfter`) and when it was revoked. A key's id is the
first 16 hex digits of SHA-256 of its public key's raw bytes (Ed25519: the 32 bytes; P-256: the
uncompressed point), so the same key has one id whatever signs with it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256-sha256"
ALGORITHMS = (ED25519, ECDSA_P256)
# What KMS calls them: key spec and signing algorithm, per cutover algorithm.
KMS_SPECS = {
    "ECC_NIST_EDWARDS25519": (ED25519, "ED25519_SHA_512"),
    "ECC_NIST_P256": (ECDSA_P256, "ECDSA_SHA_256"),
}

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey


def raw_bytes(public_key: PublicKey) -> bytes:
    """The public key's raw bytes: 32 for Ed25519, the uncompressed point for P-256."""
    if isinstance(public_key, Ed25519PublicKey):
        return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def key_id(public_key: PublicKey) -> str:
    return hashlib.sha256(raw_bytes(public_key)).hexdigest()[:16]


def algorithm_of(public_key: PublicKey) -> str:
    if isinstance(public_key, Ed25519PublicKey):
        return ED25519
    if isinstance(public_key.curve, ec.SECP256R1):
        return ECDSA_P256
    raise ValueError(f"unsupported curve {public_key.curve.name}; expected Ed25519 or P-256")


def public_key_text(public_key: PublicKey) -> str:
    """How a key's `publicKey` is written in the pack config: base64 of its raw bytes."""
    return base64.b64encode(raw_bytes(public_key)).decode()


def parse_public_key(algorithm: str, text: str) -> PublicKey:
    """A public key of `algorithm` from base64 of its raw bytes, or of its DER
    SubjectPublicKeyInfo (what KMS GetPublicKey returns); ValueError when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"publicKey is not base64: {text!r}") from e
    try:
        if algorithm == ED25519 and len(raw) == 32:
            return Ed25519PublicKey.from_public_bytes(raw)
        if algorithm == ECDSA_P256 and len(raw) == 65:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        found = serialization.load_der_public_key(raw)
    except ValueError as e:
        raise ValueError(f"not an {algorithm} public key: {e}") from e
    if not isinstance(found, Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise ValueError(f"not an {algorithm} public key")
    if algorithm_of(found) != algorithm:
        raise ValueError(f"a {algorithm_of(found)} key where {algorithm} is named")
    return found


def _time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field} {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{field} {value!r} has no time zone")
    return moment


@dataclass(frozen=True)
class TrustedKey:
    """One key a policy trusts, with the window in which it may sign."""

    algorithm: str
    public_key: PublicKey
    name: str = ""
    not_before: datetime | None = None
    not_after: datetime | None = None
    revoked: datetime | None = None
    kms: str = ""  # the KMS key it lives in, for people (never used to verify)

    @property
    def id(self) -> str:
        return key_id(self.public_key)

    def describe(self) -> str:
        return f"{self.name} ({self.id})" if self.name else self.id

    def holder(self) -> str:
        """Who signs with this key, for a person to ask: its name, or the holder of its id."""
        return self.describe() if self.name else f"the holder of key {self.id}"

    def verify(self, signature: bytes, message: bytes) -> None:
        """InvalidSignature unless `signature` is this key's over `message`."""
        if isinstance(self.public_key, Ed25519PublicKey):
            self.public_key.verify(signature, message)
        else:
            self.public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))

    def problem_at(self, issued: datetime, now: datetime) -> str | None:
        """Why this key may not have signed a record issued at `issued`, judged at `now`, or
        None. Once its revocation has come, every record of a revoked key is refused, whatever
        issue time it claims: the issue time is the signer's word, and whoever holds a lost
        key can back-date a record to before the loss."""
        if self.revoked is not None and (self.revoked <= now or issued >= self.revoked):
            return f"was revoked at {_text(self.revoked)}"
        if self.not_before is not None and issued < self.not_before:
            return f"may sign only from {_text(self.not_before)}"
        if self.not_after is not None and issued > self.not_after:
            return f"may sign only until {_text(self.not_after)}"
        return None

    def to_json(self) -> dict[str, Any]:
        """The entry to paste into a policy's `trustedKeys`."""
        entry: dict[str, Any] = {
            "algorithm": self.algorithm,
            "publicKey": public_key_text(self.public_key),
        }
        if self.name:
            entry["name"] = self.name
        if self.kms:
            entry["kms"] = self.kms
        for field, value in (
            ("notBefore", self.not_before),
            ("notAfter", self.not_after),
            ("revoked", self.revoked),
        ):
            if value is not None:
                entry[field] = _text(value)
        return entry


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_trusted_key(entry: Any) -> TrustedKey:
    """One `trustedKeys` entry; ValueError naming what is wrong."""
    if isinstance(entry, str):
        return TrustedKey(ED25519, parse_public_key(ED25519, entry))
    if not isinstance(entry, Mapping):
        raise ValueError(f"trusted key {entry!r}: expected base64 text or an object")
    algorithm = entry.get("algorithm")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"trusted key algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    key = parse_public_key(str(algorithm), str(entry.get("publicKey", "")))
    found = TrustedKey(
        str(algorithm),
        key,
        name=str(entry.get("name", "")),
        not_before=_time(entry.get("notBefore"), "notBefore"),
        not_after=_time(entry.get("notAfter"), "notAfter"),
        revoked=_time(entry.get("revoked"), "revoked"),
        kms=str(entry.get("kms", "")),
    )
    if found.not_before and found.not_after and found.not_after <= found.not_before:
        raise ValueError(f"trusted key {found.describe()}: notAfter is not after notBefore")
    return found


def parse_trusted_keys(entries: Sequence[Any]) -> list[TrustedKey]:
    """A policy's `trustedKeys` entries, parsed; ValueError on the first malformed entry, or on
    a key listed twice (under two names, or one): which entry would judge its records, the
    revoked one or the other, must never depend on their order."""
    found: dict[str, tuple[int, TrustedKey]] = {}
    for index, entry in enumerate(entries):
        key = parse_trusted_key(entry)
        if key.id in found:
            first, earlier = found[key.id]
            raise ValueError(
                f"lists key {key.id} twice ({_entry_name(first, earlier)} and "
                f"{_entry_name(index, key)}); list each key once, with its window and revocation"
            )
        found[key.id] = (index, key)
    return [key for _, key in found.values()]


def _entry_name(index: int, key: TrustedKey) -> str:
    return repr(key.name) if key.name else f"entry {index + 1}"
