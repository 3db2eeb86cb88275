"""Grafana dashboards as code (grafana-foundation-sdk). Pure: builds JSON-able dicts; `make generate` writes
them to charts/moe-operator/dashboards/.

Variables: datasource, namespace, deployment, role. Panels: observed vs predicted throughput and their ratio,
TTFT and inter-token latency p95 against the SLO, GPU memory per stage (predicted breakdown and observed), the
expert-load heatmap (layer x expert) and CV over time, replicas and GPUs per role with scaling decisions as
annotations, and the operator's health.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
OP = 'namespace="$namespace",name="$deployment",role=~"$role"'  # operator series
ENGINE = 'namespace="$namespace",moe_deployment="$deployment",moe_role=~"$role"'  # engine series
DEP = 'namespace="$namespace",name="$deployment"'


def _q(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)


def _ts(title: str, unit: str, description: str, *queries: tuple[str, str], width: int = 12) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DS).height(8).span(width)
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_q(expr, legend, chr(ord("A") + i)))
    return panel


def _panels() -> list[tuple[str, Any]]:
    return [
        ("Throughput", _ts("Tokens/s per role: observed vs predicted", "short",
                           "Observed tokens/s (prompt for prefill, generated for decode) against the capacity model's prediction for the role.",
                           (f"moe_observed_tokens_per_second{{{OP}}}", "observed {{role}}"),
                           (f"moe_predicted_tokens_per_second{{{OP}}}", "predicted {{role}}"))),
        ("Throughput", _ts("Observed / predicted", "percentunit", "Model drift: 1 means the capacity model is right.",
                           (f"moe_observed_over_predicted_ratio{{{OP}}}", "{{role}}"))),
        ("Latency", _ts("TTFT p95 vs SLO", "s", "Time to first token p95 from the engines, and the target.",
                        (f"moe:role_ttft_seconds:p95{{{OP}}}", "p95 {{role}}"),
                        (f"moe_slo_ttft_seconds{{{DEP}}}", "SLO"))),
        ("Latency", _ts("Inter-token latency p95 vs SLO", "s", "Inter-token latency p95 from the engines, and the TPOT target.",
                        (f"moe:role_itl_seconds:p95{{{OP}}}", "p95 {{role}}"),
                        (f"moe_slo_tpot_seconds{{{DEP}}}", "SLO"))),
        ("Memory", _ts("GPU memory per stage: predicted breakdown", "bytes", "Per GPU of each stage, by component (capacity model).",
                       (f"sum by (role, stage, component) (moe_predicted_memory_bytes{{{OP}}})", "{{role}} stage {{stage}} {{component}}"))),
        ("Memory", _ts("GPU memory per stage: observed vs predicted total", "bytes",
                       "Highest GPU memory in use per stage (DCGM exporter) against the predicted total.",
                       (f"moe:stage_gpu_memory_used_bytes:max{{{OP}}}", "observed {{role}} stage {{stage}}"),
                       (f"sum by (role, stage) (moe_predicted_memory_bytes{{{OP}}})", "predicted {{role}} stage {{stage}}"))),
        ("Experts", heatmap.Panel().title("Expert load (layer x expert)").description(
            "Tokens/s routed to each expert of each published layer: a hot expert shows as a bright row.")
         .datasource(DS).height(10).span(12).calculate(False)
         .with_target(_q(f"sum by (layer, expert) (rate(moe_expert_tokens_total{{{ENGINE}}}[$__rate_interval]))",
                         "L{{layer}} E{{expert}}", "A"))),
        ("Experts", _ts("Expert load CV per layer", "percentunit",
                        "Coefficient of variation of tokens per expert over the window, and the SLO.",
                        (f"moe_expert_load_cv{{{OP}}}", "{{role}} layer {{layer}}"),
                        (f"moe_slo_max_expert_load_cv{{{DEP}}}", "SLO"))),
        ("Scaling", _ts("Replica groups per role", "short", "Desired and ready replica groups; scaling decisions are annotations.",
                        (f"moe_role_replicas{{{OP}}}", "{{role}} {{state}}"))),
        ("Scaling", _ts("GPUs per role", "short", "Desired and allocated GPUs.",
                        (f"moe_role_gpus{{{OP}}}", "{{role}} {{state}}"))),
        ("Operator", _ts("Reconciles by result", "ops", "Reconciles per second by result.",
                         ("sum by (result) (rate(moe_operator_reconciles_total[$__rate_interval]))", "{{result}}"), width=8)),
        ("Operator", _ts("Reconcile duration p99", "s", "99th percentile of one reconcile.",
                         ("histogram_quantile(0.99, sum by (le) (rate(moe_operator_reconcile_duration_seconds_bucket[$__rate_interval])))", "p99"),
                         width=8)),
        ("Operator", _ts("Admission reviews", "ops", "Webhook calls by result.",
                         ("sum by (result) (rate(moe_operator_webhook_requests_total[$__rate_interval]))", "{{result}}"), width=8)),
    ]


def overview_dashboard() -> dict[str, Any]:
    """The MoE deployment dashboard as Grafana JSON (pure)."""
    d = (db.Dashboard("MoE deployment").uid("moe-deployment").tags(["moe", "llm", "inference"]).refresh("30s")
         .time("now-1h", "now").timezone("browser")
         .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
         .with_variable(db.QueryVariable("namespace").label("Namespace").datasource(DS)
                        .query("label_values(moe_role_replicas, namespace)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
         .with_variable(db.QueryVariable("deployment").label("Deployment").datasource(DS)
                        .query('label_values(moe_role_replicas{namespace="$namespace"}, name)').refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
         .with_variable(db.QueryVariable("role").label("Role").datasource(DS).multi(True).include_all(True)
                        .query('label_values(moe_role_replicas{namespace="$namespace",name="$deployment"}, role)')
                        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
         .annotation(db.AnnotationQuery().name("Scaling decisions").datasource(DS).enable(True).icon_color("orange")
                     .expr(f"changes(moe_scaling_decisions_total{{{OP}}}[1m]) > 0")))
    current_row = None
    for row, panel in _panels():
        if row != current_row:
            d = d.with_row(db.Row(row))
            current_row = row
        d = d.with_panel(panel)
    return _to_dict(d.build())


def _to_dict(obj: Any) -> dict[str, Any]:
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(obj))


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL expression) of every panel target."""
    out = []
    for p in dashboard.get("panels", []):
        for t in p.get("targets") or []:
            out.append((p.get("title", ""), t["expr"]))
    return out
