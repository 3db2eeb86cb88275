"""The scaling planner and the capacity one replica sustains at the SLO."""

from __future__ import annotations

import math

import pytest

from moe_operator.capacity.slo_capacity import RoleCapacity, max_md1_rate, role_capacity_at_slo
from moe_operator.capacity.performance import md1_waiting_seconds
from moe_operator.planning.scaling import (
    Observation,
    PlannerConfig,
    Recommendation,
    RoleLoad,
    RolePolicy,
    plan_replicas,
)
from tests.builders import disaggregated

PREFILL_CAP = RoleCapacity("prefill", 10.0, 20_000.0, 0.0, 0, 4)  # one replica: 20k prompt tokens/s at the SLO
DECODE_CAP = RoleCapacity("decode", 20.0, 0.0, 5_000.0, 128, 2)  # one replica: 5k generated tokens/s at the SLO
CFG = PlannerConfig(headroom=0.0, scale_up_window_seconds=0, scale_down_window_seconds=300)


def _policies(prefill=2, decode=2, max_replicas=20):
    return [RolePolicy("prefill", prefill, 1, max_replicas, 4, PREFILL_CAP, 2000, 250, ttft_target_seconds=1.0),
            RolePolicy("decode", decode, 1, max_replicas, 2, DECODE_CAP, 2000, 250, tpot_target_seconds=0.05)]


def _load(prompt_tps, gen_tps, **kw):
    return Observation(True, {"prefill": RoleLoad(prompt_tokens_per_second=prompt_tps, **kw.get("p", {})),
                              "decode": RoleLoad(generated_tokens_per_second=gen_tps, **kw.get("d", {}))})


def _run(loads, prefill=2, decode=2, max_gpus=None, cfg=CFG, interval=30.0):
    """Feed one observation per interval, applying each decision as the next current replicas."""
    history, trace = {}, []
    for i, obs in enumerate(loads):
        r = plan_replicas(_policies(prefill, decode), obs, history, i * interval, max_gpus, cfg)
        history = r.history
        prefill, decode = r.decisions["prefill"].desired, r.decisions["decode"].desired
        trace.append((prefill, decode, r))
    return trace


def test_steady_load_changes_nothing():
    trace = _run([_load(35_000, 9_000)] * 10)  # needs ceil(1.75)=2 prefill, ceil(1.8)=2 decode
    assert {(p, d) for p, d, _ in trace} == {(2, 2)}


def test_step_up_follows_the_capacity_model():
    trace = _run([_load(35_000, 9_000)] * 2 + [_load(100_000, 30_000)] * 6)
    assert trace[1][:2] == (2, 2)
    # 100k / 20k = 5 prefill; 30k / 5k = 6 decode: a large gap, so the planner jumps at once
    assert trace[2][:2] == (5, 6)
    assert trace[-1][:2] == (5, 6)
    assert trace[2][2].decisions["prefill"].reason == "Load" and trace[2][2].decisions["decode"].demand == pytest.approx(30_000)


def test_small_gaps_move_one_step_per_interval():
    trace = _run([_load(55_000, 9_000)] + [_load(75_000, 9_000)] * 3, prefill=3)
    # 55k needs 3 (no change), 75k needs 4: +1; the first sample never scales down without history
    assert [p for p, _, _ in trace] == [3, 4, 4, 4]
    big = _run([_load(55_000, 9_000), _load(150_000, 9_000)], prefill=3)
    assert [p for p, _, _ in big] == [3, 8]  # a gap of 5 on 3 is large: jump


def test_a_scale_up_window_delays_scale_up_by_that_window():
    cfg = PlannerConfig(headroom=0.0, scale_up_window_seconds=30, scale_down_window_seconds=300)
    trace = _run([_load(35_000, 9_000)] * 2 + [_load(100_000, 30_000)] * 3, cfg=cfg)
    assert [t[:2] for t in trace] == [(2, 2), (2, 2), (2, 2), (5, 6), (5, 6)]


def test_step_down_only_after_the_scale_down_window():
    loads = [_load(100_000, 30_000)] * 2 + [_load(20_000, 5_000)] * 16
    trace = _run(loads, prefill=5, decode=6)
    downs = [i for i, (p, _, _) in enumerate(trace) if p < 5]
    # the low load starts at t=60; the 300 s window still holds the high recommendations until t=60+300
    assert downs and downs[0] * 30 > 60 + 300 - 30
    # then one replica per interval
    ps = [p for p, _, _ in trace[downs[0]:]]
    assert all(a - b <= 1 for a, b in zip(ps, ps[1:]))


def test_oscillating_load_does_not_flap():
    loads = [_load(100_000, 30_000) if i % 2 else _load(30_000, 8_000) for i in range(20)]
    trace = _run(loads, prefill=2, decode=2)
    ps = [p for p, _, _ in trace]
    changes = sum(1 for a, b in zip(ps, ps[1:]) if a != b)
    assert ps[-1] == 5 and changes <= 2  # goes up once and stays: the down window keeps the peaks


def test_ttft_above_target_pushes_prefill_up_even_when_the_model_says_enough():
    obs = _load(30_000, 9_000, p={"ttft_p95_seconds": 2.5})
    r = plan_replicas(_policies(), obs, {}, 0.0, None, CFG)
    assert r.decisions["prefill"].desired == 3 and r.decisions["prefill"].reason == "TTFTAboveTarget"
    assert r.decisions["decode"].desired == 2


def test_inter_token_latency_above_target_pushes_decode_up():
    obs = _load(30_000, 9_000, d={"itl_p95_seconds": 0.08})
    r = plan_replicas(_policies(), obs, {}, 0.0, None, CFG)
    assert r.decisions["decode"].desired == 3 and r.decisions["decode"].reason == "InterTokenLatencyAboveTarget"


def test_budget_binding_splits_by_distance_from_target():
    # wants prefill 5 (20 GPUs) + decode 8 (16 GPUs) = 36 GPUs; budget 24
    r = plan_replicas(_policies(5, 8), _load(100_000, 40_000), {}, 0.0, max_gpus=24, cfg=CFG)
    p, d = r.decisions["prefill"], r.decisions["decode"]
    assert p.desired * 4 + d.desired * 2 <= 24
    assert p.limited_by_budget or d.limited_by_budget
    assert r.limited and "maxGPUs=24 binds" in r.budget_message
    # the split follows the shortfall: each role keeps a comparable share of what it needs
    assert abs(p.desired / 5 - d.desired / 8) <= 0.3


def test_budget_never_exceeded_whatever_the_demand():
    for demand in (1e4, 1e5, 1e6, 1e7):
        r = plan_replicas(_policies(1, 1, max_replicas=1000), _load(demand, demand / 4), {}, 0.0, max_gpus=64, cfg=CFG)
        assert sum(d.desired * g for d, g in zip(r.decisions.values(), (4, 2))) <= 64


def test_missing_or_stale_metrics_hold_with_a_reason():
    r = plan_replicas(_policies(3, 4), Observation(True, {"prefill": RoleLoad(age_seconds=600, prompt_tokens_per_second=1)}),
                      {}, 0.0, None, CFG)
    assert (r.decisions["prefill"].desired, r.decisions["prefill"].held) == (3, True)
    assert r.decisions["prefill"].reason.startswith("MetricsStale")
    assert (r.decisions["decode"].desired, r.decisions["decode"].reason) == (4, "MetricsMissing")


def test_unreachable_prometheus_holds_and_never_scales_to_zero():
    r = plan_replicas(_policies(3, 4), Observation(False, error="connection refused"), {}, 0.0, None, CFG)
    assert {d.desired for d in r.decisions.values()} == {3, 4}
    assert all(d.held and d.reason.startswith("PrometheusUnreachable") for d in r.decisions.values())
    # and zero load never goes below min replicas (1)
    z = plan_replicas(_policies(3, 4), _load(0.0, 0.0), {}, 10_000.0, None, CFG)
    assert all(d.desired >= 1 for d in z.decisions.values())


def test_history_is_bounded():
    history = {"prefill": tuple(Recommendation(t, 2) for t in range(0, 5000, 30))}
    r = plan_replicas(_policies(), _load(35_000, 9_000), history, 5000.0, None, CFG)
    assert all(5000.0 - x.at_seconds <= 600 for x in r.history["prefill"])


# ---------------------------------------------------------------------------------------------- capacity at SLO


def test_md1_rate_inverts_the_queue():
    s, d, target = 0.2, 0.3, 1.0
    rate = max_md1_rate(s, d, target, max_utilization=1.0)
    assert d + md1_waiting_seconds(s, rate) == pytest.approx(target)
    assert max_md1_rate(s, 1.5, target) == 0.0
    assert max_md1_rate(s, d, None) == pytest.approx(0.85 / s)


def test_role_capacity_at_slo_matches_the_capacity_model():
    spec = disaggregated(prefill={"parallelism": {"tensor": 4}, "maxConcurrentSequences": 16},
                         decode={"parallelism": {"tensor": 2}, "maxConcurrentSequences": 256},
                         slo={"ttftMilliseconds": 1000, "tpotMilliseconds": 30})
    pre, dec = role_capacity_at_slo(spec, "prefill"), role_capacity_at_slo(spec, "decode")
    assert 0 < pre.prompt_tokens_per_second and pre.gpus_per_replica == 4
    assert 0 < dec.concurrency < 256  # 256 sequences would break the 30 ms TPOT
    looser = disaggregated(prefill={"parallelism": {"tensor": 4}}, decode={"parallelism": {"tensor": 2}, "maxConcurrentSequences": 256},
                           slo={"tpotMilliseconds": 60})
    assert role_capacity_at_slo(looser, "decode").concurrency > dec.concurrency
    assert math.isclose(dec.generated_tokens_per_second / dec.requests_per_second, 256.0)



def test_promql_per_engine_and_overrides():
    from moe_operator.planning.promql import role_queries

    v = role_queries("vllm", "ns", "mix", "prefill", 60)
    assert v["prompt_tokens_per_second"] == 'sum(rate(vllm:prompt_tokens_total{namespace="ns",moe_deployment="mix",moe_role="prefill"}[60s]))'
    assert "vllm:time_to_first_token_seconds_bucket" in v["ttft_p95_seconds"] and "histogram_quantile(0.95" in v["ttft_p95_seconds"]
    s = role_queries("sglang", "ns", "mix", "decode", 30, {"generatedTokensPerSecond": "sum(rate(my_gen_total{{selector}}[{window}]))",
                                                            "unknown": "ignored"})
    assert s["generated_tokens_per_second"] == 'sum(rate(my_gen_total{namespace="ns",moe_deployment="mix",moe_role="decode"}[30s]))'
    assert s["queued_requests"].startswith("sum(sglang:num_queue_reqs{")


def test_the_planner_leaves_manual_and_external_roles_alone():
    from moe_operator.planning.autoscale import planner_budget, planner_policies, planner_roles

    s = disaggregated(prefill={"replicas": 2, "parallelism": {"tensor": 2}, "autoscaling": {"mode": "Planner"}},
                      decode={"replicas": 3, "parallelism": {"tensor": 2}, "autoscaling": {"mode": "External"}},
                      hardware={"maxGPUs": 16})
    assert planner_roles(s) == ["prefill"]
    assert [p.role for p in planner_policies(s, {"prefill": 2, "decode": 5})] == ["prefill"]
    # the External role's 5 groups x 2 GPUs come off the budget the planner may use
    assert planner_budget(s, {"prefill": 2, "decode": 5}, {"prefill": 2, "decode": 2}) == 6
