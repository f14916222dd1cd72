"""What the stack's own journal says of the latest shift towards each color, for the pack.

After a rollback (by the shift itself, `cutover rollback`, or the watchdog, which cannot
write the stack's config), the next `pulumi up` must not send traffic back to the release
it left without a newer approval. The journal is the one truth of that: the program reads it
here, through the same journal code the helper uses on either platform (the DynamoDB table
or the release namespace named by the stack's previous outputs), and publishes each color's
latest outcome beside the gate records, where the pack judges it. A journal that cannot be
read is published as such, and the pack then refuses to move traffic (fail closed).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from cutover_gates.contract import COLORS
from cutover_gates.stack_outputs import JOURNAL_TABLE, ROUTE

from cutover.aws import use_region_of
from cutover.journal import open_journal
from cutover.outputs import parse_outputs

# The JSON published for a color with nothing to say (no shift towards it yet).
NOTHING = "{}"


def read_outcomes(previous: dict[str, Any]) -> dict[str, str]:
    """Each color's latest outcome (JSON) in the journal the previous outputs name; nothing
    on a first update (no previous outputs name a journal), `{"unreadable": why}` when the
    journal cannot be read."""
    if not previous.get(JOURNAL_TABLE) and not previous.get(ROUTE):
        return {c: NOTHING for c in COLORS}
    try:
        outputs = parse_outputs(previous, "the stack's previous outputs")
        if outputs.on_aws:
            use_region_of(outputs.listener_arn)
        journal = open_journal("stack", outputs.journal_table, outputs.namespace)
        found = journal.outcomes(outputs.route_key)
    except Exception as e:  # noqa: BLE001 - said to the pack, which fails closed
        why = json.dumps({"unreadable": f"{type(e).__name__}: {e}"})
        return {c: why for c in COLORS}
    return {c: json.dumps(found[c].to_json()) if c in found else NOTHING for c in COLORS}


def latest_deployments(reference: pulumi.StackReference) -> pulumi.Output[dict[str, str]]:
    """read_outcomes over the stack's previous outputs (its self StackReference)."""
    return reference.outputs.apply(lambda found: read_outcomes(dict(found or {})))
