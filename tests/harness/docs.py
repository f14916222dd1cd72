"""The one way to read the documentation's command blocks: every fenced ```sh, ```bash and
```console block of README.md and docs/*.md, its lines (continuations joined, comments apart,
the exit code an `# exits N` comment names), and what each line is, so a test can run it or
check it against the tool it calls. Also the pages' links and anchors."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import click
from botocore import xform_name
from botocore.session import get_session

from cutover.cli import cli

ROOT = Path(__file__).resolve().parents[2]
COMMAND_LANGS = ("sh", "bash", "console")
FENCE = re.compile(r"^( *)```(\S*)\s*$")
HEADING = re.compile(r"^(#{1,6}) +(.*?)\s*$")
# What a line of a block is, by how it starts: the tests run these in a prepared folder...
RUN_KINDS = ("cutover", "rehearsal", "source", "cd")
# ... and check these against what they name, without running them.
CHECK_KINDS = ("pulumi", "make", "aws", "pip", "venv", "script", "cp")


def pages() -> list[Path]:
    """README.md, then docs/*.md by name: the order the tests run their blocks in."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Command:
    """One command of a block: `text` as a shell runs it (without its comment), `words`
    as the shell splits them, less any `> FILE` redirection."""

    text: str
    comment: str
    words: tuple[str, ...]
    redirect: str | None

    @property
    def expected(self) -> int:
        """The exit code the line's comment names (`# exits 1`), else 0."""
        found = re.search(r"\bexits (\d+)", self.comment)
        return int(found.group(1)) if found else 0

    @property
    def kind(self) -> str:
        return kind_of(self.words)


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository: README.md, docs/helper.md
    heading: str  # the nearest heading above it
    lang: str
    line: int  # where its fence opens, 1-based
    text: str  # its content, unindented

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line} ({self.heading})"

    def commands(self) -> list[Command]:
        """Its commands, continuations joined; `a && b` is one command per part, each
        with the line's comment; in a ```console block, only the lines after a `$ ` prompt."""
        found = []
        for line in self.text.replace("\\\n", " ").splitlines():
            if self.lang == "console":  # a prompt's line is a command, the rest its output
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            command, comment = split_comment(line)
            if not command.strip():
                continue
            parts = [command] if " && " not in command else command.split(" && ")
            for part in parts:
                words, redirect = split_words(part)
                found.append(Command(part.strip(), comment, words, redirect))
        return found


def split_comment(line: str) -> tuple[str, str]:
    """`line` as (command, comment): a `#` outside quotes that starts a word opens it."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :]
    return line, ""


def split_words(command: str) -> tuple[tuple[str, ...], str | None]:
    words = shlex.split(command)
    if ">" in words:
        at = words.index(">")
        return tuple(words[:at]), words[at + 1]
    return tuple(words), None


def kind_of(words: tuple[str, ...]) -> str:
    """What a command is, by how it starts ("unknown" when no test knows how to cover it)."""
    first = words[0] if words else ""
    name = first.rsplit("/", 1)[-1]
    if name in ("cutover", "pulumi", "make", "aws", "cd", "cp", "source"):
        return name
    if name == "pip":
        return "pip"
    if name.startswith("python") and words[1:3] == ("-m", "rehearsal"):
        return "rehearsal"
    if name.startswith("python") and words[1:3] == ("-m", "venv"):
        return "venv"
    if name.startswith("python") and len(words) == 2 and words[1].startswith("benchmarks/"):
        return "script"
    return "unknown"


@cache
def blocks() -> tuple[Block, ...]:
    """Every fenced block of every page, in page order."""
    found = []
    for path in pages():
        heading, opened, indent, lang, body = "", 0, "", "", []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            fence = FENCE.match(line)
            if opened and fence and fence.group(1) == indent and not fence.group(2):
                text = "\n".join(b.removeprefix(indent) for b in body) + "\n"
                page = str(path.relative_to(ROOT))
                found.append(Block(page, heading, lang, opened, text))
                opened, body = 0, []
            elif opened:
                body.append(line)
            elif fence:
                opened, indent, lang = number, fence.group(1), fence.group(2)
            elif match := HEADING.match(line):
                heading = match.group(2)
    return tuple(found)


def command_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang in COMMAND_LANGS]


# -- links and anchors --------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of a page: its headings' (outside code blocks) and its `<a id>`s."""
    found, fenced = set(), False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.add(slug(match.group(2)))
        found.update(re.findall(r'<a id="([^"]+)"></a>', line))
    return frozenset(found)


def broken_links(path: Path) -> list[str]:
    """The page's relative links (`[text](file#anchor)`, `(#anchor)`) that lead nowhere."""
    broken = []
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        goal = (path.parent / file).resolve() if file else path
        if not goal.exists():
            broken.append(f"{target}: no {goal.relative_to(ROOT)}")
        elif anchor and (goal.suffix != ".md" or anchor not in anchors(goal)):
            broken.append(f"{target}: no anchor #{anchor} in {goal.relative_to(ROOT)}")
    return broken


# -- checks of the lines the tests do not run ---------------------------------------------------


def help_text(command: list[str], env: dict[str, str]) -> str:
    ran = subprocess.run(command + ["--help"], capture_output=True, text=True, env=env,
                         timeout=60)  # fmt: skip
    assert ran.returncode == 0, f"{shlex.join(command)} --help: {ran.stderr or ran.stdout}"
    return ran.stdout


def pulumi_problems(pulumi: Path, words: tuple[str, ...], env: dict[str, str]) -> list[str]:
    """What the real CLI does not know of a `pulumi ...` line: its subcommand, each taken
    from `Available Commands` of the help above it, and each flag, from `<sub> --help`."""
    path, rest = [str(pulumi)], list(words[1:])
    text = help_text(path, env)
    while rest and not rest[0].startswith("-"):
        listed = re.findall(r"^[A-Z][\w ]*Commands:\n((?:  +\S.*\n)+)", text, re.M)
        names = {line.split()[0] for group in listed for line in group.splitlines()}
        if rest[0] not in names:
            break  # an argument (a stack, a key, an org), not a subcommand
        path.append(rest.pop(0))
        text = help_text(path, env)
    flags = {f for pair in re.findall(r"^ +(-\w)?,? *(--[\w-]+)", text, re.M) for f in pair}
    used = {w.split("=", 1)[0] for w in rest if w.startswith("-")}
    return [f"`{' '.join(['pulumi', *path[1:]])}` has no {flag}" for flag in sorted(used - flags)]


def make_problems(words: tuple[str, ...]) -> list[str]:
    """A `make X` line: the Makefile has each target (`make -n` prints, runs nothing)."""
    ran = subprocess.run(["make", "-n", "-C", str(ROOT), *words[1:]], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    return [] if ran.returncode == 0 else [ran.stderr.strip()]


AWS_GLOBAL = {"region", "profile", "output", "query", "endpoint-url", "cli-input-json"}


def aws_problems(words: tuple[str, ...]) -> list[str]:
    """An `aws SERVICE OPERATION --param ...` line against botocore's model of the service:
    the operation exists, and each flag is one of its parameters (or a global option)."""
    model = get_session().get_service_model(words[1])
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    if words[2] not in operations:
        return [f"aws {words[1]} has no operation {words[2]}"]
    shape = model.operation_model(operations[words[2]]).input_shape
    members = {xform_name(m, "-") for m in (shape.members if shape else {})}
    flags = {w[2:] for w in words[3:] if w.startswith("--")}
    return [f"aws {words[1]} {words[2]} has no --{f}" for f in sorted(flags - members - AWS_GLOBAL)]


def pip_problems(words: tuple[str, ...]) -> list[str]:
    """A `pip install SPEC` or `pip freeze` line: pip's subcommand has each flag, and each
    extra of this project (`.[kubernetes]`) is declared in pyproject.toml."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(extras["optional-dependencies"])
    text = help_text(
        [sys.executable, "-m", "pip", words[1]],
        {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    flags = {f for pair in re.findall(r"^ +(-\w)?,? *(--[\w-]+)", text, re.M) for f in pair}
    problems = [
        f"pip {words[1]} has no {w}" for w in words[2:] if w.startswith("-") and w not in flags
    ]
    for spec in (w for w in words[2:] if w.startswith(".")):
        named = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", spec)
        wanted = set(named.group(1).split(",")) if named and named.group(1) else set()
        if not named or wanted - declared:
            problems.append(f"{spec}: pyproject.toml declares the extras {sorted(declared)}")
    return problems


def path_problems(named: str) -> list[str]:
    """`cd DIR`, `cp SRC DST`, `python benchmarks/X.py`: what it names is in the repository."""
    return [] if (ROOT / named).exists() else [f"{named} is not in the repository"]


def cutover_problems(words: tuple[str, ...]) -> list[str]:
    """A `cutover ...` line read by the command's own parser, without running it: the command
    exists, each option is one of its own and has its value, every required option is given,
    and each value that is not a path parses (a choice, a duration, a number; paths name
    files of the user's and are read when the command runs)."""
    context = click.Context(cli, info_name="cutover")
    command: click.Command = cli
    args = list(words[1:])
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        found = command.get_command(context, args[0])
        if found is None:
            return [f"{' '.join(words[: len(words) - len(args) + 1])}: no such command"]
        context = click.Context(found, info_name=args.pop(0), parent=context)
        command = found
    try:
        given, rest, _ = command.make_parser(context).parse_args(args)
    except click.UsageError as e:
        return [e.format_message()]
    problems = []
    for param in command.params:
        value = given.get(param.name or "")
        if value is None:
            if param.required and isinstance(param, click.Option):
                problems.append(f"missing {param.opts[-1]}")
            continue
        if isinstance(param.type, click.Path | click.File) or param.type.name in PATH_TYPES:
            continue
        for one in value if isinstance(value, list) else [value]:
            try:
                param.type.convert(one, param, context)
            except click.BadParameter as e:
                problems.append(e.format_message())
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if rest and not arguments:
        problems.append(f"unexpected {' '.join(rest)}")
    return problems


PATH_TYPES = ("FILE", "DIRECTORY")
