"""The operator's own Prometheus metrics (prefix `moe_`). One registry per operator process.

Label sets are bounded: per MoEDeployment (namespace, name) x role (3) x stage (pipeline degree) x memory
component (5), x MoE layer for expert load (layers the engines publish). When a deployment goes, its
series are removed.
"""

from __future__ import annotations

from math import isfinite
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..capacity.report import CapacityReport

COMPONENTS = (("weights", "weights_bytes"), ("kv_cache", "kv_cache_bytes"), ("activations", "activations_bytes"),
              ("communication", "communication_bytes"), ("runtime", "runtime_bytes"))
DEPLOYMENT = ("namespace", "name")


class OperatorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        role = DEPLOYMENT + ("role",)
        self.predicted_tps = Gauge("moe_predicted_tokens_per_second", "Predicted tokens/s of the whole role (capacity model)", role, registry=r)
        self.predicted_tps_gpu = Gauge("moe_predicted_tokens_per_second_per_gpu", "Predicted tokens/s per GPU", role, registry=r)
        self.predicted_ttft = Gauge("moe_predicted_ttft_seconds", "Predicted time to first token", role, registry=r)
        self.predicted_tpot = Gauge("moe_predicted_tpot_seconds", "Predicted time per output token", role, registry=r)
        self.predicted_memory = Gauge("moe_predicted_memory_bytes", "Predicted GPU memory per GPU of a stage, by component",
                                      role + ("stage", "component"), registry=r)
        self.replicas = Gauge("moe_role_replicas", "Replica groups of a role (desired, ready)", role + ("state",), registry=r)
        self.gpus = Gauge("moe_role_gpus", "GPUs of a role (desired, allocated)", role + ("state",), registry=r)
        self.restarts = Counter("moe_group_restarts", "Whole-group restarts", role, registry=r)
        self.scaling = Counter("moe_scaling_decisions", "Planner decisions that changed replicas", role + ("direction", "reason"), registry=r)
        self.observed_tps = Gauge("moe_observed_tokens_per_second", "Observed tokens/s of the role (Prometheus)", role, registry=r)
        self.observed_ttft = Gauge("moe_observed_ttft_seconds", "Observed TTFT quantile", role + ("quantile",), registry=r)
        self.observed_itl = Gauge("moe_observed_itl_seconds", "Observed inter-token latency quantile", role + ("quantile",), registry=r)
        self.ratio = Gauge("moe_observed_over_predicted_ratio", "Observed / predicted tokens/s (model drift)", role, registry=r)
        self.slo_ttft = Gauge("moe_slo_ttft_seconds", "spec.slo.ttftMilliseconds, in seconds", DEPLOYMENT, registry=r)
        self.slo_tpot = Gauge("moe_slo_tpot_seconds", "spec.slo.tpotMilliseconds, in seconds", DEPLOYMENT, registry=r)
        self.slo_cv = Gauge("moe_slo_max_expert_load_cv", "spec.slo.maxExpertLoadCVPercent, as a ratio", DEPLOYMENT, registry=r)
        self.pod_info = Gauge("moe_pod_info", "The operator's pods, to join per-pod series (DCGM) to role and stage",
                              DEPLOYMENT + ("role", "stage", "pod"), registry=r)
        self.expert_cv = Gauge("moe_expert_load_cv", "Coefficient of variation of tokens per expert", role + ("layer",), registry=r)
        self.expert_max_mean = Gauge("moe_expert_load_max_over_mean", "Max / mean tokens per expert", role + ("layer",), registry=r)
        self.reconciles = Counter("moe_operator_reconciles", "Reconciles by result", ("result",), registry=r)
        self.reconcile_seconds = Histogram("moe_operator_reconcile_duration_seconds", "Reconcile duration", registry=r)
        self.webhook = Counter("moe_operator_webhook_requests", "Admission reviews by result", ("result",), registry=r)
        self.webhook_seconds = Histogram("moe_operator_webhook_duration_seconds", "Admission review duration", registry=r)
        self.webhook_cert_expiry = Gauge("moe_operator_webhook_certificate_expiry_timestamp_seconds",
                                         "When the webhook serving certificate the operator keeps expires", registry=r)
        self.writes = Counter("moe_operator_api_writes", "Write calls to the Kubernetes API", registry=r)
        self._series: dict[tuple[str, str], set[tuple[Any, tuple[str, ...]]]] = {}

    def _set(self, metric: Gauge, labels: tuple[str, ...], value: float | None) -> None:
        if value is None or not isfinite(value):
            return
        metric.labels(*labels).set(value)
        self._series.setdefault(labels[:2], set()).add((metric, labels))

    def record_report(self, namespace: str, name: str, report: CapacityReport, replicas: dict[str, int] | None = None) -> None:
        """Predictions; whole-role throughput at `replicas` (what runs, e.g. the scaler's count) when given."""
        for role, r in report.roles.items():
            key = (namespace, name, role)
            count = (replicas or {}).get(role, r.replicas)
            self._set(self.predicted_tps, key, r.tokens_per_second_per_replica * count)
            self._set(self.predicted_tps_gpu, key, r.tokens_per_second_per_gpu)
            self._set(self.predicted_ttft, key, r.ttft_seconds)
            self._set(self.predicted_tpot, key, r.tpot_seconds)
            for s in r.stages:
                for component, attr in COMPONENTS:
                    self._set(self.predicted_memory, key + (str(s.index), component), getattr(s.memory, attr))

    def record_slo(self, namespace: str, name: str, ttft_ms: int | None, tpot_ms: int | None, max_cv_percent: int | None) -> None:
        self._set(self.slo_ttft, (namespace, name), ttft_ms / 1e3 if ttft_ms else None)
        self._set(self.slo_tpot, (namespace, name), tpot_ms / 1e3 if tpot_ms else None)
        self._set(self.slo_cv, (namespace, name), max_cv_percent / 100 if max_cv_percent else None)

    def record_pods(self, namespace: str, name: str, pods: list[tuple[str, str, str]]) -> None:
        """pods: (role, stage, pod name). Series of pods that are gone are removed."""
        current = {(namespace, name, role, stage, pod) for role, stage, pod in pods}
        known = {labels for metric, labels in self._series.get((namespace, name), set()) if metric is self.pod_info}
        for labels in known - current:
            self.pod_info.remove(*labels)
            self._series[(namespace, name)].discard((self.pod_info, labels))
        for labels in current:
            self._set(self.pod_info, labels, 1.0)

    def record_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        for role, rs in (status.get("roles") or {}).items():
            key = (namespace, name, role)
            self._set(self.replicas, key + ("desired",), rs.get("desiredReplicas", 0))
            self._set(self.replicas, key + ("ready",), rs.get("readyReplicas", 0))
            self._set(self.gpus, key + ("desired",), rs.get("desiredGPUs", 0))
            self._set(self.gpus, key + ("allocated",), rs.get("gpus", 0))

    def record_observed(self, namespace: str, name: str, role: str, tokens_per_second: float | None, predicted: float | None,
                        ttft_p95: float | None, itl_p95: float | None) -> None:
        key = (namespace, name, role)
        self._set(self.observed_tps, key, tokens_per_second)
        self._set(self.observed_ttft, key + ("0.95",), ttft_p95)
        self._set(self.observed_itl, key + ("0.95",), itl_p95)
        if tokens_per_second is not None and predicted:
            self._set(self.ratio, key, tokens_per_second / predicted)

    def record_expert_load(self, namespace: str, name: str, role: str, layer: str, cv: float | None, max_over_mean: float | None) -> None:
        self._set(self.expert_cv, (namespace, name, role, layer), cv)
        self._set(self.expert_max_mean, (namespace, name, role, layer), max_over_mean)

    def count_restart(self, namespace: str, name: str, role: str) -> None:
        self.restarts.labels(namespace, name, role).inc()
        self._series.setdefault((namespace, name), set()).add((self.restarts, (namespace, name, role)))

    def count_scaling(self, namespace: str, name: str, role: str, direction: str, reason: str) -> None:
        labels = (namespace, name, role, direction, reason)
        self.scaling.labels(*labels).inc()
        self._series.setdefault((namespace, name), set()).add((self.scaling, labels))

    def forget(self, namespace: str, name: str) -> None:
        """Remove every series of a deployment that is gone."""
        for metric, labels in self._series.pop((namespace, name), set()):
            try:
                metric.remove(*labels)
            except KeyError:
                pass
