"""The `cutover` command line: a registry of commands, each module imported only when it runs.

A rollback must start fast, so `cutover rollback` loads boto3 and its own modules, not Pulumi,
matplotlib or cryptography. The commands parse and print; what they do lives in the library.

Exit codes: `cutover.errors.ExitCode`, the one table (printed by `cutover --help`).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import NamedTuple

import click

from cutover.environment import check_numbers
from cutover.errors import EXIT_CODES, CutoverError, ExitCode
from cutover.interrupt import Interrupted


class CommandInfo(NamedTuple):
    module: str
    attribute: str
    section: str
    summary: str


COMMANDS = {
    "shift": CommandInfo(
        "cutover.cli.shift", "shift", "traffic", "Move traffic to a color in steps under guards."
    ),
    "promote": CommandInfo("cutover.cli.control", "promote", "traffic", "Continue a paused shift."),
    "abort": CommandInfo(
        "cutover.cli.control",
        "abort",
        "traffic",
        "Stop the shift in progress and give traffic back.",
    ),
    "rollback": CommandInfo(
        "cutover.cli.control", "rollback", "traffic", "Restore the weights a deployment found."
    ),
    "resume": CommandInfo(
        "cutover.cli.control", "resume", "traffic", "Continue an interrupted shift."
    ),
    "watchdog": CommandInfo(
        "cutover.cli.watchdog",
        "watchdog",
        "traffic",
        "Give back traffic a dead shift left split (one pass).",
    ),
    "status": CommandInfo(
        "cutover.cli.status",
        "status",
        "traffic",
        "Weights, fleets, alarms and the deployment in progress.",
    ),
    "keys": CommandInfo("cutover.cli.records", "keys", "gates", "Signing keys for gate records."),
    "approve": CommandInfo(
        "cutover.cli.records", "approve", "gates", "The chairman's approval of one release."
    ),
    "signoff": CommandInfo(
        "cutover.cli.records", "signoff", "gates", "A security sign-off of one release."
    ),
    "drill": CommandInfo(
        "cutover.cli.drill",
        "drill",
        "gates",
        "A timed rollback drill; signs a rollback-drill record.",
    ),
    "records": CommandInfo("cutover.cli.records", "records", "gates", "Verify gate record files."),
    "preview": CommandInfo(
        "cutover.cli.review",
        "preview_command",
        "review",
        "What an update would declare, and whether the gates pass.",
    ),
    "kpis": CommandInfo(
        "cutover.cli.review",
        "kpis",
        "review",
        "Success rate, downtime and rollback time across deployments.",
    ),
    "exit-gates": CommandInfo(
        "cutover.cli.exit_gates",
        "exit_gates",
        "review",
        "The stage's exit gates with their evidence; signs a stage-exit record.",
    ),
    "report": CommandInfo(
        "cutover.cli.review", "report", "review", "A deployment's timeline, figures and plot."
    ),
}
SECTIONS = {"traffic": "Traffic", "gates": "Gates", "review": "Review"}

# The extra that installs each optional module (pyproject.toml's optional-dependencies).
EXTRAS = {
    "kubernetes": "kubernetes",
    "matplotlib": "plots",
    "pulumi": "preview",
    "pulumi_aws": "preview",
    "pulumi_kubernetes": "preview",
    "grpc": "preview",
    "google": "preview",
}


def missing_extra(error: ModuleNotFoundError) -> tuple[str, ExitCode] | None:
    """The line naming the extra to install for a module that is not installed (nothing was
    done: bad input); None when the module is not one of an extra's (a broken install keeps
    its traceback)."""
    module = (error.name or "").split(".")[0]
    extra = EXTRAS.get(module)
    if extra is None:
        return None
    command = " ".join(sys.argv[1:2]) or "this command"
    line = (
        f"`cutover {command}` needs cutover[{extra}] ({module} is not installed): "
        f"pip install 'cutover[{extra}]'"
    )
    return line, ExitCode.BAD_INPUT


class Commands(click.Group):
    """Commands listed from the registry (grouped by section) and imported when they run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        info = COMMANDS.get(cmd_name)
        if info is None:
            return None
        command = getattr(importlib.import_module(info.module), info.attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for section, title in SECTIONS.items():
            rows = [
                (name, info.summary) for name, info in COMMANDS.items() if info.section == section
            ]
            with formatter.section(title):
                formatter.write_dl(rows)


@click.group(
    cls=Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES
)
@click.version_option(package_name="cutover")
def cli() -> None:
    """Zero-downtime blue-green deployments: gated, progressive, rolled back automatically."""
    check_numbers()  # before any command reads, locks or writes anything


def main() -> None:
    """Entry point: every error a user can meet becomes one line and its exit code."""
    try:
        run()
    finally:
        tell_skipped()


def tell_skipped() -> None:
    """Name, once, the journal items a command could not read (it went on without them)."""
    if "cutover.cli.common" not in sys.modules:
        return
    from cutover.cli.common import Context  # only if a command ran: --help stays lean

    if not Context.opened:  # nothing was read (and the journal's modules may not import)
        return
    from cutover.journal.items import skipped_line  # only if a command ran: --help stays lean

    told: set[str] = set()
    for ctx in Context.opened:
        line = skipped_line(ctx.journal.skipped)
        if line and line not in told:
            told.add(line)
            click.echo(f"warning: {line}", err=True)


def run() -> None:
    """The command, with its failures as one line and an exit code."""
    try:
        # without standalone mode, click returns an Exit's code instead of raising it
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("error: interrupted; nothing more was done", err=True)
        sys.exit(ExitCode.FAILED)
    except click.UsageError as e:
        if isinstance(e, getattr(click.exceptions, "NoArgsIsHelpError", ())):
            e.show()  # `cutover` or `cutover keys` alone: the help is what was asked for
        else:
            click.echo(f"error: {usage_line(e)}", err=True)
        sys.exit(ExitCode.BAD_INPUT)
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message())}", err=True)
        sys.exit(ExitCode.BAD_INPUT)
    except CutoverError as e:
        if str(e):  # a verdict the command already printed needs no line more
            click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, Interrupted):
        click.echo("error: interrupted; nothing more was done", err=True)
        sys.exit(ExitCode.FAILED)
    except Exception as e:
        found = missing_extra(e) if isinstance(e, ModuleNotFoundError) else api_failure(e)
        if found is None and isinstance(e, OSError) and e.filename is not None:
            found = f"{e.filename}: {e.strerror}", ExitCode.FAILED  # a file the OS refused
        if found is None:
            raise
        click.echo(f"error: {found[0]}", err=True)
        sys.exit(found[1])


def one_line(message: str) -> str:
    """A message as one line: a pipeline's log shows one line an error."""
    return " ".join(message.split())


def usage_line(error: click.UsageError) -> str:
    """A usage error in one line, like every other error, ending in where the help is (not
    Click's three-line block)."""
    path = error.ctx.command_path if error.ctx is not None else command_path(sys.argv[1:])
    return f"{one_line(error.format_message())} (see {path} --help)"


def command_path(args: list[str]) -> str:
    """`cutover keys new` for `keys new --name`: the commands named before the first option
    (Click raises some usage errors before it knows its context)."""
    command: click.Command = cli
    path = ["cutover"]
    for word in args:
        found = (
            command.get_command(click.Context(command), word)
            if isinstance(command, click.Group)
            else None
        )
        if found is None:
            break
        command = found
        path.append(word)
    return " ".join(path)


def api_failure(error: Exception) -> tuple[str, ExitCode] | None:
    """What an AWS or Kubernetes call that failed said, and the exit code (BAD_INPUT when nothing
    could be called at all); None for anything else (a bug keeps its traceback)."""
    module = type(error).__module__
    if module.startswith("kubernetes."):
        status, reason = getattr(error, "status", None), getattr(error, "reason", None)
        try:
            detail = json.loads(getattr(error, "body", None) or "{}").get("message", "")
        except (TypeError, ValueError):
            detail = ""
        message = f"the Kubernetes API answered {status} {reason}: {detail or error}"
        return message.rstrip(": "), ExitCode.FAILED
    if module.startswith(("botocore.", "boto3.")):
        return aws_failure(error)
    if module.startswith("urllib3."):
        return f"could not reach the Kubernetes API after its retries: {error}", ExitCode.FAILED
    return None


def aws_failure(error: Exception) -> tuple[str, ExitCode]:
    """An AWS failure in words: what is missing (region, credentials: exit 2, nothing was
    called), or what the call said, with its retries only when there were some."""
    name = type(error).__name__
    if name == "NoRegionError":
        return (
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or a region in the AWS "
            "profile; the outputs' ARNs did not name one either",
            ExitCode.BAD_INPUT,
        )
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return (
            "no AWS credentials: looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
            "and ~/.aws/credentials and config, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), and "
            "the container or instance role",
            ExitCode.BAD_INPUT,
        )
    response = getattr(error, "response", None) or {}
    attempts = int((response.get("ResponseMetadata") or {}).get("RetryAttempts") or 0)
    tail = f" after {attempts} retries" if attempts else ""
    return f"an AWS call failed{tail}: {error}", ExitCode.FAILED
