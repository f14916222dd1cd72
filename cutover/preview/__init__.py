"""The offline preview: the program under mocks, then the real policy pack over the analyzer protocol.

For pull requests without cloud credentials (forks) and for local rehearsals. The plan is
grouped by component with what a reviewer checks (weights, capacities, releases, digests,
which gates apply); then every policy result with its enforcement level.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cutover_gates.contract import GATE_POLICIES, ROLLBACK_TESTED_POLICY
from cutover_gates.stack_outputs import JOURNAL_TABLE, ROUTE, TRAFFIC

from cutover.errors import ConfigError
from cutover.preview.pack import Diagnostic, PolicyInfo, PolicyPackProcess
from cutover.preview.program import (
    ProgramMocks,
    ProgramRun,
    Resource,
    project_name,
    run_program,
)
from cutover.preview.unread import Unread, judge_without, unread_outcomes
from cutover.stack_config import stack_config

AT_UPDATE = "(the time of the update)"


@dataclass
class Preview:
    run: ProgramRun
    policies: list[PolicyInfo]
    diagnostics: list[Diagnostic]
    pack: str
    previous: dict[str, Any] | None = None
    unread: Unread | None = None  # a fact the preview could not read (the journal's outcomes)
    not_judged: list[str] = field(default_factory=list)  # the policies that depend on it

    @property
    def blocked(self) -> bool:
        """A mandatory policy is violated by what was read (never for a fact unread)."""
        return any(d.mandatory for d in self.diagnostics)

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs the update would leave. A `changedAt` that is the update's own time (the
        weights move, or nothing is known before) reads as such, so the same inputs always
        give the same preview."""
        outputs = dict(self.run.outputs)
        traffic = dict(outputs.get(TRAFFIC) or {})
        before = ((self.previous or {}).get(TRAFFIC) or {}).get("changedAt")
        if traffic and traffic.get("changedAt") != before:
            traffic["changedAt"] = AT_UPDATE
            outputs[TRAFFIC] = traffic
        return outputs


def preview(
    project_dir: Path,
    stack: str,
    stack_file: Path | None,
    pack_dir: Path,
    pack_config: dict[str, Any],
    previous: dict[str, Any] | None,
) -> Preview:
    """Run the program and the pack for `stack`; the pack starts while the program runs.

    Where the journal's outcomes could not be read (no cloud credentials, or previous outputs
    that name no journal), the policies that depend on them are not judged here but named."""
    config = (
        stack_config(stack_file)
        if stack_file
        else stack_config(project_dir / f"Pulumi.{stack}.yaml")
    )
    project = project_name(project_dir)
    with PolicyPackProcess(pack_dir, stack=stack, project=project, config=config) as pack:
        run = run_program(project_dir, stack, config, ProgramMocks(previous))
        name, _, policies = pack.info()  # the SDK reports 0.0.1; the CLI reads PulumiPolicy.yaml
        pack.configure(pack_config)

        def analyze(resources: list[Resource]) -> list[Diagnostic]:
            return pack.analyze_stack(resources) + pack.analyze_each(resources)

        unread = unread_outcomes(run.resources, stack, previous)
        not_judged: list[str] = []
        if unread is None:
            diagnostics = analyze(run.resources)
        else:
            diagnostics, not_judged = judge_without(unread, run.resources, stack, analyze)
    version = f"{name}@{pack_version(pack_dir)}"
    return Preview(run, policies, diagnostics, version, previous, unread, not_judged)


def previous_of_stack_file(project_dir: Path, stack: str, stack_file: Path) -> dict[str, Any]:
    """The outputs the program leaves for an earlier version of the stack file (a pull
    request's base branch), run in a fresh process (the Pulumi runtime is one a process): what
    traffic moves from. Without the journal's location (the one the earlier run names is the
    mocks'), so the preview says it did not read the journal's outcomes."""
    config = stack_config(stack_file)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        ran = subprocess.run(
            [sys.executable, "-m", "cutover.preview.program", "--project-dir", str(project_dir),
             "--stack", stack, "--config", str(path), "--update"],
            capture_output=True, text=True,
        )  # fmt: skip
    if ran.returncode != 0:
        last = (ran.stderr.strip().splitlines() or ["it failed"])[-1]
        raise ConfigError(f"--previous-stack-file {stack_file}: the program refuses it ({last})")
    outputs = dict(json.loads(ran.stdout)["outputs"])
    return {k: v for k, v in outputs.items() if k not in (JOURNAL_TABLE, ROUTE)}


def pack_version(pack_dir: Path) -> str:
    """The pack's version, from PulumiPolicy.yaml as `pulumi policy publish` reads it."""
    try:
        return str(yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text())["version"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "unversioned"


def target_group_colors(run: ProgramRun) -> dict[str, str]:
    return {
        r.state["arn"]: r.state["tags"]["cutover:color"]
        for r in run.of_type("aws:lb/targetGroup:TargetGroup")
    }


def _color_of(resource: Resource) -> str | None:
    tags = resource.state.get("tags") or {}
    labels = (resource.state.get("metadata") or {}).get("labels") or {}
    return tags.get("cutover:color") or labels.get("cutover/color")


def _weights(resource: Resource, colors: dict[str, str]) -> dict[str, int] | None:
    """The production listener's weights per color, or None for any other resource."""
    s = resource.state
    tags = s.get("tags") or {}
    if resource.type != "aws:lb/listener:Listener" or tags.get("cutover:role") != "production":
        return None
    action = (s.get("defaultActions") or [{}])[0]
    groups = (action.get("forward") or {}).get("targetGroups") or []
    return {colors.get(g["arn"], g["arn"]): int(g["weight"]) for g in groups}


def operation(resource: Resource, colors: dict[str, str], previous: dict[str, Any] | None) -> str:
    """`~` when the update changes what the stack's outputs tell of this resource (weights,
    desired counts, images), "" when it does not, "?" when they do not tell."""
    if previous is None:
        return "?"
    before = previous.get(TRAFFIC) or {}
    weights = _weights(resource, colors)
    if weights is not None:
        return "~" if before.get("weights") and weights != before["weights"] else ""
    color = _color_of(resource)
    s = resource.state
    if resource.type == "aws:ecs/service:Service" and color:
        counts = before.get("desiredCounts") or {}
        return "~" if color in counts and int(s["desiredCount"]) != counts[color] else ""
    if resource.type == "aws:ecs/taskDefinition:TaskDefinition" and color:
        image = json.loads(s["containerDefinitions"])[0]["image"]
        old = ((previous.get("releases") or {}).get(color) or {}).get("image")
        return "~" if old and old != image else ""
    return "?"


def facts(
    resource: Resource, colors: dict[str, str], previous: dict[str, Any] | None = None
) -> str:
    """The one line a reviewer wants about a resource (`colors`: target group ARN -> color)."""
    s = resource.state
    tags = s.get("tags") or {}
    if resource.type == "aws:lb/listener:Listener" and s.get("defaultActions"):
        action = s["defaultActions"][0]
        if action["type"] == "forward":
            groups = action["forward"]["targetGroups"]
            weights = _weights(resource, colors)
            before = ((previous or {}).get(TRAFFIC) or {}).get("weights") if weights else None
            return f"port {int(s['port'])}: forward " + ", ".join(
                f"{colors.get(g['arn'], g['arn'])} "
                + (f"{before[colors[g['arn']]]} → " if before and g["arn"] in colors else "")
                + f"{int(g['weight'])}"
                for g in groups
            )
        return f"port {int(s['port'])}: {action['type']}"
    if resource.type == "aws:ecs/service:Service":
        return f"{tags.get('cutover:color')} release {tags.get('cutover:release')}: {int(s['desiredCount'])} of capacity {tags.get('cutover:capacity')} tasks"
    if resource.type == "aws:ecs/taskDefinition:TaskDefinition":
        image = json.loads(s["containerDefinitions"])[0]["image"]
        return f"image {image.split('/')[-1]}"
    if resource.type == "aws:ssm/parameter:Parameter":
        return str(s.get("name"))
    if resource.type == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return str(s.get("name"))
    return ""


def _kind(resource: Resource) -> str:
    """`lb:Listener` for `aws:lb/listener:Listener`: what a resource is, shortly."""
    parts = resource.type.split(":")
    return f"{parts[1].split('/')[0]}:{parts[-1]}" if len(parts) > 2 else parts[-1]


def _order(resource: Resource) -> tuple[str, str]:
    return resource.type, resource.name


def render_text(result: Preview) -> str:
    run = result.run
    colors = target_group_colors(run)
    children: dict[str, list[Resource]] = {}
    for r in run.resources:
        children.setdefault(r.parent, []).append(r)
    lines = [
        f"Preview of stack {run.stack} (project {run.project}), {len(run.resources)} resources, offline under mocks",
        "",
    ]
    traffic = result.outputs.get(TRAFFIC, {})
    weights = traffic.get("weights", {})
    releases = run.outputs.get("releases", {})
    for color in ("blue", "green"):
        release = releases.get(color, {})
        lines.append(
            f"  {color:5}  weight {weights.get(color, '?'):>3}  desired {traffic.get('desiredCounts', {}).get(color, '?')}"
            f"  release {release.get('version')}  {release.get('digest', '')[:19]}…"
        )
    lines.append("")
    # the same inputs give the same text: components, then their children, by type and name
    components = sorted((r for r in run.resources if not r.custom), key=_order)
    width = max((len(_kind(r)) for r in run.resources), default=0)
    previous = result.previous
    counted: dict[str, int] = {}
    for component in components:
        lines.append(f"{component.type.split(':')[-1]} {component.name}")
        for child in sorted(children.get(component.urn, []), key=_order):
            detail = facts(child, colors, previous)
            op = operation(child, colors, previous)
            counted[op] = counted.get(op, 0) + 1
            marker = op if op in ("~", "+", "-") else " "
            lines.append(
                f"  {marker} {_kind(child):<{width}}  {child.name}"
                + (f"  — {detail}" if detail else "")
            )
    if previous is not None:
        lines += [
            "",
            f"Resources: {counted.get('~', 0)} to update, {counted.get('', 0)} unchanged, "
            f"{counted.get('?', 0)} not told by the stack's outputs",
        ]
    lines += ["", f"Policies ({result.pack}):"]
    by_policy: dict[str, list[Diagnostic]] = {}
    for d in sorted(result.diagnostics, key=lambda d: (d.policy, d.urn, d.message)):
        by_policy.setdefault(d.policy, []).append(d)
    unread = result.unread
    for policy in result.policies:
        found = by_policy.get(policy.name, [])
        gate = " (gate)" if policy.name in GATE_POLICIES else ""
        if unread is not None and policy.name in result.not_judged:
            lines.append(
                f"  NOT JUDGED  {policy.name}{gate} [{policy.level}]: it depends on a fact not "
                "read here (below); `pulumi up` judges it"
            )
        elif not found:
            first = policy.name == ROLLBACK_TESTED_POLICY and not result.previous
            note = (
                " (the stack's first update: nothing to roll back to yet, so no drill; its first shift after needs one)"
                if first
                else ""
            )
            lines.append(f"  PASS  {policy.name}{gate} [{policy.level}]{note}")
        for d in found:
            verdict = "FAIL" if d.mandatory else "WARN"
            message = d.message.split("\n", 1)[-1]
            lines.append(f"  {verdict}  {policy.name}{gate} [{d.level}]: {message}")
    lines.append("")
    if unread is not None:
        lines.append(f"Not read here: {unread.what} ({unread.why}).")
        if result.not_judged:
            lines.append(
                f"Not judged here, for `pulumi up` to judge where it can be read: "
                f"{', '.join(result.not_judged)}."
            )
    read = " by what was read" if unread is not None else ""
    lines.append(
        f"Blocked: a mandatory policy is violated{read}."
        if result.blocked
        else f"No mandatory policy is violated{read}."
    )
    return "\n".join(lines)


def _before_after(
    resource: Resource, colors: dict[str, str], previous: dict[str, Any] | None
) -> dict[str, Any]:
    weights = _weights(resource, colors)
    if weights is None:
        return {}
    before = ((previous or {}).get(TRAFFIC) or {}).get("weights")
    return {"weights": {"before": before, "after": weights}}


def render_json(result: Preview) -> dict[str, Any]:
    colors = target_group_colors(result.run)
    return {
        "stack": result.run.stack,
        "project": result.run.project,
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "parent": r.parent,
                "facts": facts(r, colors, result.previous),
                "operation": {"~": "update", "": "same", "?": "unknown"}[
                    operation(r, colors, result.previous)
                ],
                **_before_after(r, colors, result.previous),
            }
            for r in sorted(result.run.resources, key=lambda r: (r.parent, r.type, r.name))
        ],
        "outputs": result.outputs,
        "policies": [
            {
                "name": p.name,
                "level": p.level,
                "violations": [
                    {"level": d.level, "message": d.message, "urn": d.urn}
                    for d in sorted(result.diagnostics, key=lambda d: (d.urn, d.message))
                    if d.policy == p.name
                ],
                "judged": p.name not in result.not_judged,
            }
            for p in result.policies
        ],
        "notRead": [result.unread.to_json()] if result.unread else [],
        "notJudged": result.not_judged,
        "blocked": result.blocked,
    }
