"""The typed shape of each stack output that has a structure of its own: a color's release,
its service (one shape per platform), a Gateway stack's route and an ALB stack's metrics.

Each reads its JSON with `from_json` (ValueError naming the first malformed field) and writes
it back with `to_json`. Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from cutover_gates.config_keys import SettingError, whole
from cutover_gates.contract import ALB_RESOLUTION_SECONDS, COLORS


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


Platform = Literal["ecs", "kubernetes"]


def _named(data: Mapping[str, Any], *keys: str) -> list[str]:
    """The non-empty strings `data` holds under `keys`; ValueError naming the first that is not."""
    for key in keys:
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{key} must be a non-empty string")
    return [str(data[key]) for key in keys]


def _counts(data: Mapping[str, Any]) -> list[int]:
    """capacity, idleCapacity and desiredCount (each but the first defaulting to it); whole
    numbers, which outputs passed through the engine carry as floats."""
    counts = []
    for key in ("capacity", "idleCapacity", "desiredCount"):
        value = data.get(key, data.get("capacity") if key != "capacity" else None)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be a whole number of 0 or more")
        counts.append(value)
    return counts


@dataclass(frozen=True)
class EcsService:
    """One color's ECS service as output `services` names it: its cluster and service, and how
    many tasks it runs."""

    platform: ClassVar[Platform] = "ecs"
    cluster: str
    service: str
    capacity: int  # full capacity: what a color runs before it takes traffic
    idle_capacity: int  # what the color not serving keeps warm
    desired_count: int  # what this update runs

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "service": self.service, "capacity": self.capacity,
                "idleCapacity": self.idle_capacity, "desiredCount": self.desired_count,
                "cluster": self.cluster}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EcsService:
        """ValueError naming the first malformed field."""
        service, cluster = _named(data, "service", "cluster")
        return cls(cluster, service, *_counts(data))


@dataclass(frozen=True)
class KubernetesService:
    """One color's Kubernetes workload as output `services` names it: its namespace,
    Deployment and Service, and how many replicas it runs."""

    platform: ClassVar[Platform] = "kubernetes"
    namespace: str
    deployment: str
    service: str  # the color's Kubernetes Service
    capacity: int  # full capacity: what a color runs before it takes traffic
    idle_capacity: int  # what the color not serving keeps warm
    desired_count: int  # what this update runs

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "service": self.service, "capacity": self.capacity,
                "idleCapacity": self.idle_capacity, "desiredCount": self.desired_count,
                "namespace": self.namespace, "deployment": self.deployment}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KubernetesService:
        """ValueError naming the first malformed field."""
        service, namespace, deployment = _named(data, "service", "namespace", "deployment")
        return cls(namespace, deployment, service, *_counts(data))


# One color's service: one shape per platform, told apart by its `platform`.
ColorService = EcsService | KubernetesService


def color_service_from_json(data: Any) -> ColorService:
    """The shape its `platform` names (ecs when it names none); ValueError naming the first
    malformed field."""
    if not isinstance(data, Mapping):
        raise ValueError("must be an object")
    platform = data.get("platform", "ecs")
    if platform == EcsService.platform:
        return EcsService.from_json(data)
    if platform == KubernetesService.platform:
        return KubernetesService.from_json(data)
    raise ValueError(f"platform must be ecs or kubernetes, not {platform!r}")


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
