"""The command line's values, parsed before a command does anything: each parser returns the
value or raises ValueError saying what was wrong and what is expected (the CLI prints it in
one line naming the flag, exit 2).

Empty is never a default: an empty `--deployment` (an id file a pipeline never wrote) must
not mean "the latest", nor an empty `--out` the current folder. A file a command writes only
at the end (the id a pipeline keeps, a signed record, a report) is checked here, so a command
refused for it leaves no trace: its folder exists and takes a new file. That check writes
nothing that stays (a temporary file, gone at once), because only a real write answers for
every case: permissions, a read-only mount, /proc.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from cutover.engine.plan import parse_steps
from cutover.errors import ConfigError
from cutover.stack_config import editable_stack_file


def text_of(expected: str) -> Callable[[str], str]:
    """A parser of text that must say something (`expected`: what, for the message)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise ValueError(f"empty; expected {expected}")
        return text

    return parse


def file_path(text: str) -> Path:
    """A file's path (read or written when the command runs)."""
    path = Path(text_of("a file")(text))
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected a file")
    return path


def folder_path(text: str) -> Path:
    path = Path(text_of("a folder")(text))
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; expected a folder")
    return path


def _takes_files(folder: Path) -> None:
    """ValueError unless a new file can be made in the existing `folder`."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ValueError(f"cannot write into {folder} ({e.strerror})") from None


def new_file(text: str) -> Path:
    """A file the command writes: its folder exists and takes a new file."""
    path = file_path(text)
    if not path.parent.is_dir():
        raise ValueError(f"folder {path.parent} does not exist; create it first")
    _takes_files(path.parent)
    return path


def out_folder(text: str) -> Path:
    """A folder the command writes files into, made if missing: the nearest folder that
    exists takes a new file (nothing is made before the command runs)."""
    folder = existing = folder_path(text)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{existing} is not a folder")
    _takes_files(existing)
    return folder


def stack_file(text: str) -> Path:
    """A Pulumi.<stack>.yaml the command writes back into: readable, valid YAML, with a
    top-level `config:` block, and writable."""
    path = file_path(text)
    try:
        editable_stack_file(path)
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return path


def steps(text: str) -> list[int]:
    """`10,50,100` as percentages; an empty step (`10,,100`) or an empty list is refused,
    never skipped or read as the default plan."""
    if any(not part.strip() for part in text.split(",")):
        raise ValueError(
            f"{text!r} has an empty step; expected increasing percentages like 10,50,100"
        )
    return parse_steps(text)


def probe(text: str) -> tuple[str, int]:
    """`URL[=STATUS]`: an HTTP(S) URL polled as a guard and the status it must answer (200
    unless given; a URL's own `?a=b` is part of the URL)."""
    url, sep, status = text.rpartition("=")
    if not sep or (status and not status.isdigit()):
        url, status = text, "200"
    if not url.startswith(("http://", "https://")) or len(url.split()) != 1:
        raise ValueError(
            f"{text!r}; expected URL or URL=STATUS, e.g. https://shop.example/healthz=200"
        )
    if not status or not 100 <= int(status) <= 599:
        raise ValueError(f"{text!r}: STATUS must be an HTTP status, 100 to 599")
    return url, int(status)


def findings(text: str) -> dict[str, int]:
    """`critical=0,high=2` as counts by severity; an empty list (a CI variable never set is not
    a clean scan), an empty or malformed part, or a severity named twice is refused."""
    from cutover_gates.record import SEVERITIES  # loads cryptography: a rollback never needs it

    counts: dict[str, int] = {}
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ValueError(
            "empty; expected counts by severity, e.g. critical=0,high=2 (an empty CI variable "
            "is not a clean scan)"
        )
    for part in parts:
        severity, _, number = part.partition("=")
        if severity not in SEVERITIES or not number.isdigit():
            raise ValueError(
                f"{part!r}; expected SEVERITY=COUNT with SEVERITY in {', '.join(SEVERITIES)}"
            )
        if severity in counts:
            raise ValueError(f"names {severity} twice; give each severity once")
        counts[severity] = int(number)
    return counts
