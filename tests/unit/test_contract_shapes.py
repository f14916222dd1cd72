"""The typed shapes of the outputs contract: what the program exports reads back the same,
and a malformed field is named, one line, never a KeyError deep in a shift."""

from __future__ import annotations

from typing import Any

import pytest
from cutover_gates.contract import Holder
from cutover_gates.output_shapes import (
    AlbMetrics,
    ColorService,
    EcsService,
    KubernetesService,
    Release,
    Route,
    color_service_from_json,
)
from cutover_gates.stack_outputs import REQUIRED, StackOutputs
from hypothesis import given
from hypothesis import strategies as st

from cutover.errors import ConfigError
from cutover.outputs import parse_outputs

names = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)
counts = st.integers(0, 1000)


@given(
    platform=st.sampled_from(["ecs", "kubernetes"]),
    service=names, place=names, capacity=counts, idle=counts, desired=counts,
)  # fmt: skip
def test_a_color_service_reads_back_what_it_wrote(
    platform: str, service: str, place: str, capacity: int, idle: int, desired: int
) -> None:
    shape: ColorService = (
        EcsService(place, service, capacity, idle, desired)
        if platform == "ecs"
        else KubernetesService(place, place, service, capacity, idle, desired)
    )
    assert color_service_from_json(shape.to_json()) == shape
    # through the engine, numbers arrive as floats
    floats = {k: float(v) if isinstance(v, int) else v for k, v in shape.to_json().items()}
    assert color_service_from_json(floats) == shape


def outputs_with(service: dict[str, Any]) -> dict[str, Any]:
    ok = {"platform": "ecs", "cluster": "c", "service": "checkout-blue", "capacity": 6,
          "idleCapacity": 2, "desiredCount": 6}  # fmt: skip
    return {
        "stack": "prod", "listenerArn": "arn:l", "journalTable": "t", "topicArn": "arn:t",
        "loadBalancerDnsName": "alb.example", "testUrl": "https://alb.example:8443",
        "targetGroupArns": {"blue": "arn:b", "green": "arn:g"},
        "alarmNames": {"blue": [], "green": []},
        "releases": {c: {"version": v, "digest": "sha256:" + c[0] * 64}
                     for c, v in (("blue", "1.41.0"), ("green", "1.42.0"))},
        "services": {"blue": ok, "green": {**ok, **service}},
    }  # fmt: skip


def test_stack_outputs_read_back_what_they_wrote_as_a_deployment_journals_them() -> None:
    """A deployment journals each stack's outputs (to_json) to rebuild a release train's
    services from: they read back the same, and keep what an earlier release requires."""
    alb = parse_outputs({**outputs_with({}), "traffic": {"weights": {}}, "dashboard": "d",
                         "analysis": {"verifyMinutes": 5}}, "outputs.json")  # fmt: skip
    assert set(REQUIRED) <= set(alb.to_json()) and "traffic" not in alb.to_json()
    assert StackOutputs.from_json(alb.to_json(), "journal") == alb
    kubernetes = {"platform": "kubernetes", "namespace": "shop", "deployment": "checkout-blue",
                  "service": "checkout-blue", "capacity": 2}  # fmt: skip
    gateway = parse_outputs(
        {"stack": "prod", "platform": "kubernetes", "route": {"namespace": "shop", "name": "r"},
         "releases": outputs_with({})["releases"],
         "services": {"blue": kubernetes, "green": {**kubernetes, "deployment": "checkout-green"}}},
        "outputs.json",
    )  # fmt: skip
    assert StackOutputs.from_json(gateway.to_json(), "journal") == gateway
    assert (gateway.routing, gateway.namespace, gateway.route_key) == ("gateway", "shop",
                                                                       "httproute/shop/r")  # fmt: skip


@pytest.mark.parametrize(
    ("service", "said"),
    [
        (
            {"capacity": "six"},
            "output 'services.green' capacity must be a whole number of 0 or more",
        ),
        ({"capacity": -1}, "output 'services.green' capacity must be a whole number of 0 or more"),
        ({"cluster": ""}, "output 'services.green' cluster must be a non-empty string"),
        ({"platform": "nomad"}, "output 'services.green' platform must be ecs or kubernetes"),
        (
            {"platform": "kubernetes", "namespace": "n", "deployment": "d"},
            "output 'services.green' platform must be the stack's (ecs)",
        ),
        ({"desiredCount": True}, "desiredCount must be a whole number of 0 or more"),
    ],
)
def test_a_malformed_service_is_named_with_what_is_expected(
    service: dict[str, Any], said: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_outputs(outputs_with(service), "outputs.json")
    assert said in str(raised.value)
    assert str(raised.value).startswith("outputs.json: ")


def test_an_idle_capacity_left_out_is_the_full_capacity() -> None:
    data = outputs_with({})
    del data["services"]["green"]["idleCapacity"], data["services"]["green"]["desiredCount"]
    green = parse_outputs(data, "outputs.json").services["green"]
    assert (green.capacity, green.idle_capacity, green.desired_count) == (6, 6, 6)


@pytest.mark.parametrize(
    ("release", "said"),
    [
        ({"digest": "sha256:" + "a" * 64}, "output 'releases.green' version must be a non-empty"),
        ({"version": "", "digest": ""}, "output 'releases.green' version must be a non-empty"),
        ({"version": "1.42.0", "digest": 7}, "output 'releases.green' digest must be a string"),
        ("1.42.0", "output 'releases.green' must be {version, digest}"),
    ],
)
def test_a_malformed_release_is_named(release: Any, said: str) -> None:
    data = outputs_with({})
    data["releases"]["green"] = release
    with pytest.raises(ConfigError) as raised:
        parse_outputs(data, "outputs.json")
    assert said in str(raised.value)


@given(version=names, digest=st.sampled_from(["", "sha256:" + "b" * 64]))
def test_a_release_reads_back_what_it_wrote(version: str, digest: str) -> None:
    assert Release.from_json(Release(version, digest).to_json()) == Release(version, digest)


@given(namespace=names, balancer=names, blue=names, green=names, seconds=st.integers(1, 3600))
def test_alb_metrics_read_back_what_they_wrote_and_floats_from_the_engine(
    namespace: str, balancer: str, blue: str, green: str, seconds: int
) -> None:
    shape = AlbMetrics(namespace, balancer, {"blue": blue, "green": green}, seconds)
    assert AlbMetrics.from_json(shape.to_json()) == shape
    through_engine = {**shape.to_json(), "resolutionSeconds": float(seconds)}
    assert AlbMetrics.from_json(through_engine) == shape


GOOD_METRICS = {"namespace": "AWS/ApplicationELB", "loadBalancer": "app/lb/1",
                "targetGroups": {"blue": "targetgroup/b/1", "green": "targetgroup/g/2"}}  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD_METRICS, "resolutionSeconds": 0},
        {**GOOD_METRICS, "resolutionSeconds": True},
        {**GOOD_METRICS, "resolutionSeconds": "often"},
        {**GOOD_METRICS, "targetGroups": {"blue": "targetgroup/b/1"}},
        {**GOOD_METRICS, "loadBalancer": 7},
        ["not", "an", "object"],
    ],
)
def test_malformed_alb_metrics_are_refused_saying_the_shape(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"must be \{namespace, loadBalancer, targetGroups"):
        AlbMetrics.from_json(bad)
    assert AlbMetrics.from_json(GOOD_METRICS).resolution_seconds == 60  # the default


def test_a_route_and_a_holder_read_back_and_nobody_is_falsy() -> None:
    route = Route.from_json({"namespace": "checkout", "name": "checkout"})
    assert route.key == "httproute/checkout/checkout" and Route.from_json(route.to_json()) == route
    with pytest.raises(ValueError, match="namespace and name"):
        Route.from_json({"namespace": "checkout"})
    holder = Holder("d@h:1:ab", "d", "ana", "h", 1)
    assert Holder.from_json(holder.to_json()) == holder and holder
    assert holder.describe() == "deployment d by ana on h (pid 1)"
    nobody = Holder.from_json({})
    assert not nobody and nobody.to_json() == {}
    assert (
        Holder.from_json({"holder": "old@elsewhere:9"}).token == "old@elsewhere:9"
    )  # a token only
