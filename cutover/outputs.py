"""The stack outputs contract (DESIGN.md): the one place that knows the outputs' names.

The program exports through `export_outputs`; the helper reads the JSON of
`pulumi stack output --json` through `parse_outputs`.
"""

from __future__ import annotations

from typing import Any

# Output names, exactly as `pulumi stack output --json` prints them.
STACK = "stack"
LISTENER_ARN = "listenerArn"
TARGET_GROUP_ARNS = "targetGroupArns"
ALARM_NAMES = "alarmNames"
RELEASES = "releases"
SERVICES = "services"
JOURNAL_TABLE = "journalTable"
TOPIC_ARN = "topicArn"
LOAD_BALANCER_DNS_NAME = "loadBalancerDnsName"
TEST_URL = "testUrl"

REQUIRED = (
    STACK,
    LISTENER_ARN,
    TARGET_GROUP_ARNS,
    ALARM_NAMES,
    RELEASES,
    SERVICES,
    JOURNAL_TABLE,
    TOPIC_ARN,
    LOAD_BALANCER_DNS_NAME,
    TEST_URL,
)


def export_outputs(
    *,
    stack: Any,
    listener_arn: Any,
    target_group_arns: Any,
    alarm_names: Any,
    releases: Any,
    services: Any,
    journal_table: Any,
    topic_arn: Any,
    load_balancer_dns_name: Any,
    test_url: Any,
    extra: dict[str, Any] | None = None,
) -> None:
    """Export the contract's outputs (and any `extra` ones) from a Pulumi program."""
    import pulumi

    values = {
        STACK: stack,
        LISTENER_ARN: listener_arn,
        TARGET_GROUP_ARNS: target_group_arns,
        ALARM_NAMES: alarm_names,
        RELEASES: releases,
        SERVICES: services,
        JOURNAL_TABLE: journal_table,
        TOPIC_ARN: topic_arn,
        LOAD_BALANCER_DNS_NAME: load_balancer_dns_name,
        TEST_URL: test_url,
        **(extra or {}),
    }
    for key, value in values.items():
        pulumi.export(key, value)
