"""Gate records named in stack config, published as SSM parameters the policy pack reads.

The program does not judge records (the pack does, with keys the stack cannot set); it
checks they are well formed and publishes each under `/cutover/<stack>/gates/<color>/<kind>`,
which also leaves AWS an audit trail of what was approved. Beside them, each color's latest
outcome in the stack's journal (`latest-deployment`), from `latest_deployments`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
from cutover_gates.contract import (
    COLORS,
    LATEST_DEPLOYMENT,
    PUBLISHED_KINDS,
    RECORDS_CONFIG_MAP,
    record_config_map_key,
    record_parameter,
)
from cutover_gates.record import Unreadable, parse_record

from cutover.errors import ConfigError


@dataclass(frozen=True)
class GateRecordFile:
    path: str
    kind: str
    color: str
    key_id: str
    text: str


def read_gate_records(paths: tuple[str, ...], base: Path) -> list[GateRecordFile]:
    """Read and shape-check the record files; ConfigError names the file and the problem."""
    records: list[GateRecordFile] = []
    seen: dict[tuple[str, str, str], str] = {}
    for path in paths:
        file = base / path
        try:
            document = parse_record(file.read_bytes())
        except OSError as e:
            raise ConfigError(f"cutover:gateRecords: cannot read {path}: {e.strerror}") from None
        if isinstance(document, Unreadable):
            raise ConfigError(f"cutover:gateRecords: {path} {document.reason}") from None
        body = document.get("record") if isinstance(document, dict) else None
        kind = body.get("kind") if isinstance(body, dict) else None
        color = body.get("color") if isinstance(body, dict) else None
        signer = body.get("keyId") if isinstance(body, dict) else None
        if kind not in PUBLISHED_KINDS or color not in COLORS or not isinstance(signer, str):
            raise ConfigError(
                f"cutover:gateRecords: {path} is not a gate record; expected a document made by "
                f"`cutover approve`, `cutover signoff` or `cutover drill` (kind one of "
                f"{PUBLISHED_KINDS})"
            )
        if not re.fullmatch(r"[0-9a-f]{16}", signer):
            raise ConfigError(
                f"cutover:gateRecords: {path} names key id {signer!r}; expected 16 hex digits"
            )
        if (color, kind, signer) in seen:
            raise ConfigError(
                f"cutover:gateRecords: {path} and {seen[(color, kind, signer)]} are both {kind} "
                f"records for {color} by key {signer}; one signer counts once, list one of them"
            )
        seen[(color, kind, signer)] = path
        text = json.dumps(document, sort_keys=True)
        records.append(GateRecordFile(path, kind, color, signer, text))
    return records


@dataclass(frozen=True)
class GateRecordsArgs:
    stack: str
    records: list[GateRecordFile]
    tags: dict[str, str]
    outcomes: pulumi.Output[dict[str, str]]  # per color, from the journal


class GateRecords(pulumi.ComponentResource):
    """One SSM String parameter per gate record."""

    def __init__(
        self, name: str, args: GateRecordsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:GateRecords", name, None, opts)
        self.parameters = [
            aws.ssm.Parameter(
                f"{name}-{r.color}-{r.kind}-{r.key_id}",
                name=record_parameter(args.stack, r.color, r.kind, r.key_id),
                type="String",
                value=r.text,
                description=f"cutover {r.kind} record for {r.color} ({r.path})",
                tags={**args.tags, "cutover:color": r.color, "cutover:gate": r.kind},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for r in args.records
        ]
        self.parameters += [
            aws.ssm.Parameter(
                f"{name}-{c}-{LATEST_DEPLOYMENT}",
                name=record_parameter(args.stack, c, LATEST_DEPLOYMENT),
                type="String",
                value=args.outcomes.apply(_color_of(c)),
                description=f"cutover: how the latest shift towards {c} ended (from the journal)",
                tags={**args.tags, "cutover:color": c, "cutover:gate": LATEST_DEPLOYMENT},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for c in COLORS
        ]
        self.register_outputs({"parameters": [p.name for p in self.parameters]})


@dataclass(frozen=True)
class KubernetesGateRecordsArgs:
    namespace: str
    records: list[GateRecordFile]
    labels: dict[str, str]
    outcomes: pulumi.Output[dict[str, str]]  # per color, from the journal


class KubernetesGateRecords(pulumi.ComponentResource):
    """The gate records as one ConfigMap (`cutover-gates`, key `<color>.<kind>.json`) in the
    release namespace, where the pack sees them."""

    def __init__(
        self, name: str, args: KubernetesGateRecordsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        import pulumi_kubernetes as k8s  # slow to import (seconds): ECS stacks never need it

        super().__init__("cutover:index:KubernetesGateRecords", name, None, opts)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-configmap",
            metadata={
                "name": RECORDS_CONFIG_MAP,
                "namespace": args.namespace,
                "labels": args.labels,
            },
            data=args.outcomes.apply(
                lambda found: {
                    **{
                        record_config_map_key(r.color, r.kind, r.key_id): r.text
                        for r in args.records
                    },
                    **{record_config_map_key(c, LATEST_DEPLOYMENT): found[c] for c in COLORS},
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


# pulumi-kubernetes replaces a ConfigMap whose data changes unless its provider has this set;
# a preview of that replacement shows the pack the ConfigMap as it is, not as the update leaves
# it (measured with the real engine: a record dropped from `cutover:gateRecords` still counted,
# and so would a color's outcome the journal changed since). Updated in place, the pack judges
# the records and outcomes this update publishes.
MUTABLE_CONFIG_MAPS = "enableConfigMapMutable"


def require_mutable_config_maps() -> None:
    """Refuse to publish the records in a ConfigMap the provider would replace: checked before
    the stack declares anything, so an update refused for it changes nothing."""
    if pulumi.Config("kubernetes").get(MUTABLE_CONFIG_MAPS) != "true":
        raise ConfigError(
            f"kubernetes:{MUTABLE_CONFIG_MAPS} must be true (`pulumi config set "
            f"kubernetes:{MUTABLE_CONFIG_MAPS} true`): the gate records' ConfigMap is then "
            "updated in place, and a preview judges the records this update publishes"
        )


def _color_of(color: str) -> Callable[[dict[str, str]], str]:
    return lambda found: found[color]
