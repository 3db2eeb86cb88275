"""Benchmark the scaling planner in simulated time (no cluster): reaction to load steps, and how close its
replica counts are to the minimum that meets the SLO.

  python bench/planner_bench.py

The engines are the simulator's model (sim.model): served rates, TTFT (M/D/1) and inter-token latency from
the capacity model. Prometheus' view lags like `rate()` over `rateWindowSeconds`; the planner runs every
`intervalSeconds` with the spec's windows. The minimum per role is found by brute force: the fewest replicas
whose simulated p95-free latencies meet the targets at the offered load. Writes bench/results/planner.json.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections import deque

from moe_operator.api import MoEDeployment
from moe_operator.planning.autoscale import planner_config, planner_policies
from moe_operator.planning.scaling import Observation, RoleLoad, plan_replicas
from moe_operator.sim.model import role_rates

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = {
    "apiVersion": "moe.inference.io/v1alpha1", "kind": "MoEDeployment", "metadata": {"name": "bench"},
    "spec": {
        "model": {"preset": "mixtral-8x7b"}, "hardware": {"gpu": "H100-SXM", "gpusPerNode": 8, "maxGPUs": 64},
        "workload": {"inputTokens": {"min": 128, "mean": 2048, "max": 4096}, "outputTokens": {"min": 1, "mean": 256, "max": 1024}},
        "slo": {"ttftMilliseconds": 2000, "tpotMilliseconds": 50},
        "autoscaling": {"intervalSeconds": 30, "rateWindowSeconds": 60, "scaleDownWindowSeconds": 300, "headroomPercent": 20},
        "roles": {
            "prefill": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 16, "maxBatchTokens": 8192,
                        "autoscaling": {"mode": "Planner", "maxReplicas": 16}},
            "decode": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 64,
                       "autoscaling": {"mode": "Planner", "maxReplicas": 16}},
        },
    },
}
PROFILE = [(0, 10.0), (600, 40.0), (1800, 10.0), (3600, 25.0)]  # (start second, requests/s)
END_SECONDS = 4800
TICK = 5


def load_at(t: float) -> float:
    return [r for start, r in PROFILE if start <= t][-1]


def meets_slo(spec, role: str, replicas: int, rate: float) -> bool:
    r = role_rates(spec, role, replicas, rate)
    if r.served_requests_per_second < r.offered_requests_per_second * 0.999:
        return False
    if role == "prefill" and r.ttft_seconds > spec.slo.ttft_milliseconds / 1e3:
        return False
    return not (role == "decode" and r.itl_seconds > spec.slo.tpot_milliseconds / 1e3)


def minimum(spec, role: str, rate: float) -> int:
    return next(n for n in range(1, 200) if meets_slo(spec, role, n, rate))


def main() -> None:
    spec = MoEDeployment.model_validate(DOC).spec
    cfg = planner_config(spec)
    replicas = {"prefill": 1, "decode": 1}
    history: dict = {}
    window: deque = deque()  # (t, per-role observed load) samples inside the rate window
    trace = []
    for t in range(0, END_SECONDS, TICK):
        rate = load_at(t)
        rates = {role: role_rates(spec, role, replicas[role], rate) for role in replicas}
        window.append((t, rates))
        while window and t - window[0][0] > spec.autoscaling.rate_window_seconds:
            window.popleft()
        if t % spec.autoscaling.interval_seconds == 0:
            def avg(role, attr):
                return sum(getattr(r[role], attr) for _, r in window) / len(window)
            obs = Observation(True, {role: RoleLoad(
                requests_per_second=avg(role, "served_requests_per_second") * replicas[role],
                prompt_tokens_per_second=avg(role, "prompt_tokens_per_second") * replicas[role],
                generated_tokens_per_second=avg(role, "generated_tokens_per_second") * replicas[role],
                queued_requests=rates[role].waiting_requests * replicas[role],
                ttft_p95_seconds=max(r[role].ttft_seconds for _, r in window) or None,
                itl_p95_seconds=max(r[role].itl_seconds for _, r in window) or None) for role in replicas})
            result = plan_replicas(planner_policies(spec, replicas), obs, history, float(t), spec.hardware.max_gpus, cfg)
            history = result.history
            replicas = {role: d.desired for role, d in result.decisions.items()}
        trace.append((t, rate, dict(replicas), {role: meets_slo(spec, role, replicas[role], rate) for role in replicas}))
    results = {"profile": PROFILE, "phases": []}
    for i, (start, rate) in enumerate(PROFILE):
        end = PROFILE[i + 1][0] if i + 1 < len(PROFILE) else END_SECONDS
        phase = [x for x in trace if start <= x[0] < end]
        mins = {role: minimum(spec, role, rate) for role in replicas}
        final = phase[-1][2]
        settled = next((x[0] for x in phase if all(x[2][r] == final[r] for r in final) and
                        all(y[2] == final for y in phase if y[0] >= x[0])), end)
        slo_ok = next((x[0] for x in phase if all(x[3].values()) and all(all(y[3].values()) for y in phase if y[0] >= x[0])), None)
        gpus = sum(final[r] * 2 for r in final)
        results["phases"].append({
            "requestsPerSecond": rate, "startSeconds": start, "finalReplicas": final, "minimumReplicasMeetingSLO": mins,
            "replicasOverMinimum": {r: final[r] - mins[r] for r in final},
            "gpusFinal": gpus, "gpusMinimum": sum(mins[r] * 2 for r in mins),
            "secondsToSettle": settled - start, "secondsUntilSLOHeld": None if slo_ok is None else slo_ok - start,
        })
    for p in results["phases"]:
        print(f"{p['requestsPerSecond']:5.1f} req/s from t={p['startSeconds']:4d}s: replicas {p['finalReplicas']} "
              f"(minimum meeting the SLO {p['minimumReplicasMeetingSLO']}), GPUs {p['gpusFinal']} vs {p['gpusMinimum']}, "
              f"settled after {p['secondsToSettle']}s, SLO held from +{p['secondsUntilSLOHeld']}s")
    out = ROOT / "bench" / "results" / "planner.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
