"""Pre-deployment validation (substage 30.1): before any traffic moves, the release gates (the
same judgement as the policy pack, on local records), the target color's capacity and health,
the other color intact to take traffic back, and an optional smoke test on the test listener.
Refusals raise GateRefused (exit 2): nothing was changed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover_gates.contract import POLICY_OF_KIND, Color, other_color
from cutover_gates.gate import HOW_TO, judge_records
from cutover_gates.record import Expected, RecordInvalid, Unreadable, parse_record

from cutover.errors import ConfigError, GateRefused
from cutover.outputs import StackOutputs
from cutover.service import Service


def load_records(folder: Path) -> list[tuple[Path, Any]]:
    """Every JSON document in `folder` (records of any kind, for any color), parsed strictly;
    ConfigError naming the file when one cannot be read as a record."""
    if not folder.is_dir():
        raise ConfigError(
            f"--records {folder}: not a folder; expected the folder of gate record files"
        )
    found = []
    for path in sorted(folder.glob("*.json")):
        if path.is_dir():
            raise ConfigError(f"--records: {path} is a folder; expected a gate record file")
        try:
            document = parse_record(path.read_bytes())
        except OSError as e:
            raise ConfigError(
                f"--records: {path} cannot be read ({e.strerror}; a dangling link?)"
            ) from None
        if isinstance(document, Unreadable):
            raise ConfigError(f"--records: {path} {document.reason}")
        found.append((path, document))
    return found


def check_gates(
    outputs: StackOutputs,
    color: str,
    kinds: list[str],
    pack_config: dict[str, Any],
    records: list[tuple[Path, Any]],
) -> list[str]:
    """Problems that stop traffic moving onto `color`'s release (empty when every gate holds):
    the same judgement as the pack's (N of M), over the record files, and a change freeze."""
    from cutover_gates.contract import EMERGENCY, TRUSTED_KEYS_OF
    from cutover_gates.freeze import active_window

    release = outputs.releases[color]
    version, digest = str(release.get("version", "")), str(release.get("digest", ""))
    now = datetime.now(UTC)
    problems = []
    freeze = _config(pack_config, TRUSTED_KEYS_OF[EMERGENCY])
    try:
        window = active_window(freeze, now)
    except ValueError as e:
        problems.append(f"the change-freeze config is malformed ({e})")
        window = None
    if window is not None:
        kinds = [*kinds, EMERGENCY]
    where = f"{outputs.name} {color} release {version}"
    for kind in kinds:
        expected = Expected(kind, outputs.project, outputs.stack, version, digest, color)
        documents = [d for _, d in records if _of(d, kind, color)]
        try:
            judged = judge_records(
                kind, documents, expected, _config(pack_config, TRUSTED_KEYS_OF[kind]), now
            )
        except (RecordInvalid, ValueError) as e:
            problems.append(f"{kind} gate for {where}: {e}. {HOW_TO[kind]}.")
            continue
        if judged.passed:
            continue
        detail = "; ".join(judged.refused) if judged.refused else "no record found"
        if kind == EMERGENCY and window is not None:
            detail = f"traffic may not move during the change freeze {window.describe()} ({detail})"
        problems.append(f"{kind} gate for {where}: {judged.summary()}: {detail}. {HOW_TO[kind]}.")
    return problems


def _config(pack_config: dict[str, Any], policy: str) -> dict[str, Any]:
    found = pack_config.get(policy) or {}
    return found if isinstance(found, dict) else {}


def _of(document: Any, kind: str, color: str) -> bool:
    body = document.get("record") if isinstance(document, dict) else None
    return isinstance(body, dict) and body.get("kind") == kind and body.get("color") == color


def pack_config_trusting(keys: dict[str, str]) -> dict[str, Any]:
    """Pack config trusting one public key per record kind (`{"approval": key, ...}`)."""
    return {POLICY_OF_KIND[kind]: {"trustedKeys": [key]} for kind, key in keys.items()}


def preflight(
    services: list[Service],
    target: Color,
    kinds: list[str],
    pack_config: dict[str, Any],
    records: list[tuple[Path, Any]],
    min_healthy: int | None,
    smoke: str | None,
    log: Callable[[str], None],
) -> None:
    """Gates, target capacity and health, the other color intact, smoke test. GateRefused
    (exit 2) naming every problem; nothing is changed either way."""
    if smoke:
        for s in services:
            if not s.outputs.test_url:
                raise ConfigError(
                    f"--smoke: {s.outputs.name} has no test listener (Gateway routing); smoke-test "
                    "the inactive color's Service before shifting, and drop --smoke"
                )
    problems: list[str] = []
    for s in services:
        o, fleet = s.outputs, s.fleet
        problems += check_gates(o, target, kinds, pack_config, records)
        need = min_healthy or int(o.services[target].get("capacity", 1))
        ready = fleet.ready(target)
        if ready < need:
            problems.append(
                f"{o.name}: {target} has {ready} {fleet.unit}; it needs {need} before it takes traffic"
            )
        other = other_color(target)
        if fleet.ready(other) == 0:
            problems.append(
                f"{o.name}: {other} has no {fleet.unit}; it could not take traffic back"
            )
    if problems:
        raise GateRefused("refused, nothing was changed:\n  " + "\n  ".join(problems))
    if smoke:
        for s in services:
            url = str(s.outputs.test_url)
            log(f"Smoke test against {url}: {smoke}")
            code = run_smoke(smoke, {**os.environ, "CUTOVER_TEST_URL": url})
            if code != 0:
                raise GateRefused(
                    f"smoke test failed (exit {code}) against {url}; nothing was changed"
                )


# How long a smoke test stopped by a signal may take to exit before it is killed.
SMOKE_STOP_SECONDS = 5.0


def run_smoke(command: str, env: dict[str, str]) -> int:
    """Run the smoke command in a process group of its own, its exit code; if this process
    is interrupted meanwhile, the whole group is stopped (SIGTERM, then SIGKILL) before the
    interrupt goes on, so no smoke test outlives the shift it was for."""
    import signal

    process = subprocess.Popen(command, shell=True, env=env, process_group=0)
    try:
        return process.wait()
    except BaseException:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=SMOKE_STOP_SECONDS)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
