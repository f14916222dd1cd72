"""The typed shapes of the outputs contract: what the program exports reads back the same,
and a malformed field is named, one line, never a KeyError deep in a shift."""

from __future__ import annotations

from typing import Any

import pytest
from cutover_gates.contract import ColorService
from hypothesis import given
from hypothesis import strategies as st

from cutover.errors import ConfigError
from cutover.outputs import StackOutputs

names = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)
counts = st.integers(0, 1000)


@given(
    platform=st.sampled_from(["ecs", "kubernetes"]),
    service=names, place=names, capacity=counts, idle=counts, desired=counts,
)  # fmt: skip
def test_a_color_service_reads_back_what_it_wrote(
    platform: str, service: str, place: str, capacity: int, idle: int, desired: int
) -> None:
    where = {"cluster": place} if platform == "ecs" else {"namespace": place, "deployment": place}
    shape = ColorService(platform, service, capacity, idle, desired, **where)
    assert ColorService.from_json(shape.to_json()) == shape
    # through the engine, numbers arrive as floats
    floats = {k: float(v) if isinstance(v, int) else v for k, v in shape.to_json().items()}
    assert ColorService.from_json(floats) == shape


def outputs_with(service: dict[str, Any]) -> dict[str, Any]:
    ok = {"platform": "ecs", "cluster": "c", "service": "checkout-blue", "capacity": 6,
          "idleCapacity": 2, "desiredCount": 6}  # fmt: skip
    return {
        "stack": "prod", "listenerArn": "arn:l", "journalTable": "t", "topicArn": "arn:t",
        "loadBalancerDnsName": "alb.example", "testUrl": "https://alb.example:8443",
        "targetGroupArns": {"blue": "arn:b", "green": "arn:g"},
        "alarmNames": {"blue": [], "green": []},
        "releases": {"blue": {}, "green": {}},
        "services": {"blue": ok, "green": {**ok, **service}},
    }  # fmt: skip


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
        ({"desiredCount": True}, "desiredCount must be a whole number of 0 or more"),
    ],
)
def test_a_malformed_service_is_named_with_what_is_expected(
    service: dict[str, Any], said: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        StackOutputs(outputs_with(service), "outputs.json")
    assert said in str(raised.value)
    assert str(raised.value).startswith("outputs.json: ")


def test_an_idle_capacity_left_out_is_the_full_capacity() -> None:
    data = outputs_with({})
    del data["services"]["green"]["idleCapacity"], data["services"]["green"]["desiredCount"]
    green = StackOutputs(data, "outputs.json").services["green"]
    assert (green.capacity, green.idle_capacity, green.desired_count) == (6, 6, 6)
