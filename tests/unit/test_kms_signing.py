"""Signing through AWS KMS, the Ed25519 message format: KMS (ECC_NIST_EDWARDS25519 with
ED25519_SHA_512) signs the raw canonical record (MessageType RAW); a signature made by
`cryptography` over exactly those bytes verifies with the public key KMS hands out (its DER
SubjectPublicKeyInfo). moto's KMS has no Ed25519 keys, so KMS's answers are botocore's Stubber
here, checked against the exact request; the ECDSA path runs against moto's KMS in
tests/helper/test_kms.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cutover_gates.keys import parse_trusted_keys
from cutover_gates.record import Expected, RecordInvalid, canonical, make_record, sign, verify

from cutover.errors import ConfigError
from cutover.gate_record import KmsSigner

NOW = datetime.now(UTC)
BODY = make_record(kind="approval", project="cutover", stack="prod", version="1.42.0",
                   digest="sha256:" + "9" * 64, color="green", issued_at=NOW,
                   valid_for=timedelta(days=1))  # fmt: skip
EXPECTED = Expected("approval", "cutover", "prod", "1.42.0", "sha256:" + "9" * 64, "green")
ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _client() -> tuple[object, Stubber]:
    client = boto3.client("kms", region_name="eu-west-1", aws_access_key_id="t",
                          aws_secret_access_key="t")  # fmt: skip
    return client, Stubber(client)


def test_an_ed25519_kms_key_signs_the_raw_canonical_record() -> None:
    private = Ed25519PrivateKey.generate()
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    client, stub = _client()
    stub.add_response("get_public_key", {"KeyId": ARN, "KeySpec": "ECC_NIST_EDWARDS25519",
                                         "KeyUsage": "SIGN_VERIFY", "PublicKey": spki,
                                         "SigningAlgorithms": ["ED25519_SHA_512"]},
                      {"KeyId": "alias/chairman"})  # fmt: skip
    with stub:
        signer = KmsSigner("alias/chairman", client)
        unsigned = {**BODY, "keyId": signer.key_id, "algorithm": "ed25519"}
        message = canonical(unsigned)
        stub.add_response(
            "sign",
            {"KeyId": ARN, "Signature": private.sign(message), "SigningAlgorithm": "ED25519_SHA_512"},
            {"KeyId": "alias/chairman", "Message": message, "MessageType": "RAW",
             "SigningAlgorithm": "ED25519_SHA_512"},
        )  # fmt: skip
        document = sign(BODY, signer)
        stub.assert_no_pending_responses()
    entry = signer.trusted_entry("chairman")
    assert entry["algorithm"] == "ed25519" and entry["kms"] == ARN
    body = verify(document, parse_trusted_keys([entry]), EXPECTED, NOW)
    assert body["algorithm"] == "ed25519" and body["keyId"] == signer.key_id
    # the same key trusted in its original form (base64 of the raw 32 bytes) verifies it too
    assert verify(document, parse_trusted_keys([entry["publicKey"]]), EXPECTED, NOW)
    tampered = {**document, "record": {**document["record"], "color": "blue"}}
    with pytest.raises(RecordInvalid, match="does not match"):
        verify(tampered, parse_trusted_keys([entry]), EXPECTED, NOW)


def test_a_kms_key_that_cannot_sign_records_is_refused() -> None:
    client, stub = _client()
    stub.add_response("get_public_key", {"KeyId": ARN, "KeySpec": "RSA_2048",
                                         "KeyUsage": "SIGN_VERIFY", "PublicKey": b"x"})  # fmt: skip
    with stub, pytest.raises(ConfigError, match="expected a SIGN_VERIFY key of spec"):
        KmsSigner("alias/rsa", client)
