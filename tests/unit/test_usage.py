"""Every command's usage errors and empty values, in process as `main` runs them: one line,
exit 2, naming the flag and where the help is (never Click's three-line block)."""

from __future__ import annotations

import sys

import click
import pytest

from cutover.cli import COMMANDS, cli, run
from cutover.cli.common import Parsed


def invoke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """`cutover ARGS` in process, as `main` runs it: its exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["cutover", *args])
    with pytest.raises(SystemExit) as exited:
        run()
    return int(exited.value.code or 0), capsys.readouterr().err


def commands() -> list[tuple[list[str], click.Command]]:
    found = []
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [([name, sub], c) for sub, c in command.commands.items()]
        else:
            found.append(([name], command))
    return found


@pytest.mark.parametrize(
    ("path", "command"), commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_a_usage_error_is_one_line_naming_where_the_help_is(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: list[str],
    command: click.Command,
) -> None:
    code, err = invoke(monkeypatch, capsys, *path, "--no-such-flag")
    assert code == 2
    assert err == f"error: No such option '--no-such-flag'. (see cutover {' '.join(path)} --help)\n"


def parsed_options() -> list[tuple[list[str], str]]:
    return [
        (path, option.opts[0])
        for path, command in commands()
        for option in command.params
        if isinstance(option, click.Option) and isinstance(option.type, Parsed)
    ]


@pytest.mark.parametrize(
    ("path", "flag"), parsed_options(), ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_an_empty_value_is_refused_in_one_line_naming_its_flag(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    path: list[str],
    flag: str,
) -> None:
    code, err = invoke(monkeypatch, capsys, *path, flag, "")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: Invalid value for '{flag}'"), err
