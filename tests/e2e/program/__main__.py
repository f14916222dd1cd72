"""The e2e layer's Pulumi program: cutover's own (the repository's `__main__.py`, run as it is)
with one resource transform, registered before it runs, that adds two of pulumi-kubernetes's
annotations for what the e2e layer's cluster lacks.

Deployments and Services get `pulumi.com/skipAwait: "true"`.
No kubelet or controller-manager runs under the e2e layer, so no Pod ever starts and no Service
ever gets an endpoint from one: the provider's await (ready replicas of a Deployment, at least
one endpoint of a Service) would wait out its timeout. The annotation skips only that wait: the
provider still creates, updates, diffs and reads every object through the real API server,
which admits or refuses it; readiness is then what the harness writes as the missing kubelet
would, and what cutover's guards read. Everything else (the route, the gate records, the Role,
the CronJob) is awaited exactly as in production (none of them has an await).

Every object gets `pulumi.com/deletionPropagationPolicy: background`. The provider deletes in
the foreground by default: the API server marks the object with a `foregroundDeletion`
finalizer that the garbage collector (in kube-controller-manager, not run here) removes once
the object's dependents are gone, so a delete would never finish. In the background the API
server removes the object at once; none of these objects has dependents to collect. A delete
happens here when the provider replaces an object: a ConfigMap whose data changed (the gate
records' `cutover-gates`, when a journal outcome changes) is replaced, not updated.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi

ROOT = Path(__file__).resolve().parents[3]
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
AWAITED = ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service")
BACKGROUND_DELETE = {"pulumi.com/deletionPropagationPolicy": "background"}


def annotated(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if not args.type_.startswith("kubernetes:") or args.type_.startswith("pulumi:providers:"):
        return None
    added = {**BACKGROUND_DELETE, **(SKIP_AWAIT if args.type_ in AWAITED else {})}
    props: dict[str, Any] = dict(args.props)
    metadata = dict(props.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **added}
    props["metadata"] = metadata
    return pulumi.ResourceTransformResult(props=props, opts=args.opts)


pulumi.runtime.register_resource_transform(annotated)
runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
