"""Writing signed gate records: the helper's side of `cutover_gates.record`.

`cutover approve` and `signoff` write a record of a release named on the command line; `cutover
drill` and `cutover exit-gates` sign one for the release a stack's color runs, named
`<stack>-<color>-<version>-<kind>.json` in the records folder.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cutover_gates.contract import Color

from cutover.outputs import StackOutputs


def write_signed(path: Path, body: dict[str, Any], key: Any) -> None:
    """Sign `body` with the Ed25519 `key` and write the record document to `path`."""
    from cutover_gates.record import sign

    path.write_text(json.dumps(sign(body, key), indent=2) + "\n")


def sign_release_record(
    outputs: StackOutputs,
    color: Color,
    kind: str,
    details: dict[str, Any],
    key: Any,
    valid_for: float,
    folder: Path,
) -> Path:
    """Sign a `kind` record of the release `color` runs on this stack into `folder`; its path."""
    from cutover_gates.record import make_record

    release = outputs.releases[color]
    body = make_record(
        kind=kind,
        project=outputs.project,
        stack=outputs.stack,
        version=str(release["version"]),
        digest=str(release["digest"]),
        color=color,
        issued_at=datetime.now(UTC),
        valid_for=timedelta(seconds=valid_for),
        details=details,
    )
    path = folder / f"{outputs.stack}-{color}-{release['version']}-{kind}.json"
    write_signed(path, body, key)
    return path
