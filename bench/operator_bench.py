"""Benchmark the operator on the local cluster (not a test: it reports numbers).

  python bench/operator_bench.py [--background 50]

Reports, on the real local control plane with simulated GPU nodes:
  - apply-to-all-pods-Running time of a 2-role (prefill + decode), 4-stage deployment;
  - the same with N other MoEDeployments (with running pods) in the cluster;
  - API calls per reconcile (from the API server's audit log of the operator's own user), idle and busy;
  - the operator's resident memory.
Writes bench/results/operator.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

from kubernetes import client, config

ROOT = pathlib.Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "moe.inference.io", "v1alpha1", "moedeployments"


def cluster_module():
    spec = importlib.util.spec_from_file_location("moe_local_cluster", ROOT / "deploy" / "local" / "cluster.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def plan(name: str, pipeline: int, replicas: int = 1, disaggregated: bool = True) -> dict:
    role = {"replicas": replicas, "parallelism": {"tensor": 2, "pipeline": pipeline}, "maxConcurrentSequences": 16}
    roles = {"prefill": role, "decode": role} if disaggregated else {"aggregated": dict(role, parallelism={"tensor": 1})}
    model = {"preset": "mixtral-8x7b"} if disaggregated else {"preset": "qwen3-30b-a3b"}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MoEDeployment", "metadata": {"name": name},
            "spec": {"model": model, "hardware": {"gpu": "H100-SXM", "gpusPerNode": 8},
                     "workload": {"inputTokens": {"min": 128, "mean": 1024, "max": 4096},
                                  "outputTokens": {"min": 1, "mean": 128, "max": 512}},
                     "roles": roles}}


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(what)


def all_running(core, ns: str, selector: str, expected: int) -> bool:
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    return len(pods) == expected and all(p.status.phase == "Running" for p in pods)


def audit_calls(audit: pathlib.Path, since_line: int, namespace: str | None = None) -> list[dict]:
    out = []
    for line in audit.read_text().splitlines()[since_line:]:
        e = json.loads(line)
        if e["user"]["username"] == "moe-operator" and (namespace is None or e.get("objectRef", {}).get("namespace") == namespace):
            out.append(e)
    return out


def rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_apply(custom, core, ns: str, name: str, expected_pods: int) -> float:
    start = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, plan(name, pipeline=4))
    wait(lambda: all_running(core, ns, f"moe.inference.io/deployment={name}", expected_pods), 300, f"{name} Running")
    elapsed = time.monotonic() - start
    wait(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name).get("status", {}).get("phase") == "Ready",
         60, f"{name} Ready")
    return elapsed


def all_ready(custom, ns: str) -> bool:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    return all((o.get("status") or {}).get("phase") == "Ready" for o in items)


def writes_of(calls: list[dict]) -> list[str]:
    return [f"{e['verb']} {e.get('objectRef', {}).get('resource')}/{e.get('objectRef', {}).get('name')}"
            for e in calls if e["verb"] not in ("get", "list", "watch")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--background", type=int, default=50)
    ap.add_argument("--resync-seconds", type=float, default=10.0)
    args = ap.parse_args()
    mod = cluster_module()
    state = mod.up()
    env = {**os.environ, "KUBECONFIG": state["kubeconfig"]}
    kubectl = pathlib.Path(state["bin"]) / "kubectl"
    nodes = [dict(mod.node_manifest(i, "H100-SXM", 8)) for i in range(24)]
    for i, n in enumerate(nodes):
        n["metadata"] = {**n["metadata"], "name": f"bench-node-{i}"}
        n["metadata"]["labels"] = {**n["metadata"]["labels"], "kubernetes.io/hostname": f"bench-node-{i}"}
    subprocess.run([str(kubectl), "apply", "-f", "-"], input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}),
                   text=True, env=env, check=True, capture_output=True)
    subprocess.run([str(kubectl), "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")], env=env, check=True,
                   capture_output=True)
    api = config.new_client_from_config(config_file=state["kubeconfig"])
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = f"bench-{int(time.time())}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(ROOT / ".local-cluster" / "logs" / "bench-operator.log", "wb")
    proc = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "moectl"), "run", "-n", ns, "--webhook-port", str(port),
                             "--webhook-cert-dir", "/tmp/moe-bench-certs", "--resync-seconds", str(args.resync_seconds),
                             "--metrics-address", ""],
                            env={**env, "KUBECONFIG": state["operatorKubeconfig"]}, stdout=log, stderr=subprocess.STDOUT)
    audit = pathlib.Path(state["auditLog"])
    results: dict = {"backgroundDeployments": args.background, "resyncSeconds": args.resync_seconds}
    try:
        adm = client.AdmissionregistrationV1Api(api)

        def webhook_ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError("the operator exited; see .local-cluster/logs/bench-operator.log")
            try:
                cfg = adm.read_validating_webhook_configuration("moe-operator.moe.inference.io")
            except client.exceptions.ApiException:
                return False
            return any(f":{port}/" in (w.client_config.url or "") for w in cfg.webhooks or [])

        wait(webhook_ready, 60, "the operator's webhook")
        # 2 roles x 1 replica x 4 stages of 2 GPUs (one pod each): 8 pods
        results["applyToRunningSeconds"] = round(timed_apply(custom, core, ns, "bench-alone", 8), 2)
        results["operatorRSSMiBOneDeployment"] = round(rss_mib(proc.pid), 1)
        mark = len(audit.read_text().splitlines())
        time.sleep(3 * args.resync_seconds)
        idle = audit_calls(audit, mark, ns)
        reconciles = 3  # one deployment, three resync periods
        results["idleCallsPerReconcile"] = round(len(idle) / reconciles, 1)
        results["idleWriteCalls"] = writes_of(idle)
        start = time.monotonic()
        for i in range(args.background):
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, plan(f"bg-{i:03d}", 1, disaggregated=False))
        wait(lambda: all_running(core, ns, "moe.inference.io/role=aggregated", args.background), 600, "background Running")
        results["backgroundApplyToRunningSeconds"] = round(time.monotonic() - start, 2)
        wait(lambda: all_ready(custom, ns), 120, "every deployment Ready")
        mark = len(audit.read_text().splitlines())
        results["applyToRunningSecondsWithBackground"] = round(timed_apply(custom, core, ns, "bench-loaded", 8), 2)
        busy = audit_calls(audit, mark, ns)
        results["callsNamingTheDeploymentToBringItUpUnderLoad"] = len([e for e in busy if "bench-loaded" in json.dumps(e.get("objectRef", {}))])
        results["operatorRSSMiBWithBackground"] = round(rss_mib(proc.pid), 1)
        mark = len(audit.read_text().splitlines())
        time.sleep(2 * args.resync_seconds)
        idle = audit_calls(audit, mark, ns)
        deployments = args.background + 2
        results["idleCallsPerReconcileWithBackground"] = round(len(idle) / (2 * deployments), 2)
        results["idleWriteCallsWithBackground"] = writes_of(idle)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        core.delete_namespace(ns)
    for k, v in results.items():
        print(f"{k:45s} {v}")
    out = ROOT / "bench" / "results" / "operator.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
