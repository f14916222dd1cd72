"""A lean install of cutover made of the tested environment's own packages: the distributions
`pip install cutover` would bring (the base dependencies and what they require; with extras,
`pip install 'cutover[program]'`), linked into one folder for PYTHONPATH. Nothing else of the
tested environment is on the path, so a command that imports a module of an extra it was not
given meets the real ModuleNotFoundError."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

from tests.harness.program_runs import ROOT


def _project() -> dict:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


def base_requirements() -> list[str]:
    return list(_project()["dependencies"])


def extra_requirements(name: str) -> list[str]:
    """An extra's requirements, with the project's own extras it names (`cutover[program]`)
    in their place."""
    found = []
    for requirement in _project()["optional-dependencies"][name]:
        own = re.fullmatch(r"cutover\[([a-z,]+)\]", requirement.strip())
        found += (
            [r for part in own.group(1).split(",") for r in extra_requirements(part)]
            if own
            else [requirement]
        )
    return found


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


def lean_site(
    folder: Path, extras: tuple[str, ...] = (), others: tuple[str, ...] = ()
) -> dict[str, Distribution]:
    """Link the top-level modules and metadata of each distribution the base dependencies
    bring (and `extras`', and those of `others`, e.g. pytest) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = base_requirements() + [r for e in extras for r in extra_requirements(e)]
    found = closure(wanted + list(others))
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
