"""The `cutover` CLI as a real process, and signed gate record files, for the helper's tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# A driver that is to be frozen or outlived: a lease a busy machine cannot outrun by accident,
# and calls bounded so that the lease covers one write (2 attempts of 1 + 1 s, 1 s backoff).
LEASE = 10
OUTLIVED = {
    "CUTOVER_LEASE_SECONDS": str(LEASE),
    "AWS_MAX_ATTEMPTS": "2",
    "CUTOVER_KUBE_ATTEMPTS": "2",
    "CUTOVER_KUBE_CONNECT_TIMEOUT": "1",
    "USER": "ci",
}
# A Gateway stack makes no AWS call; any attempt fails fast on a closed local port.
NO_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_ACCESS_KEY_ID": "none",
    "AWS_SECRET_ACCESS_KEY": "none",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


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


@contextlib.contextmanager
def running(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill the process if the test fails before it ends."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@contextlib.contextmanager
def frozen(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """SIGSTOP the process (a laptop asleep, a VM paused, a runner cut off: alive, but it
    renews nothing) and, whatever happens, SIGKILL it at the end, as a lost host never comes
    back. No root needed: to its lease it is another host's process."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
            process.communicate()
