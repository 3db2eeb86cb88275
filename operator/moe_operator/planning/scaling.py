"""The scaling planner: replicas per role from observed load, the SLO and the capacity model. Pure.

Per role, every interval:
1. demand = the observed token (or request) rate plus the queue drained within `drain_seconds`, times
   (1 + headroom); needed = ceil(demand / what one replica sustains at the SLO) (capacity.slo_capacity);
2. corrections from what is observed: TTFT p95 above target pushes prefill (or aggregated) up by at least
   one, inter-token latency p95 above target pushes decode (or aggregated) up; an idle side comes down
   through the same arithmetic;
3. stabilisation: scale up to the smallest recommendation of the scale-up window (default 0 s: at once),
   down to the largest of the scale-down window (default 300 s, and only once there is that much history),
   so a load that oscillates does not make replicas flap;
4. at most one step per role per interval, unless the gap is large (scale-up only);
5. min/max replicas per role, and `hardware.maxGPUs` over all roles: when the budget binds, GPUs go one
   replica at a time to the role furthest from its target (highest needed / allotted).
Missing or stale metrics, or an unreachable Prometheus, hold the current replicas (never scale to zero
by accident) and say why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from ..capacity.slo_capacity import RoleCapacity


@dataclass(frozen=True)
class RoleLoad:
    """Observed load of a whole role (all its replicas), from Prometheus."""

    requests_per_second: float | None = None
    prompt_tokens_per_second: float | None = None
    generated_tokens_per_second: float | None = None
    queued_requests: float | None = None
    ttft_p95_seconds: float | None = None
    itl_p95_seconds: float | None = None
    age_seconds: float = 0.0  # age of the newest sample


@dataclass(frozen=True)
class Observation:
    reachable: bool
    roles: dict[str, RoleLoad] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class RolePolicy:
    role: str
    current_replicas: int
    min_replicas: int
    max_replicas: int
    gpus_per_replica: int
    capacity: RoleCapacity  # one replica, at the SLO
    mean_prompt_tokens: int
    mean_output_tokens: int
    ttft_target_seconds: float | None = None
    tpot_target_seconds: float | None = None


@dataclass(frozen=True)
class PlannerConfig:
    headroom: float = 0.2
    scale_up_window_seconds: float = 0.0  # like the HPA: react to a peak at once; flapping is stopped by the down window
    scale_down_window_seconds: float = 300.0
    stale_after_seconds: float = 120.0
    drain_seconds: float = 30.0
    large_gap_fraction: float = 0.5  # a scale-up gap of at least this share of current (and >= 2) jumps at once


@dataclass(frozen=True)
class Recommendation:
    at_seconds: float
    replicas: int


@dataclass(frozen=True)
class RoleDecision:
    role: str
    current: int
    desired: int
    needed: int  # before stabilisation, step limits and budget
    reason: str
    demand: float | None  # tokens/s (requests/s for aggregated) incl. headroom and queue
    capacity_per_replica: float
    held: bool = False
    limited_by_budget: bool = False

    @property
    def direction(self) -> str:
        return "up" if self.desired > self.current else "down" if self.desired < self.current else "none"


@dataclass(frozen=True)
class PlannerResult:
    decisions: dict[str, RoleDecision]
    history: dict[str, tuple[Recommendation, ...]]
    budget_message: str = ""

    @property
    def limited(self) -> bool:
        return bool(self.budget_message)


def _demand(p: RolePolicy, load: RoleLoad, cfg: PlannerConfig) -> tuple[float | None, float]:
    """(demand incl. headroom and queue, capacity of one replica), in the role's unit."""
    queue = (load.queued_requests or 0.0) / cfg.drain_seconds  # requests/s to drain the queue in time
    if p.role == "prefill":
        rate = load.prompt_tokens_per_second
        if rate is None and load.requests_per_second is not None:
            rate = load.requests_per_second * p.mean_prompt_tokens
        demand, capacity = (None if rate is None else rate + queue * p.mean_prompt_tokens), p.capacity.prompt_tokens_per_second
    elif p.role == "decode":
        rate = load.generated_tokens_per_second
        demand, capacity = (None if rate is None else rate + queue * p.mean_output_tokens), p.capacity.generated_tokens_per_second
    else:
        rate = load.requests_per_second
        if rate is None and load.prompt_tokens_per_second is not None:
            rate = load.prompt_tokens_per_second / p.mean_prompt_tokens
        demand, capacity = (None if rate is None else rate + queue), p.capacity.requests_per_second
    return (None if demand is None else demand * (1 + cfg.headroom)), capacity


def _needed(p: RolePolicy, load: RoleLoad, cfg: PlannerConfig) -> tuple[int, str, float | None, float]:
    demand, capacity = _demand(p, load, cfg)
    if demand is None:
        return p.current_replicas, "MetricsMissing", None, capacity
    if capacity <= 0:
        return p.current_replicas, "SLOUnreachablePerReplica", demand, capacity
    needed, reason = ceil(demand / capacity - 1e-9), "Load"
    slow_ttft = p.ttft_target_seconds and load.ttft_p95_seconds and load.ttft_p95_seconds > p.ttft_target_seconds
    slow_itl = p.tpot_target_seconds and load.itl_p95_seconds and load.itl_p95_seconds > p.tpot_target_seconds
    if slow_ttft and p.role in ("prefill", "aggregated") and needed <= p.current_replicas:
        needed, reason = p.current_replicas + 1, "TTFTAboveTarget"
    if slow_itl and p.role in ("decode", "aggregated") and needed <= p.current_replicas:
        needed, reason = p.current_replicas + 1, "InterTokenLatencyAboveTarget"
    return max(p.min_replicas, min(p.max_replicas, needed)), reason, demand, capacity


def _stabilised(p: RolePolicy, needed: int, history: tuple[Recommendation, ...], now: float, cfg: PlannerConfig) -> int:
    up = [r.replicas for r in history if now - r.at_seconds <= cfg.scale_up_window_seconds]
    down = [r.replicas for r in history if now - r.at_seconds <= cfg.scale_down_window_seconds]
    window_covered = any(now - r.at_seconds >= cfg.scale_down_window_seconds for r in history)
    if not window_covered:  # too little history to prove the load stayed low: the current count stands for it
        down.append(p.current_replicas)
    up_target, down_target = min(up + [needed]), max(down + [needed])
    if up_target > p.current_replicas:
        target = up_target
    elif down_target < p.current_replicas:
        target = down_target
    else:
        return p.current_replicas
    gap = target - p.current_replicas
    if gap > 0 and gap >= max(2, cfg.large_gap_fraction * p.current_replicas):
        return target
    return p.current_replicas + (1 if gap > 0 else -1)


def _fit_budget(policies: list[RolePolicy], wanted: dict[str, int], pressure: dict[str, float],
                max_gpus: int | None) -> tuple[dict[str, int], str]:
    def gpus(alloc: dict[str, int]) -> int:
        return sum(alloc[p.role] * p.gpus_per_replica for p in policies)

    if max_gpus is None or gpus(wanted) <= max_gpus:
        return wanted, ""
    alloc = {p.role: max(p.min_replicas, 0) for p in policies}
    while True:
        options = [p for p in policies if alloc[p.role] < wanted[p.role] and gpus(alloc) + p.gpus_per_replica <= max_gpus]
        if not options:
            break
        best = max(options, key=lambda p: pressure[p.role] / max(alloc[p.role], 1))
        alloc[best.role] += 1
    parts = ", ".join(f"{p.role} wants {wanted[p.role]} ({wanted[p.role] * p.gpus_per_replica} GPUs), gets {alloc[p.role]}" for p in policies)
    return alloc, f"hardware.maxGPUs={max_gpus} binds: {parts}; replicas go to the role furthest from its target"


def plan_replicas(policies: list[RolePolicy], observation: Observation, history: dict[str, tuple[Recommendation, ...]],
                  now_seconds: float, max_gpus: int | None, cfg: PlannerConfig = PlannerConfig()) -> PlannerResult:
    """Desired replicas per role, with the reasons and numbers behind them."""
    decisions: dict[str, RoleDecision] = {}
    new_history = dict(history)
    if not observation.reachable:
        for p in policies:
            decisions[p.role] = RoleDecision(p.role, p.current_replicas, p.current_replicas, p.current_replicas,
                                             f"PrometheusUnreachable: {observation.error}"[:200], None, 0.0, held=True)
        return PlannerResult(decisions, new_history)
    wanted: dict[str, int] = {}
    pressure: dict[str, float] = {}
    for p in policies:
        load = observation.roles.get(p.role)
        if load is None or load.age_seconds > cfg.stale_after_seconds:
            reason = "MetricsMissing" if load is None else f"MetricsStale ({load.age_seconds:.0f}s old)"
            decisions[p.role] = RoleDecision(p.role, p.current_replicas, p.current_replicas, p.current_replicas, reason, None, 0.0, held=True)
            wanted[p.role], pressure[p.role] = p.current_replicas, 0.0
            continue
        needed, reason, demand, capacity = _needed(p, load, cfg)
        if reason in ("MetricsMissing", "SLOUnreachablePerReplica"):
            decisions[p.role] = RoleDecision(p.role, p.current_replicas, p.current_replicas, needed, reason, demand, capacity, held=True)
            wanted[p.role], pressure[p.role] = p.current_replicas, 0.0
            continue
        past = tuple(r for r in history.get(p.role, ()) if now_seconds - r.at_seconds <= 2 * cfg.scale_down_window_seconds)
        target = _stabilised(p, needed, past, now_seconds, cfg)
        new_history[p.role] = past + (Recommendation(now_seconds, needed),)
        wanted[p.role] = target
        pressure[p.role] = needed
        decisions[p.role] = RoleDecision(p.role, p.current_replicas, target, needed, reason, demand, capacity)
    alloc, message = _fit_budget(policies, wanted, pressure, max_gpus)
    for p in policies:
        d = decisions[p.role]
        if alloc[p.role] != d.desired:
            decisions[p.role] = RoleDecision(d.role, d.current, alloc[p.role], d.needed, d.reason, d.demand,
                                             d.capacity_per_replica, d.held, limited_by_budget=True)
    return PlannerResult(decisions, new_history, message)
