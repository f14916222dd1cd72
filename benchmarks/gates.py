"""What the audit-grade gates cost, each figure beside its floor measured in the same run.

Prints one JSON object:

- n_of_m_ratio: the policy pack (started as the engine starts it, over the analyzer protocol)
  judging the flip to green with a 2-of-3 approval rule and two approvals, over the same
  stack with one approval of one trusted key (medians of 15 interleaved AnalyzeStack calls;
  target <= 1.5);
- kms_sign_ms beside local_sign_ms: one record signed through AWS KMS (moto's server on
  127.0.0.1, ECDSA P-256, one Sign call over HTTP) beside one signed with a local Ed25519 key.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cutover_gates.record import LocalSigner, make_record, sign  # noqa: E402

from cutover.preview.pack import PolicyPackProcess  # noqa: E402
from tests.harness.program_runs import previous_outputs, prod_config  # noqa: E402
from tests.harness.records import (  # noqa: E402
    KEYS,
    PACK_CONFIG,
    declare_with_green_records,
    entry,
    record,
    with_records,
)

TRIALS = 15


def n_of_m() -> dict[str, float]:
    config = prod_config()
    config["cutover:activeColor"] = "green"
    with tempfile.TemporaryDirectory() as tmp:
        flip = declare_with_green_records(
            Path(tmp), config, previous=previous_outputs({"blue": 100, "green": 0}, 600)
        )
    one = with_records(flip, "approval", [record("approval", key="chairman")])
    two = with_records(flip, "approval", [record("approval", key="chairman"),
                                          record("approval", key="cfo")])  # fmt: skip
    two_of_three = {**PACK_CONFIG, "chairman-approval": {
        "trustedKeys": [entry("chairman"), entry("cfo"), entry("cto")], "required": 2}}  # fmt: skip
    single, double = [], []
    with PolicyPackProcess(ROOT / "policies", stack="prod", project="cutover") as pack:
        for _ in range(TRIALS):
            pack.configure(PACK_CONFIG)
            start = time.perf_counter()
            assert pack.analyze_stack(one) == []
            single.append(time.perf_counter() - start)
            pack.configure(two_of_three)
            start = time.perf_counter()
            assert pack.analyze_stack(two) == []
            double.append(time.perf_counter() - start)
    a, b = statistics.median(double), statistics.median(single)
    return {"n_of_m_ratio": round(a / b, 3), "two_of_three_ms": round(a * 1000, 2),
            "one_approval_ms": round(b * 1000, 2)}  # fmt: skip


def kms_against_local() -> dict[str, float]:
    import os

    import boto3

    from cutover.gate_record import KmsSigner
    from rehearsal.aws import aws_env, moto_server

    body = make_record(kind="approval", project="cutover", stack="prod", version="1.42.0",
                       digest="sha256:" + "9" * 64, color="green", issued_at=datetime.now(UTC),
                       valid_for=timedelta(days=1))  # fmt: skip
    local = LocalSigner(KEYS["chairman"])
    with moto_server() as endpoint:
        os.environ.update(aws_env(endpoint))
        kms = boto3.client("kms")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        signer = KmsSigner(key["KeyId"], kms)
        remote, here = [], []
        for _ in range(31):
            start = time.perf_counter()
            sign(body, signer)
            remote.append(time.perf_counter() - start)
            start = time.perf_counter()
            sign(body, local)
            here.append(time.perf_counter() - start)
    return {"kms_sign_ms": round(statistics.median(remote) * 1000, 3),
            "local_sign_ms": round(statistics.median(here) * 1000, 3)}  # fmt: skip


def main() -> None:
    print(json.dumps({**n_of_m(), **kms_against_local()}))


if __name__ == "__main__":
    main()
