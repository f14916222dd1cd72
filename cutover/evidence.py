"""The sequential tests' evidence: how strongly the looks so far say a metric is worse than
its margin allows, as the log of an e-value. Pure arithmetic on counts and values.

An e-process stays below 1/ALPHA under the null with probability at least 1 - ALPHA however
many times it is looked at (Ville's inequality), so failing a metric once its evidence reaches
log(1/ALPHA) keeps the false-fail rate at the margin at most ALPHA over any number of looks:

- error rate: each look's difference of rates (target minus baseline, less the margin),
  weighted by its information under the null (the margin exactly), summed over the looks, with
  a continuity correction on the totals, against a one-sided normal-mixture boundary in
  information time (Robbins; Howard et al., "Time-uniform, nonparametric, nonasymptotic
  confidence sequences", 2021). Look by look, so a change of traffic share between steps
  cannot make an error spike on both colors look like the target's (Simpson's paradox).
  Against a fixed baseline (the target at 100%) the target's looks are pooled against it.
- latency: one value a look, log(target / baseline) less log(1 + margin), judged by the Bayes
  factor of a t-test with a normal prior on the standardised shift and a right-Haar prior on
  the scale, an e-process (Pérez-Ortiz et al., "E-statistics, group invariance and
  anytime-valid testing", 2024); against a fixed baseline, two samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

ALPHA = 0.05
THRESHOLD = math.log(1 / ALPHA)
# The error-rate mixture's scale: excesses over the margin of about this many margins.
MIXTURE_MARGINS = 2.0
# The latency Bayes factor's prior variance of the standardised shift.
LATENCY_PRIOR = 4.0


def error_rate_evidence(
    looks: list[tuple[float, float, float, float]], delta: float, fixed: bool
) -> float:
    """The highest log e-value over the looks that the target's error rate exceeds the
    baseline's by more than `delta` (a fraction). Each look: (target errors, target requests,
    baseline errors, baseline requests); `fixed`: every look's baseline is the same sample."""
    rho = 1 / (MIXTURE_MARGINS * delta) ** 2
    best = -math.inf
    e_t = n_t = e_b = n_b = total = information = 0.0
    for look_e_t, look_n_t, look_e_b, look_n_b in looks:
        e_t, n_t = e_t + look_e_t, n_t + look_n_t
        if fixed:
            e_b, n_b = look_e_b, look_n_b
            variance = _null_variance(e_t, n_t, e_b, n_b, delta, n_t, n_b)
            total, information = (e_t / n_t - e_b / n_b - delta) / variance, 1 / variance
        else:
            e_b, n_b = e_b + look_e_b, n_b + look_n_b
            variance = _null_variance(e_t, n_t, e_b, n_b, delta, look_n_t, look_n_b)
            total += (look_e_t / look_n_t - look_e_b / look_n_b - delta) / variance
            information += 1 / variance
        correction = (0.5 / n_t + 0.5 / n_b) * information  # continuity, on the totals
        best = max(best, _mixture(total - correction, information, rho))
    return best


def _null_variance(
    e_t: float, n_t: float, e_b: float, n_b: float, delta: float, m_t: float, m_b: float
) -> float:
    """The variance of a difference of rates over `m_t` and `m_b` requests under the null
    nearest the counts so far: the target exactly `delta` above the baseline."""
    floor = 0.5 / (n_t + n_b)
    p_b = min(max((e_t + e_b - delta * n_t) / (n_t + n_b), floor), 1 - delta - floor)
    p_t = p_b + delta
    return p_t * (1 - p_t) / m_t + p_b * (1 - p_b) / m_b


def _mixture(total: float, information: float, rho: float) -> float:
    """The log of the one-sided normal-mixture e-value of a sum `total` of increments with
    `information` (its variance under the null), the mixture's precision `rho`."""
    scale = information + rho
    return (
        math.log(2) + 0.5 * math.log(rho / scale) + total * total / (2 * scale)
        + _log_phi(total / math.sqrt(scale))
    )  # fmt: skip


def _log_phi(x: float) -> float:
    """log of the standard normal distribution function, also far in the lower tail."""
    if x > -30:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2)))
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2 * math.pi)


def latency_evidence(values: list[float], baseline: list[float] | None) -> float | None:
    """The highest log Bayes factor over the looks that `values` (one a look, the margin
    already taken off) exceed zero, or, with a fixed `baseline`, exceed its values; None
    while none can be formed."""
    base = None if baseline is None else Moments.of(baseline)
    seen = Moments()
    best: float | None = None
    for value in values:
        seen.add(value)
        evidence = _t_evidence(seen, base)
        if evidence is not None:
            best = evidence if best is None else max(best, evidence)
    return best


@dataclass
class Moments:
    """Count, mean and sum of squared deviations, kept as values come (Welford)."""

    n: int = 0
    mean: float = 0.0
    squares: float = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        step = value - self.mean
        self.mean += step / self.n
        self.squares += step * (value - self.mean)

    @classmethod
    def of(cls, values: Iterable[float]) -> Moments:
        found = cls()
        for value in values:
            found.add(value)
        return found


def _t_evidence(x: Moments, y: Moments | None) -> float | None:
    """The log Bayes factor that `x` exceeds zero (one sample) or `y` (two samples), a normal
    prior of variance LATENCY_PRIOR on the standardised shift; None when it cannot be formed.
    Only a positive shift counts as evidence (one-sided)."""
    if y is None:
        nu = x.n - 1
        if x.n < 2:
            return None
        s2 = x.squares / nu
        effective, difference = float(x.n), x.mean
    else:
        nu = x.n + y.n - 2
        if x.n < 1 or y.n < 1 or nu < 1:
            return None
        s2 = (x.squares + y.squares) / nu
        effective, difference = x.n * y.n / (x.n + y.n), x.mean - y.mean
    if s2 <= 0:  # every look the same: that shift exactly
        return math.inf if difference > 0 else -math.inf
    t = difference / math.sqrt(s2 / effective)
    if t <= 0:
        return -math.inf
    g = LATENCY_PRIOR
    return -0.5 * math.log1p(effective * g) + (nu + 1) / 2 * (
        math.log1p(t * t / nu) - math.log1p(t * t / (nu * (1 + effective * g)))
    )
