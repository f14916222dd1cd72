"""`cutover records verify`: each record file checked on its own, then each gate as the pack
judges it (N of M distinct signers), and a stage-exit record's verdict said."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover_gates.contract import STAGE_EXIT, TRUSTED_KEYS_OF
from cutover_gates.gate import judge, judge_records
from cutover_gates.record import Expected, RecordInvalid, Unreadable, parse_record
from cutover_gates.rules import gate_config
from cutover_gates.stack_outputs import StackOutputs


@dataclass
class Checked:
    lines: list[str] = field(default_factory=list)
    invalid: int = 0
    unmet_gates: int = 0  # gates whose valid records are too few (N of M)
    failed_verdicts: int = 0


def _expected(body: dict[str, Any], outputs: StackOutputs | None) -> Expected:
    kind, color = str(body.get("kind", "")), str(body.get("color", ""))
    release: Any = body.get("release") or {}
    if not isinstance(release, dict):
        release = {}
    if outputs is not None and color in outputs.releases:
        release = outputs.releases[color].to_json()
    return Expected(
        kind,
        outputs.project if outputs else str(body.get("project")),
        outputs.stack if outputs else str(body.get("stack")),
        str(release.get("version")),
        str(release.get("digest")),
        color,
    )


def check_files(
    files: list[Path], pack_config: dict[str, Any], outputs: StackOutputs | None
) -> Checked:
    result = Checked()
    now = datetime.now(UTC)
    gates: dict[tuple[Any, ...], list[Any]] = {}
    for path in files:
        try:
            document = parse_record(path.read_bytes())
        except OSError as e:
            document = Unreadable(f"cannot be read ({e.strerror})")
        body = document.get("record") if isinstance(document, dict) else None
        body = body if isinstance(body, dict) else {}
        kind = str(body.get("kind", ""))
        try:
            if isinstance(document, Unreadable):
                raise RecordInvalid(document.reason)
            if kind not in TRUSTED_KEYS_OF:
                raise RecordInvalid(f"has kind {kind!r}; expected one of {sorted(TRUSTED_KEYS_OF)}")
            expected = _expected(body, outputs)
            judge(kind, document, expected, gate_config(pack_config, kind), now)
        except (RecordInvalid, ValueError) as e:
            result.invalid += 1
            result.lines.append(f"INVALID {path}: {e}")
            continue
        line = (
            f"valid   {path}: {kind} for {body['stack']} {body['color']} "
            f"{body['release']['version']} (key {body['keyId']}, expires {body['expiresAt']})"
        )
        if kind == STAGE_EXIT:
            passed = bool((body.get("details") or {}).get("passed"))
            line += f"; verdict: {'passed' if passed else 'FAILED'}"
            result.failed_verdicts += 0 if passed else 1
        result.lines.append(line)
        gates.setdefault((kind, expected), []).append(document)
    for (kind, expected), documents in sorted(gates.items(), key=lambda g: str(g[0])):
        if kind == STAGE_EXIT:
            continue
        judged = judge_records(kind, documents, expected, gate_config(pack_config, kind), now)
        said = "holds" if judged.passed else "does not hold"
        said += f": {judged.summary()}" + ("" if judged.passed else f". {judged.ask()}.")
        result.unmet_gates += 0 if judged.passed else 1
        result.lines.append(
            f"gate    {kind} for {expected.stack} {expected.color} {expected.version}: {said}"
        )
    return result
