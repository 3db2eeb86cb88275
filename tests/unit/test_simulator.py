"""The engine simulator: numbers consistent with the capacity model, and the metrics it serves."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from moe_operator.capacity.slo_capacity import role_capacity_at_slo
from moe_operator.sim.discovery import static_pods
from moe_operator.sim.model import coefficient_of_variation, role_rates, zipf_shares
from moe_operator.sim.server import EngineSimulator, serve
from tests.builders import disaggregated, spec


def _spec():
    return disaggregated(prefill={"parallelism": {"tensor": 2}, "maxConcurrentSequences": 16},
                         decode={"parallelism": {"tensor": 2}, "maxConcurrentSequences": 64},
                         slo={"ttftMilliseconds": 2000, "tpotMilliseconds": 50})


def test_served_rate_never_exceeds_what_the_replicas_can_do_and_queues_grow():
    s = _spec()
    light, heavy = role_rates(s, "prefill", 2, 2.0), role_rates(s, "prefill", 2, 500.0)
    assert light.served_requests_per_second == pytest.approx(1.0)
    assert heavy.served_requests_per_second < heavy.offered_requests_per_second and heavy.waiting_requests > 0
    assert light.ttft_seconds < heavy.ttft_seconds
    assert light.prompt_tokens_per_second == pytest.approx(1.0 * 2048)


def test_more_replicas_lower_ttft_at_the_same_load():
    s = _spec()
    assert role_rates(s, "prefill", 4, 20.0).ttft_seconds < role_rates(s, "prefill", 2, 20.0).ttft_seconds


def test_decode_latency_grows_with_load_and_matches_the_slo_capacity():
    s = _spec()
    cap = role_capacity_at_slo(s, "decode")  # requests/s one decode replica sustains at the TPOT target
    at_cap = role_rates(s, "decode", 1, cap.requests_per_second)
    assert at_cap.itl_seconds <= 0.05 * 1.05
    assert role_rates(s, "decode", 1, cap.requests_per_second / 4).itl_seconds < at_cap.itl_seconds
    assert 0 <= at_cap.kv_cache_usage <= 1


def test_zipf_skew_sets_the_expert_cv():
    assert coefficient_of_variation(zipf_shares(8, 0.0)) == pytest.approx(0.0)
    assert coefficient_of_variation(zipf_shares(8, 1.0)) > coefficient_of_variation(zipf_shares(8, 0.5)) > 0
    assert sum(zipf_shares(256, 1.2)) == pytest.approx(1.0)


def _scrape(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_server_publishes_engine_metrics_per_pod_and_takes_load_changes():
    s = spec(roles={"aggregated": {"replicas": 2, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 32}})
    sim = EngineSimulator(s, "vllm", static_pods("ns", "mix", {"aggregated": 2}), requests_per_second=4.0, skew=1.0, expert_layers=2)
    server = serve(sim, "127.0.0.1", 0, tick_seconds=3600)  # ticks by hand below
    port = server.server_address[1]
    try:
        sim.tick(10.0)
        fams = _scrape(port)
        prompt = {s.labels["pod"]: s.value for s in fams["vllm:prompt_tokens"].samples if s.name.endswith("_total")}
        assert prompt == {"mix-aggregated-0-s0-0": pytest.approx(2.0 * 2048 * 10), "mix-aggregated-1-s0-0": pytest.approx(2.0 * 2048 * 10)}
        sample = next(s for s in fams["vllm:num_requests_running"].samples)
        assert {"namespace", "pod", "moe_deployment", "moe_role", "moe_replica"} <= set(sample.labels)
        experts = [x for x in fams["moe_expert_tokens"].samples if x.name.endswith("_total") and x.labels["pod"] == "mix-aggregated-0-s0-0"
                   and x.labels["layer"] == "0"]
        loads = [x.value for x in sorted(experts, key=lambda x: int(x.labels["expert"]))]
        assert coefficient_of_variation([v / sum(loads) for v in loads]) == pytest.approx(coefficient_of_variation(zipf_shares(8, 1.0)))
        assert "vllm:time_to_first_token_seconds" in fams and "vllm:inter_token_latency_seconds" in fams
        req = urllib.request.Request(f"http://127.0.0.1:{port}/load", data=json.dumps({"requestsPerSecond": 0}).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()
        before = _scrape(port)["vllm:prompt_tokens"]
        sim.tick(10.0)
        after = _scrape(port)["vllm:prompt_tokens"]
        assert [s.value for s in before.samples] == [s.value for s in after.samples]  # no load, counters stand still
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/load", data=b"[1,2]", method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=5)
        assert e.value.code == 400
    finally:
        server.shutdown()


def test_sglang_names():
    s = spec()
    sim = EngineSimulator(s, "sglang", static_pods("ns", "x", {"aggregated": 1}), requests_per_second=1.0)
    sim.tick(1.0)
    names = {f.name for f in sim.collect()}
    assert {"sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:token_usage", "sglang:prompt_tokens"} <= names
