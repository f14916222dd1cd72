"""The real layer's first checks: the processes are the real tools at the pinned versions, the
real Gateway serves an HTTPRoute's weights, and the real API server honours the
resourceVersion precondition cutover's fence relies on."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.harness.pulumi_engine import engine_stack
from tests.harness.real_cluster import (
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    PULUMI_TOOLS,
    RealCluster,
    binomial_bound,
    http_route,
    load_tools,
    provider_version,
    pulumi_env,
    sample,
    wait_route_served,
)

REQUESTS = 400  # per step: the bound below is about +-50 at 50/50, so a 60/40 Gateway fails


def routes(cluster: RealCluster) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(cluster.plane.client())


def create_route(
    cluster: RealCluster, name: str, weights: dict[str, int], parent: str | None = None
) -> dict[str, Any]:
    """The route on the session's Gateway, or on `parent`, a Gateway no controller serves: then
    no status write moves its resourceVersion behind the test's back."""
    body = http_route(name, cluster.gateway, cluster.services, weights)
    if parent is not None:
        body["spec"]["parentRefs"] = [{"name": parent}]
    return routes(cluster).create_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, cluster.namespace, "httproutes", body
    )


def patch_weights(
    cluster: RealCluster, name: str, version: str, weights: dict[str, int]
) -> dict[str, Any]:
    """A JSON patch of the weights at `version`, as cutover's Gateway router writes one: the
    `replace` of metadata.resourceVersion is what makes the API server check it."""
    refs = [
        {"name": service, "port": 80, "weight": weights[color]}
        for color, service in cluster.services.items()
    ]
    patch = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": version},
        {"op": "replace", "path": "/spec/rules/0/backendRefs", "value": refs},
    ]
    return routes(cluster).patch_namespaced_custom_object(
        GATEWAY_GROUP,
        GATEWAY_VERSION,
        cluster.namespace,
        "httproutes",
        name,
        patch,
        _content_type="application/json-patch+json",
    )


def test_the_processes_are_the_real_tools_at_their_versions(cluster: RealCluster) -> None:
    tools = cluster.tools
    assert cluster.plane.get("/version")["gitVersion"] == tools["kube-apiserver"].version
    assert tools["kube-apiserver"].version == "v1.36.3"
    with urllib.request.urlopen(f"{cluster.plane.etcd_url}/version", timeout=5) as r:
        assert "v" + json.load(r)["etcdserver"] == tools["etcd"].version
    assert cluster.gateway.api("/api/version")["Version"] == tools["traefik"].version
    # The API server serves the release's CRDs at the versions the Gateway reads.
    served = cluster.plane.get(f"/apis/{GATEWAY_GROUP}")["versions"]
    assert GATEWAY_VERSION in [v["version"] for v in served]


def test_the_pulumi_cli_and_kubernetes_provider_are_real_at_their_versions(
    tmp_path: Path,
) -> None:
    """The CLI and the Kubernetes provider each report the version they were built at when
    run: the provider over its own gRPC protocol, as the engine asks it."""
    tools = load_tools(("pulumi", "pulumi-resource-kubernetes"))
    version = subprocess.run(
        [str(tools["pulumi"].path), "version"],
        env=pulumi_env(tmp_path / "pulumi-home"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == tools["pulumi"].version == "v3.276.0"
    provider = tools["pulumi-resource-kubernetes"]
    assert provider_version(provider, tmp_path) == provider.version == "4.25.0"


def test_the_python_language_host_is_v3_79_0_the_newest_the_proxy_serves(tmp_path: Path) -> None:
    """The language host the CLI runs Python programs with is pulumi-language-python v3.79.0,
    not the CLI's v3.276.0: the CLI's own host module
    (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is refused by the Go
    module proxy with `403 Forbidden / server response: This module version is not
    available.`, and v3.79.0 is the last release whose sdk/v3 module still carries the host.
    The CLI asks the running host for its version (`pulumi about`), and finds the exec script
    beside it and the project's python."""
    tools = load_tools(PULUMI_TOOLS)
    assert tools["pulumi-language-python"].version == "v3.79.0"
    stack = engine_stack(tmp_path / "project", "about", {}, tmp_path / "kubeconfig")
    about = json.loads(stack.run("about", "--json").stdout)
    languages = [p for p in about["plugins"] if p["kind"] == "language"]
    assert languages == [{"name": "python", "version": "3.79.0", "kind": "language"}]
    assert Path(about["runtime"]["executable"]).parent == Path(sys.executable).parent
    exec_script = tools["pulumi-language-python-exec"].path
    assert exec_script.parent == tools["pulumi-language-python"].path.parent
    assert exec_script.stat().st_mode & 0o111


def test_the_served_split_follows_the_route_weights(cluster: RealCluster) -> None:
    """100/0, 50/50, 0/100: at each step, once the Gateway has loaded the route, the bodies
    counted through it match the weights within sampling error."""
    name = "split"
    route = create_route(cluster, name, {"blue": 100, "green": 0})
    for weights in (
        {"blue": 100, "green": 0},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
    ):
        if route["spec"]["rules"][0]["backendRefs"][0]["weight"] != weights["blue"]:
            route = patch_weights(cluster, name, route["metadata"]["resourceVersion"], weights)
        # The route as last read: the Gateway's status writes move its resourceVersion too.
        route = wait_route_served(cluster.plane, cluster.gateway, name, cluster.services, weights)
        counts = sample(cluster.gateway, REQUESTS)
        assert set(counts) <= {"blue", "green"}, counts  # every request served by a color
        share = weights["blue"] / sum(weights.values())
        assert abs(counts["blue"] - REQUESTS * share) <= binomial_bound(REQUESTS, share), (
            weights,
            counts,
        )


def test_a_stale_resource_version_is_refused_with_409(cluster: RealCluster) -> None:
    """cutover's fence: a write carrying the resourceVersion it read fails with 409 Conflict
    when the route changed since, for a JSON patch (what cutover sends), a merge patch and a
    PUT alike; the current version is accepted."""
    from kubernetes.client.exceptions import ApiException

    name = "fenced"
    api = routes(cluster)
    args = (GATEWAY_GROUP, GATEWAY_VERSION, cluster.namespace, "httproutes", name)
    stale = create_route(cluster, name, {"blue": 100, "green": 0}, parent="unserved")
    current = patch_weights(
        cluster, name, stale["metadata"]["resourceVersion"], {"blue": 90, "green": 10}
    )
    assert current["metadata"]["resourceVersion"] != stale["metadata"]["resourceVersion"]

    with pytest.raises(ApiException) as refused:
        patch_weights(
            cluster, name, stale["metadata"]["resourceVersion"], {"blue": 0, "green": 100}
        )
    assert refused.value.status == 409

    merge = {
        "metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]},
        "spec": stale["spec"],
    }
    with pytest.raises(ApiException) as refused:
        api.patch_namespaced_custom_object(
            *args, merge, _content_type="application/merge-patch+json"
        )
    assert refused.value.status == 409

    with pytest.raises(ApiException) as refused:
        api.replace_namespaced_custom_object(*args, stale)
    assert refused.value.status == 409

    read = api.get_namespaced_custom_object(*args)
    assert [r["weight"] for r in read["spec"]["rules"][0]["backendRefs"]] == [90, 10]
    patch_weights(cluster, name, read["metadata"]["resourceVersion"], {"blue": 0, "green": 100})


def test_endpoint_slices_refuse_loopback_addresses(cluster: RealCluster) -> None:
    """Why the backends run in a network namespace of the test's own: the real server refuses
    an EndpointSlice naming 127.0.0.1 (a stand-in server would have taken it)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    discovery = client.DiscoveryV1Api(cluster.plane.client())
    with pytest.raises(ApiException) as refused:
        discovery.create_namespaced_endpoint_slice(
            cluster.namespace,
            {
                "metadata": {
                    "name": "loopback",
                    "labels": {"kubernetes.io/service-name": "checkout-blue"},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            },
        )
    assert refused.value.status == 422
    assert "loopback" in json.loads(refused.value.body)["message"]
