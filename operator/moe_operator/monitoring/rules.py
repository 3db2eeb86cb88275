"""Recording and alerting rules for MoE deployments, as data. Pure.

Engine series carry `namespace`, `moe_deployment`, `moe_role` (scrape relabeling, or the simulator); the
operator's series carry `namespace`, `name`, `role`. Recording rules put engine figures under the operator's
label names so alerts can compare them with the SLO gauges the operator exports (`moe_slo_*`).
"""

from __future__ import annotations

from typing import Any

ENGINE = 'namespace, moe_deployment, moe_role'


def _engine(metric_vllm: str, metric_sglang: str) -> str:
    return f'{{__name__=~"{metric_vllm}|{metric_sglang}"}}'


def _as_operator_labels(expr: str, extra: str = "") -> str:
    """Engine labels renamed to the operator's (moe_deployment -> name, moe_role -> role), grouped by those only."""
    relabeled = f'label_replace(label_replace({expr}, "name", "$1", "moe_deployment", "(.*)"), "role", "$1", "moe_role", "(.*)")'
    return f"sum by (namespace, name, role{extra}) ({relabeled})"


RECORDING: list[dict[str, str]] = [
    {"record": "moe:role_prompt_tokens_per_second",
     "expr": _as_operator_labels(f"sum by ({ENGINE}) (rate({_engine('vllm:prompt_tokens_total', 'sglang:prompt_tokens_total')}[1m]))")},
    {"record": "moe:role_generated_tokens_per_second",
     "expr": _as_operator_labels(f"sum by ({ENGINE}) (rate({_engine('vllm:generation_tokens_total', 'sglang:generation_tokens_total')}[1m]))")},
    {"record": "moe:role_ttft_seconds:p95",
     "expr": _as_operator_labels(f"histogram_quantile(0.95, sum by ({ENGINE}, le) (rate("
                                 f"{_engine('vllm:time_to_first_token_seconds_bucket', 'sglang:time_to_first_token_seconds_bucket')}[5m])))")},
    {"record": "moe:role_itl_seconds:p95",
     "expr": _as_operator_labels(f"histogram_quantile(0.95, sum by ({ENGINE}, le) (rate("
                                 f"{_engine('vllm:inter_token_latency_seconds_bucket', 'sglang:inter_token_latency_seconds_bucket')}[5m])))")},
    {"record": "moe:expert_tokens_per_second",
     "expr": _as_operator_labels(f"sum by ({ENGINE}, layer, expert) (rate(moe_expert_tokens_total[5m]))", ", layer, expert")},
    {"record": "moe:expert_load_cv",
     "expr": "stddev by (namespace, name, role, layer) (moe:expert_tokens_per_second) / avg by (namespace, name, role, layer) (moe:expert_tokens_per_second)"},
    {"record": "moe:stage_gpu_memory_used_bytes:max",
     "expr": "max by (namespace, name, role, stage) (DCGM_FI_DEV_FB_USED * 1048576 * on (namespace, pod) group_left (name, role, stage) moe_pod_info)"},
    {"record": "moe:stage_gpu_memory_total_bytes:min",
     "expr": "min by (namespace, name, role, stage) ((DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) * 1048576 * on (namespace, pod) group_left (name, role, stage) moe_pod_info)"},
]


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description}}


ALERTS: list[dict[str, Any]] = [
    _alert("MoETTFTAboveSLO",
           "moe:role_ttft_seconds:p95 > on (namespace, name) group_left moe_slo_ttft_seconds", "10m", "warning",
           "TTFT p95 above the SLO",
           "{{ $labels.namespace }}/{{ $labels.name }} role {{ $labels.role }}: time to first token p95 is above spec.slo.ttftMilliseconds."),
    _alert("MoETPOTAboveSLO",
           "moe:role_itl_seconds:p95 > on (namespace, name) group_left moe_slo_tpot_seconds", "10m", "warning",
           "Inter-token latency p95 above the SLO",
           "{{ $labels.namespace }}/{{ $labels.name }} role {{ $labels.role }}: inter-token latency p95 is above spec.slo.tpotMilliseconds."),
    _alert("MoEExpertImbalance",
           "moe_expert_load_cv > on (namespace, name) group_left moe_slo_max_expert_load_cv", "15m", "warning",
           "Expert load imbalance above the SLO",
           "{{ $labels.namespace }}/{{ $labels.name }} role {{ $labels.role }} layer {{ $labels.layer }}: the coefficient of variation "
           "of tokens per expert is above spec.slo.maxExpertLoadCVPercent; rebalance (EPLB, redundant experts)."),
    _alert("MoEGPUMemoryAbovePlan",
           "moe:stage_gpu_memory_used_bytes:max > on (namespace, name, role, stage) 1.10 * "
           "sum by (namespace, name, role, stage) (moe_predicted_memory_bytes)", "15m", "warning",
           "GPU memory above the capacity plan",
           "{{ $labels.namespace }}/{{ $labels.name }} {{ $labels.role }} stage {{ $labels.stage }}: GPU memory in use is more than "
           "10% above the capacity model's plan."),
    _alert("MoEGPUMemoryNearLimit",
           "moe:stage_gpu_memory_used_bytes:max / moe:stage_gpu_memory_total_bytes:min > 0.97", "5m", "critical",
           "GPU memory nearly full",
           "{{ $labels.namespace }}/{{ $labels.name }} {{ $labels.role }} stage {{ $labels.stage }}: a GPU is above 97% of its memory."),
    _alert("MoEThroughputFarBelowPrediction",
           "moe_observed_over_predicted_ratio < 0.5 and on (namespace, name, role) moe_observed_tokens_per_second > 0", "15m", "warning",
           "Throughput far below the capacity model's prediction",
           "{{ $labels.namespace }}/{{ $labels.name }} role {{ $labels.role }}: observed tokens/s is under half of the prediction."),
    _alert("MoEGroupRestartLoop",
           "increase(moe_group_restarts_total[30m]) >= 3", "0m", "critical",
           "Replica groups keep restarting",
           "{{ $labels.namespace }}/{{ $labels.name }} role {{ $labels.role }}: three or more whole-group restarts in 30 minutes."),
    _alert("MoERoleNoReadyReplicas",
           'moe_role_replicas{state="ready"} == 0 and on (namespace, name, role) moe_role_replicas{state="desired"} > 0', "10m", "critical",
           "A role has no ready replica group",
           "{{ $labels.namespace }}/{{ $labels.name }} role {{ $labels.role }}: no replica group is ready."),
    _alert("MoEOperatorReconcileErrors",
           'sum(rate(moe_operator_reconciles_total{result=~"api_error|crashed"}[10m])) > 0', "10m", "warning",
           "The operator's reconciles are failing",
           "Some reconciles fail with API errors or crash; see the operator's log."),
]


def rule_groups() -> dict[str, Any]:
    return {"groups": [{"name": "moe.recording", "interval": "30s", "rules": RECORDING},
                       {"name": "moe.alerts", "rules": ALERTS}]}


def prometheus_rule(namespace: str = "moe-system") -> dict[str, Any]:
    """The same rules as a Prometheus Operator PrometheusRule."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "moe-operator", "namespace": namespace, "labels": {"app.kubernetes.io/name": "moe-operator"}},
            "spec": rule_groups()}
