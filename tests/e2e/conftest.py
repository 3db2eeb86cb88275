"""Session fixtures: the real local control plane (deploy/local/cluster.py), an admin client,
impersonated clients, a fresh namespace per test, and the local Prometheus.

By default the session starts the local cluster (reusing one already running) and stops it at the
end if it started it; MOE_KEEP_CLUSTER=1 leaves it running. To run against an existing cluster
instead, set MOE_E2E_EXISTING_CLUSTER=1 and KUBECONFIG (tests that need the local Prometheus or
the simulated GPU nodes are skipped when those are missing).
"""

from __future__ import annotations

import datetime
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
from typing import Any

import pytest
import yaml
from kubernetes import client, config

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Audit events of this session are those received after this (the local cluster's audit log outlives sessions).
SESSION_STARTED = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _local_script(name: str):
    """A script of deploy/local/ (not a package) loaded as a module."""
    spec = importlib.util.spec_from_file_location(f"moe_local_{name}", ROOT / "deploy" / "local" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(mod)
    return mod


def _cluster_module():
    return _local_script("cluster")


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
        proc = subprocess.run([exe, f"--kubeconfig={self.kubeconfig}", *args], input=stdin, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return proc

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
    user: str  # the identity the operator's calls appear under in the audit log
    metrics_port: int
    webhook_config: str  # the ValidatingWebhookConfiguration the chart made
    kubeconfig: pathlib.Path  # the operator's own credentials (the chart's ServiceAccount)

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


@dataclass
class ChartRelease:
    """The session's chart release (deploy/local/host_operator.py as `mod`) and the values it was installed with."""

    mod: Any
    tools: Any
    webhook_port: int
    values: dict[str, object]

    def install(self) -> None:
        """`helm upgrade --install` with the same values (the first call installs)."""
        self.mod.helm_install(self.tools, self.webhook_port, self.values)


@pytest.fixture(scope="session")
def third_party_crds(cluster):
    """The Prometheus Operator's and cert-manager's CRDs (tests/fixtures/crds), so the chart's optional objects
    meet their real schemas; with them, `auto` renders the ServiceMonitor and PrometheusRule."""
    from tests.wait import wait_for

    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "tests" / "fixtures" / "crds"))
    ext = client.ApiextensionsV1Api(cluster.api_client())

    def established(name: str) -> bool:
        conditions = ext.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for crd in ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com",
                "certificates.cert-manager.io", "issuers.cert-manager.io"):
        wait_for(lambda: established(crd), timeout_seconds=60, what=f"CRD {crd} to be established")


@pytest.fixture(scope="session")
def chart(cluster, third_party_crds):
    """The Helm chart installed as platform teams install it (release moe-operator in moe-system), with the local
    values: everything but the operator's pods, whose process runs on the host (see the `operator` fixture)."""
    if cluster.bin_dir is None:
        pytest.skip("needs the local cluster's helm")
    mod = _local_script("host_operator")
    # Helm installs CRDs only when absent and never upgrades them: apply the current ones first (as documented)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    values: dict[str, object] = {"operator.resyncSeconds": 5}
    if cluster.prometheus_url:
        values["operator.prometheusURL"] = cluster.prometheus_url
    release = ChartRelease(mod, mod.Tools(cluster.bin_dir, cluster.kubeconfig), _free_port(), values)
    release.install()
    yield release
    release.tools.run("helm", "uninstall", mod.RELEASE, "-n", mod.NAMESPACE, "--wait")


@pytest.fixture(scope="session")
def operator(cluster, api, chart, tmp_path_factory) -> Operator:
    """The operator as the chart runs it: the Deployment's own arguments, authenticated as the chart's
    ServiceAccount (a bound token), so every end-to-end test also proves the chart's RBAC is sufficient."""
    from tests.wait import wait_for

    mod = chart.mod
    workdir = tmp_path_factory.mktemp("operator")
    log_path = workdir / "operator.log"
    metrics_port = _free_port()
    # a short certificate check so the rotation test need not wait a minute
    proc = mod.start(chart.tools, workdir, chart.webhook_port, metrics_port, _free_port(), log_path,
                     extra_args=("--webhook-cert-check-seconds=2",))
    op = Operator(proc, log_path, f"system:serviceaccount:{mod.NAMESPACE}:{mod.SERVICE_ACCOUNT}", metrics_port,
                  mod.WEBHOOK_CONFIG, workdir / mod.SA_KUBECONFIG)

    def webhook_serving():
        assert op.alive(), op.log_tail()
        return mod.ca_bundle_patched(chart.tools) and webhook_answers(api)

    try:
        wait_for(webhook_serving, timeout_seconds=60, what="the operator's webhook to be serving")
        yield op
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def webhook_answers(api) -> bool:
    """A server-side dry run of an infeasible plan is refused by the webhook (not by a TLS or connection error)."""
    doc = yaml.safe_load((ROOT / "deploy" / "examples" / "infeasible" / "memory-exceeded.yaml").read_text())
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object("moe.inference.io", "v1alpha1", "default",
                                                                     "moedeployments", doc, dry_run="All")
    except client.ApiException as e:
        return e.status == 422 and "MemoryExceeded" in (e.body or "")
    raise AssertionError("the webhook admitted an infeasible plan")
