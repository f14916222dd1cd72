"""A stack's config: read from its `Pulumi.<stack>.yaml`, and a finished shift written back
into it, so the next `pulumi up` keeps it.

The program owns the listener's weights (`activeColor`, `trafficPercent`). After the helper
moves traffic, the stack's config must say the same, or the next `pulumi up` would put the
old weights back. With the Pulumi CLI, `pulumi config set` does it; without, the stack file
is edited in place (only those two lines change).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cutover.errors import ConfigError


def stack_config(path: Path) -> dict[str, Any]:
    """The `config:` map of a `Pulumi.<stack>.yaml` file (values as YAML gives them)."""
    import yaml  # slow to import: only a command given a stack file reads it

    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read the stack file {path}: {e.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(
            f"the stack file {path} is not valid YAML{at}; expected a Pulumi.<stack>.yaml"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"the stack file {path} is not a YAML map; expected a Pulumi.<stack>.yaml"
        )
    config = document.get("config")
    config = {} if config is None else config  # `config:` with nothing under it yet
    if not isinstance(config, dict):
        raise ConfigError(f"the stack file {path}: `config:` is not a map of keys to values")
    return dict(config)


def config_commands(stack: str | None, color: str, percent: int) -> list[list[str]]:
    base = ["pulumi", "config", "set"]
    suffix = ["--stack", stack] if stack else []
    return [
        [*base, "cutover:activeColor", color, *suffix],
        [*base, "cutover:trafficPercent", str(percent), *suffix],
    ]


def write_back_cli(stack: str, color: str, percent: int) -> None:
    if shutil.which("pulumi") is None:
        raise ConfigError("the Pulumi CLI is not on PATH; use --stack-config Pulumi.<stack>.yaml")
    for command in config_commands(stack, color, percent):
        subprocess.run(command, check=True)


# The line the write-back edits below: a block `config:` of its own at the top level.
CONFIG_LINE = re.compile(r"^config:\s*$", re.M)


def editable_stack_file(path: Path) -> str:
    """The text of a stack file the write-back can edit; ConfigError saying why not: it
    cannot be read or written, is not valid YAML, or has no top-level `config:` block. A
    command that writes the file afterwards checks it before it moves anything."""
    stack_config(path)
    text = path.read_text()
    if not CONFIG_LINE.search(text):
        raise ConfigError(
            f"{path} has no top-level `config:` block; expected a Pulumi.<stack>.yaml"
        )
    try:
        with path.open("r+b"):  # opened for writing, nothing written
            pass
    except OSError as e:
        raise ConfigError(f"cannot write the stack file {path}: {e.strerror}") from None
    return text


def write_back_file(path: Path, color: str, percent: int) -> None:
    """Set cutover:activeColor and cutover:trafficPercent in a Pulumi.<stack>.yaml file."""
    text = editable_stack_file(path)
    for key, value in (("activeColor", color), ("trafficPercent", str(percent))):
        line = re.compile(rf"^(\s+)cutover:{key}:.*$", re.M)
        if line.search(text):
            text = line.sub(rf"\g<1>cutover:{key}: {value}", text, count=1)
        else:
            text = re.sub(CONFIG_LINE, f"config:\n  cutover:{key}: {value}", text, count=1)
    try:
        path.write_text(text)
    except OSError as e:
        raise ConfigError(f"cannot write the stack file {path}: {e.strerror}") from None
