"""The stack's watchdog on a Gateway stack: a CronJob `cutover-watchdog` in the release
namespace running `cutover watchdog --once` under its own ServiceAccount, bound to the
helper's Role (which it needs whole: read the journal, take the lease, patch the route,
scale a Deployment, publish an Event)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from cutover_gates.contract import WATCHDOG_CRON_JOB as NAME

OUTPUTS_KEY = "outputs.json"
MOUNT = "/etc/cutover"


def cron_job_spec(schedule: str, image: str, every_minutes: int) -> dict[str, Any]:
    """The CronJob's spec: one pass at a time, never piling up, bounded in time and resources."""
    return {
        "schedule": schedule,
        "concurrencyPolicy": "Forbid",
        # a pass that could not start within its own period is skipped, not run late in a burst
        "startingDeadlineSeconds": 60 * every_minutes,
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "suspend": False,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": 300,
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": NAME}},
                    "spec": {
                        "serviceAccountName": NAME,
                        "restartPolicy": "Never",
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                        "containers": [
                            {
                                "name": "watchdog",
                                "image": image,
                                "command": [
                                    "cutover",
                                    "watchdog",
                                    "--once",
                                    "--outputs",
                                    f"{MOUNT}/{OUTPUTS_KEY}",
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "96Mi"},
                                    "limits": {"cpu": "500m", "memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                },
                                "volumeMounts": [{"name": "outputs", "mountPath": MOUNT}],
                            }
                        ],
                        "volumes": [{"name": "outputs", "configMap": {"name": NAME}}],
                    },
                },
            }
        },
    }


@dataclass(frozen=True)
class KubernetesWatchdogArgs:
    namespace: str
    schedule: str  # cron
    every_minutes: int
    image: str  # pinned by digest
    role: str  # the helper Role to bind
    outputs: pulumi.Input[dict[str, Any]]
    labels: dict[str, str]


class KubernetesWatchdog(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: KubernetesWatchdogArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:KubernetesWatchdog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        metadata = {"name": NAME, "namespace": args.namespace, "labels": args.labels}
        self.outputs = k8s.core.v1.ConfigMap(
            f"{name}-outputs",
            metadata=metadata,
            data={OUTPUTS_KEY: pulumi.Output.from_input(args.outputs).apply(json.dumps)},
            opts=child,
        )
        self.account = k8s.core.v1.ServiceAccount(f"{name}-account", metadata=metadata, opts=child)
        self.binding = k8s.rbac.v1.RoleBinding(
            f"{name}-binding",
            metadata=metadata,
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": args.role},
            subjects=[{"kind": "ServiceAccount", "name": NAME, "namespace": args.namespace}],
            opts=child,
        )
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=metadata,
            spec=cron_job_spec(args.schedule, args.image, args.every_minutes),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.outputs, self.binding]),
        )
        self.register_outputs({"cronJob": NAME})
