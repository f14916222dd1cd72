"""The stack outputs: their names as `pulumi stack output --json` prints them (the shape of
each one that has a structure of its own is in `cutover_gates.output_shapes`).

The program exports them, the helper reads them (`cutover.outputs` is its one boundary) and
the pack reads a previous update's; like the contract beside it, this module lives inside the
pack. Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

STACK = "stack"
PROJECT = "project"
PLATFORM = "platform"
LISTENER_ARN = "listenerArn"
TARGET_GROUP_ARNS = "targetGroupArns"
ALARM_NAMES = "alarmNames"
RELEASES = "releases"
SERVICES = "services"
JOURNAL_TABLE = "journalTable"
TOPIC_ARN = "topicArn"
LOAD_BALANCER_DNS_NAME = "loadBalancerDnsName"
TEST_URL = "testUrl"
TRAFFIC = "traffic"
HELPER_ROLE_ARN = "helperRoleArn"
ROUTE = "route"
# the stack's `cutover:analysis` settings, and where an ALB stack's per-color metrics are:
# {"namespace": "AWS/ApplicationELB", "loadBalancer": <arn suffix>, "targetGroups": {color: ...}}
ANALYSIS = "analysis"
METRICS = "metrics"
DASHBOARD = "dashboard"
# {"function", "schedule"} on AWS, {"cronJob", "namespace"} on a Gateway stack
WATCHDOG = "watchdog"
