"""What a stack declares, in the pack's terms: per color, its weight, fleet, release and alarms.

Built from the resources the engine sends (type, URN, properties). Reading a value that is
unknown during preview raises the SDK's UnknownValueError; the policies turn that into a
fail-closed violation, never a silent skip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cutover_gates.rollback_window import TrafficState, parse_traffic_state

COLORS = ("blue", "green")
LISTENER_TYPES = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
TARGET_GROUP_TYPES = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PARAMETER = "aws:ssm/parameter:Parameter"
STACK_REFERENCE = "pulumi:pulumi:StackReference"


@dataclass
class Res:
    """One resource as the pack sees it."""

    type: str
    urn: str
    props: Any

    def tag(self, key: str) -> str | None:
        tags = self.props.get("tags") or {}
        value = tags.get(key)
        return str(value) if value is not None else None


def stack_of(urn: str) -> tuple[str, str]:
    """(stack, project) from a URN `urn:pulumi:<stack>::<project>::...`."""
    parts = urn.split("::")
    return parts[0].removeprefix("urn:pulumi:"), parts[1] if len(parts) > 1 else ""


@dataclass
class ColorFacts:
    color: str
    target_groups: list[Res] = field(default_factory=list)
    services: list[Res] = field(default_factory=list)
    task_definitions: list[Res] = field(default_factory=list)
    alarms: list[Res] = field(default_factory=list)

    def release(self) -> str | None:
        for r in self.services + self.task_definitions + self.target_groups:
            if r.tag("cutover:release"):
                return r.tag("cutover:release")
        return None

    def images(self) -> list[str]:
        images = []
        for task in self.task_definitions:
            for container in json.loads(task.props["containerDefinitions"]):
                images.append(str(container.get("image", "")))
        return images

    def digest(self) -> str | None:
        digests = {i.split("@", 1)[1] for i in self.images() if "@" in i}
        return digests.pop() if len(digests) == 1 else None

    def capacity(self) -> int | None:
        """The full capacity the color's fleet declares (tag `cutover:capacity`)."""
        for s in self.services:
            if s.tag("cutover:capacity"):
                return int(str(s.tag("cutover:capacity")))
        return None

    def desired_count(self) -> int | None:
        counts = [int(s.props.get("desiredCount") or 0) for s in self.services]
        return sum(counts) if counts else None


@dataclass
class StackFacts:
    stack: str
    project: str
    resources: list[Res]
    colors: dict[str, ColorFacts]
    listener: Res | None
    load_balancers: list[Res]
    records: dict[tuple[str, str], Any]
    previous: TrafficState | None

    def weights(self) -> dict[str, int]:
        """Weights per color of the production listener's forward action.

        ValueError when the action does not forward to exactly the two colors' target groups.
        """
        if self.listener is None:
            raise ValueError("no production listener (HTTPS, tagged cutover:role=production)")
        actions = self.listener.props.get("defaultActions") or []
        forwards = [a for a in actions if a.get("type") == "forward"]
        if len(actions) != 1 or len(forwards) != 1:
            raise ValueError(f"expected exactly one forward action, found {len(actions)} action(s)")
        groups = (forwards[0].get("forward") or {}).get("targetGroups") or []
        color_of = {
            tg.props["arn"]: c for c, facts in self.colors.items() for tg in facts.target_groups
        }
        weights: dict[str, int] = {}
        for group in groups:
            color = color_of.get(group.get("arn"))
            if color is None:
                raise ValueError(
                    f"forwards to {group.get('arn')}, which is not a color's target group"
                )
            if color in weights:
                raise ValueError(f"forwards to {color} twice")
            weights[color] = int(group.get("weight", 1))
        if set(weights) != set(COLORS):
            raise ValueError(f"forwards to {sorted(weights) or 'nothing'}; expected blue and green")
        return weights

    def receiving(self) -> list[str]:
        """Colors that receive traffic in this update."""
        return [c for c, w in self.weights().items() if w > 0]


def collect(resources: list[Res]) -> StackFacts:
    """Group a stack's resources by color and find its listener, records and previous state."""
    stack, project = stack_of(resources[0].urn) if resources else ("", "")
    colors = {c: ColorFacts(c) for c in COLORS}
    listener = None
    load_balancers: list[Res] = []
    records: dict[tuple[str, str], Any] = {}
    previous = None
    prefix = f"/cutover/{stack}/gates/"
    for r in resources:
        color = r.tag("cutover:color") if r.type != STACK_REFERENCE else None
        if r.type in LISTENER_TYPES and r.tag("cutover:role") == "production":
            listener = r
        elif r.type in LOAD_BALANCER_TYPES:
            load_balancers.append(r)
        elif r.type == PARAMETER and str(r.props.get("name", "")).startswith(prefix):
            tail = str(r.props["name"])[len(prefix) :].split("/")
            if len(tail) == 2:
                try:
                    records[(tail[0], tail[1])] = json.loads(r.props["value"])
                except (TypeError, ValueError):
                    records[(tail[0], tail[1])] = None
        elif r.type == STACK_REFERENCE:
            outputs = r.props.get("outputs") or {}
            previous = parse_traffic_state(outputs.get("traffic"))
        if color in colors:
            bucket = {
                TARGET_GROUP_TYPES[0]: colors[color].target_groups,
                TARGET_GROUP_TYPES[1]: colors[color].target_groups,
                SERVICE: colors[color].services,
                TASK_DEFINITION: colors[color].task_definitions,
                ALARM: colors[color].alarms,
            }.get(r.type)
            if bucket is not None:
                bucket.append(r)
    return StackFacts(
        stack, project, resources, colors, listener, load_balancers, records, previous
    )
