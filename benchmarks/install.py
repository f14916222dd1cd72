"""What each install of cutover costs: size on disk and time, from a warm pip cache, each in a
new virtualenv, beside the floor of the same run (an empty virtualenv, and boto3 alone: what a
rollback cannot do without).

Builds the wheel from the checkout, then `pip install` of `cutover`, `cutover[kubernetes]`,
`cutover[plots]` and `cutover[preview]`, pinned by requirements.lock, each once to warm the
cache and once measured. Prints one JSON object: per install its `mib` (site-packages and
scripts, less the empty virtualenv's) and `seconds`, and `helper_target_met` (the plain
install within 100 MiB and 30 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLS = {
    "empty virtualenv": None,
    "boto3 alone": "boto3",
    "cutover": "",
    "cutover[kubernetes]": "kubernetes",
    "cutover[plots]": "plots",
    "cutover[preview]": "preview",
}


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def wheel(out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    (found,) = out.glob("cutover-*.whl")
    return found


def install(venv: Path, what: str | None, built: Path) -> float:
    """A new virtualenv with `what` installed; the seconds the pip install took."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if what is None:
        return 0.0
    spec = "boto3" if what == "boto3" else f"{built}[{what}]" if what else str(built)
    started = time.monotonic()
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(ROOT / "requirements.lock"), spec],
        check=True, env={**os.environ, "PIP_NO_INPUT": "1"},
    )  # fmt: skip
    return time.monotonic() - started


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        built = wheel(Path(tmp) / "dist")
        empty = 0
        for name, what in INSTALLS.items():
            install(Path(tmp) / f"warm-{len(results)}", what, built)  # fills pip's cache
            venv = Path(tmp) / f"venv-{len(results)}"
            seconds = install(venv, what, built)
            total = size(venv)
            empty = total if what is None else empty
            results[name] = {"mib": round((total - empty) / 2**20, 1), "seconds": round(seconds, 1)}
    helper = results["cutover"]
    print(json.dumps({
        "installs": results,
        "helper_target_met": helper["mib"] <= 100 and helper["seconds"] <= 30,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
