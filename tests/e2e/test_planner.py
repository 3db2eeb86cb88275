"""The built-in planner on the local cluster with the real Prometheus and the engine simulator:
load steps move prefill and decode replicas by what the capacity model predicts, within the GPU budget."""

from __future__ import annotations

import json
import math
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml
from kubernetes import client

from moe_operator.api import MoEDeployment
from moe_operator.capacity.slo_capacity import role_capacity_at_slo
from tests.wait import wait_for

GROUP, VERSION = "moe.inference.io", "v1alpha1"
pytestmark = pytest.mark.usefixtures("operator")

DOC = {
    "apiVersion": f"{GROUP}/{VERSION}", "kind": "MoEDeployment", "metadata": {"name": "planned"},
    "spec": {
        "model": {"preset": "mixtral-8x7b"}, "hardware": {"gpu": "H100-SXM", "gpusPerNode": 8, "maxGPUs": 16},
        "workload": {"inputTokens": {"min": 128, "mean": 2048, "max": 4096}, "outputTokens": {"min": 1, "mean": 256, "max": 1024}},
        "autoscaling": {"intervalSeconds": 5, "rateWindowSeconds": 15, "scaleDownWindowSeconds": 30, "headroomPercent": 20},
        "roles": {
            "prefill": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 16, "maxBatchTokens": 8192,
                        "autoscaling": {"mode": "Planner", "minReplicas": 1, "maxReplicas": 8}},
            "decode": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 64,
                       "autoscaling": {"mode": "Planner", "minReplicas": 1, "maxReplicas": 8}},
        },
    },
}


def _expected(rate: float) -> tuple[int, int]:
    """Replicas the capacity model says `rate` requests/s need, with the spec's 20% headroom."""
    spec = MoEDeployment.model_validate(DOC).spec
    pre, dec = role_capacity_at_slo(spec, "prefill"), role_capacity_at_slo(spec, "decode")
    return (math.ceil(rate * 1.2 / pre.requests_per_second), math.ceil(rate * 1.2 / dec.requests_per_second))


def _replicas(custom, ns) -> tuple[int, int]:
    get = lambda role: custom.get_namespaced_custom_object(GROUP, VERSION, ns, "moerolescalers", f"planned-{role}")["spec"]["replicas"]  # noqa: E731
    return get("prefill"), get("decode")


def _set_load(port: int, rate: float) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/load", data=json.dumps({"requestsPerSecond": rate}).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def _start_simulator(cluster, namespace: str, doc: dict, tmp_path: pathlib.Path, *extra: str) -> tuple[subprocess.Popen, int, pathlib.Path]:
    """The engine simulator for `doc`'s pods, registered with the local Prometheus through a file-SD target."""
    doc_file = tmp_path / f"{doc['metadata']['name']}.yaml"
    doc_file.write_text(yaml.safe_dump(doc))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    targets = cluster.prometheus_targets_dir / f"sim-{namespace}.json"
    sim = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "moectl"), "simulate-engine", "-f", str(doc_file), "-n", namespace,
                            "--kubeconfig", cluster.kubeconfig, "--port", str(port), "--targets-file", str(targets), *extra],
                           stdout=open(tmp_path / "sim.log", "wb"), stderr=subprocess.STDOUT, env=dict(os.environ))
    return sim, port, targets


def test_load_steps_move_replicas_by_the_predicted_amounts(cluster, api, namespace, tmp_path):
    if not cluster.prometheus_targets_dir:
        pytest.skip("needs the local Prometheus")
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "moedeployments", DOC)
    wait_for(lambda: _replicas(custom, namespace) == (1, 1), what="the scalers")
    sim, port, targets = _start_simulator(cluster, namespace, DOC, tmp_path)
    try:
        wait_for(lambda: cluster.prometheus_query(f'vllm:num_requests_running{{namespace="{namespace}"}}'), timeout_seconds=60,
                 what="Prometheus to scrape the simulator")
        for rate in (15.0, 25.0):
            _set_load(port, rate)
            want = _expected(rate)
            got = wait_for(lambda: _replicas(custom, namespace) == want and want, timeout_seconds=120,
                           what=f"replicas {want} at {rate} requests/s")
            assert got == want
            seen: list = []

            def groups_running():
                pods = core.list_namespaced_pod(namespace).items
                seen[:] = [_replicas(custom, namespace), sorted((p.metadata.name, p.status.phase) for p in pods)]
                return len(pods) == sum(want) and all(p.status.phase == "Running" for p in pods)

            try:
                wait_for(groups_running, what="the new groups Running")
            except AssertionError as err:
                raise AssertionError(f"{err}; replicas and pods: {seen}") from None
        # demand beyond the budget: 16 GPUs = 8 groups of 2, split between the roles, never more
        _set_load(port, 60.0)
        wanted = _expected(60.0)
        assert sum(wanted) * 2 > 16
        peak = 0

        def budget_binds():
            nonlocal peak
            p, d = _replicas(custom, namespace)
            gpus = sum(int(x.spec.containers[0].resources.requests["nvidia.com/gpu"]) for x in core.list_namespaced_pod(namespace).items)
            peak = max(peak, (p + d) * 2, gpus)
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "moedeployments", "planned")
            limited = next((c for c in obj["status"].get("conditions", []) if c["type"] == "ScalingLimited"), {})
            return p + d == 8 and limited.get("status") == "True" and (p, d)

        p, d = wait_for(budget_binds, timeout_seconds=120, what="the budget to bind")
        assert peak <= 16 and min(p, d) >= 3
        events = core.list_namespaced_event(namespace, field_selector="reason=ScalingLimited").items
        assert events and "maxGPUs=16" in events[0].message
        # load drops: replicas come down, but only after the scale-down window (30 s)
        dropped_at = time.monotonic()
        _set_load(port, 15.0)
        wait_for(lambda: sum(_replicas(custom, namespace)) < 8, timeout_seconds=180, interval_seconds=0.5, what="a scale-down")
        assert time.monotonic() - dropped_at >= 25
        wait_for(lambda: _replicas(custom, namespace) == _expected(15.0), timeout_seconds=240,
                 what=f"back to the replicas 15 requests/s needs, {_expected(15.0)}")
        scaled = core.list_namespaced_event(namespace, field_selector="reason=ScaledUp").items
        assert any("prefill" in e.message and "per replica at the SLO" in e.message for e in scaled)
    finally:
        targets.unlink(missing_ok=True)
        sim.terminate()
        sim.wait(timeout=30)


def test_operator_metrics_and_expert_imbalance(cluster, api, namespace, operator, tmp_path):
    """Prometheus scrapes the operator; the expert CV it exports equals the CV of the simulator's Zipf skew,
    and a skew above the SLO sets the ExpertImbalance condition and an event."""
    if not cluster.prometheus_targets_dir:
        pytest.skip("needs the local Prometheus")
    from moe_operator.sim.model import coefficient_of_variation, zipf_shares

    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    doc = json.loads(json.dumps(DOC))
    doc["metadata"]["name"] = "skewed"
    doc["spec"]["slo"] = {"maxExpertLoadCVPercent": 40, "ttftMilliseconds": 2000, "tpotMilliseconds": 100}
    doc["spec"]["autoscaling"]["rateWindowSeconds"] = 15
    for role in ("prefill", "decode"):
        doc["spec"]["roles"][role]["autoscaling"] = {"mode": "Manual"}
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "moedeployments", doc)
    op_targets = cluster.prometheus_targets_dir / f"operator-{namespace}.json"
    op_targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{operator.metrics_port}"], "labels": {"job_role": "moe-operator"}}]))
    skew = 0.5
    sim, port, targets = _start_simulator(cluster, namespace, doc, tmp_path, "--requests-per-second", "8", "--skew", str(skew),
                                          "--expert-layers", "2")
    try:
        expected = coefficient_of_variation(zipf_shares(8, skew))
        sel = f'namespace="{namespace}",name="skewed"'
        cv = wait_for(lambda: cluster.prometheus_query(f'moe_expert_load_cv{{{sel},role="prefill",layer="0"}}'),
                      timeout_seconds=120, what="the operator's expert CV in Prometheus")
        assert float(cv[0]["value"][1]) == pytest.approx(expected, rel=0.02)
        predicted = cluster.prometheus_query(f'moe_predicted_memory_bytes{{{sel},role="decode",stage="0",component="weights"}}')
        assert float(predicted[0]["value"][1]) > 10e9
        assert cluster.prometheus_query(f'moe_role_replicas{{{sel},role="decode",state="desired"}}')[0]["value"][1] == "1"
        assert cluster.prometheus_query('sum(moe_operator_reconciles_total{result="ok"})')
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "moedeployments", "skewed")
        assert next(c for c in obj["status"]["conditions"] if c["type"] == "ExpertImbalance")["status"] == "False"
        # induce an imbalance above the 40% SLO
        _set_load(port, 8.0)
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/load", data=json.dumps({"skew": 1.5}).encode(),
                                                      method="POST"), timeout=5).read()
        assert coefficient_of_variation(zipf_shares(8, 1.5)) > 0.4
        cond = wait_for(lambda: next((c for c in custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "moedeployments", "skewed")
                                      ["status"]["conditions"] if c["type"] == "ExpertImbalance" and c["status"] == "True"), None),
                        timeout_seconds=120, what="the ExpertImbalance condition")
        assert "maxExpertLoadCVPercent=40" in cond["message"]
        assert core.list_namespaced_event(namespace, field_selector="reason=ExpertImbalance").items
        # the generated recording rules, loaded into the real Prometheus, return data for this deployment
        # (the DCGM-based memory rules need dcgm-exporter, which does not run here)
        # (with every alert's `for` cut to 0 so the induced imbalance fires at once; the expressions are the shipped ones)
        rules = yaml.safe_load((pathlib.Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "moe-rules.yaml").read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0m"
        rules_file = cluster.prometheus_rules_dir / "moe-rules.yml"
        rules_file.write_text(yaml.safe_dump(rules))
        urllib.request.urlopen(urllib.request.Request(f"{cluster.prometheus_url}/-/reload", method="POST"), timeout=10).read()
        for record in ("moe:role_prompt_tokens_per_second", "moe:role_generated_tokens_per_second", "moe:role_ttft_seconds:p95",
                       "moe:role_itl_seconds:p95", "moe:expert_tokens_per_second", "moe:expert_load_cv"):
            wait_for(lambda: cluster.prometheus_query(f'{record}{{namespace="{namespace}",name="skewed"}}'), timeout_seconds=90,
                     what=f"data for the recording rule {record}")
        # the terminal view shows the roles with observed throughput and the expert CV
        shown = subprocess.run([str(pathlib.Path(sys.executable).parent / "moectl"), "status", "skewed", "-n", namespace,
                                "--kubeconfig", cluster.kubeconfig, "--prometheus-url", cluster.prometheus_url],
                               capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        assert shown.returncode == 0, shown.stderr
        prefill_row = next(line for line in shown.stdout.splitlines() if line.strip("│ ").startswith("prefill"))
        assert "1/1" in prefill_row and "s0: 1/1" in prefill_row and "%" in prefill_row
        assert "ExpertImbalance=True" in shown.stdout
        fired = wait_for(lambda: cluster.prometheus_query(
            f'ALERTS{{alertname="MoEExpertImbalance",alertstate="firing",namespace="{namespace}",name="skewed"}}'),
            timeout_seconds=60, what="the MoEExpertImbalance alert to fire")
        assert fired[0]["metric"]["severity"] == "warning"
        # every dashboard panel query returns data, with the dashboard's variables set to this deployment
        from moe_operator.monitoring.dashboards import overview_dashboard, panel_queries

        for title, expr in panel_queries(overview_dashboard()):
            if "stage_gpu_memory_used_bytes" in expr:
                continue  # observed GPU memory comes from dcgm-exporter, which does not run here
            q = (expr.replace("$namespace", namespace).replace("$deployment", "skewed").replace("$role", ".*")
                 .replace("$__rate_interval", "1m"))
            wait_for(lambda: cluster.prometheus_query(q), timeout_seconds=60, what=f"data for panel {title!r}: {q}")
    finally:
        targets.unlink(missing_ok=True)
        op_targets.unlink(missing_ok=True)
        (cluster.prometheus_rules_dir / "moe-rules.yml").unlink(missing_ok=True)
        sim.terminate()
        sim.wait(timeout=30)
