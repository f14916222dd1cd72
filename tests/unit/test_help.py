"""Help that teaches: every option explained, every command with an example, colors and
durations named, the top level grouped, the exit codes of a shift listed."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cutover.cli import COMMANDS, SECTIONS, cli
from cutover.errors import EXIT_CODES


def commands() -> list[tuple[str, click.Command]]:
    found = []
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            found.append((name, command))
    return found


@pytest.mark.parametrize(
    ("name", "command"), commands(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_option_has_a_help_line_and_the_command_an_example(
    name: str, command: click.Command
) -> None:
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"cutover {name} {param.opts[0]} has no help"
    assert "Example" in (command.help or ""), f"cutover {name} has no example"


def test_colors_and_durations_are_named_in_help() -> None:
    text = CliRunner().invoke(cli, ["shift", "--help"]).output
    assert "[blue|green]" in text and "DURATION" in text
    assert "Exit codes: 0 success; 1 the deployment failed or was rolled back" in text


def test_the_top_level_help_groups_commands() -> None:
    text = CliRunner().invoke(cli, ["--help"]).output
    assert " ".join(EXIT_CODES.split()) in " ".join(text.split())  # the one table
    positions = [text.index(f"{title}:") for title in SECTIONS.values()]
    assert positions == sorted(positions)
    assert (
        text.index("shift") < text.index("Gates:") < text.index("approve") < text.index("Review:")
    )
