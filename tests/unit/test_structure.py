"""The shape of the code: no import circles, small modules, statuses from the contract, and
imports that run one way (the pack on nothing of the helper's or the program's, the helper's
library never on its commands, a command on no other command but what they share:
`cli/common` and `cli/output`)."""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.cli import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cutover"
MODULES = sorted(PACKAGE.rglob("*.py"))
PACK = ROOT / "policies" / "cutover_gates"
PROGRAM = ROOT / "cutover_components"
TREES = {"cutover": PACKAGE, "cutover_components": PROGRAM, "cutover_gates": PACK}
EVERY_MODULE = sorted(p for tree in TREES.values() for p in tree.rglob("*.py"))


@functools.cache
def parsed(path: Path) -> ast.Module:
    """`path`'s syntax tree, parsed once for every test here."""
    return ast.parse(path.read_text())


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_only(tree: ast.Module) -> set[int]:
    """The import nodes under `if TYPE_CHECKING:` (names for annotations, never imported)."""
    return {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(block)
    }


def tree_module_name(path: Path) -> str:
    """`path`'s module name in its tree (cutover, components as imported, the pack)."""
    for name, tree in TREES.items():
        if path.is_relative_to(tree):
            parts = (name, *path.relative_to(tree).with_suffix("").parts)
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise AssertionError(path)


def import_graph() -> dict[str, set[str]]:
    """Every module of cutover/, components/ and the pack, and every module of those it
    imports in any way: at the top, inside a function, or for annotations only
    (`from a.b import c` may import module a.b.c)."""
    names = {tree_module_name(p) for p in EVERY_MODULE}
    graph = {}
    for path in EVERY_MODULE:
        found = imported(path, with_names=True, type_only_too=True)
        graph[tree_module_name(path)] = {n for n in found if n in names} - {tree_module_name(path)}
    return graph


def test_no_import_circle_counting_every_import() -> None:
    """No module imports, in any way, a module that imports it back, however far round:
    a package's walk goes down (a package's __init__ importing its own modules is its
    table of contents, not a circle)."""
    graph = import_graph()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if goal.startswith(nxt + ".") and start != goal:
                continue  # importing one's own package's __init__ (what it re-exports)
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, {m}))
    assert circles == []


@pytest.mark.parametrize("path", EVERY_MODULE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400


def imported(path: Path, with_names: bool = False, type_only_too: bool = False) -> set[str]:
    """Every module `path` imports, by its full name, at the top or inside a function (and,
    with `type_only_too`, the names imported for annotations only); `with_names`: and each
    `from m import n` as m.n too."""
    found: set[str] = set()
    tree = parsed(path)
    skipped = set() if type_only_too else type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if with_names:
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_the_pack_imports_nothing_of_the_helper_or_the_program() -> None:
    crossing = {
        f"{p.relative_to(ROOT)} imports {m}"
        for p in PACK.rglob("*.py")
        for m in imported(p)
        if m.split(".")[0] in ("cutover", "cutover_components", "rehearsal")
    }
    assert crossing == set()


def test_the_contract_and_the_config_declarations_are_pure() -> None:
    """What the program, the pack and the helper all read imports no third-party module,
    so any of them (and the unit layer) can load it."""
    allowed = set(sys.stdlib_module_names) | {"cutover_gates"}
    for name in ("contract.py", "stack_outputs.py", "output_shapes.py", "config_keys.py",
                 "analysis_config.py"):  # fmt: skip
        outside = {m for m in imported(PACK / name) if m.split(".")[0] not in allowed}
        assert outside == set(), name


def test_the_helpers_library_never_imports_its_commands() -> None:
    library = [p for p in MODULES if "cli" not in p.relative_to(PACKAGE).parts[:1]]
    crossing = {
        f"{p.relative_to(ROOT)} imports {m}"
        for p in library
        if p.name != "__main__.py"  # `python -m cutover` runs the commands
        for m in imported(p)
        if m == "cutover.cli" or m.startswith("cutover.cli.")
    }
    assert crossing == set()


SHARED_BY_COMMANDS = {"cutover.cli.common", "cutover.cli.output"}


def test_a_command_imports_no_other_command_but_what_they_share() -> None:
    """Commands share their options and context (`cli/common`) and how they print
    (`cli/output`), and nothing of each other."""
    commands = [p for p in (PACKAGE / "cli").glob("*.py") if p.name != "__init__.py"]
    crossing = {
        f"{p.relative_to(ROOT)} imports {m}"
        for p in commands
        if module_name(p) not in SHARED_BY_COMMANDS
        for m in imported(p)
        if m.startswith("cutover.cli.") and m not in SHARED_BY_COMMANDS
    }
    assert crossing == set()


def test_the_program_imports_no_command_and_no_rehearsal() -> None:
    crossing = {
        f"{p.relative_to(ROOT)} imports {m}"
        for p in [*PROGRAM.rglob("*.py"), ROOT / "__main__.py"]
        for m in imported(p)
        if m.startswith("cutover.cli") or m.split(".")[0] == "rehearsal"
    }
    assert crossing == set()


STATUSES = {"in-progress", "paused", "succeeded", "rolled-back", "drilled", "interrupted"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_status_is_written_as_a_string_literal(path: Path) -> None:
    tree = parsed(path)
    # dict keys and subscripts name figures ("succeeded": 3), enum members name events
    keys = {id(k) for n in ast.walk(tree) if isinstance(n, ast.Dict) for k in n.keys}
    keys |= {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
    keys |= {
        id(a.value)
        for c in ast.walk(tree)
        if isinstance(c, ast.ClassDef) and any(getattr(b, "id", "") == "StrEnum" for b in c.bases)
        for a in c.body
        if isinstance(a, ast.Assign)
    }
    literals = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value in STATUSES and id(n) not in keys
    ]
    assert literals == []


def test_the_unit_layer_loads_no_server_sdk_or_rehearsal() -> None:
    """`pytest tests/unit` pays for none of moto, Pulumi, gRPC or the rehearsal: each layer's
    fixtures live in its own conftest.py, and the program's pure parts import no SDK."""
    probe = (
        "import sys, pytest\n"
        "pytest.main(['-q', '--collect-only', '-p', 'no:cacheprovider', 'tests/unit'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'moto', 'pulumi', 'pulumi_aws', 'pulumi_kubernetes', 'pulumi_policy', 'grpc', "
        "'rehearsal'}))\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           cwd=PACKAGE.parent, timeout=120)  # fmt: skip
    assert found.stdout.strip().splitlines()[-1] == "[]", found.stdout[-2000:] + found.stderr


def test_only_the_packs_plumbing_imports_the_policy_sdk() -> None:
    """The pack's library and its declared policies (what the helper's wheel ships, and reads
    to validate --gates-config) load without pulumi_policy; rules/plumbing.py alone serves the
    declarations through the SDK."""
    importing = {
        str(p.relative_to(PACK))
        for p in PACK.rglob("*.py")
        if any(m.split(".")[0] == "pulumi_policy" for m in imported(p))
    }
    assert importing == {"rules/plumbing.py"}


def test_every_blind_except_says_why() -> None:
    """ruff selects BLE: each `except Exception` it is told to allow says, after " - ", why
    catching everything is right there."""
    bare = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [*EVERY_MODULE, *sorted((ROOT / "tests").rglob("*.py"))]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "noqa: BLE001" in line and not re.search(r"noqa: BLE001 - \S", line)
    ]
    assert bare == []


def function_level_imports(path: Path) -> list[tuple[int, str, str]]:
    """Each import statement inside a function of `path`: its line, the module it imports
    (the first, for `import a, b`) and the comment that ends its line ("" for none)."""
    lines = path.read_text().splitlines()
    found = []
    for function in ast.walk(parsed(path)):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                module = node.names[0].name
            elif isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
            else:
                continue
            # an import statement holds no string: a `#` on its line starts its comment
            comment = lines[node.lineno - 1].partition("#")[2].strip()
            found.append((node.lineno, module, comment))
    return sorted(set(found))


def test_a_module_imports_at_the_top_unless_its_line_says_why() -> None:
    """Library and command modules import at the top. An import inside a function is of an
    optional extra's module (`# optional extra: cutover[kubernetes]`, the extra that brings
    it), or keeps something heavy off a path that must stay lean (the watchdog's Lambda
    imports only boto3, `cutover --help` starts cold, the unit layer loads no SDK), and its
    line says which."""
    unsaid, wrong = [], []
    for path in EVERY_MODULE:
        for line, module, comment in function_level_imports(path):
            where = f"{path.relative_to(ROOT)}:{line} {module}"
            extra = re.match(r"optional extra: cutover\[(\w+)\]", comment)
            if extra and EXTRAS.get(module.split(".")[0]) != extra[1]:
                wrong.append(f"{where}: {comment}")
            elif not comment or re.match(r"(noqa|type:|fmt:|pragma)", comment):
                unsaid.append(where)
    assert wrong == []
    assert unsaid == []
