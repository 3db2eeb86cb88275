"""`moectl simulate-engine`: serve an engine's Prometheus metrics for a deployment's pods, without GPUs.

It watches the deployment's pods in the cluster (their real labels), and for every replica group publishes,
under the group leader's pod name, the engine's metrics (vLLM or SGLang names) at the load the user sets,
with numbers from the capacity model (sim.model), plus the project's per-expert counter
`moe_expert_tokens_total{layer, expert}` with a Zipf skew. Labels on every series: namespace, pod,
moe_deployment, moe_role, moe_replica (what the documented scrape relabeling gives real engines).

Control: GET /load shows the load; POST /load {"requestsPerSecond": R, "skew": S} changes it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ..api import MoEDeploymentSpec
from ..capacity.catalog import resolve_model
from .model import RoleRates, role_rates, zipf_shares

log = logging.getLogger("moe_operator.sim")
BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0)
NAMES = {
    "vllm": {"running": "vllm:num_requests_running", "waiting": "vllm:num_requests_waiting", "kv": "vllm:kv_cache_usage_perc",
             "prompt": "vllm:prompt_tokens", "generated": "vllm:generation_tokens", "success": "vllm:request_success",
             "ttft": "vllm:time_to_first_token_seconds", "itl": "vllm:inter_token_latency_seconds"},
    "sglang": {"running": "sglang:num_running_reqs", "waiting": "sglang:num_queue_reqs", "kv": "sglang:token_usage",
               "prompt": "sglang:prompt_tokens", "generated": "sglang:generation_tokens", "success": "sglang:num_requests",
               "ttft": "sglang:time_to_first_token_seconds", "itl": "sglang:inter_token_latency_seconds"},
}
LABELS = ("namespace", "pod", "moe_deployment", "moe_role", "moe_replica")


@dataclass(frozen=True)
class SimPod:
    """A replica group's leader pod, as found in the cluster."""

    name: str
    namespace: str
    deployment: str
    role: str
    replica: str


@dataclass
class Totals:
    """Cumulative counters and histogram buckets of one pod."""

    prompt: float = 0.0
    generated: float = 0.0
    success: float = 0.0
    ttft_buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    ttft_sum: float = 0.0
    ttft_count: float = 0.0
    itl_buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    itl_sum: float = 0.0
    itl_count: float = 0.0
    experts: dict[tuple[int, int], float] = field(default_factory=dict)


def _observe(buckets: list[float], value: float, count: float) -> None:
    for i, bound in enumerate(BUCKETS):
        if value <= bound:
            buckets[i] += count


class EngineSimulator:
    def __init__(self, spec: MoEDeploymentSpec, engine: str, pods: Callable[[], list[SimPod]], requests_per_second: float = 0.0,
                 skew: float = 0.0, expert_layers: int = 8) -> None:
        self.spec, self.engine, self.pods = spec, engine, pods
        self.requests_per_second, self.skew = requests_per_second, skew
        model = resolve_model(spec.model)
        self.experts, self.top_k = model.experts, model.experts_per_token
        self.expert_layers = list(range(model.dense_layers, model.dense_layers + min(expert_layers, model.moe_layers)))
        self.totals: dict[str, Totals] = {}
        self.rates: dict[str, RoleRates] = {}
        self.current: list[SimPod] = []
        self.lock = threading.Lock()

    def set_load(self, requests_per_second: float | None = None, skew: float | None = None) -> None:
        with self.lock:
            if requests_per_second is not None:
                self.requests_per_second = max(0.0, float(requests_per_second))
            if skew is not None:
                self.skew = max(0.0, float(skew))

    def tick(self, seconds: float) -> None:
        """Advance every pod's counters by `seconds` at the current load."""
        pods = self.pods()
        with self.lock:
            self.current = pods
            replicas: dict[str, int] = {}
            for p in pods:
                replicas[p.role] = replicas.get(p.role, 0) + 1
            self.rates = {role: role_rates(self.spec, role, n, self.requests_per_second) for role, n in replicas.items()}
            shares = zipf_shares(self.experts, self.skew)
            for p in pods:
                r, t = self.rates[p.role], self.totals.setdefault(p.name, Totals())
                t.prompt += r.prompt_tokens_per_second * seconds
                t.generated += r.generated_tokens_per_second * seconds
                done = r.served_requests_per_second * seconds
                t.success += done
                if p.role != "decode" and done:
                    _observe(t.ttft_buckets, r.ttft_seconds, done)
                    t.ttft_sum += r.ttft_seconds * done
                    t.ttft_count += done
                tokens_out = r.generated_tokens_per_second * seconds
                if p.role != "prefill" and tokens_out:
                    _observe(t.itl_buckets, r.itl_seconds, tokens_out)
                    t.itl_sum += r.itl_seconds * tokens_out
                    t.itl_count += tokens_out
                routed = (r.prompt_tokens_per_second + r.generated_tokens_per_second) * seconds * self.top_k
                for layer in self.expert_layers:
                    for e, share in enumerate(shares):
                        t.experts[(layer, e)] = t.experts.get((layer, e), 0.0) + routed * share

    def collect(self) -> Iterable[Any]:
        names = NAMES[self.engine]
        with self.lock:
            pods, rates, totals = list(self.current), dict(self.rates), self.totals
            fam = {
                "running": GaugeMetricFamily(names["running"], "Requests running (simulated)", labels=LABELS),
                "waiting": GaugeMetricFamily(names["waiting"], "Requests waiting (simulated)", labels=LABELS),
                "kv": GaugeMetricFamily(names["kv"], "KV cache usage, 0..1 (simulated)", labels=LABELS),
                "prompt": CounterMetricFamily(names["prompt"], "Prompt tokens processed (simulated)", labels=LABELS),
                "generated": CounterMetricFamily(names["generated"], "Tokens generated (simulated)", labels=LABELS),
                "success": CounterMetricFamily(names["success"], "Requests finished (simulated)", labels=LABELS),
                "ttft": HistogramMetricFamily(names["ttft"], "Time to first token (simulated)", labels=LABELS),
                "itl": HistogramMetricFamily(names["itl"], "Inter-token latency (simulated)", labels=LABELS),
                "experts": CounterMetricFamily("moe_expert_tokens", "Tokens routed to each expert (simulated)",
                                               labels=LABELS + ("layer", "expert")),
            }
            for p in pods:
                r, t = rates.get(p.role), totals.get(p.name, Totals())
                if r is None:
                    continue
                lv = [p.namespace, p.name, p.deployment, p.role, p.replica]
                fam["running"].add_metric(lv, r.running_requests)
                fam["waiting"].add_metric(lv, r.waiting_requests)
                fam["kv"].add_metric(lv, r.kv_cache_usage)
                fam["prompt"].add_metric(lv, t.prompt)
                fam["generated"].add_metric(lv, t.generated)
                fam["success"].add_metric(lv, t.success)
                fam["ttft"].add_metric(lv, [(str(b), c) for b, c in zip(BUCKETS, t.ttft_buckets)] + [("+Inf", t.ttft_count)], t.ttft_sum)
                fam["itl"].add_metric(lv, [(str(b), c) for b, c in zip(BUCKETS, t.itl_buckets)] + [("+Inf", t.itl_count)], t.itl_sum)
                for (layer, expert), v in sorted(t.experts.items()):
                    fam["experts"].add_metric(lv + [str(layer), str(expert)], v)
        return list(fam.values())


def serve(sim: EngineSimulator, address: str, port: int, tick_seconds: float = 1.0,
          stop: threading.Event | None = None) -> ThreadingHTTPServer:
    """Start the ticker and the HTTP server (metrics + control) in background threads; return the server."""
    registry = CollectorRegistry()
    registry.register(sim)  # type: ignore[arg-type] - any object with collect() is a collector
    stop = stop or threading.Event()

    def ticker() -> None:
        last = time.monotonic()
        while not stop.wait(tick_seconds):
            now = time.monotonic()
            try:
                sim.tick(now - last)
            except Exception:  # noqa: BLE001 - a failed discovery must not kill the ticker
                log.exception("simulator tick failed")
            last = now

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            if self.path.startswith("/metrics"):
                self._send(200, generate_latest(registry), "text/plain; version=0.0.4")
            elif self.path.startswith("/load"):
                self._send(200, json.dumps({"requestsPerSecond": sim.requests_per_second, "skew": sim.skew,
                                            "pods": [p.name for p in sim.current]}).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            if not self.path.startswith("/load"):
                self._send(404, b"not found\n", "text/plain")
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                sim.set_load(body.get("requestsPerSecond"), body.get("skew"))
            except (ValueError, TypeError, AttributeError) as err:
                self._send(400, f"bad load: {err}\n".encode(), "text/plain")
                return
            self._send(200, b"ok\n", "text/plain")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((address, port), Handler)
    sim.tick(0.0)
    threading.Thread(target=ticker, daemon=True, name="sim-ticker").start()
    threading.Thread(target=server.serve_forever, daemon=True, name="sim-http").start()
    return server
