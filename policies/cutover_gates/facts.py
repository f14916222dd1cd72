"""What a stack declares, in the pack's terms: per color, its weight, fleet, release and alarms.

Built from the resources the engine sends (type, URN, properties), on either platform: ECS
services behind the ALB, or Kubernetes Deployments behind a Gateway API HTTPRoute or the ALB.
Reading a value that is unknown during preview raises the SDK's UnknownValueError; the
policies turn that into a fail-closed violation, never a silent skip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cutover_gates.contract import (
    COLORS,
    LATEST_DEPLOYMENT,
    RECORDS_CONFIG_MAP,
    WATCHDOG_CRON_JOB,
    WATCHDOG_ROLE,
    LatestOutcome,
    Outcome,
    OutcomeUnreadable,
    digest_of,
    record_parameter_prefix,
)
from cutover_gates.record import parse_record
from cutover_gates.rollback_window import FIRST_UPDATE, TrafficState, parse_traffic_state
from cutover_gates.stack_outputs import PREVIOUS_TRAFFIC

LISTENER_TYPES = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_RULE_TYPES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
TARGET_GROUP_TYPES = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
LOAD_BALANCER_TYPES = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PARAMETER = "aws:ssm/parameter:Parameter"
ROOT_STACK = "pulumi:pulumi:Stack"  # its properties are the stack's outputs
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
KUBERNETES_SERVICE = "kubernetes:core/v1:Service"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
HTTP_ROUTE_TYPES = (
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
    "kubernetes:gateway.networking.k8s.io/v1beta1:HTTPRoute",
)
TARGET_GROUP_BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
FUNCTION = "aws:lambda/function:Function"
CRON_JOB_TYPES = ("kubernetes:batch/v1:CronJob", "kubernetes:batch/v1beta1:CronJob")


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

    def marker(self, name: str) -> str | None:
        """cutover's marker `name`: AWS tag `cutover:<name>`, or Kubernetes label or annotation
        `cutover/<name>`."""
        if self.type.startswith("kubernetes:"):
            metadata = self.props.get("metadata") or {}
            for where in ("labels", "annotations"):
                value = (metadata.get(where) or {}).get(f"cutover/{name}")
                if value is not None:
                    return str(value)
            return None
        return self.tag(f"cutover:{name}")

    @property
    def name(self) -> str | None:
        """A Kubernetes object's metadata.name."""
        return (self.props.get("metadata") or {}).get("name")

    def containers(self) -> list[Any]:
        """A Deployment's pod containers (init containers included)."""
        pod = ((self.props.get("spec") or {}).get("template") or {}).get("spec") or {}
        return list(pod.get("initContainers") or []) + list(pod.get("containers") or [])


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
    deployments: list[Res] = field(default_factory=list)
    kubernetes_services: list[Res] = field(default_factory=list)
    bindings: list[Res] = field(default_factory=list)  # TargetGroupBindings (alb routing)

    @property
    def fleet(self) -> list[Res]:
        """What runs the color: its ECS services or Kubernetes Deployments."""
        return self.services + self.deployments

    def release(self) -> str | None:
        for r in self.fleet + self.task_definitions + self.target_groups:
            if r.marker("release"):
                return r.marker("release")
        return None

    def images(self) -> list[str]:
        images = [image for task in self.task_definitions for image in task_images(task)]
        for deployment in self.deployments:
            images += [str(c.get("image", "")) for c in deployment.containers()]
        return images

    def digest(self) -> str | None:
        digests = {digest_of(i) for i in self.images()} - {""}
        return digests.pop() if len(digests) == 1 else None

    def declared(self, marker: str) -> str | None:
        """What the stack declares of the color's application (marker `marker`, contract.py),
        from its fleet, task definitions or target groups."""
        for r in self.fleet + self.task_definitions + self.target_groups:
            if r.marker(marker) is not None:
                return r.marker(marker)
        return None

    def capacity(self) -> int | None:
        """The full capacity the color's fleet declares (marker `capacity`)."""
        for r in self.fleet:
            if r.marker("capacity"):
                return int(str(r.marker("capacity")))
        return None

    def desired_count(self) -> int | None:
        counts = [int(s.props.get("desiredCount") or 0) for s in self.services]
        counts += [int((d.props.get("spec") or {}).get("replicas") or 0) for d in self.deployments]
        return sum(counts) if counts else None


def task_images(task: Res) -> list[str]:
    return [str(c.get("image", "")) for c in json.loads(task.props["containerDefinitions"])]


@dataclass
class StackFacts:
    stack: str
    project: str
    resources: list[Res]
    colors: dict[str, ColorFacts]
    listener: Res | None
    route: Res | None
    load_balancers: list[Res]
    records: dict[tuple[str, str], list[Any]]  # (color, kind): every published document
    previous: TrafficState | None
    watchdog: list[Res] = field(
        default_factory=list
    )  # its schedule, target, function, alarm, CronJob
    # per color, what the stack's journal says of its latest shift (LATEST_DEPLOYMENT)
    outcomes: dict[str, LatestOutcome] = field(default_factory=dict)
    # the stack's first update: the update before left no outputs at all
    first_update: bool = False

    def of_watchdog(self, *types: str) -> list[Res]:
        return [r for r in self.watchdog if r.type in types]

    @property
    def routing(self) -> str:
        """`alb` (a weighted listener) or `gateway` (a weighted HTTPRoute)."""
        return "gateway" if self.listener is None and self.route is not None else "alb"

    def weights(self) -> dict[str, int]:
        """Weights per color of the production listener's forward action, or of the production
        HTTPRoute's backendRefs.

        ValueError when it does not route to exactly the two colors.
        """
        if self.routing == "gateway":
            return self._route_weights()
        if self.listener is None:
            raise ValueError(
                "no production route: neither an HTTPS listener tagged cutover:role=production "
                "nor an HTTPRoute labelled cutover/role=production"
            )
        actions = self.listener.props.get("defaultActions") or []
        forwards = [a for a in actions if a.get("type") == "forward"]
        if len(actions) != 1 or len(forwards) != 1:
            raise ValueError(f"expected exactly one forward action, found {len(actions)} action(s)")
        groups = (forwards[0].get("forward") or {}).get("targetGroups") or []
        color_of = {
            tg.props["arn"]: c for c, facts in self.colors.items() for tg in facts.target_groups
        }
        backends = [(g.get("arn"), color_of.get(g.get("arn")), g) for g in groups]
        return _split("forwards to", "target group", backends)

    def _route_weights(self) -> dict[str, int]:
        assert self.route is not None
        rules = (self.route.props.get("spec") or {}).get("rules") or []
        if len(rules) != 1:
            raise ValueError(f"the HTTPRoute has {len(rules)} rules; expected one weighted rule")
        namespace = (self.route.props.get("metadata") or {}).get("namespace")
        color_of = {
            s.name: c for c, facts in self.colors.items() for s in facts.kubernetes_services
        }
        backends = [
            (
                ref.get("name"),
                color_of.get(ref.get("name"))
                if ref.get("kind", "Service") == "Service"
                and ref.get("namespace", namespace) == namespace
                else None,
                ref,
            )
            for ref in rules[0].get("backendRefs") or []
        ]
        return _split("routes to", "Service", backends)

    def receiving(self) -> list[str]:
        """Colors that receive traffic in this update."""
        return [c for c, w in self.weights().items() if w > 0]


def _split(verb: str, what: str, backends: list[tuple[Any, str | None, Any]]) -> dict[str, int]:
    """Weights per color of (backend, its color or None, the entry holding its weight).

    ValueError unless each backend is a color's `what`, once, and both colors are there.
    """
    weights: dict[str, int] = {}
    for backend, color, entry in backends:
        if color is None:
            raise ValueError(f"{verb} {backend}, which is not a color's {what}")
        if color in weights:
            raise ValueError(f"{verb} {color} twice")
        weights[color] = int(entry.get("weight", 1))
    if set(weights) != set(COLORS):
        raise ValueError(f"{verb} {sorted(weights) or 'nothing'}; expected blue and green")
    return weights


def collect(resources: list[Res]) -> StackFacts:
    """Group a stack's resources by color and find its listener, records and previous state."""
    stack, project = stack_of(resources[0].urn) if resources else ("", "")
    colors: dict[str, ColorFacts] = {c: ColorFacts(c) for c in COLORS}
    listener = route = None
    load_balancers: list[Res] = []
    records: dict[tuple[str, str], list[Any]] = {}
    outcomes: dict[str, LatestOutcome] = {}
    previous = None
    first_update = False
    watchdog: list[Res] = []
    prefix = record_parameter_prefix(stack)
    for r in resources:
        if (
            (r.type in (EVENT_RULE, FUNCTION, ALARM) and r.tag("cutover:role") == WATCHDOG_ROLE)
            or r.type == EVENT_TARGET
            or (r.type in CRON_JOB_TYPES and r.name == WATCHDOG_CRON_JOB)
        ):
            watchdog.append(r)
        color = r.marker("color") if r.type != ROOT_STACK else None
        if r.type in LISTENER_TYPES and r.tag("cutover:role") == "production":
            listener = r
        elif r.type in HTTP_ROUTE_TYPES and r.marker("role") == "production":
            route = r
        elif r.type == CONFIG_MAP and r.name == RECORDS_CONFIG_MAP:
            for key, text in (r.props.get("data") or {}).items():
                parts = str(key).removesuffix(".json").split(".")  # color.kind[.keyId]
                if len(parts) in (2, 3):
                    _file(records, outcomes, parts[0], parts[1], text)
        elif r.type in LOAD_BALANCER_TYPES:
            load_balancers.append(r)
        elif r.type == PARAMETER and str(r.props.get("name", "")).startswith(prefix):
            tail = str(r.props["name"])[len(prefix) :].split("/")  # color/kind[/keyId]
            if len(tail) in (2, 3):
                _file(records, outcomes, tail[0], tail[1], r.props["value"])
        elif r.type == ROOT_STACK:
            before = r.props.get(PREVIOUS_TRAFFIC)
            previous = parse_traffic_state(before)
            first_update = before == FIRST_UPDATE
        if color in colors:
            bucket = {
                TARGET_GROUP_TYPES[0]: colors[color].target_groups,
                TARGET_GROUP_TYPES[1]: colors[color].target_groups,
                SERVICE: colors[color].services,
                TASK_DEFINITION: colors[color].task_definitions,
                ALARM: colors[color].alarms,
                DEPLOYMENT: colors[color].deployments,
                KUBERNETES_SERVICE: colors[color].kubernetes_services,
                TARGET_GROUP_BINDING: colors[color].bindings,
            }.get(r.type)
            if bucket is not None:
                bucket.append(r)
    return StackFacts(
        stack,
        project,
        resources,
        colors,
        listener,
        route,
        load_balancers,
        records,
        previous,
        watchdog,
        outcomes,
        first_update,
    )


def _file(
    records: dict[tuple[str, str], list[Any]],
    outcomes: dict[str, LatestOutcome],
    color: str,
    kind: str,
    text: Any,
) -> None:
    """A published gate record, or a color's latest outcome from the journal."""
    if kind != LATEST_DEPLOYMENT:
        records.setdefault((color, kind), []).append(_json(text))
        return
    try:
        outcomes[color] = latest_outcome(json.loads(str(text)))
    except ValueError:
        outcomes[color] = OutcomeUnreadable(f"the published {LATEST_DEPLOYMENT} is not JSON")


def latest_outcome(fact: Any) -> LatestOutcome:
    """A color's latest outcome as the program publishes it: `{}` for nothing (a first update,
    or no shift towards the color yet), `{"unreadable": why}` when the journal could not be
    read, else the outcome (unreadable too when it is malformed)."""
    if not fact:
        return None
    if isinstance(fact, dict) and "unreadable" in fact:
        return OutcomeUnreadable(f"the stack's journal could not be read ({fact['unreadable']})")
    try:
        return Outcome.from_json(fact)
    except (ValueError, KeyError, TypeError):
        return OutcomeUnreadable("the journal's latest deployment of it is malformed")


def _json(text: Any) -> Any:
    """A record document, parsed strictly (an Unreadable one is judged invalid, saying why)."""
    return parse_record(text if isinstance(text, str | bytes) else str(text))
