"""boto3 clients with bounded retries (botocore's standard retry mode) and timeouts.

Credentials and endpoint come from the standard AWS environment; `AWS_ENDPOINT_URL` is
honoured by boto3 itself. The region is `AWS_REGION` (which botocore itself does not read),
else botocore's own (`AWS_DEFAULT_REGION`, the profile), else the region the stack's ARNs
name, so a rollback in an incident does not fail for want of a region. `AWS_MAX_ATTEMPTS`, `CUTOVER_AWS_CONNECT_TIMEOUT` and
`CUTOVER_AWS_READ_TIMEOUT` (seconds) tune the bounds.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from cutover.environment import number, whole

# Standard mode retries throttling, 5xx and connection errors with exponential backoff and
# jitter; a rollback must never wait long on one call, so attempts and timeouts are bounded,
# and their sum (`longest_call_seconds`) stays well inside the lease that fences a write.
MAX_ATTEMPTS = 3  # in all, the first attempt included
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 4.0
# botocore's standard mode waits at most min(2 ** i, 20) s before retry i (1 s base scale for
# throttling, `botocore/retries/standard.py`); it may add up to 5 s where a service sends
# x-amz-retry-after, which neither ELB nor DynamoDB does.
MAX_BACKOFF = 20.0
POOL = 64  # concurrent calls, e.g. restoring many listeners at once


_region_of_stack: str | None = None


def use_region_of(arn: str) -> None:
    """Fall back to the region in `arn` (arn:aws:service:REGION:...) when none is configured.
    Call before the first client is made."""
    global _region_of_stack
    parts = arn.split(":")
    if len(parts) > 4 and parts[0] == "arn" and parts[3]:
        _region_of_stack = parts[3]


@functools.cache
def _session() -> Any:
    # One session for every client: its loaders and endpoint data are read once.
    import boto3  # slow to import: at the first AWS call, not on import

    explicit = os.environ.get("AWS_REGION")
    session = boto3.session.Session(region_name=explicit or None)
    if session.region_name is None and _region_of_stack:
        session = boto3.session.Session(region_name=_region_of_stack)
    return session


def attempts() -> int:
    return whole("AWS_MAX_ATTEMPTS", MAX_ATTEMPTS)


def longest_call_seconds() -> float:
    """The longest one AWS call can take, every retry and backoff included: after this long,
    a write that was sent has landed or never will."""
    n = attempts()
    per_attempt = number("CUTOVER_AWS_CONNECT_TIMEOUT", CONNECT_TIMEOUT) + number(
        "CUTOVER_AWS_READ_TIMEOUT", READ_TIMEOUT
    )
    return n * per_attempt + sum(min(2.0 ** (i - 1), MAX_BACKOFF) for i in range(1, n))


@functools.cache
def client(service: str) -> Any:
    """One shared, thread-safe client per service."""
    from botocore.config import Config  # slow to import: at the first AWS call, not on import

    config = Config(
        retries={
            "mode": "standard",
            "total_max_attempts": attempts(),
        },
        connect_timeout=number("CUTOVER_AWS_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
        read_timeout=number("CUTOVER_AWS_READ_TIMEOUT", READ_TIMEOUT),
        max_pool_connections=POOL,
    )
    return _session().client(service, config=config)


class Client:
    """The client a router, a fleet or a metric source is handed (`Client("elbv2")`): the shared
    client of `service`, made at its first call, so building a stack's services makes no
    client (nor imports boto3) that the command never calls."""

    def __init__(self, service: str) -> None:
        self.service = service

    @functools.cached_property
    def made(self) -> Any:
        return client(self.service)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made, name)


# DescribeAlarms takes at most 100 names a call, and pages its answer.
ALARM_NAMES_PER_CALL = 100


def describe_alarms(names: list[str]) -> dict[str, dict[str, Any]]:
    """The named CloudWatch alarms that exist, by name: batched and paged (one call for up to
    100 names and 100 alarms), so any number of services' alarms are read whole."""
    unique = sorted(set(names))
    paginator = client("cloudwatch").get_paginator("describe_alarms")
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(unique), ALARM_NAMES_PER_CALL):
        pages = paginator.paginate(
            AlarmNames=unique[i : i + ALARM_NAMES_PER_CALL], MaxRecords=ALARM_NAMES_PER_CALL
        )
        for page in pages:
            found.update({a["AlarmName"]: a for a in page["MetricAlarms"]})
    return found
