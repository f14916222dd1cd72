"""Journal items this release cannot read: skipped and named once, never a crash (a damaged
item, or one a newer release wrote, which is not this release's to touch)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cutover_gates.contract import Outcome

from cutover.deployment import Deployment, UnknownStatus


@dataclass(frozen=True)
class Skipped:
    """A journal item this release cannot read: damaged, or (`newer`) written by a newer
    release, which is not this one's to touch."""

    key: str
    why: str
    newer: bool = False

    def __str__(self) -> str:
        return f"{self.key}: {self.why}"


def parse_item(key: str, document: Any, skipped: list[Skipped]) -> Deployment | None:
    """A journal item's deployment, or None (and the item named in `skipped`) when it does
    not parse: a damaged item, or one written by a newer release."""
    try:
        data = json.loads(document) if isinstance(document, str | bytes) else document
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return Deployment.from_json(data)
    except UnknownStatus as e:
        skip(skipped, key, f"{e}: not this release's to touch", newer=True)
        return None
    except Exception as e:  # noqa: BLE001 - whatever is wrong with it, it is skipped and named
        skip(skipped, key, _why(e))
        return None


def parse_outcome(key: str, document: Any, skipped: list[Skipped]) -> Outcome | None:
    """A journal's outcome item, or None (named in `skipped`) when it does not parse."""
    try:
        data = json.loads(document) if isinstance(document, str | bytes) else document
        return Outcome.from_json(data)
    except Exception as e:  # noqa: BLE001 - whatever is wrong with it, it is skipped and named
        skip(skipped, key, _why(e))
        return None


def _why(error: Exception) -> str:
    """Why an item does not parse, in a few words (a KeyError's text is only the key)."""
    if isinstance(error, KeyError):
        return f"missing {error}"
    if isinstance(error, RecursionError):
        return "nested too deeply to read"
    return str(error) or type(error).__name__


def skip(skipped: list[Skipped], key: str, why: str, newer: bool = False) -> None:
    """Name an item that does not parse, once."""
    found = Skipped(key, why, newer)
    if found not in skipped:
        skipped.append(found)


def damaged(skipped: list[Skipped]) -> list[Skipped]:
    """The skipped items that are damaged (not merely a newer release's)."""
    return [s for s in skipped if not s.newer]


def skipped_line(skipped: list[Skipped]) -> str | None:
    """One line naming what was skipped, or None."""
    if not skipped:
        return None
    things = "item that does not" if len(skipped) == 1 else "items that do not"
    return f"skipped {len(skipped)} journal {things} parse: " + "; ".join(map(str, skipped))
