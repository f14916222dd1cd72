"""The config loader: every bad value raises one ConfigError naming key, value and expectation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cutover_components.config as config_module
from cutover.errors import ConfigError
from cutover_components.config import parse_config
from tests.harness.program_runs import PROMETHEUS_URL, WATCHDOG_IMAGE, prod_config, raw


def parse(config: dict[str, Any], stack: str = "prod"):
    return parse_config(raw(config), project="cutover", stack=stack)


def test_prod_stack_file_is_valid() -> None:
    config = parse(prod_config())
    assert config.active_color == "blue"
    assert config.weights == {"blue": 100, "green": 0}
    assert config.green.capacity == 6 and config.green.idle_capacity == 2
    assert config.production is True
    assert config.green.digest.startswith("sha256:")


def _set(config: dict[str, Any], path: str, value: Any) -> None:
    key, *rest = path.split(".")
    if not rest:
        if value is DELETE:
            del config[f"cutover:{key}"]
        else:
            config[f"cutover:{key}"] = value
        return
    node = config[f"cutover:{key}"]
    for part in rest[:-1]:
        node = node[part]
    if value is DELETE:
        del node[rest[-1]]
    else:
        node[rest[-1]] = value


DELETE = object()

BAD = [
    ("activeColor", "purple", "cutover:activeColor: got 'purple'; expected blue or green"),
    ("activeColor", DELETE, "cutover:activeColor: got None; expected blue or green (required)"),
    (
        "trafficPercent",
        "101",
        "cutover:trafficPercent: got 101; expected a whole number from 0 to 100",
    ),
    ("trafficPercent", "ten", "cutover:trafficPercent: got 'ten'"),
    ("production", "maybe", "cutover:production: got 'maybe'; expected true or false"),
    ("platform", "lambda", "cutover:platform: got 'lambda'; expected ecs or kubernetes"),
    ("platform", "kubernetes", "cutover:kubernetes: got None; expected an object"),
    (
        "colors.green.image",
        "registry/checkout:1.42.0",
        "cutover:colors.green.image: got 'registry/checkout:1.42.0'; expected an image pinned by digest",
    ),
    (
        "colors.blue.release",
        "latest",
        "cutover:colors.blue.release: got 'latest'; expected a version like 1.42.0",
    ),
    (
        "colors.blue.capacity",
        -1,
        "cutover:colors.blue.capacity: got -1; expected a whole number from 0 to 1000",
    ),
    (
        "colors.blue.idleCapacity",
        7,
        "cutover:colors.blue.idleCapacity: got 7; expected a whole number from 0 to 6",
    ),
    ("colors.blue.containerPort", 70000, "cutover:colors.blue.containerPort: got 70000"),
    (
        "colors.blue.healthCheckPath",
        "healthz",
        "cutover:colors.blue.healthCheckPath: got 'healthz'; expected an absolute URL path",
    ),
    (
        "colors.blue.colour",
        "x",
        "cutover:colors.blue.colour: got 'x'; expected one of the known keys",
    ),
    ("colors.purple", {}, "cutover:colors.purple"),
    ("network.vpcId", "my-vpc", "cutover:network.vpcId: got 'my-vpc'; expected a VPC id"),
    (
        "network.publicSubnetIds",
        ["subnet-0a1b2c3d4e5f60001"],
        "cutover:network.publicSubnetIds: got ['subnet-0a1b2c3d4e5f60001']; expected a list of at least two subnet ids",
    ),
    (
        "network.privateSubnetIds",
        ["subnet-0a1b2c3d4e5f61001", "subnet-0a1b2c3d4e5f61001"],
        "expected distinct subnet ids",
    ),
    (
        "alarms.errorRatePercent",
        0,
        "cutover:alarms.errorRatePercent: got 0; expected a number from 0.01 to 100",
    ),
    (
        "alarms.periodSeconds",
        45,
        "cutover:alarms.periodSeconds: got 45; expected 10, 30 or a multiple of 60",
    ),
    ("rollbackWindowMinutes", "-5", "cutover:rollbackWindowMinutes: got -5"),
    (
        "metricsResolutionSeconds",
        30,
        "cutover:metricsResolutionSeconds: got 30; expected 60 (an ALB's metrics) or 1",
    ),
    (
        "analysis.periodSeconds",
        5,
        "cutover:analysis.periodSeconds: got 5; expected a multiple of 60 (the ALB publishes",
    ),
    (
        "certificateArn",
        "arn:aws:iam::123456789012:server-certificate/x",
        "cutover:certificateArn: got 'arn:aws:iam::123456789012:server-certificate/x'; expected an ACM certificate ARN",
    ),
    (
        "testListenerPort",
        "443",
        "cutover:testListenerPort: got 443; expected a port other than 443",
    ),
    (
        "service.stopTimeoutSeconds",
        300,
        "cutover:service.stopTimeoutSeconds: got 300; expected a whole number from 2 to 120 on ECS",
    ),
    (
        "service.keepAliveSeconds",
        0,
        "cutover:service.keepAliveSeconds: got 0; expected a whole number from 1",
    ),
    ("idleTimeoutSeconds", 4001, "cutover:idleTimeoutSeconds: got 4001; expected a whole number"),
    ("service.longestRequestSeconds", "long", "cutover:service.longestRequestSeconds: got 'long'"),
    ("stickinessSeconds", 604801, "cutover:stickinessSeconds: got 604801; expected a whole"),
    ("service.name", "Checkout_Service", "cutover:service.name: got 'Checkout_Service'"),
    ("activeColour", "green", "cutover:activeColour: got 'green'; expected one of the known keys"),
    (
        "gateRecords",
        "gates/approval.json",
        "cutover:gateRecords: got 'gates/approval.json'; expected a list of gate record file paths",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    BAD,
    ids=[f"{p}={'(deleted)' if v is DELETE else v}" for p, v, _ in BAD],
)
def test_bad_value_raises_config_error_naming_key_value_and_expectation(
    path: str, value: Any, message: str
) -> None:
    config = prod_config()
    _set(config, path, value)
    with pytest.raises(ConfigError) as error:
        parse(config)
    assert message in str(error.value)


def test_high_resolution_metrics_allow_windows_of_seconds() -> None:
    """Where the target groups' metrics are published every second (the rehearsal's traffic),
    the analysis may judge windows of seconds, and the output `metrics` says so."""
    config = prod_config()
    config["cutover:metricsResolutionSeconds"] = 1
    config["cutover:analysis"]["periodSeconds"] = 5
    parsed = parse(config)
    assert (parsed.metrics_resolution_seconds, parsed.analysis.period_seconds) == (1, 5)
    assert parse(prod_config()).metrics_resolution_seconds == 60


def test_color_receiving_traffic_needs_capacity() -> None:
    config = prod_config()
    config["cutover:colors"]["blue"].update(capacity=0, idleCapacity=0)
    with pytest.raises(ConfigError) as error:
        parse(config)
    assert (
        "cutover:colors.blue.capacity: got 0; expected at least 1: blue would receive 100% of traffic"
        in str(error.value)
    )


def test_malformed_object_json_is_named() -> None:
    values = raw(prod_config())
    values["network"] = "{vpcId: vpc-1"
    with pytest.raises(
        ConfigError, match=r"cutover:network: got '\{vpcId: vpc-1'; expected a JSON object"
    ):
        parse_config(values, project="cutover", stack="prod")


@pytest.mark.parametrize(("delay", "stop"), [(30, 30), (0, 2), (90, 90), (300, 120)])
def test_an_ecs_container_outlasts_its_draining_by_default(delay: int, stop: int) -> None:
    """Its stop timeout is the deregistration delay, within what Fargate allows (beyond it,
    the pack's stop-outlasts-draining says to lower the delay)."""
    config = prod_config()
    config["cutover:deregistrationDelaySeconds"] = delay
    assert parse(config).service.stop_timeout_seconds == stop


@pytest.mark.parametrize(
    ("routing", "extra", "pre_stop"),
    [("gateway", {}, 10), ("gateway", {"endpointRemovalSeconds": 4}, 4), ("alb", {}, 45)],
)
def test_a_pod_serves_until_what_drains_it_is_done_by_default(
    routing: str, extra: dict[str, int], pre_stop: int
) -> None:
    """Its preStop lasts the Gateway's endpoint removal, or the ALB's deregistration delay;
    after SIGTERM it has the longest request."""
    cluster: dict[str, Any] = {"namespace": "checkout", "routing": routing}
    if routing == "gateway":
        cluster["gateway"] = {"name": "public", **extra}
    config = {
        **prod_config(),
        "cutover:platform": "kubernetes",
        "cutover:kubernetes": cluster,
        "cutover:watchdog": {"image": WATCHDOG_IMAGE},
        "cutover:deregistrationDelaySeconds": 45,
    }
    config["cutover:service"]["longestRequestSeconds"] = 40
    if routing == "gateway":
        config["cutover:analysis"] = {"prometheus": {"url": PROMETHEUS_URL}}
    parsed = parse(config)
    assert parsed.kubernetes is not None
    assert parsed.kubernetes.pre_stop_seconds == pre_stop
    assert parsed.service.stop_timeout_seconds == 40


def test_tag_pinned_images_are_allowed_off_production() -> None:
    config = prod_config()
    config["cutover:production"] = False
    config["cutover:colors"]["green"]["image"] = "registry/checkout:1.42.0"
    assert parse(config, stack="staging").green.digest == ""


@given(active=st.sampled_from(["blue", "green"]), percent=st.integers(0, 100))
def test_weights_always_sum_to_100_and_follow_the_active_color(active: str, percent: int) -> None:
    config = prod_config()
    config["cutover:activeColor"] = active
    config["cutover:trafficPercent"] = percent
    weights = parse(config).weights
    assert sum(weights.values()) == 100
    assert weights[active] == percent


KUBERNETES_BAD = [
    (
        {"namespace": "checkout", "routing": "nginx"},
        "cutover:kubernetes.routing: got 'nginx'; expected gateway (a Gateway API HTTPRoute) or alb",
    ),
    (
        {"namespace": "checkout"},
        "cutover:kubernetes.gateway: got None; expected an object with name and namespace",
    ),
    (
        {"namespace": "checkout", "routing": "alb", "gateway": {"name": "public"}},
        "cutover:kubernetes.gateway: got {'name': 'public'}; expected no gateway: alb routing uses the stack's ALB",
    ),
    (
        {"namespace": "Checkout", "gateway": {"name": "public"}},
        "cutover:kubernetes.namespace: got 'Checkout'; expected a namespace name",
    ),
    (
        {"namespace": "checkout", "gateway": {"name": "public"}, "preStopSeconds": -1},
        "cutover:kubernetes.preStopSeconds: got -1; expected a whole number from 0 to 3600",
    ),
    (
        {"namespace": "checkout", "gateway": {"name": "public", "idleTimeoutSeconds": 0}},
        "cutover:kubernetes.gateway.idleTimeoutSeconds: got 0; expected a whole number from 1",
    ),
]


@pytest.mark.parametrize(("cluster", "message"), KUBERNETES_BAD)
def test_bad_kubernetes_settings_are_named(cluster: dict[str, Any], message: str) -> None:
    config = {**prod_config(), "cutover:platform": "kubernetes", "cutover:kubernetes": cluster}
    with pytest.raises(ConfigError) as error:
        parse(config)
    assert message in str(error.value)


def test_alb_routing_on_kubernetes_needs_the_alb_settings() -> None:
    config = {
        **prod_config(),
        "cutover:platform": "kubernetes",
        "cutover:kubernetes": {"namespace": "checkout", "routing": "alb"},
    }
    assert parse(config).network is not None
    del config["cutover:network"]
    with pytest.raises(ConfigError, match="cutover:network: got None; expected an object"):
        parse(config)
    gateway = {
        **config,
        "cutover:kubernetes": {"namespace": "checkout", "gateway": {"name": "gw"}},
        "cutover:watchdog": {"image": WATCHDOG_IMAGE},
        "cutover:analysis": {"prometheus": {"url": PROMETHEUS_URL}},
    }
    assert parse(gateway).network is None


TABLES = {name: table for name, table in vars(config_module).items() if name.endswith("_KEYS")}


def test_every_default_a_table_declares_is_valid_by_its_own_row() -> None:
    from cutover_gates.analysis_config import KEYS, RULE_KEYS
    from cutover_gates.config_keys import REQUIRED

    tables = {**TABLES, "analysis KEYS": KEYS, "analysis RULE_KEYS": RULE_KEYS}
    assert {"STACK_KEYS", "COLOR_KEYS", "WATCHDOG_KEYS"} <= set(tables)
    for table_name, table in tables.items():
        for key, row in table.items():
            if row.default is REQUIRED or callable(row.default) or row.default is None:
                continue
            row.parse(f"{table_name}.{key}", row.default)  # raises if the default is invalid


@given(
    extra=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC", min_size=1, max_size=12),
    table=st.sampled_from(sorted(TABLES)),
)
def test_a_key_no_table_declares_is_refused_by_its_name(extra: str, table: str) -> None:
    from cutover_gates.config_keys import SettingError, read

    keys = TABLES[table]
    if extra in keys:
        return
    with pytest.raises(SettingError) as error:
        read({extra: "x"}, keys, "section")
    assert error.value.key == f"section.{extra}"
    assert "one of the known keys" in error.value.expected
