"""The values the program, the policy pack and the helper must agree on, in one place.

The pack is published on its own (`pulumi policy publish` uploads only `policies/`), so this
module lives inside it; the program and the helper import it as `cutover_gates.contract`.
Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal, cast

from cutover_gates.config_keys import SettingError, whole

Color = Literal["blue", "green"]
COLORS: tuple[Color, Color] = ("blue", "green")
# The ALB accepts 0-999 per target group (a Gateway's backendRefs too); cutover writes
# percentages (0-100).
MAX_WEIGHT = 999
# How often an ALB publishes its CloudWatch metrics (standard resolution): the output
# `metrics.resolutionSeconds` says it, and an ALB stack's windows are whole multiples of it.
ALB_RESOLUTION_SECONDS = 60

# -- gate records ---------------------------------------------------------------------------

APPROVAL = "approval"
SECURITY_SIGNOFF = "security-signoff"
ROLLBACK_DRILL = "rollback-drill"
KINDS = (APPROVAL, SECURITY_SIGNOFF, ROLLBACK_DRILL)
# The chairman's leave to move traffic during a change freeze (`cutover approve --emergency`).
EMERGENCY = "emergency"
# What a stack publishes for the pack (`cutover:gateRecords`).
PUBLISHED_KINDS = (*KINDS, EMERGENCY)
# The stage's verdict for the next stage (launch): signed by `cutover exit-gates --key`, never a
# gate of this pack.
STAGE_EXIT = "stage-exit"
RECORD_KINDS = (*PUBLISHED_KINDS, STAGE_EXIT)

# The gate policies, and which one's config holds the trusted keys of each record kind.
CHAIRMAN_APPROVAL_POLICY = "chairman-approval"
SECURITY_SIGNOFF_POLICY = "security-signoff"
ROLLBACK_TESTED_POLICY = "rollback-tested"
POLICY_OF_KIND = {
    APPROVAL: CHAIRMAN_APPROVAL_POLICY,
    SECURITY_SIGNOFF: SECURITY_SIGNOFF_POLICY,
    ROLLBACK_DRILL: ROLLBACK_TESTED_POLICY,
}
GATE_POLICIES = tuple(POLICY_OF_KIND.values())
CHANGE_FREEZE_POLICY = "change-freeze"
# Whose trusted keys verify each record kind: the deploy key signs drills and stage exits
# alike, so a stage-exit record is trusted by the keys of rollback-tested; the chairman's keys
# sign emergencies, listed in the change-freeze policy's own config (a policy sees only its own).
TRUSTED_KEYS_OF = {
    **POLICY_OF_KIND,
    STAGE_EXIT: ROLLBACK_TESTED_POLICY,
    EMERGENCY: CHANGE_FREEZE_POLICY,
}

# Where a stack publishes its records: SSM parameters on AWS, one ConfigMap on Kubernetes.
RECORDS_CONFIG_MAP = "cutover-gates"


def record_parameter(stack: str, color: str, kind: str, key_id: str = "") -> str:
    """The SSM parameter that holds one gate record of an AWS stack (one per signer's key id:
    N of M approvals are N records), or one published fact (no key id)."""
    return f"{record_parameter_prefix(stack)}{color}/{kind}" + (f"/{key_id}" if key_id else "")


def record_parameter_prefix(stack: str) -> str:
    return f"/cutover/{stack}/gates/"


def record_config_map_key(color: str, kind: str, key_id: str = "") -> str:
    """The key of one gate record (or published fact) in the `cutover-gates` ConfigMap."""
    return f"{color}.{kind}" + (f".{key_id}" if key_id else "") + ".json"


# -- stack outputs (names as `pulumi stack output --json` prints them) ----------------------

STACK = "stack"
PROJECT = "project"
PLATFORM = "platform"
LISTENER_ARN = "listenerArn"
TARGET_GROUP_ARNS = "targetGroupArns"
ALARM_NAMES = "alarmNames"
RELEASES = "releases"
SERVICES = "services"
JOURNAL_TABLE = "journalTable"
TOPIC_ARN = "topicArn"
LOAD_BALANCER_DNS_NAME = "loadBalancerDnsName"
TEST_URL = "testUrl"
TRAFFIC = "traffic"
HELPER_ROLE_ARN = "helperRoleArn"
ROUTE = "route"
# the stack's `cutover:analysis` settings, and where an ALB stack's per-color metrics are:
# {"namespace": "AWS/ApplicationELB", "loadBalancer": <arn suffix>, "targetGroups": {color: ...}}
ANALYSIS = "analysis"
METRICS = "metrics"
DASHBOARD = "dashboard"
# {"function", "schedule"} on AWS, {"cronJob", "namespace"} on a Gateway stack
WATCHDOG = "watchdog"

# The watchdog's resources: marker `cutover:role` on AWS, and the CronJob's name on Kubernetes.
WATCHDOG_ROLE = "watchdog"
WATCHDOG_CRON_JOB = "cutover-watchdog"

# The CloudWatch namespace of the helper's deployment metrics (the helper role may write only it).
METRICS_NAMESPACE = "Cutover"

# -- deployments ----------------------------------------------------------------------------


class Status(StrEnum):
    """A deployment's phase as journaled. `interrupted` is never written: it is derived (in
    progress or paused, and no live lease)."""

    IN_PROGRESS = "in-progress"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled-back"
    DRILLED = "drilled"
    INTERRUPTED = "interrupted"

    @property
    def active(self) -> bool:
        """A process is (or was, if interrupted) moving traffic."""
        return self in (Status.IN_PROGRESS, Status.PAUSED, Status.INTERRUPTED)

    @property
    def finished(self) -> bool:
        return self in (Status.SUCCEEDED, Status.ROLLED_BACK, Status.DRILLED)


# Where the program publishes, beside the gate records, what the stack's journal says of the
# latest shift towards each color (an SSM parameter `/cutover/<stack>/gates/<color>/<this>`, or
# the key `<color>.<this>.json` of the `cutover-gates` ConfigMap): the pack refuses to send
# traffic back to a release that was rolled back unless an approval newer than that rollback
# exists.
LATEST_DEPLOYMENT = "latest-deployment"


@dataclass(frozen=True)
class Outcome:
    """How the latest shift towards a color ended, as its journal keeps it per listener or
    route: the deployment, its status, the release it moved traffic to, when it finished and
    why (for a rollback: the reason, and who or what gave traffic back)."""

    deployment: str
    status: str
    color: str
    version: str
    digest: str
    at: float
    reason: str = ""
    by: str = ""
    epoch: int = 0  # when its deployment took the listener (0: before epochs; then by id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def newer_than(self, other: Outcome | None) -> bool:
        """Whether it replaces `other`: a later epoch, or the same and a later or equal id."""
        return other is None or (self.epoch, self.deployment) >= (other.epoch, other.deployment)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        """ValueError (or KeyError, TypeError) when `data` is not an outcome."""
        return cls(str(data["deployment"]), str(data["status"]), parse_color(str(data["color"])),
                   str(data["version"]), str(data["digest"]), float(data["at"]),
                   str(data.get("reason", "")), str(data.get("by", "")),
                   int(data.get("epoch", 0)))  # fmt: skip


@dataclass(frozen=True)
class OutcomeUnreadable:
    """All that is known of a color's latest outcome when the journal could not be read (or
    its entry is malformed): why. A gate that needs the outcome fails closed on it."""

    reason: str


# A color's latest journaled outcome: one, none (no shift towards it yet), or unknown.
LatestOutcome = Outcome | OutcomeUnreadable | None


@dataclass(frozen=True)
class Release:
    """The release a color runs, as output `releases` names it: its version and the digest of
    its image (what the gate records bind; "" where the image is not pinned), and the image
    (the program exports it, for the offline preview's diff)."""

    version: str
    digest: str
    image: str = ""

    def to_json(self) -> dict[str, Any]:
        found = {"version": self.version, "digest": self.digest}
        return {**found, "image": self.image} if self.image else found

    @classmethod
    def from_json(cls, data: Any) -> Release:
        """ValueError naming the first malformed field."""
        if not isinstance(data, Mapping):
            raise ValueError("must be {version, digest}")
        if not isinstance(data.get("version"), str) or not data["version"]:
            raise ValueError("version must be a non-empty string")
        if not isinstance(data.get("digest", ""), str):
            raise ValueError("digest must be a string (sha256:..., or empty when not pinned)")
        return cls(data["version"], str(data.get("digest", "")), str(data.get("image") or ""))


@dataclass(frozen=True)
class ColorService:
    """One color's service as output `services` names it: what runs it (an ECS cluster and
    service, or a Kubernetes namespace, Deployment and Service) and how many it runs."""

    platform: str  # ecs or kubernetes
    service: str  # the ECS service, or the color's Kubernetes Service
    capacity: int  # full capacity: what a color runs before it takes traffic
    idle_capacity: int  # what the color not serving keeps warm
    desired_count: int  # what this update runs
    cluster: str = ""  # ECS
    namespace: str = ""  # Kubernetes
    deployment: str = ""  # Kubernetes

    def to_json(self) -> dict[str, Any]:
        found = {"platform": self.platform, "service": self.service, "capacity": self.capacity,
                 "idleCapacity": self.idle_capacity, "desiredCount": self.desired_count}  # fmt: skip
        place = {"cluster": self.cluster} if self.platform == "ecs" else \
            {"namespace": self.namespace, "deployment": self.deployment}  # fmt: skip
        return {**found, **place}

    @classmethod
    def from_json(cls, data: Any) -> ColorService:
        """ValueError naming the first malformed field."""
        if not isinstance(data, Mapping):
            raise ValueError("must be an object")
        platform = data.get("platform", "ecs")
        named = ("cluster",) if platform == "ecs" else ("namespace", "deployment")
        if platform not in ("ecs", "kubernetes"):
            raise ValueError(f"platform must be ecs or kubernetes, not {platform!r}")
        for key in ("service", *named):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"{key} must be a non-empty string")
        counts = {}
        for key in ("capacity", "idleCapacity", "desiredCount"):
            value = data.get(key, data.get("capacity") if key != "capacity" else None)
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # outputs passed through the engine arrive as floats
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a whole number of 0 or more")
            counts[key] = value
        return cls(
            platform=str(platform),
            service=str(data["service"]),
            capacity=counts["capacity"],
            idle_capacity=counts["idleCapacity"],
            desired_count=counts["desiredCount"],
            cluster=str(data.get("cluster", "")),
            namespace=str(data.get("namespace", "")),
            deployment=str(data.get("deployment", "")),
        )


@dataclass(frozen=True)
class Route:
    """A Gateway stack's HTTPRoute, as output `route` names it."""

    namespace: str
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name}

    @property
    def key(self) -> str:
        """What the journal and the lock know it by."""
        return f"httproute/{self.namespace}/{self.name}"

    @classmethod
    def from_json(cls, data: Any) -> Route:
        """ValueError when `data` does not name the route's namespace and name."""
        if not isinstance(data, Mapping) or not all(
            isinstance(data.get(k), str) and data[k] for k in ("namespace", "name")
        ):
            raise ValueError("must name the HTTPRoute's namespace and name")
        return cls(data["namespace"], data["name"])


@dataclass(frozen=True)
class AlbMetrics:
    """Where an ALB stack's CloudWatch figures are, as output `metrics` names them: the
    namespace, the load balancer's and each color's target group's dimension, and how often
    they are published (seconds)."""

    namespace: str
    load_balancer: str
    target_groups: dict[str, str]
    resolution_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "loadBalancer": self.load_balancer,
                "targetGroups": dict(self.target_groups),
                "resolutionSeconds": self.resolution_seconds}  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> AlbMetrics:
        """ValueError when `data` is not {namespace, loadBalancer, targetGroups: {blue,
        green}, resolutionSeconds} (the resolution defaulting to the ALB's)."""
        said = "must be {namespace, loadBalancer, targetGroups: {blue, green}, resolutionSeconds}"
        if not isinstance(data, Mapping):
            raise ValueError(said)
        groups = data.get("targetGroups")
        try:  # a whole number of seconds (outputs passed through the engine arrive as floats)
            resolution = whole(1, 3600)(
                "resolutionSeconds", data.get("resolutionSeconds", ALB_RESOLUTION_SECONDS)
            )
        except SettingError:
            raise ValueError(said) from None
        if not (
            all(isinstance(data.get(k), str) for k in ("namespace", "loadBalancer"))
            and isinstance(groups, Mapping)
            and set(groups) == set(COLORS)
            and all(isinstance(v, str) for v in groups.values())
        ):
            raise ValueError(said)
        return cls(data["namespace"], data["loadBalancer"], dict(groups), resolution)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease (and last drove a deployment): the token of one acquisition, and
    the deployment, person or CI actor, host and process behind it. Items an earlier release
    wrote may name only the token; a holder with no token is nobody (false)."""

    token: str
    deployment: str = ""
    who: str = ""
    host: str = ""
    pid: int = 0

    def __bool__(self) -> bool:
        return bool(self.token)

    def to_json(self) -> dict[str, Any]:
        if not self.token:
            return {}
        return {"holder": self.token, "deployment": self.deployment, "who": self.who,
                "host": self.host, "pid": self.pid}  # fmt: skip

    @classmethod
    def from_json(cls, data: Any) -> Holder:
        """The holder `data` names; nobody when it names none (an empty object)."""
        if not isinstance(data, Mapping) or not data.get("holder"):
            return cls("")
        pid = data.get("pid")
        return cls(str(data["holder"]), str(data.get("deployment") or ""),
                   str(data.get("who") or ""), str(data.get("host") or ""),
                   int(pid) if isinstance(pid, int | float) and not isinstance(pid, bool) else 0)  # fmt: skip

    def describe(self) -> str:
        return f"deployment {self.deployment} by {self.who} on {self.host} (pid {self.pid})"

    @property
    def where(self) -> str:
        """Who, on which host."""
        return f"{self.who} on {self.host}"


# -- small shared rules ---------------------------------------------------------------------


def digest_of(image: str) -> str:
    """The digest a pinned image (`repo@sha256:...`) ends with; "" when it is not pinned."""
    return image.split("@", 1)[1] if "@" in image else ""


def share(weights: Mapping[str, int], color: str) -> float:
    """The fraction of traffic `color` receives under `weights` (0 when nothing is served)."""
    total = sum(weights.values())
    return weights.get(color, 0) / total if total else 0.0


def parse_color(value: str) -> Color:
    """`value` as a Color, or ValueError naming what is expected."""
    if value not in COLORS:
        raise ValueError(f"unknown color {value!r}; expected blue or green")
    return cast(Color, value)


def other_color(color: Color) -> Color:
    """The color that is not `color`."""
    return "green" if color == "blue" else "blue"
