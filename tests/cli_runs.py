"""The `cutover` CLI as a real process, and signed gate record files, for the helper's tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cutover_gates.record import make_record, sign

from tests.program_runs import prod_config


def run_cutover(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cutover", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        cwd=cwd,
    )


def spawn_cutover(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cutover", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
    )


def wait_for(
    predicate: Callable[[], bool],
    timeout: float = 30,
    what: str = "condition",
    process: subprocess.Popen[str] | None = None,
) -> None:
    """Poll until `predicate` holds; fail on timeout, or if `process` ends first (its output)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


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
