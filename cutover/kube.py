"""One Kubernetes API client for the helper, with bounded retries and timeouts.

Credentials come from the kubeconfig (`KUBECONFIG`, or ~/.kube/config; its current context,
or `CUTOVER_KUBE_CONTEXT`), or from the pod's service account when running in the cluster.
`CUTOVER_KUBE_CONNECT_TIMEOUT` and `CUTOVER_KUBE_READ_TIMEOUT` (seconds) and
`CUTOVER_KUBE_ATTEMPTS` tune the bounds.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from cutover.environment import number, text, whole
from cutover.errors import ConfigError

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 4.0
ATTEMPTS = 3  # in all, the first included, as for AWS calls (CUTOVER_KUBE_ATTEMPTS)
BACKOFF_FACTOR = 0.2
GATEWAY_API = ("gateway.networking.k8s.io", "v1", "httproutes")


def timeout() -> tuple[float, float]:
    """(connect, read) seconds for every call."""
    return (
        number("CUTOVER_KUBE_CONNECT_TIMEOUT", CONNECT_TIMEOUT),
        number("CUTOVER_KUBE_READ_TIMEOUT", READ_TIMEOUT),
    )


def attempts() -> int:
    return whole("CUTOVER_KUBE_ATTEMPTS", ATTEMPTS)


def longest_call_seconds() -> float:
    """The longest one API call can take, every retry and backoff included (urllib3 waits
    BACKOFF_FACTOR * 2 ** (n - 1) before retry n, none before the first; a Retry-After
    header is not waited for)."""
    connect, read = timeout()
    n = attempts()
    return n * (connect + read) + sum(BACKOFF_FACTOR * 2 ** (k - 1) for k in range(2, n))


@functools.cache
def api_client() -> Any:
    """The shared ApiClient: urllib3 retries connection errors, 429 and 5xx with backoff."""
    from kubernetes import client, config  # optional extra: cutover[kubernetes]
    from urllib3.util.retry import Retry  # with the client it configures: only Kubernetes stacks

    configuration = client.Configuration()
    in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ and not os.environ.get("KUBECONFIG")
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            # KUBECONFIG as it is now: the client's own default is read once, at its import
            config.load_kube_config(
                config_file=text("KUBECONFIG"),
                context=text("CUTOVER_KUBE_CONTEXT"),
                client_configuration=configuration,
            )
    except (config.ConfigException, OSError) as e:
        raise ConfigError(
            f"no Kubernetes credentials ({e}); expected a kubeconfig (KUBECONFIG or "
            "~/.kube/config) or a pod service account"
        ) from None
    configuration.retries = Retry(
        total=attempts() - 1,
        backoff_factor=BACKOFF_FACTOR,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # every method: the helper's writes are idempotent
        raise_on_status=False,
        respect_retry_after_header=False,  # a write's longest time must stay bounded
    )
    return client.ApiClient(configuration)


class Api:
    """One API group's client over the shared ApiClient (`Api("AppsV1Api")`), made at its first
    call as a boto3 client reads its credentials at its first call: a command that never calls
    the cluster reads no kubeconfig (nor needs cutover[kubernetes])."""

    def __init__(self, group: str) -> None:
        self.group = group

    @functools.cached_property
    def made(self) -> Any:
        from kubernetes import client  # optional extra: cutover[kubernetes]

        return getattr(client, self.group)(api_client())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made, name)


def core() -> Any:
    from kubernetes import client  # optional extra: cutover[kubernetes]

    return client.CoreV1Api(api_client())


def batch() -> Any:
    from kubernetes import client  # optional extra: cutover[kubernetes]

    return client.BatchV1Api(api_client())
