"""Every third-party module the code imports is declared, and nothing declared goes unused."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.harness.lean import extra_requirements

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"cutover", "cutover_gates", "cutover_components", "tests"}


# A namespace package's distribution, by what the code imports from it.
NAMESPACES = {"google": "protobuf"}  # google.protobuf


def imported(paths: list[Path]) -> set[str]:
    """Top-level names of every module imported in `paths` (at the top or in functions)."""
    found: set[str] = set()
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]
    for path in files:
        if "venv" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in FIRST_PARTY}


@functools.cache
def _owners() -> dict[str, list[str]]:
    return packages_distributions()  # reads every installed distribution: once


def distributions(modules: set[str]) -> set[str]:
    names = _owners()
    return {
        normalize(d)
        for m in modules
        for d in ([NAMESPACES[m]] if m in NAMESPACES else names.get(m, [m]))
    }


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(requirements: list[str]) -> set[str]:
    return {
        normalize(re.split(r"[<>=!~\[;\s]", r.strip(), maxsplit=1)[0])
        for r in requirements
        if r.strip()
    }


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _wanted(*, test: bool) -> list[str]:
    """The base dependencies and every extra's (the `test` extra's only when `test`)."""
    project = _project()
    names = [name for name in project["optional-dependencies"] if test or name != "test"]
    return project["dependencies"] + [r for n in names for r in extra_requirements(n)]


def test_the_package_declares_exactly_what_it_imports() -> None:
    code = [ROOT / "cutover", ROOT / "cutover_components", ROOT / "policies", ROOT / "__main__.py"]
    assert distributions(imported(code)) == declared(_wanted(test=False))


def test_each_module_an_extra_brings_names_that_extra_when_missing() -> None:
    """What the helper imports beyond its base dependencies (and the program `preview` runs)
    comes from an extra, and the CLI names an extra that brings it when it is not installed."""
    from cutover.cli import EXTRAS

    project = _project()
    base = declared(project["dependencies"]) | {"urllib3"}  # botocore brings urllib3
    code = imported([ROOT / "cutover", ROOT / "cutover_components", ROOT / "__main__.py"])
    optional = {m for m in code if not distributions({m}) <= base}
    assert set(EXTRAS) == optional
    for module, extra in EXTRAS.items():
        assert distributions({module}) <= declared(extra_requirements(extra)), module


def test_the_pack_declares_what_it_imports() -> None:
    lines = (ROOT / "policies" / "requirements.txt").read_text().splitlines()
    used = distributions(imported([ROOT / "policies"]))
    assert used <= declared(lines), used - declared(lines)


def test_the_lock_pins_every_declared_dependency() -> None:
    wanted = declared(_wanted(test=True))
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pinned = {normalize(line.split("==")[0]) for line in lines if "==" in line}
    assert all("==" in line for line in lines if line and not line.startswith("#"))
    assert wanted <= pinned, wanted - pinned
