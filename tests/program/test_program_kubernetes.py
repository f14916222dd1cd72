"""The program's Kubernetes variant under the SDK's mocks: Deployments behind a weighted HTTPRoute."""

from __future__ import annotations

import json

from cutover.preview.program import ProgramRun
from tests.harness.program_runs import (
    declare,
    kubernetes_config,
    previous_outputs,
    prod_config,
    run,
)


def by_type(run: ProgramRun, kind: str) -> dict[str, dict]:
    found = {}
    for r in run.resources:
        if r.type == kind:
            found[r.state["metadata"]["labels"].get("cutover/color", r.name)] = r.state
    return found


def test_route_weights_and_colors_on_kubernetes() -> None:
    run = declare(kubernetes_config(), previous=previous_outputs({"blue": 100, "green": 0}, 600))
    (route,) = by_type(run, "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute").values()
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route["metadata"]["annotations"] == {
        "cutover/rollback-window-minutes": "120",
        "cutover/endpoint-removal-seconds": "10",
        "pulumi.com/patchForce": "true",
    }
    assert "sessionPersistence" not in route["spec"]["rules"][0]
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [
        ("checkout-blue", 10),
        ("checkout-green", 90),
    ]
    deployments = by_type(run, "kubernetes:apps/v1:Deployment")
    for color, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] == 6  # blue loses traffic in this update: it keeps its capacity
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        (container,) = spec["template"]["spec"]["containers"]
        assert "@sha256:" in container["image"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
        # a stopping pod serves until the Gateway has removed its endpoint (10s by default),
        # then has the longest request (30s) after SIGTERM
        assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
        assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 40
        annotations = deployment["metadata"]["annotations"]
        assert annotations["cutover/longest-request-seconds"] == "30"
        assert annotations["cutover/keep-alive-seconds"] == "75"
        assert (
            deployment["metadata"]["labels"]["cutover/release"]
            == prod_config()["cutover:colors"][color]["release"]
        )
    assert set(by_type(run, "kubernetes:core/v1:Service")) == {"blue", "green"}
    assert set(by_type(run, "kubernetes:policy/v1:PodDisruptionBudget")) == {"blue", "green"}
    assert run.outputs["platform"] == "kubernetes"
    assert run.outputs["route"] == {"namespace": "checkout", "name": "checkout"}
    assert run.outputs["services"]["green"]["deployment"] == "checkout-green"
    (role,) = [
        r.state for r in run.resources if r.type == "kubernetes:rbac.authorization.k8s.io/v1:Role"
    ]
    assert role["metadata"] == {
        **role["metadata"],
        "name": "cutover-helper",
        "namespace": "checkout",
    }
    grants = {
        (g["resources"][0], tuple(g.get("resourceNames", ()))): g["verbs"] for g in role["rules"]
    }
    assert grants == {
        ("configmaps", ()): ["get", "list", "create", "update"],  # the journal
        ("leases", ()): ["get", "create", "update", "delete"],  # the lock
        ("deployments", ("checkout-blue", "checkout-green")): ["get"],
        ("deployments/scale", ("checkout-blue", "checkout-green")): ["get", "patch"],
        ("httproutes", (route["metadata"]["name"],)): ["get", "patch"],
        ("events", ()): ["create"],  # deployment events on the route
        ("cronjobs", ("cutover-watchdog",)): ["get"],  # the exit gates: is it suspended?
    }


def test_what_the_stack_declares_of_its_gateway_and_pods_reaches_them() -> None:
    config = kubernetes_config(active="blue", percent=100)
    config["cutover:kubernetes"]["gateway"].update(endpointRemovalSeconds=15, idleTimeoutSeconds=30)
    config["cutover:stickinessSeconds"] = 5400
    config["cutover:service"]["stopTimeoutSeconds"] = 20
    run = declare(config)
    (route,) = by_type(run, "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute").values()
    assert route["metadata"]["annotations"] == {
        "cutover/rollback-window-minutes": "120",
        "cutover/endpoint-removal-seconds": "15",
        "cutover/gateway-idle-timeout-seconds": "30",
        "pulumi.com/patchForce": "true",
    }
    persistence = route["spec"]["rules"][0]["sessionPersistence"]
    assert persistence == {"type": "Cookie", "absoluteTimeout": "1h30m"}
    for deployment in by_type(run, "kubernetes:apps/v1:Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        # the preStop follows the Gateway's endpoint removal unless it is set
        assert pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 15
        assert pod["terminationGracePeriodSeconds"] == 15 + 20


def test_idle_color_scales_down_only_after_the_window_on_kubernetes() -> None:
    run = declare(
        kubernetes_config(percent=100), previous=previous_outputs({"blue": 0, "green": 100}, 600)
    )
    replicas = {
        c: d["spec"]["replicas"] for c, d in by_type(run, "kubernetes:apps/v1:Deployment").items()
    }
    assert replicas == {"blue": 2, "green": 6}


def test_alb_routing_binds_each_color_to_its_target_group() -> None:
    run = declare(
        kubernetes_config(routing="alb"), previous=previous_outputs({"blue": 100, "green": 0}, 600)
    )
    assert not by_type(run, "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")
    assert not [r for r in run.resources if r.type.startswith("aws:ecs/")]
    groups = {
        r.state["tags"]["cutover:color"]: r.state
        for r in run.resources
        if r.type == "aws:lb/targetGroup:TargetGroup"
    }
    (listener,) = [
        r.state
        for r in run.resources
        if r.type == "aws:lb/listener:Listener"
        and r.state["tags"].get("cutover:role") == "production"
    ]
    forward = listener["defaultActions"][0]["forward"]["targetGroups"]
    assert {g["arn"]: g["weight"] for g in forward} == {
        groups["blue"]["arn"]: 10,
        groups["green"]["arn"]: 90,
    }
    # a stopping pod serves until the ALB has drained it: the target groups' delay
    for deployment in by_type(run, "kubernetes:apps/v1:Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 30
        assert {g["deregistrationDelay"] for g in groups.values()} == {30}
        assert pod["terminationGracePeriodSeconds"] == 30 + 30
    bindings = by_type(run, "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert set(bindings) == {"blue", "green"}
    # one security group, the ALB's: the bindings open the pods to it
    (alb_sg,) = [r.state for r in run.resources if r.type == "aws:ec2/securityGroup:SecurityGroup"]
    for color, binding in bindings.items():
        spec = binding["spec"]
        assert spec["targetGroupARN"] == groups[color]["arn"]
        assert spec["serviceRef"] == {"name": f"checkout-{color}", "port": 80}
        assert spec["targetType"] == groups[color]["targetType"] == "ip"
        (rule,) = spec["networking"]["ingress"]
        assert rule["from"] == [{"securityGroup": {"groupID": alb_sg["id"]}}]
    alarms = [
        r
        for r in run.resources
        if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm" and "cutover:color" in r.state["tags"]
    ]
    assert {a.state["tags"]["cutover:color"] for a in alarms} == {"blue", "green"}
    outputs = run.outputs
    assert outputs["platform"] == "kubernetes"
    assert outputs["listenerArn"] == listener["arn"]
    assert outputs["services"]["blue"]["deployment"] == "checkout-blue"
    assert outputs["alarmNames"]["green"]
    (policy,) = [
        r.state
        for r in run.resources
        if r.type == "aws:iam/rolePolicy:RolePolicy" and "helper" in r.name
    ]
    assert "ecs:UpdateService" not in policy["policy"]
    (role,) = [r.state for r in run.resources if r.type.endswith("v1:Role")]
    assert {g["resources"][0] for g in role["rules"]} == {"deployments", "deployments/scale"}


def test_the_watchdog_is_a_cronjob_bound_to_the_helper_role() -> None:
    from tests.harness.program_runs import WATCHDOG_IMAGE

    run = declare(kubernetes_config(active="blue", percent=100))
    (cron,) = [r.state for r in run.resources if r.type == "kubernetes:batch/v1:CronJob"]
    assert cron["metadata"]["name"] == "cutover-watchdog"
    assert cron["metadata"]["namespace"] == "checkout"
    spec = cron["spec"]
    assert spec["schedule"] == "* * * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 60 and spec["suspend"] is False
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == WATCHDOG_IMAGE
    assert container["command"][:3] == ["cutover", "watchdog", "--once"]
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert pod["serviceAccountName"] == "cutover-watchdog"
    (binding,) = [r.state for r in run.resources if r.type.endswith(":RoleBinding")]
    assert binding["roleRef"]["name"] == "cutover-helper"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cutover-watchdog", "namespace": "checkout"}
    ]
    (outputs,) = [
        r.state
        for r in run.resources
        if r.type == "kubernetes:core/v1:ConfigMap"
        and r.state["metadata"]["name"] == "cutover-watchdog"
    ]
    mounted = json.loads(outputs["data"]["outputs.json"])
    assert mounted["route"] == run.outputs["route"] and mounted["stack"] == "prod"
    assert run.outputs["watchdog"] == {"cronJob": "cutover-watchdog", "namespace": "checkout"}


def test_the_gate_records_configmap_is_updated_in_place_or_nothing_is_declared() -> None:
    """pulumi-kubernetes replaces a ConfigMap whose data changes unless its provider sets
    enableConfigMapMutable, and a preview of a replacement shows the pack the records as they
    are, not as the update publishes them (the e2e layer shows the real engine then judging
    alike): without it the program stops, naming the key, before it declares anything."""
    for value in (None, "false"):
        config = kubernetes_config()
        config.pop("kubernetes:enableConfigMapMutable")
        if value is not None:
            config["kubernetes:enableConfigMapMutable"] = value
        result = run(config)
        assert result.returncode == 2, result.stderr
        assert "kubernetes:enableConfigMapMutable must be true (`pulumi config set" in result.stderr
        assert result.stdout == ""
