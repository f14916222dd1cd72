"""How the commands print: lines for people, one JSON document for scripts (`--output json`),
and a shift's wait drawn in place on a terminal. A closed output (a reader gone: `| head`)
stops a command that moves traffic as a signal would."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from cutover.interrupt import output_closed

if TYPE_CHECKING:
    from cutover.engine.guard import Progress


class Printed:
    """Where a command's lines go. With `--output json`, stdout is the one JSON document a
    script parses and the lines people read go to stderr; while a terminal shows a wait in
    place (`live`), lines go above it, never into it."""

    json = False
    live: Any = None


def say(message: str) -> None:
    """One line for people: stdout (stderr under --output json), or above a wait drawn in
    place. An output that closed (a reader gone: `| head`) takes nothing more, and stops a
    command that moves traffic as a signal would (`interrupt.output_closed`)."""
    err = Printed.json and Printed.live is None
    try:
        if Printed.live is not None:
            Printed.live.console.print(message, markup=False, highlight=False)
        else:
            click.echo(message, err=err)
    except BrokenPipeError:
        _silence(err)
        output_closed()


def _silence(err: bool) -> None:
    """Point the closed stream at /dev/null, so nothing later (nor Python's flush at exit)
    writes to the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, (sys.stderr if err else sys.stdout).fileno())
    os.close(devnull)


def result(line: str | None, document: dict[str, Any]) -> None:
    """A command's outcome: `line` for people (None: said as it happened), or with --output
    json its one JSON `document` (with the line as `message`)."""
    if Printed.json:
        said = {"message": line} if line else {}
        click.echo(json.dumps({**said, **document}, indent=2))
    elif line:
        say(line)


PROGRESS_PREFIXES = ("  baked ", "  paused ")
# How often a terminal redraws the wait in progress.
REDRAWS_PER_SECOND = 2


class Output:
    """What a shift says: lines, and the wait in progress (`show`). Into a pipe or a CI log,
    plain lines (the wait as a line now and then); on a terminal, the wait is one line
    redrawn in place (rich) below the lines that stay, ticking as time passes."""

    def __init__(self, live: Any = None) -> None:
        self.live = live

    def __call__(self, message: str) -> None:
        if self.live is None:
            say(message)
        elif not message.startswith(PROGRESS_PREFIXES):  # `show` draws those
            from rich.text import Text  # slow to import: only a terminal draws in place

            # the wait drawn is over once something else happened (a step, a restore): cleared,
            # or it would stand stale beside what follows; the next poll draws the new one
            self.live.update(Text(""), refresh=True)
            say(message)

    def show(self, progress: Progress) -> None:
        if self.live is not None:
            self.live.update(_Drawn(progress), refresh=True)


class _Drawn:
    """A wait as rich draws it: its text at each redraw."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __rich__(self) -> Any:
        from rich.text import Text  # slow to import: only a terminal draws in place

        return Text(str(self.progress).strip())


@contextlib.contextmanager
def progress_in_place() -> Iterator[Output]:
    if not sys.stdout.isatty() or Printed.json:
        yield Output()
        return
    from rich.live import Live  # slow to import: only a terminal draws in place
    from rich.text import Text  # slow to import: only a terminal draws in place

    with Live(Text(""), refresh_per_second=REDRAWS_PER_SECOND, transient=True) as live:
        Printed.live = live
        try:
            yield Output(live)
        finally:
            Printed.live = None


def _printed(ctx: click.Context, param: click.Parameter, value: str) -> str:
    Printed.json = value == "json"
    return value


output_option = click.option(
    "--output",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    callback=_printed,
    help="text (Markdown where a document is written) for people; json for scripts (stdout "
    "is one JSON document, what is said on the way goes to stderr).",
)
