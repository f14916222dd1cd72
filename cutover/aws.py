"""boto3 clients with bounded retries (botocore's standard retry mode) and timeouts.

Region, credentials and endpoint come from the standard AWS environment; `AWS_ENDPOINT_URL`
is honoured by boto3 itself.
"""

from __future__ import annotations

import functools
from typing import Any

# Standard mode retries throttling, 5xx and connection errors with exponential backoff and
# jitter; a rollback must never wait long on one call, so attempts and timeouts are bounded.
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT = 2
READ_TIMEOUT = 5
POOL = 64  # concurrent calls, e.g. restoring many listeners at once


@functools.cache
def client(service: str) -> Any:
    """One shared, thread-safe client per service."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=POOL,
    )
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
