"""Change freezes: when traffic may not move without the chairman's emergency record.

The `change-freeze` policy's config lists windows, each either fixed (`start`, `end`: RFC 3339)
or weekly (`weekly`: `days` of the week, `from` and `to` as HH:MM, in `timeZone`, an IANA
name; a `to` at or before `from` runs into the next day), with a `reason` people read. Pure:
the pack and `cutover shift`'s preflight judge the same windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    reason: str
    start: datetime | None = None
    end: datetime | None = None
    days: tuple[int, ...] = ()
    begins: time | None = None
    ends: time | None = None
    zone: str = "UTC"

    def contains(self, now: datetime) -> bool:
        if self.start is not None and self.end is not None:
            return self.start <= now < self.end
        assert self.begins is not None and self.ends is not None
        local = now.astimezone(ZoneInfo(self.zone))
        for back in (0, 1):  # today's window, or yesterday's running past midnight
            day = (local - timedelta(days=back)).date()
            if day.weekday() not in self.days:
                continue
            opens = datetime.combine(day, self.begins, ZoneInfo(self.zone))
            closes = datetime.combine(day, self.ends, ZoneInfo(self.zone))
            if closes <= opens:
                closes += timedelta(days=1)
            if opens <= local < closes:
                return True
        return False

    def describe(self) -> str:
        if self.start is not None and self.end is not None:
            span = f"{_z(self.start)} to {_z(self.end)}"
        else:
            days = ",".join(DAYS[d].capitalize() for d in self.days)
            span = f"{days} {_hm(self.begins)}-{_hm(self.ends)} {self.zone}"
        return f"{self.reason} ({span})" if self.reason else span


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hm(value: time | None) -> str:
    return value.strftime("%H:%M") if value else "?"


def _clock(text: Any, field: str) -> time:
    if str(text) == "24:00":  # the end of the day: midnight, the next day
        return time(0)
    try:
        hours, minutes = str(text).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"change-freeze window {field} {text!r}; expected HH:MM") from None


def _moment(text: Any, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"change-freeze window {field} {text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"change-freeze window {field} {text!r} has no time zone")
    return moment


_TIME = {"type": "string", "format": "date-time"}
_CLOCK = {"type": "string", "pattern": "^([01][0-9]|2[0-4]):[0-5][0-9]$"}
# One window of the change-freeze policy's `windows`: fixed, or weekly in a time zone.
WINDOW_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"start": _TIME, "end": _TIME, "reason": {"type": "string"}},
            "required": ["start", "end"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "weekly": {
                    "type": "object",
                    "properties": {
                        "days": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "from": _CLOCK,
                        "to": _CLOCK,
                    },
                    "required": ["days", "from", "to"],
                    "additionalProperties": False,
                },
                "timeZone": {"type": "string", "default": "UTC"},
                "reason": {"type": "string"},
            },
            "required": ["weekly"],
            "additionalProperties": False,
        },
    ]
}
_WEEKLY = WINDOW_SCHEMA["oneOf"][1]["properties"]


def parse_window(entry: Mapping[str, Any]) -> Window:
    """One window of the config; ValueError naming what is wrong."""
    reason = str(entry.get("reason", ""))
    if "weekly" in entry:
        weekly = entry["weekly"] or {}
        days = [str(d).lower()[:3] for d in weekly.get("days") or []]
        unknown = [d for d in days if d not in DAYS]
        if not days or unknown:
            raise ValueError(f"change-freeze weekly days {weekly.get('days')!r}; expected {DAYS}")
        zone = str(entry["timeZone"] if "timeZone" in entry else _WEEKLY["timeZone"]["default"])
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"change-freeze timeZone {zone!r} is not an IANA time zone") from None
        return Window(
            reason,
            days=tuple(DAYS.index(d) for d in days),
            begins=_clock(weekly.get("from"), "from"),
            ends=_clock(weekly.get("to"), "to"),
            zone=zone,
        )
    start, end = _moment(entry.get("start"), "start"), _moment(entry.get("end"), "end")
    if end <= start:
        raise ValueError(f"change-freeze window {reason or entry}: end is not after start")
    return Window(reason, start=start, end=end)
