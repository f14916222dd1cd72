"""How a policy is declared, once: its name, its check (whose docstring is its description),
its config (keys, schema, defaults and typed shape) and what a reviewer sees of it.

Pure, so the helper reads the same declarations to validate `--gates-config` without the
policy SDK; `plumbing.py` serves them to the engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cutover_gates.config_schema import ConfigDeclaration
from cutover_gates.facts import Res, StackFacts

# report(message) or report(message, urn): the SDK's ReportViolation, urn optional.
Report = Callable[..., None]


class Severity(StrEnum):
    """How bad a violation is, as Pulumi Cloud ranks it."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True)
class About:
    """What a reviewer in Pulumi Cloud sees of a policy besides its description."""

    display_name: str
    severity: Severity
    remediation: str  # the generic fix; violations say what is wrong in this update
    tags: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Policy:
    """One policy: its name, its config and what a reviewer sees; its check's docstring is its
    description, the one place that is written."""

    name: str
    config: ConfigDeclaration[Any]
    about: About
    check: Callable[..., None]

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.check)
        if not doc:
            raise ValueError(f"{self.check.__name__} has no docstring to describe {self.name}")
        return " ".join(doc.split())


@dataclass(frozen=True, kw_only=True)
class StackPolicy(Policy):
    """A policy over the whole stack (StackFacts): a violation names the production listener
    or HTTPRoute unless it names a resource of its own."""

    check: Callable[[StackFacts, Any, Report], None]


@dataclass(frozen=True, kw_only=True)
class ResourcePolicy(Policy):
    """A policy over one resource (type, URN, properties)."""

    check: Callable[[Res, Any, Report], None]


def utc_now() -> datetime:
    return datetime.now(UTC)
