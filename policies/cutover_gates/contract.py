"""The values the program, the policy pack and the helper must agree on, in one place.

The pack is published on its own (`pulumi policy publish` uploads only `policies/`), so this
module lives inside it; the program and the helper import it as `cutover_gates.contract`.
The stack outputs' names and shapes are beside it (`stack_outputs`, `output_shapes`).
Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal, cast

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
