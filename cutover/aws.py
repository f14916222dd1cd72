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

# Standard mode retries throttling, 5xx and connection errors with exponential backoff and
# jitter; a rollback must never wait long on one call, so attempts and timeouts are bounded.
MAX_ATTEMPTS = 4  # in all, the first attempt included
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
POOL = 64  # concurrent calls, e.g. restoring many listeners at once


def _setting(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


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
    import boto3

    explicit = os.environ.get("AWS_REGION")
    session = boto3.session.Session(region_name=explicit or None)
    if session.region_name is None and _region_of_stack:
        session = boto3.session.Session(region_name=_region_of_stack)
    return session


@functools.cache
def client(service: str) -> Any:
    """One shared, thread-safe client per service."""
    from botocore.config import Config

    config = Config(
        retries={
            "mode": "standard",
            "total_max_attempts": int(_setting("AWS_MAX_ATTEMPTS", MAX_ATTEMPTS)),
        },
        connect_timeout=_setting("CUTOVER_AWS_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
        read_timeout=_setting("CUTOVER_AWS_READ_TIMEOUT", READ_TIMEOUT),
        max_pool_connections=POOL,
    )
    return _session().client(service, config=config)
