"""The simulated engine's behaviour, from the capacity model. Pure: state in, numbers out.

For one role with `replicas` replica groups receiving `requests_per_second` in total (split evenly):
- served rate = min(offered, what the replicas can do at 100% busy); the rest queues;
- TTFT = prefill latency + M/D/1 wait at the per-replica rate (DistServe), growing without bound at saturation
  (reported capped at `MAX_SECONDS`);
- inter-token latency = the capacity model's TPOT at the concurrency Little's law gives (rate x time in system);
- KV cache usage = running sequences x their mean context over what fits;
- expert load: tokens routed per expert follow a Zipf law of exponent `skew` (0 = uniform).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil

from ..api import MoEDeploymentSpec
from ..capacity.catalog import resolve_efficiency, resolve_gpu, resolve_model
from ..capacity.layout import role_layout
from ..capacity.performance import decode_performance, md1_waiting_seconds, prefill_performance

MAX_SECONDS = 120.0


@dataclass(frozen=True)
class RoleRates:
    """One replica group of a role, per second, at the offered load."""

    offered_requests_per_second: float
    served_requests_per_second: float
    prompt_tokens_per_second: float
    generated_tokens_per_second: float
    running_requests: float
    waiting_requests: float
    ttft_seconds: float
    itl_seconds: float
    kv_cache_usage: float  # 0..1


def zipf_shares(experts: int, skew: float) -> list[float]:
    """Share of routed tokens per expert under Zipf(skew); sums to 1."""
    weights = [1.0 / (i + 1) ** skew for i in range(experts)]
    total = sum(weights)
    return [w / total for w in weights]


def coefficient_of_variation(shares: list[float]) -> float:
    """std / mean of per-expert loads (population std)."""
    mean = sum(shares) / len(shares)
    var = sum((s - mean) ** 2 for s in shares) / len(shares)
    return var**0.5 / mean


def role_rates(spec: MoEDeploymentSpec, role: str, replicas: int, requests_per_second: float) -> RoleRates:
    """What one replica group of `role` does when the role receives `requests_per_second` in total."""
    m, gpu, eff = resolve_model(spec.model), resolve_gpu(spec.hardware), resolve_efficiency(spec.efficiency)
    role_spec = dict(spec.roles.items())[role]
    layout = role_layout(m, role, role_spec, spec.hardware.gpus_per_node)
    n, o = spec.workload.input_tokens.mean, spec.workload.output_tokens.mean
    offered = requests_per_second / max(replicas, 1)
    prefill = prefill_performance(m, gpu, eff, layout, n) if role != "decode" else None
    decode = decode_performance(m, gpu, eff, layout, n, o) if role != "prefill" else None
    busy_per_request = 0.0
    if prefill:
        busy_per_request += n / prefill.tokens_per_second_per_replica
    if decode:
        busy_per_request += o / decode.tokens_per_second_per_replica
    served = min(offered, 1.0 / busy_per_request * 0.999)
    waiting = max(0.0, offered - served) * 30.0  # requests queued over the last 30 s of overload
    ttft = 0.0
    if prefill:
        wait = md1_waiting_seconds(busy_per_request, offered)
        ttft = min(prefill.latency_seconds + wait, MAX_SECONDS)
    itl, running = 0.0, 0.0
    if decode:
        # concurrency by Little's law: generation time of a request x arrival rate, within the batch limit
        concurrency = max(1, min(layout.max_concurrent_sequences, ceil(served * o * decode.tpot_seconds)))
        tpot = decode_performance(m, gpu, eff, replace(layout, max_concurrent_sequences=concurrency), n, o).tpot_seconds
        running, itl = float(concurrency), tpot
    elif prefill:
        running = served * prefill.latency_seconds
    fit_tokens = layout.max_concurrent_sequences * (spec.workload.input_tokens.max + spec.workload.output_tokens.max)
    kv = min(1.0, running * (n + o / 2) / fit_tokens) if fit_tokens else 0.0
    return RoleRates(offered, served, served * n if role != "decode" else 0.0, served * o if role != "prefill" else 0.0,
                     running, waiting, ttft, itl, kv)
