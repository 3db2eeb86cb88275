"""Session fixtures: the real local control plane (deploy/local/cluster.py), an admin client,
impersonated clients, a fresh namespace per test, and the local Prometheus.

By default the session starts the local cluster (reusing one already running) and stops it at the
end if it started it; MOE_KEEP_CLUSTER=1 leaves it running. To run against an existing cluster
instead, set MOE_E2E_EXISTING_CLUSTER=1 and KUBECONFIG (tests that need the local Prometheus or
the simulated GPU nodes are skipped when those are missing).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

import pytest
from kubernetes import client, config

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _cluster_module():
    spec = importlib.util.spec_from_file_location("moe_local_cluster", ROOT / "deploy" / "local" / "cluster.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Cluster:
    kubeconfig: str
    operator_kubeconfig: str | None
    audit_log: pathlib.Path | None
    bin_dir: pathlib.Path | None
    prometheus_url: str | None
    prometheus_targets_dir: pathlib.Path | None
    prometheus_rules_dir: pathlib.Path | None

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=self.kubeconfig)

    def impersonating(self, user: str) -> client.ApiClient:
        """An API client that acts as `user` via impersonation; for a service account
        (system:serviceaccount:NS:NAME) the API server adds its groups itself."""
        api = self.api_client()
        api.set_default_header("Impersonate-User", user)
        return api

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        exe = str(self.bin_dir / "kubectl") if self.bin_dir else "kubectl"
        return subprocess.run([exe, f"--kubeconfig={self.kubeconfig}", *args], input=stdin, capture_output=True,
                              text=True, check=check)

    def prometheus_query(self, promql: str) -> list[dict]:
        if not self.prometheus_url:
            pytest.skip("no local Prometheus")
        url = f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    if os.environ.get("MOE_E2E_EXISTING_CLUSTER"):
        kubeconfig = os.environ.get("KUBECONFIG") or str(pathlib.Path.home() / ".kube" / "config")
        yield Cluster(kubeconfig, kubeconfig, None, None, os.environ.get("MOE_E2E_PROMETHEUS_URL"), None, None)
        return
    mod = _cluster_module()
    was_running = mod.running(mod.paths()) is not None
    state = mod.up()
    try:
        yield Cluster(
            kubeconfig=state["kubeconfig"], operator_kubeconfig=state.get("operatorKubeconfig"),
            audit_log=pathlib.Path(state["auditLog"]) if state.get("auditLog") else None,
            bin_dir=pathlib.Path(state["bin"]), prometheus_url=state.get("prometheusURL"),
            prometheus_targets_dir=pathlib.Path(state["prometheusTargetsDir"]),
            prometheus_rules_dir=pathlib.Path(state["prometheusRulesDir"]),
        )
    finally:
        if not was_running and not os.environ.get("MOE_KEEP_CLUSTER"):
            mod.down(quiet=True)


@pytest.fixture(scope="session")
def api(cluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture
def namespace(api) -> str:
    """A fresh namespace per test, deleted afterwards (its objects go with it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"moe.inference.io/test": "true"})))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


# ------------------------------------------------------------------------------------------- operator

EXTRA_NODES = {"H100-SXM": 16, "H200-SXM": 6}  # beside the 4 default H100 nodes: room for the largest example


@dataclass
class Operator:
    process: subprocess.Popen
    log_path: pathlib.Path
    user: str  # the identity the operator's writes appear under in the audit log
    metrics_port: int

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gpu_nodes(cluster):
    """Simulated nodes enough for every bundled example, one at a time (kwok makes them Ready)."""
    if cluster.bin_dir is None:
        pytest.skip("needs the local cluster's simulated nodes")
    mod = _cluster_module()
    items = [dict(mod.node_manifest(i, gpu, 8), metadata={**mod.node_manifest(i, gpu, 8)["metadata"],
                                                           "name": f"e2e-{gpu.lower()}-{i}"})
             for gpu, count in EXTRA_NODES.items() for i in range(count)]
    for item in items:
        item["metadata"]["labels"]["kubernetes.io/hostname"] = item["metadata"]["name"]
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    core = client.CoreV1Api(cluster.api_client())
    from tests.wait import wait_for

    wait_for(lambda: sum(1 for n in core.list_node().items
                         if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])) >= 4 + len(items),
             timeout_seconds=120, what="extra simulated GPU nodes to be Ready")
    return items


@pytest.fixture(scope="session")
def operator(cluster, api, tmp_path_factory) -> Operator:
    """The operator as users run it (`moectl run`), with its webhook, as its own user."""
    from tests.wait import wait_for

    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/moedeployments.moe.inference.io", "--timeout=60s")
    workdir = tmp_path_factory.mktemp("operator")
    log_path = workdir / "operator.log"
    port = _free_port()
    moectl = pathlib.Path(sys.executable).parent / "moectl"
    env = {**os.environ, "KUBECONFIG": cluster.operator_kubeconfig or cluster.kubeconfig}
    extra = ["--prometheus-url", cluster.prometheus_url] if cluster.prometheus_url else []
    metrics_port = _free_port()
    extra += ["--metrics-address", f"127.0.0.1:{metrics_port}"]
    proc = subprocess.Popen([str(moectl), "run", "--all-namespaces", "--webhook-port", str(port),
                             "--webhook-cert-dir", str(workdir / "certs"), "--resync-seconds", "5", *extra],
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    op = Operator(proc, log_path, "moe-operator", metrics_port)
    adm = client.AdmissionregistrationV1Api(api)

    def webhook_serving():
        assert op.alive(), op.log_tail()
        cfg = adm.read_validating_webhook_configuration("moe-operator.moe.inference.io")
        return any(f":{port}/" in (w.client_config.url or "") for w in cfg.webhooks)

    try:
        wait_for(webhook_serving, timeout_seconds=60, what="the operator's webhook to be configured")
        yield op
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        for delete in (adm.delete_validating_webhook_configuration, adm.delete_mutating_webhook_configuration):
            try:
                delete("moe-operator.moe.inference.io")
            except Exception:  # noqa: BLE001 - already gone
                pass
