"""The PromQL the planner reads a role's load with, per engine. Pure.

Engine series carry the labels the documented scrape relabeling gives them (and the simulator
publishes): namespace, pod, moe_deployment, moe_role, moe_replica.
"""

from __future__ import annotations

METRICS = {
    "vllm": {"success": "vllm:request_success_total", "prompt": "vllm:prompt_tokens_total", "generated": "vllm:generation_tokens_total",
             "waiting": "vllm:num_requests_waiting", "running": "vllm:num_requests_running",
             "ttft": "vllm:time_to_first_token_seconds_bucket", "itl": "vllm:inter_token_latency_seconds_bucket"},
    "sglang": {"success": "sglang:num_requests_total", "prompt": "sglang:prompt_tokens_total", "generated": "sglang:generation_tokens_total",
               "waiting": "sglang:num_queue_reqs", "running": "sglang:num_running_reqs",
               "ttft": "sglang:time_to_first_token_seconds_bucket", "itl": "sglang:inter_token_latency_seconds_bucket"},
}


OVERRIDE_KEYS = {
    "requestsPerSecond": "requests_per_second", "promptTokensPerSecond": "prompt_tokens_per_second",
    "generatedTokensPerSecond": "generated_tokens_per_second", "queuedRequests": "queued_requests",
    "ttftP95Seconds": "ttft_p95_seconds", "itlP95Seconds": "itl_p95_seconds", "ageSeconds": "age_seconds",
}


def role_queries(engine: str, namespace: str, deployment: str, role: str, rate_window_seconds: int,
                 overrides: dict[str, str] | None = None) -> dict[str, str]:
    """PromQL for one role's whole-role load: rates summed over its pods, p95 latencies over the window.
    `overrides` (spec.autoscaling.queries) replace entries; {selector} and {window} are filled in."""
    m = METRICS[engine]
    sel = f'namespace="{namespace}",moe_deployment="{deployment}",moe_role="{role}"'
    w = f"{rate_window_seconds}s"
    queries = _defaults(m, sel, w)
    for name, template in (overrides or {}).items():
        if name in OVERRIDE_KEYS:
            queries[OVERRIDE_KEYS[name]] = template.replace("{selector}", sel).replace("{window}", w)
    return queries


def _defaults(m: dict[str, str], sel: str, w: str) -> dict[str, str]:
    return {
        "requests_per_second": f"sum(rate({m['success']}{{{sel}}}[{w}]))",
        "prompt_tokens_per_second": f"sum(rate({m['prompt']}{{{sel}}}[{w}]))",
        "generated_tokens_per_second": f"sum(rate({m['generated']}{{{sel}}}[{w}]))",
        "queued_requests": f"sum({m['waiting']}{{{sel}}})",
        "ttft_p95_seconds": f"histogram_quantile(0.95, sum by (le) (rate({m['ttft']}{{{sel}}}[{w}])))",
        "itl_p95_seconds": f"histogram_quantile(0.95, sum by (le) (rate({m['itl']}{{{sel}}}[{w}])))",
        "age_seconds": f"time() - max(timestamp({m['running']}{{{sel}}}))",
    }


def expert_load_queries(namespace: str, deployment: str, role: str, window_seconds: int) -> dict[str, str]:
    """Per MoE layer: coefficient of variation and max/mean of tokens routed per expert over the window,
    from the per-expert counter `moe_expert_tokens_total{layer, expert}` summed over the role's pods."""
    sel = f'namespace="{namespace}",moe_deployment="{deployment}",moe_role="{role}"'
    per_expert = f"sum by (layer, expert) (rate(moe_expert_tokens_total{{{sel}}}[{window_seconds}s]))"
    return {
        "cv": f"stddev by (layer) ({per_expert}) / avg by (layer) ({per_expert})",
        "max_over_mean": f"max by (layer) ({per_expert}) / avg by (layer) ({per_expert})",
    }
