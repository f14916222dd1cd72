"""The helper's preflight gates: the same judgement as the policy pack, on local records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover_gates.gate import HOW_TO, POLICY_OF_KIND, judge
from cutover_gates.record import Expected, RecordInvalid

from cutover.errors import ConfigError
from cutover.outputs import StackOutputs


def load_records(folder: Path) -> list[tuple[Path, Any]]:
    """Every JSON document in `folder` (records of any kind, for any color)."""
    if not folder.is_dir():
        raise ConfigError(
            f"--records {folder}: not a folder; expected the folder of gate record files"
        )
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append((path, json.loads(path.read_text())))
        except json.JSONDecodeError as e:
            raise ConfigError(f"--records: {path} is not JSON ({e.msg})") from None
    return found


def check_gates(
    outputs: StackOutputs,
    color: str,
    kinds: list[str],
    pack_config: dict[str, Any],
    records: list[tuple[Path, Any]],
) -> list[str]:
    """Problems that stop traffic moving onto `color`'s release (empty when every gate holds)."""
    release = outputs.releases[color]
    version, digest = str(release.get("version", "")), str(release.get("digest", ""))
    expected = {
        kind: Expected(kind, outputs.project, outputs.stack, version, digest, color)
        for kind in kinds
    }
    now = datetime.now(UTC)
    problems = []
    for kind in kinds:
        config = pack_config.get(POLICY_OF_KIND[kind]) or {}
        if not isinstance(config, dict):
            config = {}
        reasons = []
        for path, document in records:
            body = document.get("record") if isinstance(document, dict) else None
            if not isinstance(body, dict) or body.get("kind") != kind or body.get("color") != color:
                continue
            try:
                judge(kind, document, expected[kind], config, now)
                break
            except RecordInvalid as e:
                reasons.append(f"{path.name}: {e}")
        else:
            where = f"{outputs.name} {color} release {version}"
            detail = "; ".join(reasons) if reasons else "no record found"
            problems.append(f"{kind} gate for {where}: {detail}. {HOW_TO[kind]}.")
    return problems


def pack_config_trusting(keys: dict[str, str]) -> dict[str, Any]:
    """Pack config trusting one public key per record kind (`{"approval": key, ...}`)."""
    return {POLICY_OF_KIND[kind]: {"trustedKeys": [key]} for kind, key in keys.items()}
