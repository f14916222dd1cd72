"""The offline preview: the program under mocks, then the real policy pack over the analyzer protocol.

For pull requests without cloud credentials (forks) and for local rehearsals. The plan is
grouped by component with what a reviewer checks (weights, capacities, releases, digests,
which gates apply); then every policy result with its enforcement level.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutover_gates.contract import GATE_POLICIES, TRAFFIC

from cutover.analyzer import Diagnostic, PolicyInfo, PolicyPackProcess
from cutover.offline import (
    ProgramMocks,
    ProgramRun,
    Resource,
    project_name,
    run_program,
    stack_config,
)


@dataclass
class Preview:
    run: ProgramRun
    policies: list[PolicyInfo]
    diagnostics: list[Diagnostic]
    pack: str

    @property
    def blocked(self) -> bool:
        return any(d.mandatory for d in self.diagnostics)


def preview(
    project_dir: Path,
    stack: str,
    stack_file: Path | None,
    pack_dir: Path,
    pack_config: dict[str, Any],
    previous: dict[str, Any] | None,
) -> Preview:
    """Run the program and the pack for `stack`; the pack starts while the program runs."""
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
        diagnostics = pack.analyze_stack(run.resources) + pack.analyze_each(run.resources)
    return Preview(run, policies, diagnostics, f"{name}@{pack_version(pack_dir)}")


def pack_version(pack_dir: Path) -> str:
    """The pack's version, from PulumiPolicy.yaml as `pulumi policy publish` reads it."""
    import yaml

    try:
        return str(yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text())["version"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "unversioned"


def target_group_colors(run: ProgramRun) -> dict[str, str]:
    return {
        r.state["arn"]: r.state["tags"]["cutover:color"]
        for r in run.of_type("aws:lb/targetGroup:TargetGroup")
    }


def facts(resource: Resource, colors: dict[str, str]) -> str:
    """The one line a reviewer wants about a resource (`colors`: target group ARN -> color)."""
    s = resource.state
    tags = s.get("tags") or {}
    if resource.type == "aws:lb/listener:Listener" and s.get("defaultActions"):
        action = s["defaultActions"][0]
        if action["type"] == "forward":
            groups = action["forward"]["targetGroups"]
            return f"port {int(s['port'])}: forward " + ", ".join(
                f"{colors.get(g['arn'], g['arn'])} {int(g['weight'])}" for g in groups
            )
        return f"port {int(s['port'])}: {action['type']}"
    if resource.type == "aws:ecs/service:Service":
        return f"{tags.get('cutover:color')} release {tags.get('cutover:release')}: {int(s['desiredCount'])} of capacity {tags.get('cutover:capacity')} tasks"
    if resource.type == "aws:ecs/taskDefinition:TaskDefinition":
        import json

        image = json.loads(s["containerDefinitions"])[0]["image"]
        return f"image {image.split('/')[-1]}"
    if resource.type == "aws:ssm/parameter:Parameter":
        return str(s.get("name"))
    if resource.type == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return str(s.get("name"))
    return ""


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
    traffic = run.outputs.get(TRAFFIC, {})
    weights = traffic.get("weights", {})
    releases = run.outputs.get("releases", {})
    for color in ("blue", "green"):
        release = releases.get(color, {})
        lines.append(
            f"  {color:5}  weight {weights.get(color, '?'):>3}  desired {traffic.get('desiredCounts', {}).get(color, '?')}"
            f"  release {release.get('version')}  {release.get('digest', '')[:19]}…"
        )
    lines.append("")
    for component in (r for r in run.resources if not r.custom):
        lines.append(f"{component.type.split(':')[-1]} {component.name}")
        for child in children.get(component.urn, []):
            detail = facts(child, colors)
            lines.append(
                f"    {child.type.split(':')[1].split('/')[0]}:{child.type.split(':')[-1]:<18} {child.name}"
                + (f"  — {detail}" if detail else "")
            )
    lines += ["", f"Policies ({result.pack}):"]
    by_policy: dict[str, list[Diagnostic]] = {}
    for d in result.diagnostics:
        by_policy.setdefault(d.policy, []).append(d)
    for policy in result.policies:
        found = by_policy.get(policy.name, [])
        gate = " (gate)" if policy.name in GATE_POLICIES else ""
        if not found:
            lines.append(f"  PASS  {policy.name}{gate} [{policy.level}]")
        for d in found:
            verdict = "FAIL" if d.mandatory else "WARN"
            message = d.message.split("\n", 1)[-1]
            lines.append(f"  {verdict}  {policy.name}{gate} [{d.level}]: {message}")
    lines.append("")
    lines.append(
        "Blocked: a mandatory policy is violated."
        if result.blocked
        else "No mandatory policy is violated."
    )
    return "\n".join(lines)


def render_json(result: Preview) -> dict[str, Any]:
    colors = target_group_colors(result.run)
    return {
        "stack": result.run.stack,
        "project": result.run.project,
        "resources": [
            {"urn": r.urn, "type": r.type, "parent": r.parent, "facts": facts(r, colors)}
            for r in result.run.resources
        ],
        "outputs": result.run.outputs,
        "policies": [
            {
                "name": p.name,
                "level": p.level,
                "violations": [
                    {"level": d.level, "message": d.message, "urn": d.urn}
                    for d in result.diagnostics
                    if d.policy == p.name
                ],
            }
            for p in result.policies
        ],
        "blocked": result.blocked,
    }
