"""The declared policies served to the engine through the policy SDK: each one's config parsed
once per analysis into its typed shape, its violations mandatory on production stacks and
advisory elsewhere, values unknown during preview failing closed. The only module of the pack
that imports the SDK (`policies/__main__.py` calls `serve`)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import yaml
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _GRPC_CHANNEL_OPTIONS, _PolicyAnalyzerServicer
from pulumi_policy.proxy import UnknownValueError

from cutover_gates.config_schema import PRODUCTION_STACKS, PolicyConfig
from cutover_gates.facts import Res, collect
from cutover_gates.rules.policy import Policy, Report, ResourcePolicy, StackPolicy


def _website() -> str | None:
    """PulumiPolicy.yaml `website`: where reviewers read about each policy (docs/policies.md's anchors)."""
    try:
        found = yaml.safe_load(
            (Path(__file__).resolve().parents[2] / "PulumiPolicy.yaml").read_text()
        )
    except (OSError, yaml.YAMLError):
        return None
    website = found.get("website") if isinstance(found, dict) else None
    return str(website).rstrip("/") if website else None


WEBSITE = _website()


def fail_closed(report: Report, error: UnknownValueError) -> None:
    report(
        f"Cannot be decided during preview: {error.message} Failing closed: this gate does "
        "not pass on values it cannot see. Run the preview against a stack whose resources "
        "exist, or `cutover preview`, which fills computed values."
    )


def _production(config: Mapping[str, Any]) -> bool:
    """Whether the engine's stack (PULUMI_STACK) is production under `config`'s patterns."""
    stacks = PolicyConfig(PRODUCTION_STACKS.value(config))
    return stacks.is_production(os.environ.get("PULUMI_STACK"))


class _EnforcedByStack:
    """Mandatory on production stacks, advisory elsewhere, unless the pack's config names a level.

    The engine names the stack in PULUMI_STACK. Before the config is known the pack reports
    each policy's level by the schema's default `productionStacks`; the engine then hands every
    policy a level, that one unless the config names another (`all`, or the policy's
    `enforcementLevel`), and `level_under` judges it again by the config's own patterns.
    """

    name: str  # the SDK policy's: each subclass is one
    _explicit: EnforcementLevel | None = None

    @property
    def enforcement_level(self) -> EnforcementLevel:
        if self._explicit is not None:
            return self._explicit
        return EnforcementLevel.MANDATORY if _production({}) else EnforcementLevel.ADVISORY

    @enforcement_level.setter
    def enforcement_level(self, value: EnforcementLevel | None) -> None:
        self._explicit = value

    def level_under(
        self, configured: EnforcementLevel, config: Mapping[str, Any]
    ) -> EnforcementLevel:
        """The level of this policy's violations under its `config`, given the level the
        engine `configured`. One other than the pack reported was named in the config and
        stands (`disabled` and `remediate` too); the reported one is decided again by the
        config's `productionStacks`, so a stack it lists is mandatory and one it leaves out
        advisory, whatever the default patterns say. A named level equal to the reported one
        cannot be told from it: list a stack in `productionStacks` to make it mandatory."""
        levels = (EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY)
        if configured not in levels or configured != self.enforcement_level:
            return configured
        try:
            production = _production(config)
        except ValueError:  # said by the policy's own config check, failing closed
            return configured
        return EnforcementLevel.MANDATORY if production else EnforcementLevel.ADVISORY


def _metadata(policy: Policy) -> dict[str, Any]:
    """What Pulumi Cloud shows a reviewer of `policy` besides its description."""
    about = policy.about
    found: dict[str, Any] = {
        "display_name": about.display_name,
        "severity": Severity(about.severity.value),
        "remediation_steps": about.remediation,
        "tags": ["cutover", *about.tags],
        "config_schema": PolicyConfigSchema(policy.config.properties()),
    }
    if WEBSITE:  # PulumiPolicy.yaml `website`: where docs/policies.md is hosted
        found["url"] = f"{WEBSITE}#policy-{policy.name}"
    return found


def _config_of(policy: Policy, args: Any, report: Report) -> Any | None:
    """`policy`'s config parsed once from what the engine sent (`args`); None, said as a
    violation that fails closed, when it cannot be read (a key listed twice, say)."""
    try:
        return policy.config.parse(args.get_config() or {})
    except ValueError as e:
        report(f"Cannot be decided: {policy.name}.{e} in the pack config. Failing closed: fix it.")
        return None


class GatePolicy(_EnforcedByStack, StackValidationPolicy):  # type: ignore[misc]
    """A StackPolicy served: a violation names the production listener or HTTPRoute unless it
    names a resource of its own."""

    def __init__(self, declared: StackPolicy) -> None:
        def validate(args: StackValidationArgs, report: Report) -> None:
            resources = [Res(r.resource_type, r.urn, r.props) for r in args.resources]
            if not resources:
                return
            facts = collect(resources)
            anchor = facts.listener or facts.route

            def on_route(message: str, urn: str | None = None) -> None:
                report(message, urn or (anchor.urn if anchor else None))

            config = _config_of(declared, args, on_route)
            if config is None:
                return
            try:
                declared.check(facts, config, on_route)
            except UnknownValueError as e:
                fail_closed(on_route, e)
            except ValueError as e:  # the listener is not a blue/green split: nothing to judge by
                on_route(f"Cannot be decided: {e}. Failing closed (see weights-valid).")

        super().__init__(declared.name, declared.description, validate, **_metadata(declared))


class ResourceGate(_EnforcedByStack, ResourceValidationPolicy):  # type: ignore[misc]
    """A ResourcePolicy served."""

    def __init__(self, declared: ResourcePolicy) -> None:
        def validate(args: ResourceValidationArgs, report: Report) -> None:
            config = _config_of(declared, args, report)
            if config is None:
                return
            try:
                declared.check(Res(args.resource_type, args.urn, args.props), config, report)
            except UnknownValueError as e:
                fail_closed(report, e)

        super().__init__(declared.name, declared.description, validate, **_metadata(declared))


def served(policy: Policy) -> GatePolicy | ResourceGate:
    """`policy` as the SDK serves it."""
    if isinstance(policy, StackPolicy):
        return GatePolicy(policy)
    if isinstance(policy, ResourcePolicy):
        return ResourceGate(policy)
    raise TypeError(f"{policy.name} is neither a stack nor a resource policy")


class Analyzer(_PolicyAnalyzerServicer):  # type: ignore[misc]
    """The SDK's analyzer, asking each policy enforced by stack for its level under its own
    config (the SDK alone takes the level the engine hands it, which knows no
    `productionStacks`)."""

    def _get_enforcement_level(self, policy: Any) -> EnforcementLevel:
        configured: EnforcementLevel = super()._get_enforcement_level(policy)
        if isinstance(policy, _EnforcedByStack):
            config = self._get_policy_config(str(policy.name)) or {}
            return policy.level_under(configured, config)
        return configured


def serve(name: str, description: str, policies: list[Policy]) -> None:
    """Serve the declared `policies` as `PolicyPack` does (print the port, answer the engine
    until stopped), through `Analyzer`; mandatory is the level of a policy that names none."""
    analyzer = Analyzer(
        name,
        "0.0.1",  # the SDK's version: the CLI reads the pack's from PulumiPolicy.yaml
        [served(p) for p in policies],
        EnforcementLevel.MANDATORY,
        description=description,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
    analyzer_pb2_grpc.add_AnalyzerServicer_to_server(analyzer, server)
    port = server.add_insecure_port(address="127.0.0.1:0")
    server.start()
    sys.stdout.buffer.write(f"{port}\n".encode())
    sys.stdout.flush()
    try:
        while True:
            time.sleep(24 * 60 * 60)
    except KeyboardInterrupt:
        server.stop(0)
