"""What one replica of a role can sustain while meeting the SLO. Pure.

- prefill: the largest arrival rate whose M/D/1 TTFT stays within the target. With service time S per
  request, latency D and waiting budget W = target - D - KV transfer, R S^2 / (2 (1 - R S)) <= W gives
  R_max = 2 W / (S^2 + 2 W S); without a TTFT target, the rate at which the replica is busy `max_utilization`
  of the time.
- decode: the largest concurrency (up to maxConcurrentSequences) whose TPOT stays within the target, found by
  bisection (TPOT grows with the batch), and the generated tokens/s it then delivers.
- aggregated: the request rate that keeps both (prompt and decode time share one replica).
The planner turns observed demand into replicas with these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..api import MoEDeploymentSpec
from .bounds import kv_cache_bytes_for_context
from .catalog import resolve_efficiency, resolve_gpu, resolve_model
from .communication import Links, kv_transfer_seconds
from .layout import check_parallelism, role_layout
from .performance import aggregated_seconds_per_request, decode_performance, prefill_performance

DEFAULT_MAX_UTILIZATION = 0.85  # without a latency target, plan replicas to be busy at most this share of time


@dataclass(frozen=True)
class RoleCapacity:
    """Per replica, at the SLO."""

    role: str
    requests_per_second: float
    prompt_tokens_per_second: float
    generated_tokens_per_second: float
    concurrency: int  # decode and aggregated: sequences per replica that keep TPOT within target
    gpus_per_replica: int


def max_md1_rate(service_seconds: float, latency_seconds: float, target_seconds: float | None,
                 max_utilization: float = DEFAULT_MAX_UTILIZATION) -> float:
    """Largest arrival rate (1/s) with M/D/1 mean TTFT <= target, never above `max_utilization` / S."""
    cap = max_utilization / service_seconds
    if target_seconds is None:
        return cap
    budget = target_seconds - latency_seconds
    if budget <= 0:
        return 0.0
    return min(cap, 2 * budget / (service_seconds**2 + 2 * budget * service_seconds))


def _largest_concurrency(tpot_of, upper: int, target_seconds: float | None) -> int:
    """Largest c in [1, upper] with tpot_of(c) <= target (tpot_of grows with c); 0 if even 1 misses it."""
    if target_seconds is None or tpot_of(upper) <= target_seconds:
        return upper
    if tpot_of(1) > target_seconds:
        return 0
    lo, hi = 1, upper  # tpot(lo) <= target < tpot(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if tpot_of(mid) <= target_seconds:
            lo = mid
        else:
            hi = mid
    return lo


def role_capacity_at_slo(spec: MoEDeploymentSpec, role: str) -> RoleCapacity | None:
    """Capacity of one replica of `role` at the spec's SLO; None when the role cannot be laid out."""
    role_spec = dict(spec.roles.items()).get(role)
    if role_spec is None:
        return None
    m, gpu, eff = resolve_model(spec.model), resolve_gpu(spec.hardware), resolve_efficiency(spec.efficiency)
    if check_parallelism(m, role, role_spec, spec.hardware.gpus_per_node):
        return None
    layout = role_layout(m, role, role_spec, spec.hardware.gpus_per_node)
    n, o = spec.workload.input_tokens.mean, spec.workload.output_tokens.mean
    slo = spec.slo
    ttft = slo.ttft_milliseconds / 1e3 if slo.ttft_milliseconds else None
    tpot = slo.tpot_milliseconds / 1e3 if slo.tpot_milliseconds else None

    def tpot_of(c: int) -> float:
        return decode_performance(m, gpu, eff, replace(layout, max_concurrent_sequences=c), n, o).tpot_seconds

    if role == "prefill":
        p = prefill_performance(m, gpu, eff, layout, n)
        transfer = kv_transfer_seconds(kv_cache_bytes_for_context(m, n), layout.gpus_per_replica, Links.of(gpu, eff))
        rate = max_md1_rate(n / p.tokens_per_second_per_replica, p.latency_seconds + transfer, ttft)
        return RoleCapacity(role, rate, rate * n, 0.0, 0, layout.gpus_per_replica)
    if role == "decode":
        c = _largest_concurrency(tpot_of, layout.max_concurrent_sequences, tpot)
        tokens = c / tpot_of(c) if c else 0.0
        return RoleCapacity(role, tokens / o, 0.0, tokens, c, layout.gpus_per_replica)
    c = _largest_concurrency(tpot_of, layout.max_concurrent_sequences, tpot)
    if c == 0:
        return RoleCapacity(role, 0.0, 0.0, 0.0, 0, layout.gpus_per_replica)
    at_slo = replace(layout, max_concurrent_sequences=c)
    p = prefill_performance(m, gpu, eff, at_slo, n)
    d = decode_performance(m, gpu, eff, at_slo, n, o)
    rate = max_md1_rate(aggregated_seconds_per_request(p, d, n, o), p.latency_seconds, ttft)
    return RoleCapacity(role, rate, rate * n, rate * o, c, layout.gpus_per_replica)
