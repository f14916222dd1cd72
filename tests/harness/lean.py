"""A lean install of cutover made of the tested environment's own packages: the distributions
`pip install cutover` would bring (the base dependencies and what they require, no extra),
linked into one folder for PYTHONPATH. Nothing else of the tested environment is on the path,
so a command that imports an extra's module meets the real ModuleNotFoundError."""

from __future__ import annotations

import tomllib
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

from tests.harness.program_runs import ROOT


def base_requirements() -> list[str]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def closure(requirements: list[str]) -> dict[str, Distribution]:
    """Every installed distribution the requirements need (no extras), by name."""
    found: dict[str, Distribution] = {}
    todo = [Requirement(r) for r in requirements]
    while todo:
        wanted = todo.pop()
        if wanted.marker is not None and not wanted.marker.evaluate({"extra": ""}):
            continue
        name = wanted.name.lower().replace("_", "-")
        if name in found:
            continue
        try:
            found[name] = dist = distribution(wanted.name)
        except PackageNotFoundError:  # not needed on this Python (a backport)
            continue
        todo += [Requirement(r) for r in dist.requires or []]
    return found


def lean_site(folder: Path) -> dict[str, Distribution]:
    """Link each base distribution's top-level modules and metadata into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    found = closure(base_requirements())
    for dist in found.values():
        for file in dist.files or []:
            top = file.parts[0]
            if top.endswith(".pth") or top == ".." or top.startswith("__pycache__"):
                continue
            source = Path(str(dist.locate_file(top)))
            link = folder / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return found
