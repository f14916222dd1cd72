"""Whether a shift's timing lets it do what it says, checked before anything moves: every
step judged by the metric analysis the stacks enable (a bake, or a verification, too short for
one window is refused, never a note followed by an unjudged step), and a deadline the plan can
meet. Pure: the stacks' settings and the options in, a line saying what works out.
"""

from __future__ import annotations

from cutover_gates.analysis_config import Settings

from cutover.analysis import BASELINE_WINDOWS, points
from cutover.deployment import Options
from cutover.durations import format_duration
from cutover.errors import ConfigError


def enabled_analyses(all_settings: list[Settings | None], options: Options) -> list[Settings]:
    """The analyses that judge this shift: the stacks' enabled ones, none with --analysis off."""
    return [s for s in all_settings if s and s.enabled] if options.analysis else []


def check_timing(all_settings: list[Settings | None], options: Options, steps: int) -> None:
    """ConfigError (nothing done) naming what works when a shift of `steps` steps would move
    traffic unjudged, or could not finish before its deadline."""
    enabled = enabled_analyses(all_settings, options)
    drill = options.kind == "drill"
    problem = unjudged_problem(enabled, options.bake, options.verify_for, steps, drill)
    problem = problem or deadline_problem(options.deadline, steps, options.bake, options.verify_for)
    if problem:
        raise ConfigError(problem)


def unjudged_problem(
    enabled: list[Settings], bake: float, verify_for: float, steps: int, drill: bool
) -> str | None:
    """Why a shift of `steps` steps (a drill: its one step) would move traffic the enabled
    analyses never judge: its bake, or its verification at 100%, ends before the first window
    is judged (one window and its publishing delay after the step is served). None when
    every step is judged: each step before the last by its bake, the last by its bake or the
    verification. The answer names the shortest that works, or `--analysis off`."""
    if not enabled:
        return None
    period = max(s.period_seconds for s in enabled)
    first = period + max(s.delay_seconds for s in enabled)  # as the analysis guard waits
    need = f"{format_duration(first)}: one {period}s window and its publishing delay"
    off = "or --analysis off to move without the analysis this once"
    if 0 < verify_for < first and not drill:
        return (
            f"--verify-for {format_duration(verify_for)} ends before the metric analysis judges "
            f"100% ({need}); give --verify-for {format_duration(first)} or longer, --verify-for 0 "
            f"(each step's bake judges it), {off}"
        )
    last_judged = bake >= first or (verify_for >= first and not drill)
    if bake < first and (steps > 1 or not last_judged):
        what = "its step" if drill else ("a step" if steps > 1 else "100%")
        return (
            f"--bake {format_duration(bake)} ends before the metric analysis judges {what} "
            f"({need}), so traffic would move on unjudged; give --bake {format_duration(first)} "
            f"or longer, {off}"
        )
    return None


def deadline_problem(
    deadline: float | None, steps: int, bake: float, verify_for: float
) -> str | None:
    """Why `--deadline` cannot be met by a plan of `steps` bakes and the verification at 100%
    (it would move traffic, then roll back for want of time); None when it can."""
    if deadline is None:
        return None
    plan = steps * bake + verify_for
    if deadline > plan:
        return None
    said = format_duration
    return (
        f"--deadline {said(deadline)} ends before the plan does: {steps} step(s) x --bake "
        f"{said(bake)} + --verify-for {said(verify_for)} = {said(plan)}, before any write or "
        f"pause; give a --deadline longer than {said(plan)}"
    )


def analysis_said(all_settings: list[Settings | None], options: Options) -> str:
    """One line on what judges the target against the baseline during this shift."""
    on = enabled_analyses(all_settings, options)
    if not options.analysis:
        return "Metric analysis off for this shift (--analysis off)."
    if not on:
        return "Metric analysis: not enabled on the stack (cutover:analysis.enabled)."
    period = max(a.period_seconds for a in on)
    return (
        f"Metric analysis: {options.target} against the other color per {period}s window "
        f"(error rate +{points(on[0].max_error_rate_increase)}, {on[0].latency_statistic} "
        f"latency +{on[0].max_latency_increase_percent:g}%, at least {on[0].min_requests} "
        "requests a window); downtime guard: requests failing at the load balancer from the "
        f"first write on against the {BASELINE_WINDOWS} windows before it "
        f"(+{points(on[0].max_failed_request_increase)})."
    )
