"""Recording and alerting rules: generated files are fresh, `promtool check rules` passes, and `promtool test
rules` shows every alert firing on a bad input and silent on a good one."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from moe_operator.monitoring.rules import ALERTS, prometheus_rule, rule_groups
from moe_operator.sim.model import coefficient_of_variation, zipf_shares

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "monitoring" / "moe-rules.yaml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool comes with Debian's prometheus package (make system-deps)")

D = 'namespace="ns",name="d"'
E = 'namespace="ns",moe_deployment="d",moe_role="{role}"'


def _annotations(alert: str, labels: dict[str, str]) -> dict[str, str]:
    rule = next(a for a in ALERTS if a["alert"] == alert)
    return {k: re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], v) for k, v in rule["annotations"].items()}


def _histogram(metric: str, role: str, slow: bool) -> list[dict[str, str]]:
    """Requests per minute all in the 0.01 bucket (fast) or the 5 bucket (slow)."""
    sel = E.format(role=role)
    fast_values, slow_values = ("0+10x60", "0+0x60") if not slow else ("0+0x60", "0+10x60")
    return [{"series": f'{metric}{{{sel},le="0.01"}}', "values": fast_values},
            {"series": f'{metric}{{{sel},le="5"}}', "values": "0+10x60"},
            {"series": f'{metric}{{{sel},le="+Inf"}}', "values": "0+10x60"}]


CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, str]], dict[str, str], str]] = {
    # alert: (firing input, quiet input, expected labels, eval time)
    "MoETTFTAboveSLO": (
        _histogram("vllm:time_to_first_token_seconds_bucket", "prefill", True) + [{"series": f"moe_slo_ttft_seconds{{{D}}}", "values": "2x60"}],
        _histogram("vllm:time_to_first_token_seconds_bucket", "prefill", False) + [{"series": f"moe_slo_ttft_seconds{{{D}}}", "values": "2x60"}],
        {"namespace": "ns", "name": "d", "role": "prefill", "severity": "warning"}, "30m"),
    "MoETPOTAboveSLO": (
        _histogram("sglang:inter_token_latency_seconds_bucket", "decode", True) + [{"series": f"moe_slo_tpot_seconds{{{D}}}", "values": "0.05x60"}],
        _histogram("sglang:inter_token_latency_seconds_bucket", "decode", False) + [{"series": f"moe_slo_tpot_seconds{{{D}}}", "values": "0.05x60"}],
        {"namespace": "ns", "name": "d", "role": "decode", "severity": "warning"}, "30m"),
    "MoEExpertImbalance": (
        [{"series": f'moe_expert_load_cv{{{D},role="decode",layer="3"}}', "values": "0.5x60"},
         {"series": f"moe_slo_max_expert_load_cv{{{D}}}", "values": "0.1x60"}],
        [{"series": f'moe_expert_load_cv{{{D},role="decode",layer="3"}}', "values": "0.05x60"},
         {"series": f"moe_slo_max_expert_load_cv{{{D}}}", "values": "0.1x60"}],
        {"namespace": "ns", "name": "d", "role": "decode", "layer": "3", "severity": "warning"}, "30m"),
    "MoEGPUMemoryAbovePlan": (
        [{"series": 'DCGM_FI_DEV_FB_USED{namespace="ns",pod="d-decode-0-s0-0",gpu="0"}', "values": "70000x60"},
         {"series": 'moe_pod_info{namespace="ns",name="d",role="decode",stage="0",pod="d-decode-0-s0-0"}', "values": "1x60"},
         {"series": f'moe_predicted_memory_bytes{{{D},role="decode",stage="0",component="weights"}}', "values": "40e9x60"},
         {"series": f'moe_predicted_memory_bytes{{{D},role="decode",stage="0",component="kv_cache"}}', "values": "10e9x60"}],
        [{"series": 'DCGM_FI_DEV_FB_USED{namespace="ns",pod="d-decode-0-s0-0",gpu="0"}', "values": "50000x60"},
         {"series": 'moe_pod_info{namespace="ns",name="d",role="decode",stage="0",pod="d-decode-0-s0-0"}', "values": "1x60"},
         {"series": f'moe_predicted_memory_bytes{{{D},role="decode",stage="0",component="weights"}}', "values": "40e9x60"},
         {"series": f'moe_predicted_memory_bytes{{{D},role="decode",stage="0",component="kv_cache"}}', "values": "10e9x60"}],
        {"namespace": "ns", "name": "d", "role": "decode", "stage": "0", "severity": "warning"}, "30m"),
    "MoEGPUMemoryNearLimit": (
        [{"series": 'DCGM_FI_DEV_FB_USED{namespace="ns",pod="p0",gpu="0"}', "values": "80000x60"},
         {"series": 'DCGM_FI_DEV_FB_FREE{namespace="ns",pod="p0",gpu="0"}', "values": "1000x60"},
         {"series": 'moe_pod_info{namespace="ns",name="d",role="prefill",stage="1",pod="p0"}', "values": "1x60"}],
        [{"series": 'DCGM_FI_DEV_FB_USED{namespace="ns",pod="p0",gpu="0"}', "values": "60000x60"},
         {"series": 'DCGM_FI_DEV_FB_FREE{namespace="ns",pod="p0",gpu="0"}', "values": "21000x60"},
         {"series": 'moe_pod_info{namespace="ns",name="d",role="prefill",stage="1",pod="p0"}', "values": "1x60"}],
        {"namespace": "ns", "name": "d", "role": "prefill", "stage": "1", "severity": "critical"}, "30m"),
    "MoEThroughputFarBelowPrediction": (
        [{"series": f'moe_observed_over_predicted_ratio{{{D},role="decode"}}', "values": "0.3x60"},
         {"series": f'moe_observed_tokens_per_second{{{D},role="decode"}}', "values": "100x60"}],
        [{"series": f'moe_observed_over_predicted_ratio{{{D},role="decode"}}', "values": "0.9x60"},
         {"series": f'moe_observed_tokens_per_second{{{D},role="decode"}}', "values": "100x60"}],
        {"namespace": "ns", "name": "d", "role": "decode", "severity": "warning"}, "30m"),
    "MoEGroupRestartLoop": (
        [{"series": f'moe_group_restarts_total{{{D},role="prefill"}}', "values": "0 1 2 3 4 5"}],
        [{"series": f'moe_group_restarts_total{{{D},role="prefill"}}', "values": "0 1 1 1 1 1"}],
        {"namespace": "ns", "name": "d", "role": "prefill", "severity": "critical"}, "5m"),
    "MoERoleNoReadyReplicas": (
        [{"series": f'moe_role_replicas{{{D},role="decode",state="ready"}}', "values": "0x60"},
         {"series": f'moe_role_replicas{{{D},role="decode",state="desired"}}', "values": "2x60"}],
        [{"series": f'moe_role_replicas{{{D},role="decode",state="ready"}}', "values": "2x60"},
         {"series": f'moe_role_replicas{{{D},role="decode",state="desired"}}', "values": "2x60"}],
        {"namespace": "ns", "name": "d", "role": "decode", "state": "ready", "severity": "critical"}, "30m"),
    "MoEOperatorReconcileErrors": (
        [{"series": 'moe_operator_reconciles_total{result="crashed"}', "values": "0+1x60"}],
        [{"series": 'moe_operator_reconciles_total{result="ok"}', "values": "0+1x60"}],
        {"severity": "warning"}, "30m"),
}


def test_generated_rule_files_are_fresh():
    header = "# Generated from operator/moe_operator/monitoring/rules.py by `moectl rules` (make generate). Do not edit by hand.\n"
    assert RULES.read_text() == header + yaml.safe_dump(rule_groups(), sort_keys=False, width=140)
    crd = ROOT / "deploy" / "monitoring" / "moe-prometheusrule.yaml"
    assert crd.read_text() == header + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=140)


def test_every_alert_has_a_case():
    assert {a["alert"] for a in ALERTS} == set(CASES)


@needs_promtool
def test_promtool_check_rules():
    out = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_promtool_unit_tests_fire_and_stay_quiet(tmp_path):
    tests = []
    for alert, (firing, quiet, labels, at) in CASES.items():
        tests.append({"interval": "1m", "input_series": firing, "alert_rule_test": [
            {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": labels, "exp_annotations": _annotations(alert, labels)}]}]})
        tests.append({"interval": "1m", "input_series": quiet, "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": []}]})
    # the expert CV recording rule equals the CV of the per-expert rates (Zipf skew 1.0 over 8 experts)
    per_minute = [round(share * 6000, 6) for share in zipf_shares(8, 1.0)]
    series = [{"series": f'moe_expert_tokens_total{{{E.format(role="decode")},layer="0",expert="{i}",pod="p"}}',
               "values": f"0+{v}x60"} for i, v in enumerate(per_minute)]
    expected = coefficient_of_variation([v / sum(per_minute) for v in per_minute])
    tests.append({"interval": "1m", "input_series": series, "promql_expr_test": [{
        "expr": f'abs(moe:expert_load_cv{{namespace="ns",name="d",role="decode",layer="0"}} - {expected!r}) < bool 1e-9',
        "eval_time": "30m",
        "exp_samples": [{"labels": '{namespace="ns",name="d",role="decode",layer="0"}', "value": 1}]}]})
    test_file = tmp_path / "rules-test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    out = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]


def test_committed_dashboard_matches_a_fresh_generation_and_the_sdk_schema():
    import json

    from grafana_foundation_sdk.models.dashboard import Dashboard

    from moe_operator.monitoring.dashboards import overview_dashboard, panel_queries

    path = ROOT / "charts" / "moe-operator" / "dashboards" / "moe-deployment.json"
    committed = json.loads(path.read_text())
    assert committed == overview_dashboard(), "dashboard is stale: run `make generate` and commit the result"
    # the SDK's own model of Grafana's dashboard schema reads it back unchanged
    assert Dashboard.from_json(committed).to_json()["uid"] == "moe-deployment"
    variables = [v["name"] for v in committed["templating"]["list"]]
    assert variables == ["datasource", "namespace", "deployment", "role"]
    titles = {p["title"] for p in committed["panels"]}
    assert {"Expert load (layer x expert)", "TTFT p95 vs SLO", "GPU memory per stage: predicted breakdown"} <= titles
    assert all("${datasource}" in json.dumps(p.get("datasource", {})) for p in committed["panels"] if p["type"] != "row")
    assert len(panel_queries(committed)) >= 15
