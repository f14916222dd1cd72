"""Pre-deployment validation (substage 30.1): before any traffic moves, the release gates (the
same judgement as the policy pack, on local records and the journal's outcomes: `gate_judge`,
which the shift also asks before every later step, and `cutover resume` before it continues),
the target color's capacity and health (at least what the first step's share needs of it:
`cutover.fleet.ready_needed`), the other color intact to take traffic back, every guard of the
first step tried once (its alarms, probes and metric source, the downtime guard's figures
holding today's requests, and the analysis able to judge the first step at today's request
rate), and an optional smoke test on the test listener. Refusals
raise GateRefused (exit 2): nothing was changed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cutover_gates.config_schema import TRUSTED_KEYS
from cutover_gates.contract import (
    COLORS,
    EMERGENCY,
    POLICY_OF_KIND,
    Color,
    LatestOutcome,
    OutcomeUnreadable,
    other_color,
    parse_color,
)
from cutover_gates.gate import judge_gate
from cutover_gates.record import Expected, Unreadable, parse_record
from cutover_gates.rules import gate_config
from cutover_gates.stack_outputs import StackOutputs

from cutover.analysis import first_look_problem
from cutover.deployment import Options
from cutover.engine.guard import AlarmGuard, Guard, ProbeGuard
from cutover.engine.plan import plan_shift
from cutover.errors import ConfigError, GateRefused
from cutover.fleet import short_for_step
from cutover.journal import Journal
from cutover.metrics import LoadBalancerSource, MetricsUnavailable, source_for
from cutover.outputs import analysis_of
from cutover.pack_config import load_gates_config
from cutover.service import Service
from cutover.weights import Weights


def load_records(folder: Path) -> list[tuple[Path, Any]]:
    """Every JSON document in `folder` (records of any kind, for any color), parsed strictly;
    ConfigError naming the file when one cannot be read as a record."""
    if not folder.is_dir():
        raise ConfigError(
            f"--records {folder}: not a folder; expected the folder of gate record files"
        )
    found = []
    for path in sorted(folder.glob("*.json")):
        if path.is_dir():
            raise ConfigError(f"--records: {path} is a folder; expected a gate record file")
        try:
            document = parse_record(path.read_bytes())
        except OSError as e:
            raise ConfigError(
                f"--records: {path} cannot be read ({e.strerror}; a dangling link?)"
            ) from None
        if isinstance(document, Unreadable):
            raise ConfigError(f"--records: {path} {document.reason}")
        found.append((path, document))
    return found


def check_gates(
    outputs: StackOutputs,
    color: str,
    kinds: list[str],
    pack_config: dict[str, Any],
    records: list[tuple[Path, Any]],
    outcomes: Mapping[Color, LatestOutcome] | None = None,
) -> list[str]:
    """Problems that stop traffic moving onto `color`'s release (empty when every gate holds),
    each the pack's own verdict (judge_gate) over the record files: the `kinds` gates and the
    change freeze. `outcomes`: each color's latest outcome in the stack's journal, so that a
    release rolled back on this stack needs an approval newer than its rollback."""
    target = parse_color(color)
    release = outputs.releases[target]
    latest = (outcomes or {}).get(target)
    now = datetime.now(UTC)
    problems = []
    for kind in dict.fromkeys([*kinds, EMERGENCY]):  # an emergency is judged in a freeze only
        expected = Expected(kind, outputs.project, outputs.stack, release.version,
                            release.digest, color)  # fmt: skip
        documents = [d for _, d in records if _of(d, kind, color)]
        try:
            config = gate_config(pack_config, kind)
        except ValueError as e:  # load_gates_config refuses it; a config from elsewhere may not
            problems.append(f"{kind} gate for {outputs.name}: the pack config is refused: {e}")
            continue
        problem = judge_gate(expected, documents, config, now, latest)
        if problem is not None:
            problems.append(f"{kind} gate for {outputs.name}: {problem}")
    return problems


def gate_judge(
    services: list[Service],
    journal: Journal,
    target: Color,
    kinds: list[str],
    gates_config: Path,
    records: Path,
) -> Callable[[], list[str]]:
    """The one judge of moving traffic onto `target` for every door (shift, drill, resume,
    each later step after a pause or a bake): the pack config and the records read again
    from their files at each judgement (a key revoked meanwhile counts), and each
    listener's outcomes from the journal (a release rolled back since needs a newer
    approval); a fact it cannot read fails closed, named."""

    def judge() -> list[str]:
        try:
            pack_config = load_gates_config(gates_config)
            found = load_records(records)
        except ConfigError as e:
            return [str(e)]
        problems = []
        for s in services:
            outcomes = _outcomes(journal, s.key)
            problems += check_gates(s.outputs, target, kinds, pack_config, found, outcomes)
        return problems

    return judge


def _outcomes(journal: Journal, key: str) -> Mapping[Color, LatestOutcome]:
    """Each color's latest outcome on listener or route `key`; unreadable (so the gates
    that need it fail closed, saying why) when the journal cannot be read."""
    try:
        return journal.outcomes(key)
    except Exception as e:  # noqa: BLE001 - any failure to read is a fact the gate fails on
        unread = OutcomeUnreadable(f"the journal could not be read ({type(e).__name__}: {e})")
        return {c: unread for c in COLORS}


def _of(document: Any, kind: str, color: str) -> bool:
    body = document.get("record") if isinstance(document, dict) else None
    return isinstance(body, dict) and body.get("kind") == kind and body.get("color") == color


def pack_config_trusting(keys: dict[str, str]) -> dict[str, Any]:
    """Pack config trusting one public key per record kind (`{"approval": key, ...}`)."""
    return {POLICY_OF_KIND[kind]: {TRUSTED_KEYS.key: [key]} for kind, key in keys.items()}


def guard_problems(
    services: list[Service], options: Options, now: float, first: list[Weights | None]
) -> list[str]:
    """Each guard of the first step tried once, before anything moves: the target's alarms
    answer and none is in ALARM, every probe passes, and, with the analysis on, each stack's
    metric source answers, the downtime guard's figures hold today's requests, and today's
    request rate lets the first step (`first`, each service's; None: the shift has no step
    there) be judged in its bake."""
    problems = []
    alarms = [n for s in services for n in s.outputs.alarm_names[options.target]]
    tried: list[Guard] = [AlarmGuard(alarms)] if alarms else []
    tried += [ProbeGuard(url, status) for url, status in options.probes]
    for guard in tried:
        verdict = guard.check()
        if verdict.state != "ok":
            problems.append(f"{verdict.guard} guard {verdict.state} before any traffic moved: "
                            f"{verdict.detail}")  # fmt: skip
    if options.analysis:
        for s, step in zip(services, first, strict=True):
            problems += _analysis_problems(s, options, now, step)
    return problems


def _analysis_problems(
    service: Service, options: Options, now: float, first: Weights | None
) -> list[str]:
    o, settings = service.outputs, analysis_of(service.outputs)
    if settings is None or not settings.enabled:
        return []
    source = source_for(o)
    if source is None:
        missing = "output `metrics` (the ALB's CloudWatch dimensions)" if o.routing == "alb" \
            else "cutover:analysis.prometheus.url"  # fmt: skip
        return [f"{o.name}: cutover:analysis is enabled but the stack has no {missing}; nothing "
                "would judge the target: re-export the outputs, or --analysis off"]  # fmt: skip
    period = settings.period_seconds
    end = now - settings.delay_seconds
    start = end - period  # the latest complete window: today's request rate
    try:
        found = source.windows(start, end)
    except MetricsUnavailable as e:
        return [f"{o.name}: the metric analysis cannot read its figures: {e}"]
    rate = sum(w.requests for ws in found.values() for w in ws[-1:]) / period
    problem = _downtime_problem(o, source, start, end, rate * period)
    if problem:
        return [problem]
    if first is None:
        return []
    problem = first_look_problem(rate, first[options.target] / 100, settings, options.bake,
                                 o.name)  # fmt: skip
    return [problem] if problem else []


def _downtime_problem(
    outputs: StackOutputs, source: LoadBalancerSource, start: float, end: float, seen: float
) -> str | None:
    """Why the downtime guard could not judge this stack: its figures cannot be read, or they
    hold no request in the window where the analysis's hold `seen` (its queries read nothing:
    never silently a guard that always passes)."""
    try:
        windows = source.load_balancer(start, end)
    except MetricsUnavailable as e:
        return f"{outputs.name}: the downtime guard cannot read its figures: {e}"
    if seen <= 0 or any(w.requests > 0 for w in windows[-1:]):
        return None
    if outputs.routing == "gateway":
        read, fix = (
            "cutover:analysis.prometheus.queries.gatewayRequests reads none",
            "give gatewayRequests and gatewayErrors for your Gateway's request metrics",
        )
    else:
        read, fix = (
            "the load balancer's RequestCount (AWS/ApplicationELB, dimension LoadBalancer) "
            "holds none",
            "check output `metrics.loadBalancer` (the ALB's ARN suffix)",
        )
    return (
        f"{outputs.name}: the analysis reads {seen:.0f} requests in the latest window but "
        f"{read}, so the downtime guard would judge nothing: {fix}, or --analysis off"
    )


def preflight(
    services: list[Service],
    options: Options,
    gates: Callable[[], list[str]],
    min_healthy: int | None,
    smoke: str | None,
    log: Callable[[str], None],
    now: Callable[[], float] = time.time,
) -> None:
    """Gates (`gate_judge`), target capacity and health, the other color intact, the first
    step's guards, smoke test. GateRefused (exit 2) naming every problem; nothing is changed
    either way."""
    target = options.target
    if smoke:
        for s in services:
            if not s.outputs.test_url:
                raise ConfigError(
                    f"--smoke: {s.outputs.name} has no test listener (Gateway routing); smoke-test "
                    "the inactive color's Service before shifting, and drop --smoke"
                )
    problems: list[str] = gates()
    first: list[Weights | None] = []  # each service's first step, its routing read once
    for s in services:
        o, fleet = s.outputs, s.fleet
        need = min_healthy or o.services[target].capacity
        ready = fleet.ready(target)
        first.append(next(iter(plan_shift(s.router.served(), target, options.steps)), None))
        if ready < need:
            problems.append(
                f"{o.name}: {target} has {ready} {fleet.unit}; it needs {need} before it takes traffic"
            )
        elif first[-1] is not None:  # a --min-healthy below what the first step needs
            short = short_for_step(o, fleet, target, first[-1], ready)
            problems += [short] if short else []
        other = other_color(target)
        if fleet.ready(other) == 0:
            problems.append(
                f"{o.name}: {other} has no {fleet.unit}; it could not take traffic back"
            )
    if not problems:  # the guards are tried once the gates and fleets allow a shift at all
        problems += guard_problems(services, options, now(), first)
    if problems:
        raise GateRefused("refused, nothing was changed:\n  " + "\n  ".join(problems))
    if smoke:
        for s in services:
            url = str(s.outputs.test_url)
            log(f"Smoke test against {url}: {smoke}")
            code = run_smoke(smoke, {**os.environ, "CUTOVER_TEST_URL": url})
            if code != 0:
                raise GateRefused(
                    f"smoke test failed (exit {code}) against {url}; nothing was changed"
                )


# How long a smoke test stopped by a signal may take to exit before it is killed.
SMOKE_STOP_SECONDS = 5.0


def run_smoke(command: str, env: dict[str, str]) -> int:
    """Run the smoke command in a process group of its own, its exit code; if this process
    is interrupted meanwhile, the whole group is stopped (SIGTERM, then SIGKILL) before the
    interrupt goes on, so no smoke test outlives the shift it was for."""
    process = subprocess.Popen(command, shell=True, env=env, process_group=0)
    try:
        return process.wait()
    except BaseException:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=SMOKE_STOP_SECONDS)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
