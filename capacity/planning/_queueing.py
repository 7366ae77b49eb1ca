"""Queueing under a concurrency cap: Erlang C (M/M/c) and the Allen–Cunneen M/G/c approximation.

A client-side semaphore (or a fixed number of provisioned slots) of ``c`` requests in flight is
a c-server queue whose service time is the request latency R at that concurrency. With arrival
rate λ and offered load a = λR (Erlangs), ρ = a / c must stay below 1.

- P(wait) = C(c, a), Erlang's C formula (computed from the Erlang B recursion, stable for
  large c).
- Mean wait W_q = C(c, a) / (c/R − λ) for M/M/c; Allen–Cunneen multiplies it by
  (C_a² + C_s²) / 2, the squared coefficients of variation of inter-arrival and service times
  (Poisson arrivals: C_a² = 1; LLM requests with a fixed output length: C_s² ≈ 0.1–0.5).
- P(wait > t) = P(wait) · exp(−t · P(wait) / W_q): the conditional wait is exponential with
  mean W_q / P(wait) (exact for M/M/c, where it equals exp(−(c/R − λ) t)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from capacity.planning._inputs import PlanInputError


def erlang_b(servers: int, offered_load: float) -> float:
    """Erlang B blocking probability B(c, a), by the recursion B_k = a·B_{k−1} / (k + a·B_{k−1})."""
    _check_servers(servers)
    if offered_load < 0 or not math.isfinite(offered_load):
        raise PlanInputError(f"offered_load must be finite and >= 0, got {offered_load!r}")
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    return b


def erlang_c(servers: int, offered_load: float) -> float:
    """Erlang C: probability that an arrival waits in an M/M/c queue, C = B / (1 − ρ(1 − B)).

    Requires offered_load < servers (otherwise the queue grows without bound).
    """
    _check_servers(servers)
    if offered_load >= servers:
        raise PlanInputError(
            f"offered load {offered_load:.4g} Erlangs must be < servers ({servers}): "
            "the queue would grow without bound"
        )
    b = erlang_b(servers, offered_load)
    rho = offered_load / servers
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True)
class WaitStats:
    """Waiting before admission under a cap of ``servers`` concurrent requests.

    ``p_wait`` = P(wait > 0); ``mean_wait_s`` over all requests (Allen–Cunneen adjusted);
    ``utilization`` ρ = λR / c.
    """

    servers: int
    arrival_rate_per_s: float
    mean_service_s: float
    utilization: float
    p_wait: float
    mean_wait_s: float
    ca2: float
    cs2: float

    def p_wait_longer_than(self, t_s: float) -> float:
        """P(wait > t_s): P(wait) · exp(−t_s · P(wait) / W_q)."""
        if t_s < 0:
            raise PlanInputError(f"t_s must be >= 0, got {t_s!r}")
        if self.p_wait <= 0 or self.mean_wait_s <= 0:
            return 0.0
        return self.p_wait * math.exp(-t_s * self.p_wait / self.mean_wait_s)

    def wait_quantile_s(self, q: float) -> float:
        """The q-quantile of the wait (0 when at least a fraction q of requests never wait)."""
        if not 0 < q < 1:
            raise PlanInputError(f"q must be in (0, 1), got {q!r}")
        tail = 1.0 - q
        if self.p_wait <= tail or self.mean_wait_s <= 0:
            return 0.0
        return math.log(self.p_wait / tail) * self.mean_wait_s / self.p_wait


def mgc_wait(
    arrival_rate_per_s: float,
    mean_service_s: float,
    servers: int,
    cs2: float = 1.0,
    ca2: float = 1.0,
) -> WaitStats:
    """Waiting statistics of an M/G/c queue (G/G/c with ``ca2`` ≠ 1) by Allen–Cunneen.

    ``cs2``/``ca2``: squared coefficients of variation of service and inter-arrival times
    (1, 1 gives exact M/M/c). Raises ``PlanInputError`` when λ·R ≥ c.
    """
    _check_servers(servers)
    for name, value in (("arrival_rate_per_s", arrival_rate_per_s), ("cs2", cs2), ("ca2", ca2)):
        if value < 0 or not math.isfinite(value):
            raise PlanInputError(f"{name} must be finite and >= 0, got {value!r}")
    if mean_service_s <= 0 or not math.isfinite(mean_service_s):
        raise PlanInputError(f"mean_service_s must be finite and > 0, got {mean_service_s!r}")
    load = arrival_rate_per_s * mean_service_s
    p_wait = erlang_c(servers, load)
    spare_rate = servers / mean_service_s - arrival_rate_per_s
    mean_wait = p_wait / spare_rate * (ca2 + cs2) / 2.0
    return WaitStats(
        servers=servers,
        arrival_rate_per_s=arrival_rate_per_s,
        mean_service_s=mean_service_s,
        utilization=load / servers,
        p_wait=p_wait,
        mean_wait_s=mean_wait,
        ca2=ca2,
        cs2=cs2,
    )


def min_servers(
    arrival_rate_per_s: float,
    mean_service_s: float,
    *,
    wait_s: float,
    probability: float,
    cs2: float = 1.0,
    ca2: float = 1.0,
) -> int:
    """The smallest cap c with P(wait > ``wait_s``) ≤ ``probability`` (search from ⌊λR⌋ + 1)."""
    if not 0 < probability < 1:
        raise PlanInputError(f"probability must be in (0, 1), got {probability!r}")
    load = arrival_rate_per_s * mean_service_s
    c = max(1, math.floor(load) + 1)
    while (
        mgc_wait(arrival_rate_per_s, mean_service_s, c, cs2, ca2).p_wait_longer_than(wait_s)
        > probability
    ):
        c += 1
    return c


def _check_servers(servers: int) -> None:
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise PlanInputError(f"servers must be an integer >= 1, got {servers!r}")
