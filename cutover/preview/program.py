"""Run the Pulumi program offline, under the Pulumi SDK's own mock runtime.

Computed fields (ARNs, ARN suffixes, DNS names, ids) are filled in, so nothing a reviewer or
the policy pack looks at is silently unknown. The run records every registration with its
parent and dependencies, which is what the engine sends the policy pack.

One run per process: the Pulumi runtime is process-wide.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import runpy
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from cutover_gates.facts import ROOT_STACK
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from cutover.errors import CutoverError
from cutover.stack_config import stack_config

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def _hex(seed: str, n: int = 16) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


class ProgramMocks(pulumi.runtime.Mocks):
    """Deterministic cloud answers: physical names, ARNs and the previous `traffic` output.

    `previous_outputs` is what the self StackReference reads: the stack's outputs after its
    last update (empty on the first one).
    """

    def __init__(
        self,
        previous_outputs: Mapping[str, Any] | None = None,
        account: str = ACCOUNT,
        region: str = REGION,
    ) -> None:
        self.previous_outputs = dict(previous_outputs or {})
        self.account = account
        self.region = region

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def computed(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """The output fields AWS would compute for a resource of type `typ`."""
        physical = inputs.get("name") or f"{name}-{_hex(name, 7)}"
        tail = _hex(name)
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            suffix = f"app/{physical[:32]}/{tail}"
            return {
                "name": physical,
                "arn": self.arn("elasticloadbalancing", f"loadbalancer/{suffix}"),
                "arnSuffix": suffix,
                "dnsName": f"{physical[:32]}-{tail[:9]}.{self.region}.elb.amazonaws.com",
                "zoneId": "Z32O12XQLNTSW2",
            }
        if typ == "aws:lb/targetGroup:TargetGroup":
            suffix = f"targetgroup/{physical[:32]}/{tail}"
            return {
                "name": physical,
                "arn": self.arn("elasticloadbalancing", suffix),
                "arnSuffix": suffix,
            }
        if typ == "aws:lb/listener:Listener":
            return {"arn": self.arn("elasticloadbalancing", f"listener/app/{name}/{tail}")}
        if typ == "aws:ecs/service:Service":
            cluster = str(inputs.get("cluster", "")).rsplit("/", 1)[-1]
            arn = self.arn("ecs", f"service/{cluster}/{physical}")
            return {"name": physical, "arn": arn, "id": arn}
        if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
            return {"name": physical, "arn": self.arn("cloudwatch", f"alarm:{physical}")}
        if typ == "aws:sns/topic:Topic":
            return {"name": physical, "arn": self.arn("sns", physical)}
        if typ == "aws:dynamodb/table:Table":
            return {"name": physical, "arn": self.arn("dynamodb", f"table/{physical}")}
        if typ == "aws:ecs/cluster:Cluster":
            return {"name": physical, "arn": self.arn("ecs", f"cluster/{physical}")}
        if typ == "aws:ecs/taskDefinition:TaskDefinition":
            family = inputs.get("family", physical)
            return {
                "arn": self.arn("ecs", f"task-definition/{family}:1"),
                "revision": 1,
            }
        if typ == "aws:iam/role:Role":
            return {"name": physical, "arn": f"arn:aws:iam::{self.account}:role/{physical}"}
        if typ == "aws:ec2/securityGroup:SecurityGroup":
            return {"name": physical, "id": f"sg-{tail}", "arn": self.arn("ec2", f"sg-{tail}")}
        if typ.startswith("aws:"):
            service = typ.split(":")[1].split("/")[0]
            # an `arn` given as input (an EventTarget's target) is the resource's to keep
            return {
                "name": physical,
                "arn": inputs.get("arn") or self.arn(service, f"{name}/{tail}"),
            }
        return {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {
                "name": args.inputs.get("name", args.name),
                "outputs": self.previous_outputs,
                "secretOutputNames": [],
            }
        state = {**args.inputs, **self.computed(args.typ, args.name, args.inputs)}
        return state.get("id") or f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account,
                "arn": f"arn:aws:iam::{self.account}:user/cutover",
                "userId": "AIDACUTOVER",
                "id": self.account,
            }, []
        return {}, []


@dataclass
class Resource:
    """One registered resource, as the engine would hand it to a policy pack."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # what it was before, as the engine matches it to a resource of an earlier update: each
    # alias spec's fields (`noParent`, `parentUrn`, `name`, `type`)
    aliases: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "custom": self.custom,
            "parent": self.parent,
            "inputs": self.inputs,
            "state": self.state,
            "dependencies": self.dependencies,
            "propertyDependencies": self.property_dependencies,
            "aliases": self.aliases,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resource:
        return cls(
            urn=data["urn"],
            type=data["type"],
            name=data["name"],
            custom=data["custom"],
            parent=data["parent"],
            inputs=data["inputs"],
            state=data["state"],
            dependencies=data.get("dependencies", []),
            property_dependencies=data.get("propertyDependencies", {}),
            aliases=data.get("aliases", []),
        )


@dataclass
class ProgramRun:
    """What one run of the program declared and exported."""

    project: str
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [r.to_json() for r in self.resources],
            "outputs": self.outputs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProgramRun:
        return cls(
            project=data["project"],
            stack=data["stack"],
            resources=[Resource.from_json(r) for r in data["resources"]],
            outputs=data["outputs"],
        )


class RecordingMonitor(MockMonitor):
    """The SDK's MockMonitor, also keeping what the engine keeps: parents and dependencies."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response.urn, request.object, custom=request.custom)
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        # Reads (the self StackReference) are part of what the program declared. The real
        # engine's AnalyzeStack was seen without it, so the pack reads the previous traffic
        # from the stack's own outputs (previousTraffic), never from a read.
        response = super().ReadResource(request)
        self._record(request, response.urn, request.properties, custom=True)
        return response

    def _record(self, request: Any, urn: str, properties: Any, custom: bool) -> None:
        self.registrations.append(
            Resource(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=custom,
                parent=request.parent,
                inputs=_plain(rpc.deserialize_properties(properties)),
                state=_plain(self.resources[urn].state),
                dependencies=list(request.dependencies),
                property_dependencies={
                    k: list(v.urns) for k, v in getattr(request, "propertyDependencies", {}).items()
                },
                aliases=[MessageToDict(a.spec) for a in getattr(request, "aliases", [])],
            )
        )


def _plain(value: Any) -> Any:
    """JSON-safe copy of deserialized properties: assets as {"asset": {"path"}}, archives as
    {"archive": {name: asset}}, unknowns as None."""
    return json.loads(json.dumps(value, default=_asset))


def _asset(value: Any) -> Any:
    if isinstance(value, pulumi.FileAsset):
        return {"asset": {"path": value.path}}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": dict(value.assets)}
    return None


def run_program(
    project_dir: Path,
    stack: str,
    config: Mapping[str, Any],
    mocks: ProgramMocks | None = None,
    preview: bool = True,
) -> ProgramRun:
    """Run the project's program (its Pulumi.yaml's `main`, else `project_dir/__main__.py`) for
    `stack` with `config` (full keys, e.g. `cutover:activeColor`; objects as JSON strings or
    values) and return what it declared and exported."""
    project = project_name(project_dir)
    program = program_path(project_dir).resolve()
    mocks = mocks or ProgramMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    sys.path.insert(0, str(program.parent))
    cwd = os.getcwd()
    os.chdir(project_dir)
    try:
        try:
            runpy.run_path(str(program), run_name="__main__")
        except Exception as e:  # noqa: BLE001 - the user's program: its failure is theirs, one line
            raise ProgramFailed(program, e) from None
        _sync_await(wait_for_rpcs())
        root = runtime_settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}))
        outputs = {k: _sync_await(_resolve(v)) for k, v in exported.items()}
        _sync_await(wait_for_rpcs())
    finally:
        os.chdir(cwd)
        sys.path.remove(str(program.parent))
    # the stack itself last, as the engine shows it to a policy pack: its outputs its state
    name = f"{project}-{stack}"
    itself = Resource(
        urn=f"urn:pulumi:{stack}::{project}::{ROOT_STACK}::{name}",
        type=ROOT_STACK, name=name, custom=False, parent="", inputs={}, state=_plain(outputs),
    )  # fmt: skip
    return ProgramRun(project, stack, [*monitor.registrations, itself], _plain(outputs))


async def _resolve(value: Any) -> Any:
    return await pulumi.Output.from_input(value).future()


class ProgramFailed(CutoverError):
    """The program raised while it declared its resources (`pulumi preview` would fail too)."""

    def __init__(self, program: Path, error: Exception) -> None:
        frames = traceback.extract_tb(error.__traceback__)
        # the deepest line of the program's own folder: where its author looks first
        ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(program.parent)]
        at = f" at {ours[-1].filename}:{ours[-1].lineno}" if ours else ""
        super().__init__(f"the program {program} failed{at}: {type(error).__name__}: {error}")


def project_name(project_dir: Path) -> str:
    name = _project(project_dir).get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{project_dir / 'Pulumi.yaml'} has no `name:`")
    return name


def program_path(project_dir: Path) -> Path:
    """The file the engine runs: Pulumi.yaml's `main` (a folder's `__main__.py`, or a file),
    relative to the project folder; by default the project's own `__main__.py`."""
    main = _project(project_dir).get("main")
    program = (project_dir / main) if isinstance(main, str) and main else project_dir
    return program / "__main__.py" if program.is_dir() else program


def _project(project_dir: Path) -> dict[str, Any]:
    found = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    return found if isinstance(found, dict) else {}


def main(argv: list[str] | None = None) -> int:
    """`python -m cutover.preview.program`: run the program once and print what it declared as JSON.

    Used by tests and tools that need a fresh process per run.
    """
    parser = argparse.ArgumentParser(prog="python -m cutover.preview.program")
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--stack", required=True)
    parser.add_argument(
        "--config", type=Path, help="JSON file: full config (overrides the stack file)"
    )
    parser.add_argument("--previous", type=Path, help="JSON file: the stack's previous outputs")
    parser.add_argument("--update", action="store_true", help="run as an update, not a preview")
    args = parser.parse_args(argv)
    project_dir = args.project_dir.resolve()

    try:
        config = (
            json.loads(args.config.read_text())
            if args.config
            else stack_config(project_dir / f"Pulumi.{args.stack}.yaml")
        )
        previous = json.loads(args.previous.read_text()) if args.previous else None
        run = run_program(
            project_dir, args.stack, config, ProgramMocks(previous), preview=not args.update
        )
    except CutoverError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    json.dump(run.to_json(), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
