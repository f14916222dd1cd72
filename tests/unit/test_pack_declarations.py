"""Each policy of the pack declared once: its name written in one place, its config's defaults
only in its schema, and its check handed its config typed, never a Mapping read by key."""

from __future__ import annotations

import ast
import functools
import typing
from pathlib import Path

import pytest
from cutover_gates.config_schema import Setting
from cutover_gates.contract import RECORD_KINDS
from cutover_gates.rules import NAMED, POLICIES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    path
    for tree in ("policies", "cutover", "components")
    for path in (ROOT / tree).rglob("*.py")
    if "venv" not in path.relative_to(ROOT).parts
)
CONFIG_KEYS = {s.key for p in POLICIES for s in p.config.settings}


@functools.cache
def trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text()) for path in SOURCES}


def written(text: str) -> list[str]:
    """Where `text` is a string literal in the sources."""
    return [
        f"{path.relative_to(ROOT)}:{n.lineno}"
        for path, tree in trees().items()
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value == text
    ]


def test_the_declarations_cover_the_pack_and_each_policy_is_declared_once() -> None:
    assert len(POLICIES) == len(NAMED) == 18
    assert all(p.description for p in POLICIES)
    assert "trustedKeys" in CONFIG_KEYS and "rollbackWindowMinutes" in CONFIG_KEYS


@pytest.mark.parametrize("name", sorted(set(NAMED) - set(RECORD_KINDS)))
def test_no_policy_name_is_a_literal_outside_its_declaration(name: str) -> None:
    """`security-signoff` also names a record kind (written wherever a record is made), so
    only the names that are no kind are counted."""
    assert len(written(name)) == 1, written(name)


def _reads_with_a_default(path: Path, tree: ast.Module) -> list[str]:
    """`x.get("<config key>", default)` and `x.get("<config key>") or default` in `tree`."""
    found = []
    for node in ast.walk(tree):
        call = node.values[0] if isinstance(node, ast.BoolOp) else node
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        key = call.args[0] if call.args and call.func.attr == "get" else None
        if not (isinstance(key, ast.Constant) and key.value in CONFIG_KEYS):
            continue
        if len(call.args) > 1 or isinstance(node, ast.BoolOp):
            found.append(f"{path}:{node.lineno} reads {key.value} with a default")
    return found


def test_no_pack_config_default_is_written_outside_its_schema() -> None:
    assert [
        line for path, tree in trees().items() for line in _reads_with_a_default(path, tree)
    ] == []


def test_the_scan_finds_a_default_written_beside_a_read(tmp_path: Path) -> None:
    """The scan above would see what it forbids (a test that cannot fail proves nothing)."""
    sample = tmp_path / "sample_read.py"
    sample.write_text('def f(c):\n    return c.get("maxAgeDays", 7), c.get("windows") or []\n')
    assert len(_reads_with_a_default(sample, ast.parse(sample.read_text()))) == 2


def test_every_setting_declares_its_default_in_its_schema() -> None:
    assert all("default" in s.schema for p in POLICIES for s in p.config.settings)
    with pytest.raises(TypeError, match="declares no default"):
        Setting("maxAgeHours", "max_age", {"type": "number"})


@pytest.mark.parametrize("name", sorted(NAMED))
def test_each_check_is_handed_its_config_typed(name: str) -> None:
    """The check's `config` is the declared shape (or a shape it extends): the config is
    parsed once into it, never read by key from a Mapping."""
    policy = NAMED[name]
    hint = typing.get_type_hints(policy.check)["config"]
    assert isinstance(hint, type) and issubclass(policy.config.shape, hint), hint
    assert policy.config.parse({}) == policy.config.parse(
        {s.key: s.schema["default"] for s in policy.config.settings}
    )
