"""Ready replicas for every Deployment of a namespace, written as a kubelet would report them.

No kubelet and no controller-manager run under the e2e layer, so no Pod ever starts and a
Deployment's status would stay empty: cutover's guards (ready replicas of each color, its
preflight's full capacity, its scale-up) would never see one ready. This plays the missing
parts for that one fact: while it runs, each Deployment's status says all its `spec.replicas`
are ready, updated and available at its current generation, within a watch event of any
change (a `pulumi up`, or the helper scaling a color up through the scale subresource). The
traffic itself is served by the color's real HTTP server (tests/harness/color_backend.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from tests.harness.real_cluster import ControlPlane

WATCH_SECONDS = 5  # a watch's server-side timeout: how long stopping can take at most


def _status(deployment: Any) -> dict[str, Any] | None:
    """The status a Deployment all of whose replicas are ready reports; None if it does."""
    want = int(deployment.spec.replicas if deployment.spec.replicas is not None else 1)
    generation = deployment.metadata.generation
    status = deployment.status
    found = (
        status.observed_generation,
        status.replicas,
        status.ready_replicas,
        status.available_replicas,
        status.updated_replicas,
    )
    if found == (generation, want, want, want, want) or (want == 0 and found[0] == generation):
        return None
    return {
        "observedGeneration": generation,
        "replicas": want,
        "readyReplicas": want,
        "availableReplicas": want,
        "updatedReplicas": want,
    }


@contextlib.contextmanager
def replicas_ready(plane: ControlPlane, namespace: str) -> Iterator[None]:
    """While inside, every Deployment in `namespace` reports all its replicas ready."""
    from kubernetes import client, watch

    apps = client.AppsV1Api(plane.client())
    stopping = threading.Event()
    failures: list[BaseException] = []

    def mark(deployment: Any) -> None:
        status = _status(deployment)
        if status is not None:
            with contextlib.suppress(client.ApiException):  # deleted or changed: next event
                apps.patch_namespaced_deployment_status(
                    deployment.metadata.name, namespace, {"status": status}
                )

    def run() -> None:
        try:
            while not stopping.is_set():
                listed = apps.list_namespaced_deployment(namespace)
                for deployment in listed.items:
                    mark(deployment)
                stream = watch.Watch()
                try:
                    for event in stream.stream(
                        apps.list_namespaced_deployment,
                        namespace,
                        resource_version=listed.metadata.resource_version,
                        timeout_seconds=WATCH_SECONDS,
                    ):
                        if stopping.is_set():
                            stream.stop()
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            mark(event["object"])
                except client.ApiException as e:
                    if e.status != 410:  # 410 Gone: the version expired; list again
                        raise
        except BaseException as e:  # said on the way out, not lost in a thread
            failures.append(e)

    thread = threading.Thread(target=run, name=f"ready-replicas-{namespace}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(WATCH_SECONDS * 3)
    if failures:
        raise RuntimeError(f"writing ready replicas in {namespace} failed") from failures[0]
