"""Run the policy pack as the Pulumi engine does, and talk to it over the analyzer protocol.

The pack is started as a plugin process (`python __main__.py`, which prints its port), then
driven with GetAnalyzerInfo, Configure, AnalyzeStack and Analyze. Pack config is the JSON of
`pulumi preview --policy-pack-config`, validated against each policy's schema as the CLI
validates it, with the schema's defaults filled in.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from cutover_gates.facts import ROOT_STACK
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from cutover.errors import ConfigError
from cutover.pack_config import LEVEL_NAMES, PolicyInfo, resolve_config
from cutover.preview.program import Resource

START_TIMEOUT_SECONDS = 30
# What the engine passes the shim as its own address; pulumi.policy takes it but never dials it.
ENGINE_ADDRESS = "127.0.0.1:0"


def pack_python(pack_dir: Path) -> str:
    """The interpreter the engine's shim starts the pack with: the `virtualenv` runtime option
    of PulumiPolicy.yaml (relative to the pack), else `python3` on PATH (or PULUMI_PYTHON_CMD).
    ConfigError, as the shim's own message, when the pack or its environment is missing."""
    project = pack_dir / "PulumiPolicy.yaml"
    try:
        found = yaml.safe_load(project.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(
            f"--policy-pack {pack_dir}: no readable PulumiPolicy.yaml ({e}); expected a policy pack folder"
        ) from None
    runtime = found.get("runtime") if isinstance(found, dict) else None
    options = runtime.get("options", {}) if isinstance(runtime, dict) else {}
    virtualenv = (options or {}).get("virtualenv")
    if virtualenv:
        python = (pack_dir / str(virtualenv)).resolve() / "bin" / "python"
        if not python.exists():
            raise ConfigError(
                f"the 'virtualenv' option in PulumiPolicy.yaml is set to {virtualenv}, but "
                f"{python.parent.parent} is not a virtual environment; create it with "
                "`make policies/venv/.installed`, or `python -m venv venv && venv/bin/pip "
                f"install -r requirements.txt` in {pack_dir}"
            )
        return str(python)
    return os.environ.get("PULUMI_PYTHON_CMD") or shutil.which("python3") or "python3"


@dataclass(frozen=True)
class Diagnostic:
    """One policy violation as the engine would print it."""

    policy: str
    message: str
    level: str
    urn: str

    @property
    def mandatory(self) -> bool:
        return self.level == "mandatory"


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


class PolicyPackProcess:
    """The pack as a running plugin. Use as a context manager; it is stopped on exit."""

    def __init__(
        self,
        pack_dir: Path,
        stack: str,
        project: str,
        preview: bool = True,
        organization: str = "organization",
        config: dict[str, Any] | None = None,
    ) -> None:
        """Start the pack as the engine does: the stack's name, project, dry-run flag,
        organization and config (`PULUMI_CONFIG`, values as strings) in its environment."""
        self.pack_dir = pack_dir
        config_strings = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()
        }
        env = {
            **os.environ,
            "PULUMI_STACK": stack,
            "PULUMI_PROJECT": project,
            "PULUMI_DRY_RUN": "true" if preview else "false",
            "PULUMI_ORGANIZATION": organization,
            "PULUMI_CONFIG": json.dumps(config_strings),
        }
        # exactly what pulumi-analyzer-policy-python runs, in the pack's folder
        self.command = [pack_python(pack_dir), "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, "."]
        self.process = subprocess.Popen(
            self.command,
            cwd=pack_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.channel: grpc.Channel | None = None
        self._stub: Any = None
        self._policies: list[PolicyInfo] | None = None

    @property
    def stub(self) -> Any:
        """The analyzer client, connected on first use (the pack starts while the caller works)."""
        if self._stub is None:
            port = self._read_port()
            self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(self.channel).result(timeout=START_TIMEOUT_SECONDS)
            self._stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        return self._stub

    def _read_port(self) -> int:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_SECONDS)
        line = self.process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            if self.process.poll() is None:  # started, but said no port: stop it to read why
                self.process.kill()
                self.process.wait()
            err = self.process.stderr.read().decode() if self.process.stderr else ""
            self.close()
            raise RuntimeError(f"policy pack {self.pack_dir} did not start: {err[-2000:]}")
        return int(line)

    def __enter__(self) -> PolicyPackProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def info(self) -> tuple[str, str, list[PolicyInfo]]:
        """(name, version, policies) from GetAnalyzerInfo."""
        info = self.stub.GetAnalyzerInfo(empty_pb2.Empty())
        policies = [
            PolicyInfo(
                name=p.name,
                description=p.description,
                level=LEVEL_NAMES[p.enforcementLevel],
                schema={
                    "properties": json.loads(
                        json.dumps(dict(p.configSchema.properties), default=_from_proto)
                    ),
                    "required": list(p.configSchema.required),
                },
                kind="stack" if p.policy_type == 2 else "resource",
                display_name=p.displayName,
                severity=analyzer_pb2.PolicySeverity.Name(p.severity)
                .removeprefix("POLICY_SEVERITY_")
                .lower(),
                remediation=p.remediation_steps,
                tags=tuple(p.tags),
                url=p.url,
            )
            for p in info.policies
        ]
        self._policies = policies
        return info.name, info.version, policies

    def configure(self, config: dict[str, Any] | None) -> None:
        """Send pack config (the `--policy-pack-config` JSON), validated against the schemas."""
        policies = self._policies if self._policies is not None else self.info()[2]
        resolved = resolve_config(config or {}, policies)
        request = analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(
                    enforcementLevel=analyzer_pb2.EnforcementLevel.Value(level.upper()),
                    properties=_struct(props),
                )
                for name, (level, props) in resolved.items()
            }
        )
        self.stub.Configure(request)

    def analyze_stack(self, resources: list[Resource]) -> list[Diagnostic]:
        """AnalyzeStack with every resource's state, parent and dependencies."""
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    properties=_struct(r.state),
                    urn=r.urn,
                    name=r.name,
                    parent=r.parent,
                    dependencies=r.dependencies,
                    propertyDependencies={
                        k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v)
                        for k, v in r.property_dependencies.items()
                    },
                )
                for r in resources
                if r.custom or r.type == ROOT_STACK
            ]
        )
        return _diagnostics(self.stub.AnalyzeStack(request))

    def analyze_each(self, resources: list[Resource]) -> list[Diagnostic]:
        """Analyze every custom resource, several requests in flight at once (as the engine does)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            found = pool.map(self.analyze, [r for r in resources if r.custom])
        return [d for diagnostics in found for d in diagnostics]

    def analyze(self, resource: Resource) -> list[Diagnostic]:
        """Analyze one resource's inputs, as the engine does before creating or updating it."""
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=_struct(resource.inputs),
            urn=resource.urn,
            name=resource.name,
        )
        return _diagnostics(self.stub.Analyze(request))


def _from_proto(value: Any) -> Any:
    if isinstance(value, struct_pb2.Struct):
        return dict(value)
    if isinstance(value, struct_pb2.ListValue):
        return list(value)
    return str(value)


def _diagnostics(response: Any) -> list[Diagnostic]:
    return [
        Diagnostic(d.policyName, d.message, LEVEL_NAMES[d.enforcementLevel], d.urn)
        for d in response.diagnostics
    ]
