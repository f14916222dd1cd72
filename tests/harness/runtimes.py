"""The Python interpreters users and the cloud run cutover on, found on this machine: the
watchdog's Lambda runtime (python3.12) is tested on that version, not on the suite's own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def interpreter(name: str) -> str:
    """A working `name` (say `python3.12`): on PATH, else under pyenv's versions. Missing,
    the test is skipped saying so, or failed where CUTOVER_TESTS_REQUIRE_RUNTIMES is set (as
    `.ci/run` and the workflows set it)."""
    version = name.removeprefix("python")
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    try:
        pyenv = sorted(map(str, root.glob(f"versions/{version}*/bin/{name}")))
    except OSError:  # a pyenv this user may not read (another user's home) is none
        pyenv = []
    found = [shutil.which(name), *pyenv]
    for candidate in filter(None, found):
        probe = subprocess.run([candidate, "-c", "pass"], capture_output=True)
        if probe.returncode == 0:
            return candidate
    message = f"{name} is not installed (the watchdog's Lambda runs on it)"
    if os.environ.get("CUTOVER_TESTS_REQUIRE_RUNTIMES"):
        pytest.fail(message)
    pytest.skip(message)
