"""Draw the dashboard's main panels from real query results (no Grafana server runs here) into docs/dashboard.png.

  python bench/dashboard_snapshot.py

Brings up the local cluster, the operator (metrics scraped by the local Prometheus) and the engine simulator for a
disaggregated Mixtral deployment, walks the load through a few steps (with an expert skew that grows), loads the
generated rules, then plots the dashboard's queries over the run with matplotlib.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
NS, NAME = "snapshot", "mixtral"
DOC = {"apiVersion": "moe.inference.io/v1alpha1", "kind": "MoEDeployment", "metadata": {"name": NAME, "namespace": NS},
       "spec": {"model": {"preset": "mixtral-8x7b"}, "hardware": {"gpu": "H100-SXM", "gpusPerNode": 8, "maxGPUs": 16},
                "workload": {"inputTokens": {"min": 128, "mean": 2048, "max": 4096}, "outputTokens": {"min": 1, "mean": 256, "max": 1024}},
                "slo": {"ttftMilliseconds": 2000, "tpotMilliseconds": 50, "maxExpertLoadCVPercent": 40},
                "autoscaling": {"intervalSeconds": 5, "rateWindowSeconds": 15, "scaleDownWindowSeconds": 30},
                "roles": {"prefill": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 16, "maxBatchTokens": 8192,
                                      "autoscaling": {"mode": "Planner", "maxReplicas": 4}},
                          "decode": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 64,
                                     "autoscaling": {"mode": "Planner", "maxReplicas": 4}}}}}
STEPS = [(8.0, 0.3), (20.0, 0.6), (35.0, 1.2), (12.0, 1.2)]  # (requests/s, Zipf skew), 45 s each


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query_range(prom: str, expr: str, start: float, end: float) -> list[dict]:
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": 5})
    with urllib.request.urlopen(f"{prom}/api/v1/query_range?{q}", timeout=10) as r:
        return json.load(r)["data"]["result"]


def main() -> None:
    spec = importlib.util.spec_from_file_location("moe_local_cluster", ROOT / "deploy" / "local" / "cluster.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    state = mod.up()
    prom, kubectl = state["prometheusURL"], str(pathlib.Path(state["bin"]) / "kubectl")
    env = {**os.environ, "KUBECONFIG": state["kubeconfig"]}
    subprocess.run([kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")], env=env, check=True, capture_output=True)
    subprocess.run([kubectl, "wait", "--for=delete", f"namespace/{NS}", "--timeout=120s"], env=env, capture_output=True)
    subprocess.run([kubectl, "create", "namespace", NS], env=env, check=True, capture_output=True)
    targets = pathlib.Path(state["prometheusTargetsDir"])
    rules = pathlib.Path(state["prometheusRulesDir"]) / "moe-rules.yml"
    rules.write_text((ROOT / "deploy" / "monitoring" / "moe-rules.yaml").read_text())
    urllib.request.urlopen(urllib.request.Request(f"{prom}/-/reload", method="POST"), timeout=10).read()
    moectl = str(pathlib.Path(sys.executable).parent / "moectl")
    op_port, sim_port = free_port(), free_port()
    (targets / "snapshot-operator.json").write_text(json.dumps([{"targets": [f"127.0.0.1:{op_port}"]}]))
    op = subprocess.Popen([moectl, "run", "-n", NS, "--no-webhook", "--metrics-address", f"127.0.0.1:{op_port}", "--prometheus-url", prom],
                          env={**env, "KUBECONFIG": state["operatorKubeconfig"]}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    doc_file = ROOT / ".local-cluster" / "snapshot.yaml"
    doc_file.write_text(yaml.safe_dump(DOC))
    subprocess.run([kubectl, "apply", "-f", str(doc_file)], env=env, check=True, capture_output=True)
    sim = subprocess.Popen([moectl, "simulate-engine", "-f", str(doc_file), "-n", NS, "--kubeconfig", state["kubeconfig"],
                            "--port", str(sim_port), "--targets-file", str(targets / "snapshot-sim.json"), "--expert-layers", "8"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    start = time.time()
    try:
        time.sleep(10)
        for rate, skew in STEPS:
            body = json.dumps({"requestsPerSecond": rate, "skew": skew}).encode()
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sim_port}/load", data=body, method="POST"), timeout=5).read()
            print(f"load {rate} req/s, skew {skew}", flush=True)
            time.sleep(45)
        end = time.time()
        plot(prom, start, end)
    finally:
        # delete the deployment while the operator runs: it holds kopf's finalizer on the object
        subprocess.run([kubectl, "delete", "-f", str(doc_file), "--timeout=60s"], env=env, capture_output=True)
        for p in (sim, op):
            p.terminate()
            p.wait(timeout=60)
        for f in ("snapshot-operator.json", "snapshot-sim.json"):
            (targets / f).unlink(missing_ok=True)
        rules.unlink(missing_ok=True)
        subprocess.run([kubectl, "delete", "namespace", NS, "--wait=false"], env=env, capture_output=True)


def plot(prom: str, start: float, end: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    op = f'namespace="{NS}",name="{NAME}"'
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    fig.suptitle(f"moe-operator dashboard, main panels: {NS}/{NAME} (Mixtral-8x7B, prefill TP2 + decode TP2 on H100, simulated engines)")

    def series(ax, expr, label_fn, title, unit, style="-"):
        for s in query_range(prom, expr, start, end):
            t = [float(v[0]) - start for v in s["values"]]
            ax.plot(t, [float(v[1]) for v in s["values"]], style, label=label_fn(s["metric"]))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds")
        ax.set_ylabel(unit)

    ax = axes[0][0]
    series(ax, f"moe_observed_tokens_per_second{{{op}}}", lambda m: f"observed {m['role']}", "Tokens/s per role: observed vs predicted", "tokens/s")
    series(ax, f"moe_predicted_tokens_per_second{{{op}}}", lambda m: f"predicted {m['role']}", "Tokens/s per role: observed vs predicted", "tokens/s", "--")
    ax = axes[0][1]
    series(ax, f"moe:role_ttft_seconds:p95{{{op}}}", lambda m: f"TTFT p95 {m['role']}", "TTFT p95 vs SLO", "seconds")
    series(ax, f"moe_slo_ttft_seconds{{{op}}}", lambda m: "SLO", "TTFT p95 vs SLO", "seconds", "k--")
    ax = axes[0][2]
    series(ax, f"moe:role_itl_seconds:p95{{{op}}}", lambda m: f"ITL p95 {m['role']}", "Inter-token latency p95 vs SLO", "seconds")
    series(ax, f"moe_slo_tpot_seconds{{{op}}}", lambda m: "SLO", "Inter-token latency p95 vs SLO", "seconds", "k--")
    ax = axes[1][0]
    series(ax, f'moe_role_replicas{{{op},state="desired"}}', lambda m: f"{m['role']} groups", "Replica groups per role (planner)", "groups")
    ax = axes[1][1]
    series(ax, f"moe_expert_load_cv{{{op},role=\"decode\"}}", lambda m: f"layer {m['layer']}", "Expert load CV (decode) vs SLO", "CV")
    series(ax, f"moe_slo_max_expert_load_cv{{{op}}}", lambda m: "SLO", "Expert load CV (decode) vs SLO", "CV", "k--")
    ax = axes[1][2]
    rows = query_range(prom, f'sum by (layer, expert) (rate(moe_expert_tokens_total{{namespace="{NS}",moe_deployment="{NAME}",moe_role="decode"}}[30s]))',
                       end - 20, end)
    grid: dict[tuple[int, int], float] = {(int(r["metric"]["layer"]), int(r["metric"]["expert"])): float(r["values"][-1][1]) for r in rows}
    layers, experts = sorted({k[0] for k in grid}), sorted({k[1] for k in grid})
    image = ax.imshow([[grid.get((la, e), 0.0) for e in experts] for la in layers], aspect="auto", cmap="inferno")
    ax.set_title("Expert load at the end (layer x expert), tokens/s", fontsize=10)
    ax.set_xlabel("expert")
    ax.set_ylabel("layer")
    fig.colorbar(image, ax=ax)
    for row in axes:
        for a in row[:3]:
            if a.get_legend_handles_labels()[0]:
                a.legend(fontsize=7)
    fig.tight_layout()
    out = ROOT / "docs" / "dashboard.png"
    fig.savefig(out, dpi=90)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
