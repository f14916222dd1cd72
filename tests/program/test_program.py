"""The Pulumi program under the SDK's mocks: resource graph, weights, tags, alarms, IAM, outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cutover_gates.stack_outputs import REQUIRED

from cutover.preview.program import ProgramRun, Resource
from tests.harness.program_runs import prod_config, run

LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
SERVICE = "aws:ecs/service:Service"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def one(run: ProgramRun, typ: str, name: str) -> Resource:
    found = [r for r in run.of_type(typ) if r.name == name]
    assert len(found) == 1, f"expected one {typ} named {name}, got {[r.name for r in found]}"
    return found[0]


def target_groups(run: ProgramRun) -> dict[str, Resource]:
    return {r.state["tags"]["cutover:color"]: r for r in run.of_type(TARGET_GROUP)}


def served_weights(run: ProgramRun, listener_name: str) -> dict[str, int]:
    """Weights per color of a listener's forward action, matched to colors by target group ARN."""
    listener = one(run, LISTENER, listener_name)
    (action,) = listener.state["defaultActions"]
    assert action["type"] == "forward"
    color_of = {tg.state["arn"]: color for color, tg in target_groups(run).items()}
    groups = action["forward"]["targetGroups"]
    assert len(groups) == 2
    return {color_of[g["arn"]]: int(g["weight"]) for g in groups}


def desired_counts(run: ProgramRun) -> dict[str, int]:
    return {r.state["tags"]["cutover:color"]: r.state["desiredCount"] for r in run.of_type(SERVICE)}


@pytest.mark.parametrize(
    ("scenario", "production", "test"),
    [
        ("blue", {"blue": 100, "green": 0}, {"blue": 0, "green": 1}),
        ("flip", {"blue": 0, "green": 100}, {"blue": 1, "green": 0}),
        ("split", {"blue": 10, "green": 90}, {"blue": 1, "green": 0}),
    ],
)
def test_listener_weights_follow_active_color_and_traffic_percent(
    runs: dict[str, ProgramRun], scenario: str, production: dict, test: dict
) -> None:
    assert served_weights(runs[scenario], "checkout-https") == production
    # the test listener always serves the inactive color only
    assert served_weights(runs[scenario], "checkout-test") == test


def test_https_listener_uses_current_tls_policy_and_http_redirects(
    runs: dict[str, ProgramRun],
) -> None:
    https = one(runs["blue"], LISTENER, "checkout-https").state
    assert (https["port"], https["protocol"]) == (443, "HTTPS")
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["certificateArn"] == prod_config()["cutover:certificateArn"]
    redirect = one(runs["blue"], LISTENER, "checkout-http").state["defaultActions"][0]
    assert redirect["type"] == "redirect"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}
    test = one(runs["blue"], LISTENER, "checkout-test").state
    assert test["port"] == 8443


def test_load_balancer_drops_invalid_headers_and_is_protected_only_in_production(
    runs: dict[str, ProgramRun],
) -> None:
    prod = one(runs["blue"], "aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state
    staging = one(runs["staging"], "aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state
    assert prod["dropInvalidHeaderFields"] is True
    assert prod["enableDeletionProtection"] is True
    assert staging["enableDeletionProtection"] is False
    assert prod["subnets"] == prod_config()["cutover:network"]["publicSubnetIds"]


def test_target_groups_check_health_and_drain(runs: dict[str, ProgramRun]) -> None:
    for color, tg in target_groups(runs["blue"]).items():
        state = tg.state
        assert state["healthCheck"]["enabled"] is True
        assert state["healthCheck"]["path"] == "/healthz"
        assert state["deregistrationDelay"] == 30
        assert state["slowStart"] == 30
        assert state["tags"]["cutover:release"] == prod_config()["cutover:colors"][color]["release"]


@pytest.mark.parametrize(
    ("scenario", "declared"),
    [
        ("blue", {"longest": 30, "keep_alive": 75, "idle": 60, "delay": 30, "sticky": 0}),
        ("tuned", {"longest": 20, "keep_alive": 45, "idle": 30, "delay": 25, "sticky": 600}),
    ],
)
def test_what_drops_requests_in_a_flip_is_declared_for_the_pack(
    runs: dict[str, ProgramRun], scenario: str, declared: dict[str, int]
) -> None:
    """The values the pack's drop policies read: the ALB's idle timeout, each target group's
    delay, each container's stop timeout (the delay, by default), the listener's stickiness
    and the rollback window it is bounded by, and what the stack declares of its application."""
    run_ = runs[scenario]
    alb = one(run_, "aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state
    assert alb["idleTimeout"] == declared["idle"]
    https = one(run_, LISTENER, "checkout-https").state
    sticky = declared["sticky"]
    stickiness = https["defaultActions"][0]["forward"]["stickiness"]
    assert stickiness == {"enabled": bool(sticky), "duration": sticky or 1}
    assert https["tags"]["cutover:rollback-window-minutes"] == "120"
    test = one(run_, LISTENER, "checkout-test").state
    assert test["defaultActions"][0]["forward"]["stickiness"]["enabled"] is False
    for tg in target_groups(run_).values():
        assert tg.state["deregistrationDelay"] == declared["delay"]
    for resource in [*run_.of_type(TARGET_GROUP), *run_.of_type(SERVICE)]:
        tags = resource.state["tags"]
        assert tags["cutover:longest-request-seconds"] == str(declared["longest"])
        assert tags["cutover:keep-alive-seconds"] == str(declared["keep_alive"])
    for task in run_.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        (container,) = json.loads(task.state["containerDefinitions"])
        assert container["stopTimeout"] == declared["delay"]
    for service in run_.of_type(SERVICE):
        assert service.state["waitForSteadyState"] is True


def test_each_color_runs_its_pinned_release_with_safe_rolling_updates(
    runs: dict[str, ProgramRun],
) -> None:
    colors = prod_config()["cutover:colors"]
    tasks = {
        r.state["tags"]["cutover:color"]: r.state
        for r in runs["blue"].of_type("aws:ecs/taskDefinition:TaskDefinition")
    }
    for color, task in tasks.items():
        (container,) = json.loads(task["containerDefinitions"])
        assert container["image"] == colors[color]["image"]
        assert "@sha256:" in container["image"]
    groups = {c: tg.state["arn"] for c, tg in target_groups(runs["blue"]).items()}
    for service in runs["blue"].of_type(SERVICE):
        state = service.state
        color = state["tags"]["cutover:color"]
        assert state["deploymentMinimumHealthyPercent"] == 100
        assert state["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert state["deploymentController"] == {"type": "ECS"}
        assert state["waitForSteadyState"] is True
        assert state["loadBalancers"][0]["targetGroupArn"] == groups[color]
        assert state["networkConfiguration"]["assignPublicIp"] is False


def test_services_register_only_after_their_target_groups_have_a_listener(
    runs: dict[str, ProgramRun],
) -> None:
    # AWS refuses an ECS service whose target group no listener uses yet.
    listener = one(runs["blue"], LISTENER, "checkout-https").urn
    fleets = [r for r in runs["blue"].resources if r.type == "cutover:index:ColorFleet"]
    assert len(fleets) == 2
    assert all(listener in fleet.dependencies for fleet in fleets)


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("blue", {"blue": 6, "green": 6}),  # first update: nothing known, both stay full
        ("flip", {"blue": 6, "green": 6}),  # blue loses traffic in this update: stays full
        ("split", {"blue": 6, "green": 6}),
        ("in_window", {"blue": 6, "green": 6}),  # 30 min after the flip, window is 120 min
        ("after_window", {"blue": 2, "green": 6}),  # later update, after the window: idle
    ],
)
def test_rollback_window_keeps_the_previous_color_at_full_capacity(
    runs: dict[str, ProgramRun], scenario: str, expected: dict
) -> None:
    assert desired_counts(runs[scenario]) == expected
    assert runs[scenario].outputs["traffic"]["desiredCounts"] == expected


def test_traffic_output_moves_changed_at_only_when_weights_move(
    runs: dict[str, ProgramRun],
) -> None:
    after = runs["after_window"].outputs["traffic"]
    flip = runs["flip"].outputs["traffic"]
    assert after["weights"] == {"blue": 0, "green": 100}
    assert after["changedAt"] < flip["changedAt"]  # carried over from the previous update


def test_every_resource_is_tagged_and_color_resources_name_color_and_release(
    runs: dict[str, ProgramRun],
) -> None:
    colors = prod_config()["cutover:colors"]
    taggable = [r for r in runs["blue"].resources if r.custom and "tags" in r.state]
    assert len(taggable) > 20
    for resource in taggable:
        tags = resource.state["tags"]
        assert tags["cutover:stack"] == "prod", resource.urn
        watchdog = tags.get("cutover:role") == "watchdog"  # the stack's own, of no color
        if not watchdog and resource.type in (
            TARGET_GROUP,
            SERVICE,
            ALARM,
            "aws:ecs/taskDefinition:TaskDefinition",
        ):
            color = tags["cutover:color"]
            assert tags["cutover:release"] == colors[color]["release"], resource.urn
            assert color in resource.name


def test_alarms_watch_their_own_color_target_group_and_notify_the_topic(
    runs: dict[str, ProgramRun],
) -> None:
    run_ = runs["blue"]
    lb_suffix = one(run_, "aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state["arnSuffix"]
    tg_suffix = {c: tg.state["arnSuffix"] for c, tg in target_groups(run_).items()}
    topic = one(run_, "aws:sns/topic:Topic", "checkout-events").state["arn"]
    alarms = [a for a in run_.of_type(ALARM) if "cutover:color" in a.state["tags"]]
    assert len(alarms) == 6
    for alarm in alarms:
        state = alarm.state
        color = state["tags"]["cutover:color"]
        dimension_sets = (
            [q["metric"]["dimensions"] for q in state["metricQueries"] if q.get("metric")]
            if state.get("metricQueries")
            else [state["dimensions"]]
        )
        for dims in dimension_sets:
            assert dims == {"LoadBalancer": lb_suffix, "TargetGroup": tg_suffix[color]}, alarm.name
        assert state["alarmActions"] == [topic]
        assert state["okActions"] == [topic]
    rate = one(run_, ALARM, "checkout-green-5xx-rate").state
    metrics = {q["id"]: q for q in rate["metricQueries"]}
    assert metrics["errors"]["metric"]["metricName"] == "HTTPCode_Target_5XX_Count"
    assert metrics["requests"]["metric"]["metricName"] == "RequestCount"
    assert "errors / requests" in metrics["rate"]["expression"]
    assert rate["threshold"] == 1
    latency = one(run_, ALARM, "checkout-blue-p99-latency").state
    assert (latency["extendedStatistic"], latency["threshold"]) == ("p99", 1.5)
    assert one(run_, ALARM, "checkout-blue-unhealthy-hosts").state["metricName"] == (
        "UnHealthyHostCount"
    )


def test_dashboard_shows_both_colors_side_by_side(runs: dict[str, ProgramRun]) -> None:
    body = json.loads(
        one(runs["blue"], "aws:cloudwatch/dashboard:Dashboard", "checkout-dashboard").state[
            "dashboardBody"
        ]
    )
    tg_suffix = {c: tg.state["arnSuffix"] for c, tg in target_groups(runs["blue"]).items()}
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == ["Requests", "Target 5xx", "p99 latency (s)", "Healthy hosts"]
    for widget in body["widgets"]:
        lines = widget["properties"]["metrics"]
        assert [line[5] for line in lines] == [tg_suffix["blue"], tg_suffix["green"]]


def test_journal_table_is_on_demand_recoverable_with_lease_ttl(
    runs: dict[str, ProgramRun],
) -> None:
    (table,) = runs["blue"].of_type("aws:dynamodb/table:Table")
    state = table.state
    assert state["billingMode"] == "PAY_PER_REQUEST"
    assert state["pointInTimeRecovery"] == {"enabled": True}
    assert state["ttl"] == {"attributeName": "expiresAt", "enabled": True}
    assert (state["hashKey"], state["rangeKey"]) == ("pk", "sk")


def _helper_statements(run_: ProgramRun) -> list[dict[str, Any]]:
    (policy,) = [p for p in run_.of_type("aws:iam/rolePolicy:RolePolicy") if "helper" in p.name]
    return json.loads(policy.state["policy"])["Statement"]


READ_ONLY = ("Describe", "Get", "Query", "List")


def test_helper_role_is_least_privilege(runs: dict[str, ProgramRun]) -> None:
    run_ = runs["blue"]
    statements = {s["Sid"]: s for s in _helper_statements(run_)}
    listener = one(run_, LISTENER, "checkout-https").state["arn"]
    table = run_.of_type("aws:dynamodb/table:Table")[0].state["arn"]
    topic = one(run_, "aws:sns/topic:Topic", "checkout-events").state["arn"]
    services = sorted(s.state["arn"] for s in run_.of_type(SERVICE))
    alarms = sorted(
        a.state["arn"] for a in run_.of_type(ALARM) if "cutover:color" in a.state["tags"]
    )

    assert statements["MoveTraffic"]["Action"] == ["elasticloadbalancing:ModifyListener"]
    assert statements["MoveTraffic"]["Resource"] == [listener]
    assert statements["Journal"]["Resource"] == [table]
    assert statements["Events"] == {
        "Sid": "Events",
        "Effect": "Allow",
        "Action": ["sns:Publish"],
        "Resource": [topic],
    }
    assert sorted(statements["ScaleColors"]["Resource"]) == services
    assert sorted(statements["ReadAlarms"]["Resource"]) == alarms
    assert statements["Metrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "Cutover"}
    }
    # No write action on `*`, except PutMetricData, which IAM scopes only by namespace condition.
    for statement in statements.values():
        if "*" not in statement["Resource"]:
            continue
        writes = [a for a in statement["Action"] if not a.split(":")[1].startswith(READ_ONLY)]
        assert writes in ([], ["cloudwatch:PutMetricData"]), statement
        if writes:
            assert "Condition" in statement


def test_every_resource_is_parented_by_a_component(runs: dict[str, ProgramRun]) -> None:
    run_ = runs["blue"]
    components = {r.urn for r in run_.resources if not r.custom}
    assert len(components) >= 7
    for resource in run_.resources:
        if resource.type == "pulumi:pulumi:StackReference":
            continue
        if resource.custom:
            assert resource.parent in components, f"{resource.urn} is not parented"


def test_outputs_are_the_contract_and_all_known_in_preview(runs: dict[str, ProgramRun]) -> None:
    out = runs["split"].outputs
    assert set(REQUIRED) <= set(out)
    assert set(out) - set(REQUIRED) == {
        "project",
        "platform",
        "traffic",
        "previousTraffic",
        "helperRoleArn",
        "watchdog",
        "analysis",
        "metrics",
        "dashboard",
    }
    assert out["platform"] == "ecs"
    assert out["analysis"]["enabled"] is True and out["analysis"]["verifyMinutes"] == 10
    lb = one(runs["split"], "aws:lb/loadBalancer:LoadBalancer", "checkout-alb").state
    groups = target_groups(runs["split"])
    assert out["metrics"] == {
        "namespace": "AWS/ApplicationELB",
        "loadBalancer": lb["arnSuffix"],
        "targetGroups": {c: groups[c].state["arnSuffix"] for c in ("blue", "green")},
        "resolutionSeconds": 60,
    }
    assert set(out["targetGroupArns"]) == {"blue", "green"}
    assert out["listenerArn"] == one(runs["split"], LISTENER, "checkout-https").state["arn"]
    assert out["testUrl"] == f"https://{out['loadBalancerDnsName']}:8443"
    assert out["releases"]["green"]["version"] == "1.42.0"
    assert out["releases"]["green"]["digest"].startswith("sha256:")
    assert out["services"]["blue"]["service"] == "checkout-blue"
    assert len(out["alarmNames"]["green"]) == 3

    def walk(value: Any, path: str) -> None:
        assert value is not None, f"output {path} is unknown in preview"
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    walk(out, "outputs")


def test_bad_config_stops_the_program_before_any_resource(tmp_path: Any) -> None:
    config = prod_config()
    config["cutover:activeColor"] = "purple"
    result = run(config)
    assert result.returncode == 2
    assert "cutover:activeColor: got 'purple'; expected blue or green" in result.stderr
    assert result.stdout == ""


def test_the_watchdog_runs_on_a_schedule_with_its_own_least_privilege_role(
    runs: dict[str, ProgramRun],
) -> None:
    run_ = runs["blue"]
    (function,) = run_.of_type("aws:lambda/function:Function")
    state = function.state
    assert state["handler"] == "cutover.engine.watchdog.handler" and state["runtime"].startswith(
        "python3"
    )
    assert state["reservedConcurrentExecutions"] == 1
    (rule,) = run_.of_type("aws:cloudwatch/eventRule:EventRule")
    assert rule.state["scheduleExpression"] == "rate(1 minute)" and rule.state["state"] == "ENABLED"
    (target,) = run_.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert target.state["arn"] == state["arn"] and target.state["rule"] == rule.state["name"]
    (permission,) = run_.of_type("aws:lambda/permission:Permission")
    assert permission.state["principal"] == "events.amazonaws.com"
    assert permission.state["sourceArn"] == rule.state["arn"]
    (logs,) = [g for g in run_.of_type("aws:cloudwatch/logGroup:LogGroup") if "watchdog" in g.name]
    assert (
        logs.state["name"] == f"/aws/lambda/{state['name']}" and logs.state["retentionInDays"] == 30
    )
    errors = [a for a in run_.of_type(ALARM) if a.state["tags"].get("cutover:role") == "watchdog"]
    (alarm,) = errors
    topic = one(run_, "aws:sns/topic:Topic", "checkout-events").state["arn"]
    assert alarm.state["metricName"] == "Errors" and alarm.state["alarmActions"] == [topic]
    assert alarm.state["dimensions"] == {"FunctionName": state["name"]}
    (policy,) = [p for p in run_.of_type("aws:iam/rolePolicy:RolePolicy") if "watchdog" in p.name]
    statements = {s["Sid"]: s for s in json.loads(policy.state["policy"])["Statement"]}
    listener = one(run_, LISTENER, "checkout-https").state["arn"]
    assert statements["GiveTrafficBack"]["Resource"] == [listener]
    assert statements["Journal"]["Resource"] == [
        run_.of_type("aws:dynamodb/table:Table")[0].state["arn"]
    ]
    assert statements["Events"]["Resource"] == [topic]
    assert sorted(statements["ScaleColors"]["Resource"]) == sorted(
        s.state["arn"] for s in run_.of_type(SERVICE)
    )
    for sid, statement in statements.items():
        if statement["Resource"] == ["*"]:
            assert sid == "Metrics" or all(
                a.split(":")[1].startswith(READ_ONLY) for a in statement["Action"]
            ), sid


def test_no_watchdog_when_it_is_turned_off(runs: dict[str, ProgramRun]) -> None:
    assert runs["staging"].of_type("aws:lambda/function:Function") == []
    assert "watchdog" not in runs["staging"].outputs
