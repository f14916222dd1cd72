"""The policies' plumbing: how a check is declared (`GatePolicy` over the stack, `ResourceGate`
over one resource), what it says to a reviewer (its check's docstring, and `About`), and when it applies (production
stacks, failing closed on values unknown during preview)."""

from __future__ import annotations

import fnmatch
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UnknownValueError

from cutover_gates.config_schema import DEFAULT_PRODUCTION_STACKS, properties_of
from cutover_gates.facts import (
    Res,
    StackFacts,
    collect,
)


def _website() -> str | None:
    """PulumiPolicy.yaml `website`: where reviewers read about each policy (README anchors)."""
    import yaml

    try:
        found = yaml.safe_load(
            (Path(__file__).resolve().parents[1] / "PulumiPolicy.yaml").read_text()
        )
    except (OSError, yaml.YAMLError):
        return None
    website = found.get("website") if isinstance(found, dict) else None
    return str(website).rstrip("/") if website else None


WEBSITE = _website()

# report(message) or report(message, urn): the SDK's ReportViolation, urn optional.
Report = Callable[..., None]


def is_production(stack: str | None, patterns: Sequence[str] | None = None) -> bool:
    """True for production stacks (`patterns`: the config's `productionStacks`, the schema's
    default when none is given); an unknown stack counts as production (fail closed)."""
    if not stack:
        return True
    found = DEFAULT_PRODUCTION_STACKS if patterns is None else patterns
    return any(fnmatch.fnmatchcase(stack, p) for p in found)


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
        production = is_production(os.environ.get("PULUMI_STACK"))
        return EnforcementLevel.MANDATORY if production else EnforcementLevel.ADVISORY

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
        patterns = config.get("productionStacks")
        production = is_production(os.environ.get("PULUMI_STACK"), patterns)
        return EnforcementLevel.MANDATORY if production else EnforcementLevel.ADVISORY


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


def serve(name: str, description: str, policies: list[Any]) -> None:
    """Serve the pack as `PolicyPack` does (print the port, answer the engine until stopped),
    through `Analyzer`; mandatory is the level of a policy that names none."""
    import sys
    import time
    from concurrent import futures

    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc
    from pulumi_policy.policy import _GRPC_CHANNEL_OPTIONS

    analyzer = Analyzer(
        name, "0.0.1", policies, EnforcementLevel.MANDATORY, description=description
    )  # the SDK's version: the CLI reads the pack's from PulumiPolicy.yaml
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


def description_of(check: Callable[..., None]) -> str:
    """A policy's description: its check's docstring, the one place it is written."""
    doc = inspect.getdoc(check)
    if not doc:
        raise ValueError(f"{check.__name__} has no docstring to describe its policy with")
    return " ".join(doc.split())


def fail_closed(report: Report, error: UnknownValueError) -> None:
    report(
        f"Cannot be decided during preview: {error.message} Failing closed: this gate does "
        "not pass on values it cannot see. Run the preview against a stack whose resources "
        "exist, or `cutover preview`, which fills computed values."
    )


@dataclass(frozen=True)
class About:
    """What a reviewer in Pulumi Cloud sees of a policy besides its description."""

    display_name: str
    severity: Severity
    remediation: str  # the generic fix; violations say what is wrong in this update
    tags: tuple[str, ...]

    def metadata(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "display_name": self.display_name,
            "severity": self.severity,
            "remediation_steps": self.remediation,
            "tags": ["cutover", *self.tags],
        }
        if WEBSITE:  # PulumiPolicy.yaml `website`: where the README's policy sections are
            found["url"] = f"{WEBSITE}#policy-{name}"
        return found


class GatePolicy(_EnforcedByStack, StackValidationPolicy):  # type: ignore[misc]
    """A stack policy over StackFacts. A violation names the production listener or
    HTTPRoute unless it names a resource of its own."""

    def __init__(
        self,
        name: str,
        check: Callable[[StackFacts, Mapping[str, Any], Report], None],
        about: About,
    ) -> None:
        def validate(args: StackValidationArgs, report: Report) -> None:
            resources = [Res(r.resource_type, r.urn, r.props) for r in args.resources]
            if not resources:
                return
            facts = collect(resources)
            anchor = facts.listener or facts.route

            def on_route(message: str, urn: str | None = None) -> None:
                report(message, urn or (anchor.urn if anchor else None))

            try:
                check(facts, args.get_config() or {}, on_route)
            except UnknownValueError as e:
                fail_closed(on_route, e)
            except ValueError as e:  # the listener is not a blue/green split: nothing to judge by
                on_route(f"Cannot be decided: {e}. Failing closed (see weights-valid).")

        super().__init__(
            name,
            description_of(check),
            validate,
            config_schema=PolicyConfigSchema(properties_of(name)),
            **about.metadata(name),
        )


class ResourceGate(_EnforcedByStack, ResourceValidationPolicy):  # type: ignore[misc]
    """A resource policy over (type, urn, props)."""

    def __init__(
        self,
        name: str,
        check: Callable[[Res, Mapping[str, Any], Report], None],
        about: About,
    ) -> None:
        def validate(args: ResourceValidationArgs, report: Report) -> None:
            try:
                check(
                    Res(args.resource_type, args.urn, args.props), args.get_config() or {}, report
                )
            except UnknownValueError as e:
                fail_closed(report, e)

        super().__init__(
            name,
            description_of(check),
            validate,
            config_schema=PolicyConfigSchema(properties_of(name)),
            **about.metadata(name),
        )


def utc_now() -> datetime:
    return datetime.now(UTC)
