"""boto3 clients with bounded retries (botocore's standard retry mode) and timeouts.

Region, credentials and endpoint come from the standard AWS environment; `AWS_ENDPOINT_URL`
is honoured by boto3 itself. `AWS_MAX_ATTEMPTS`, `CUTOVER_AWS_CONNECT_TIMEOUT` and
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


@functools.cache
def _session() -> Any:
    # One session for every client: its loaders and endpoint data are read once.
    import boto3

    return boto3.session.Session()


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
