"""Telling people: deployment events to the stack's SNS topic (figures to CloudWatch metrics),
or on a Gateway stack, which has no topic, as Kubernetes Events on its HTTPRoute
(`kubectl describe httproute`, and whatever forwards Events). Telling people never stops a
rollback: a failed publish is logged and passed over.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from cutover_gates.contract import METRICS_NAMESPACE, Status
from cutover_gates.output_shapes import Route
from cutover_gates.stack_outputs import StackOutputs

from cutover.aws import client
from cutover.deployment import Deployment
from cutover.kube import core, timeout


class Notifier:
    """Events to SNS and metrics in the `Cutover` namespace, for every service on AWS."""

    def __init__(self, outputs: list[StackOutputs], log: Callable[[str], None]) -> None:
        self.outputs = [o for o in outputs if o.on_aws]
        self.routes = [o.route for o in outputs if o.route is not None]  # Gateway stacks
        self.log = log

    def event(self, deployment: Deployment, kind: str, detail: str) -> None:
        message = {
            "event": kind,
            "deployment": deployment.id,
            "target": deployment.target,
            "status": str(deployment.status),
            "detail": detail,
        }
        for o in self.outputs:
            try:
                client("sns").publish(
                    TopicArn=str(o.topic_arn),
                    Subject=f"cutover {kind}: {o.name}"[:100],
                    Message=json.dumps({**message, "service": o.name}),
                )
            except Exception as e:  # noqa: BLE001 - telling people must not stop a rollback
                self.log(f"  (could not publish {kind} to {o.topic_arn}: {e})")
        for route in self.routes:
            try:
                self._kubernetes_event(route, deployment, kind, detail)
            except Exception as e:  # noqa: BLE001 - telling people must not stop a rollback
                self.log(f"  (could not publish {kind} as a Kubernetes Event: {e})")

    def _kubernetes_event(
        self, route: Route, deployment: Deployment, kind: str, detail: str
    ) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = route.namespace
        reason = "Cutover" + "".join(part.capitalize() for part in str(kind).split("-"))
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{route.name}.cutover.{deployment.id.lower()}.{secrets.token_hex(4)}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "name": route.name,
                "namespace": namespace,
            },
            "reason": reason,
            "message": f"deployment {deployment.id} towards {deployment.target}: {detail}"[:1024],
            "type": "Warning" if kind == Status.ROLLED_BACK else "Normal",
            "source": {"component": "cutover"},
            "reportingComponent": "cutover",
            "reportingInstance": socket.gethostname(),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        core().create_namespaced_event(namespace, body, _request_timeout=timeout())

    def metrics(self, deployment: Deployment) -> None:
        from cutover.report import figures  # statistics is slow to import: only once a shift ended

        numbers = figures(deployment)
        succeeded = deployment.status == Status.SUCCEEDED
        for o in self.outputs:
            dims = [{"Name": "Stack", "Value": o.stack}]
            data = [
                ("DeploymentSucceeded", 1.0 if succeeded else 0.0, "Count"),
                ("DeploymentFailed", 0.0 if succeeded else 1.0, "Count"),
                ("ShiftSeconds", numbers["shiftSeconds"], "Seconds"),
                ("DowntimeSeconds", numbers["downtimeSeconds"], "Seconds"),
            ]
            if numbers["rollbackSeconds"] is not None:
                data.append(("RollbackSeconds", numbers["rollbackSeconds"], "Seconds"))
            if numbers["failedRequests"] is not None:  # counted by the downtime guard
                data.append(("FailedRequests", float(numbers["failedRequests"]), "Count"))
            try:
                client("cloudwatch").put_metric_data(
                    Namespace=METRICS_NAMESPACE,
                    MetricData=[
                        {"MetricName": n, "Value": v, "Unit": u, "Dimensions": dims}
                        for n, v, u in data
                    ],
                )
            except Exception as e:  # noqa: BLE001 - a missing figure must not stop a rollback
                self.log(f"  (could not publish metrics: {e})")
