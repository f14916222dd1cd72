"""The distribution's wheel, built in isolation from the checkout, and an empty virtualenv with
it installed: what `pip install cutover` puts on a machine, without the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.harness.program_runs import ROOT

# What the wheel is built from: the distribution's own files, nothing else of the checkout.
SOURCES = ("pyproject.toml", "README.md", "cutover", "cutover_components", "policies/cutover_gates")


def build_wheel(folder: Path) -> Path:
    """The wheel, built with pip from a copy of what it ships (building writes build/ beside
    the sources)."""
    source = folder / "source"
    for name in SOURCES:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, source / name)
    dist = folder / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(dist), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (found,) = dist.glob("cutover-*.whl")
    return found


def install(wheel: Path, venv: Path) -> Path:
    """An empty virtualenv with the wheel unpacked into it (what pip would do, without its
    resolver); its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = (
        venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target
