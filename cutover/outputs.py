"""The helper's side of the stack outputs (`cutover_gates.stack_outputs` names and shapes them).

The program exports through `export_outputs`; the helper reads the JSON of
`pulumi stack output --json` through `parse_outputs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cutover_gates.analysis_config import Settings
from cutover_gates.stack_outputs import (
    ALARM_NAMES,
    JOURNAL_TABLE,
    LISTENER_ARN,
    LOAD_BALANCER_DNS_NAME,
    PLATFORM,
    RELEASES,
    ROUTE,
    SERVICES,
    STACK,
    TARGET_GROUP_ARNS,
    TEST_URL,
    TOPIC_ARN,
    StackOutputs,
)

from cutover.errors import ConfigError


def export_outputs(
    *,
    stack: Any,
    listener_arn: Any,
    target_group_arns: Any,
    alarm_names: Any,
    releases: Any,
    services: Any,
    journal_table: Any,
    topic_arn: Any,
    load_balancer_dns_name: Any,
    test_url: Any,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the contract's outputs (and any `extra` ones) from a Pulumi program; returns
    them (the watchdog reads the same values)."""
    import pulumi  # the program's SDK, cutover[program]: the helper never exports

    values = {
        STACK: stack,
        LISTENER_ARN: listener_arn,
        TARGET_GROUP_ARNS: target_group_arns,
        ALARM_NAMES: alarm_names,
        RELEASES: releases,
        SERVICES: services,
        JOURNAL_TABLE: journal_table,
        TOPIC_ARN: topic_arn,
        LOAD_BALANCER_DNS_NAME: load_balancer_dns_name,
        TEST_URL: test_url,
        **(extra or {}),
    }
    for key, value in values.items():
        pulumi.export(key, value)
    return values


def export_kubernetes_outputs(
    *, stack: Any, route: Any, releases: Any, services: Any, extra: dict[str, Any]
) -> dict[str, Any]:
    """Export a Kubernetes stack's outputs: the route's namespace and name replace the listener."""
    import pulumi  # the program's SDK, cutover[program]: the helper never exports

    values = {
        STACK: stack,
        PLATFORM: "kubernetes",
        ROUTE: route,
        RELEASES: releases,
        SERVICES: services,
    }
    values = {**values, **extra}
    for key, value in values.items():
        pulumi.export(key, value)
    return values


def parse_outputs(data: Any, source: str) -> StackOutputs:
    """`data`, the JSON of `pulumi stack output --json` read from `source`, as the stack's
    outputs; ConfigError naming `source` and what is wrong."""
    try:
        return StackOutputs.from_json(data, source)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def analysis_of(outputs: StackOutputs) -> Settings | None:
    """The stack's `cutover:analysis` settings, read where they are used (a rollback process
    never reads them); ConfigError naming the outputs when they are malformed."""
    try:
        return outputs.settings
    except ValueError as e:
        raise ConfigError(str(e)) from None


def load_outputs(path: str) -> StackOutputs:
    """Read `pulumi stack output --json` saved to `path`; ConfigError naming what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"--outputs {path}: cannot read it ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"--outputs {path}: not UTF-8 text; expected the JSON of `pulumi stack output --json`"
        ) from None
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"--outputs {path}: not JSON ({e.msg} at line {e.lineno}); expected "
            "the output of `pulumi stack output --json`"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"--outputs {path}: expected a JSON object of stack outputs")
    return parse_outputs(data, f"--outputs {path}")


def load_all_outputs(files: tuple[Path, ...], stack: str | None) -> list[StackOutputs]:
    """The outputs of each service: from `--outputs FILE` (repeatable), or from the Pulumi CLI
    with `--stack NAME`."""
    if files and stack:
        raise ConfigError("give --outputs or --stack, not both")
    if stack:
        import shutil  # only --stack runs the Pulumi CLI: the watchdog never does
        import subprocess  # only --stack runs the Pulumi CLI: the watchdog never does

        if shutil.which("pulumi") is None:
            raise ConfigError(
                "--stack needs the Pulumi CLI on PATH; save the outputs and use --outputs FILE"
            )
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ConfigError(
                f"--stack {stack}: `pulumi stack output` failed: {result.stderr.strip()}"
            )
        try:
            data = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise ConfigError(
                f"--stack {stack}: `pulumi stack output --json` is not JSON"
            ) from None
        return [parse_outputs(data, f"--stack {stack}")]
    if not files:
        raise ConfigError(
            "no stack given; pass --outputs FILE (the JSON of `pulumi stack output --json`) or --stack NAME"
        )
    return [load_outputs(str(p)) for p in files]
