"""What the commands share: their option types and the context they load (how they print:
`cli/output.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cutover_gates.contract import COLORS, Color, parse_color

from cutover import inputs
from cutover.aws import use_region_of
from cutover.cli.output import Output, say
from cutover.deployment import scope_of
from cutover.durations import duration_of
from cutover.engine.control import config_after_restore
from cutover.engine.session import Session
from cutover.engine.shift import Shift
from cutover.errors import ConfigError, CutoverError
from cutover.journal import open_journal
from cutover.journal.lease import live_holder
from cutover.journal.owner import newest
from cutover.notifier import Notifier
from cutover.outputs import load_all_outputs
from cutover.service import services_of
from cutover.stack_config import config_commands, write_back_cli, write_back_file
from cutover.weights import shares

if TYPE_CHECKING:
    from cutover_gates.contract import Holder

    from cutover.deployment import Deployment
    from cutover.engine.shift import Gates, Shift
    from cutover.interrupt import Interrupts
    from cutover.weights import Weights


class ColorType(click.Choice):
    """blue or green, shown as [blue|green] and parsed to a Color."""

    def __init__(self) -> None:
        super().__init__(list(COLORS))

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Color:
        try:
            return parse_color(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


COLOR = ColorType()


class Parsed(click.ParamType):
    """A value parsed by one of the library's parsers (`cutover.inputs`, `cutover.durations`),
    whose ValueError becomes the one line naming the flag, when the command line is read:
    before anything is journaled, locked, written or moved."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name, self.parse = name, parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # parsed already
            return value
        try:
            return self.parse(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def duration(most: str, allow_zero: bool = False) -> Parsed:
    """A duration option's type: 90s, 5m, 1h30m, 2d, 500ms or plain seconds, up to `most`."""
    return Parsed("DURATION", duration_of(most, allow_zero))


def text(expected: str, name: str = "TEXT") -> Parsed:
    """An option that must say something (`expected`: what, for the message)."""
    return Parsed(name, inputs.text_of(expected))


DURATION_FORMS = "e.g. 30s, 5m, 1h30m"
BAKE = duration("1d", allow_zero=True)  # how long a step, or the verification, is watched
INTERVAL = duration("1h")
FILE = Parsed("FILE", inputs.file_path)  # read when the command runs, which says what is wrong
FOLDER = Parsed("DIRECTORY", inputs.folder_path)
NEW_FILE = Parsed("FILE", inputs.new_file)
OUT_FOLDER = Parsed("DIRECTORY", inputs.out_folder)


def analysis_options(fn: Any) -> Any:
    """--max-inconclusive and --analysis: how the guards' verdicts count (shift and drill)."""
    fn = click.option(
        "--analysis",
        type=click.Choice(["on", "off"]),
        default="on",
        show_default=True,
        help="off: no metric analysis of the target against the baseline this time (journaled).",
    )(fn)
    return click.option(
        "--max-inconclusive",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="Guard polls in a row that may be inconclusive before traffic is given back.",
    )(fn)


def gate_options_of(required: bool) -> Any:
    """--records and --gates-config: the gate records and the pack config that judges them."""

    def add(fn: Any) -> Any:
        fn = click.option(
            "--records", type=FOLDER, required=required, help="Folder of gate record files."
        )(fn)
        return click.option(
            "--gates-config",
            type=FILE,
            required=required,
            help="The policy pack config JSON (trusted keys, limits).",
        )(fn)

    return add


gate_options = gate_options_of(required=True)
# The longest a signed record may be valid where the pack config bounds it no tighter.
LONGEST_VALIDITY = "90d"
VALIDITY = duration(LONGEST_VALIDITY)


def signing_key_options(env: str, help_key: str) -> Any:
    """--key FILE (default: the PEM in $`env`) or --kms-key KEY."""

    def add(fn: Any) -> Any:
        fn = click.option(
            "--kms-key",
            type=text("a KMS key id, ARN or alias"),
            help="Sign with this AWS KMS key (id, ARN or alias) instead of a key file.",
        )(fn)
        return click.option(
            "--key", "key_file", type=FILE, help=f"{help_key} (PEM); default: ${env}."
        )(fn)

    return add


def deploy_key_options(what: str) -> Any:
    """--key (the deploy key, or $CUTOVER_DEPLOY_KEY) or --kms-key, and --valid-for of a record
    it signs."""

    def add(fn: Any) -> Any:
        fn = click.option(
            "--valid-for",
            type=VALIDITY,
            default="7d",
            show_default=True,
            help=f"How long the {what} record is valid (at most the pack's age limit).",
        )(fn)
        return signing_key_options("CUTOVER_DEPLOY_KEY", "Deploy key")(fn)

    return add


stack_config_option = click.option(
    "--stack-config",
    type=Parsed("FILE", inputs.stack_file),
    help="Pulumi.<stack>.yaml to write what is served afterwards into (cutover:activeColor, "
    "cutover:trafficPercent); checked before anything moves.",
)


def outputs_options(fn: Any) -> Any:
    """--outputs/--stack (which stack) and --journal (where its deployments are kept)."""
    fn = click.option(
        "--journal",
        type=text("stack, dynamodb, kubernetes or file:PATH"),
        default="stack",
        show_default=True,
        help="stack (its DynamoDB table, or a Kubernetes stack's namespace), dynamodb, kubernetes or file:PATH.",
    )(fn)
    fn = click.option(
        "--stack",
        "stack",
        type=text("a stack name"),
        help="Read outputs with `pulumi stack output --json --stack NAME`.",
    )(fn)
    return click.option(
        "--outputs",
        "outputs",
        multiple=True,
        type=FILE,
        help="JSON of `pulumi stack output --json`; repeat for each service of a release train.",
    )(fn)


class Context:
    """What every traffic command needs, loaded from its options."""

    opened: list[Context] = []  # every context of this process: `main` tells what they skipped

    def __init__(self, outputs: tuple[Path, ...], stack: str | None, journal: str) -> None:
        self.stack = stack
        self.all_outputs = load_all_outputs(outputs, stack)
        for o in self.all_outputs:
            if o.on_aws:
                use_region_of(o.listener_arn)
        self.services = services_of(self.all_outputs)
        first = self.all_outputs[0]
        self.journal = open_journal(journal, first.journal_table, first.namespace)
        self.keys = [s.key for s in self.services]
        self.scope = scope_of(self.keys)
        Context.opened.append(self)

    def shift(
        self, gates: Gates, interrupts: Interrupts | None = None, output: Output | None = None
    ) -> Shift:
        output = output or Output()
        notifier = Notifier(self.all_outputs, output)
        session = Session.of(self.services, self.journal, notifier, output, interrupts=interrupts,
                             show=output.show)  # fmt: skip
        return Shift(session, gates)

    def deployment(self, deployment_id: str | None) -> Deployment | None:
        """The deployment `deployment_id` of these stacks; without one, the newest that took
        their listeners or routes (the journal's epochs, never a host's clock)."""
        if deployment_id is None:
            return newest(self.journal, self.keys)
        found = self.journal.load(self.scope, deployment_id)
        if found is None:
            raise ConfigError(f"--deployment {deployment_id}: no such deployment in the journal")
        return found

    def live_holder(self) -> Holder | None:
        """Who holds the lock now; a lease whose process died on this host holds nothing."""
        return live_holder(self.journal, self.keys, time.time())

    def write_back(self, stack_config: Path | None, weights: Weights, why: str) -> None:
        """Make the stack's config say what is served now (`why`: after what), so the next
        `pulumi up` neither reverts a shift nor sends traffic back to a release it left:
        into `--stack-config`, with `pulumi config set` where the CLI and `--stack` are
        there, and otherwise the exact commands to run."""
        color, percent = shares(weights)
        commands = "\n  ".join(" ".join(c) for c in config_commands(self.stack, color, percent))
        said = f"cutover:activeColor={color}, cutover:trafficPercent={percent}"
        try:
            if stack_config is not None:
                write_back_file(stack_config, color, percent)
                say(f"Wrote {said} into {stack_config} ({why}).")
                return
            if self.stack is not None:
                write_back_cli(self.stack, color, percent)
                say(f"Set {said} in stack {self.stack} ({why}).")
                return
        except (CutoverError, OSError, click.ClickException) as e:
            click.echo(
                f"warning: {why}, but the stack's config was not updated ({e}); run:\n  {commands}",
                err=True,
            )
            return
        say(
            f"Now make the stack's config follow ({why}), so the next `pulumi up` keeps it:"
            f"\n  {commands}"
        )

    def write_back_restored(self, stack_config: Path | None, deployment: Deployment | None) -> None:
        """After a restore served again: the config follows the weights the deployment found
        (`control.config_after_restore`: never over a newer release's)."""
        follows = config_after_restore(self.journal, self.services, deployment)
        if isinstance(follows, str):
            say(follows)
        elif follows is not None and deployment is not None:
            self.write_back(stack_config, follows, f"deployment {deployment.id} was rolled back")
