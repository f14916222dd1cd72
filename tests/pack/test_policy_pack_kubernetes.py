"""The same gates on Kubernetes stacks: the real pack over gRPC, against what the program
declares under mocks with Gateway API routing and with alb routing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cutover.preview.pack import PolicyPackProcess
from cutover.preview.program import ProgramRun, Resource
from tests.harness.program_runs import kubernetes_config, previous_outputs
from tests.harness.records import analyze, declare_with_green_records, forged, only, record

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"


def _flip(folder: Path, routing: str, **previous: Any) -> ProgramRun:
    """The update that moves all traffic from blue to green, with green's three records."""
    return declare_with_green_records(
        folder,
        kubernetes_config(percent=100, routing=routing),
        previous=previous_outputs({"blue": 100, "green": 0}, 600, **previous),
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return _flip(tmp_path_factory.mktemp("gateway"), "gateway")


@pytest.fixture(scope="module")
def alb(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return _flip(tmp_path_factory.mktemp("alb"), "alb")


RECORDS = "kubernetes:core/v1:ConfigMap#cutover-gates"  # TYPE#NAME: one object of a type


def edited(
    run: ProgramRun, typ: str, color: str | None, edit: Callable[[dict[str, Any]], None]
) -> list[Resource]:
    """The run's resources with `edit` applied to each `typ` (or `TYPE#NAME`) of `color`
    (None: any color)."""
    resources = copy.deepcopy(run.resources)
    typ, _, name = typ.partition("#")
    for r in resources:
        metadata = r.state.get("metadata") or {}
        labels = metadata.get("labels") or {}
        if (
            r.type == typ
            and color in (None, labels.get("cutover/color"))
            and name in ("", metadata.get("name"))
        ):
            edit(r.state)
            edit(r.inputs)
    return resources


def container(props: dict[str, Any]) -> dict[str, Any]:
    return props["spec"]["template"]["spec"]["containers"][0]


def test_valid_flips_pass_every_policy(
    pack: PolicyPackProcess, gateway: ProgramRun, alb: ProgramRun
) -> None:
    assert analyze(pack, gateway.resources) == []
    assert analyze(pack, alb.resources) == []


@pytest.mark.parametrize("routing", ["gateway", "alb"])
def test_records_are_read_from_the_configmap(
    pack: PolicyPackProcess, gateway: ProgramRun, alb: ProgramRun, routing: str
) -> None:
    run = {"gateway": gateway, "alb": alb}[routing]

    def forge(props: dict[str, Any]) -> None:
        for key in [k for k in props["data"] if k.startswith("green.approval.")]:
            props["data"][key] = json.dumps(forged(record("approval")))

    only(
        analyze(pack, edited(run, RECORDS, None, forge)),
        "chairman-approval",
        "a signature that does not match the record",
    )

    def drop_signoff(props: dict[str, Any]) -> None:
        for key in [k for k in props["data"] if k.startswith("green.security-signoff.")]:
            del props["data"][key]

    only(
        analyze(pack, edited(run, RECORDS, None, drop_signoff)),
        "security-signoff",
        "has no security-signoff record",
    )


def test_scaling_the_old_deployment_down_in_the_flip_is_refused(
    pack: PolicyPackProcess, gateway: ProgramRun
) -> None:
    def scale(props: dict[str, Any]) -> None:
        props["spec"]["replicas"] = 2

    only(
        analyze(pack, edited(gateway, DEPLOYMENT, "blue", scale)),
        "rollback-ready",
        "blue is the rollback target but this update scales it to 2 of its capacity 6",
    )


def without(run: ProgramRun, typ: str, name: str) -> list[Resource]:
    return [r for r in run.resources if not (r.type == typ and r.name == name)]


def test_removing_the_old_color_in_the_flip_is_refused(
    pack: PolicyPackProcess, gateway: ProgramRun
) -> None:
    only(
        analyze(pack, without(gateway, DEPLOYMENT, "checkout-blue-deployment")),
        "rollback-ready",
        "removes its service or Deployment",
    )
    # without its Service, the route names a backend that is not a color: every gate fails closed
    diagnostics = analyze(
        pack, without(gateway, "kubernetes:core/v1:Service", "checkout-blue-service")
    )
    assert {"rollback-ready", "weights-valid", "chairman-approval"} <= {
        d.policy for d in diagnostics
    }
    assert any(
        "routes to checkout-blue, which is not a color's Service" in d.message for d in diagnostics
    )


def test_route_weights_outside_the_two_colors_fail_closed(
    pack: PolicyPackProcess, gateway: ProgramRun
) -> None:
    def elsewhere(props: dict[str, Any]) -> None:
        props["spec"]["rules"][0]["backendRefs"][0]["name"] = "checkout-canary"

    diagnostics = pack.analyze_stack(edited(gateway, ROUTE, None, elsewhere))
    assert {"chairman-approval", "security-signoff", "rollback-tested", "weights-valid"} <= {
        d.policy for d in diagnostics
    }
    assert all(d.mandatory for d in diagnostics)


def test_moving_traffic_onto_a_cold_deployment_is_refused(
    tmp_path: Path, pack: PolicyPackProcess
) -> None:
    run = _flip(tmp_path, "gateway", releases={"blue": "1.41.0", "green": "1.40.0"})
    only(
        analyze(pack, run.resources),
        "weights-valid",
        "not already running release 1.42.0 at full capacity (6)",
    )


def test_deployment_settings_are_checked(pack: PolicyPackProcess, gateway: ProgramRun) -> None:
    def tagged(props: dict[str, Any]) -> None:
        container(props)["image"] = "registry.example.com/checkout:1.42.0"

    only(
        pack.analyze_each(edited(gateway, DEPLOYMENT, "green", tagged)),
        "release-pinned",
        "is not pinned by digest on production stack prod",
    )

    def unavailable(props: dict[str, Any]) -> None:
        props["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1

    only(
        pack.analyze_each(edited(gateway, DEPLOYMENT, "green", unavailable)),
        "zero-downtime-settings",
        "may take 1 of the pods out of service",
    )

    def recreate(props: dict[str, Any]) -> None:
        props["spec"]["strategy"] = {"type": "Recreate"}

    only(
        pack.analyze_each(edited(gateway, DEPLOYMENT, "blue", recreate)),
        "zero-downtime-settings",
        "Deployment strategy Recreate",
    )


def test_probes_are_required(pack: PolicyPackProcess, gateway: ProgramRun) -> None:
    def no_liveness(props: dict[str, Any]) -> None:
        del container(props)["livenessProbe"]

    only(
        analyze(pack, edited(gateway, DEPLOYMENT, "blue", no_liveness)),
        "probes-required",
        "has no livenessProbe",
    )

    def no_readiness(props: dict[str, Any]) -> None:
        del container(props)["readinessProbe"]

    diagnostics = analyze(pack, edited(gateway, DEPLOYMENT, "green", no_readiness))
    assert {d.policy for d in diagnostics} == {"probes-required", "monitoring-active"}
    watched = next(d for d in diagnostics if d.policy == "monitoring-active")
    assert "green will receive traffic but nothing watches it" in watched.message


def test_alb_routing_needs_alarms_like_ecs(pack: PolicyPackProcess, alb: ProgramRun) -> None:
    resources = [
        r
        for r in alb.resources
        if not (
            r.type == "aws:cloudwatch/metricAlarm:MetricAlarm"
            and r.state["tags"].get("cutover:color") == "green"
            and r.state.get("metricName") == "TargetResponseTime"
        )
    ]
    only(analyze(pack, resources), "monitoring-active", "for TargetResponseTime")


def test_alb_routing_keeps_each_colors_target_group_binding(
    pack: PolicyPackProcess, alb: ProgramRun
) -> None:
    binding = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
    only(
        analyze(pack, without(alb, binding, "checkout-blue-binding")),
        "rollback-ready",
        "removes its TargetGroupBinding",
    )
    # the color receiving traffic without one: its target group would be empty
    diagnostics = analyze(pack, without(alb, binding, "checkout-green-binding"))
    assert {d.policy for d in diagnostics} == {"weights-valid", "rollback-ready"}
    assert all(d.mandatory for d in diagnostics)
    assert any("no TargetGroupBinding registers its pods" in d.message for d in diagnostics)


def test_a_gateway_stack_moves_traffic_only_with_its_cronjob_running(
    pack: PolicyPackProcess, gateway: ProgramRun
) -> None:
    cron = "kubernetes:batch/v1:CronJob"

    def suspend(props: dict[str, Any]) -> None:
        props["spec"]["suspend"] = True

    only(analyze(pack, edited(gateway, cron, None, suspend)), "watchdog-active", "is suspended")
    without = [r for r in gateway.resources if r.type != cron]
    only(analyze(pack, without), "watchdog-active", "has no CronJob cutover-watchdog")
