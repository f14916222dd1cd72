"""What a stack declares for the pack that no resource property says: facts of the application
and its Gateway the pack judges the stack's draining against, each a marker on the resources it
is about (AWS tag `cutover:<name>`, Kubernetes annotation `cutover/<name>`), a whole number as
text. The program writes them from the stack's config; the pack reads them (rules/draining.py).
Pure: no I/O, no third-party imports.
"""

from __future__ import annotations

# On every color resource (target groups, task definitions, ECS services, Deployments).
LONGEST_REQUEST_MARKER = "longest-request-seconds"
KEEP_ALIVE_MARKER = "keep-alive-seconds"
# On the production listener or HTTPRoute: how long a color that lost traffic keeps its full
# capacity (`cutover:rollbackWindowMinutes`).
ROLLBACK_WINDOW_MARKER = "rollback-window-minutes"
# On the HTTPRoute: how long the Gateway keeps sending to an endpoint after it is removed, and
# its idle timeout towards the pods where the stack declares one.
ENDPOINT_REMOVAL_MARKER = "endpoint-removal-seconds"
GATEWAY_IDLE_TIMEOUT_MARKER = "gateway-idle-timeout-seconds"
