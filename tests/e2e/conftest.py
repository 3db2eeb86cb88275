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
        yield Cluster(kubeconfig, None, os.environ.get("MOE_E2E_PROMETHEUS_URL"), None, None)
        return
    mod = _cluster_module()
    was_running = mod.running(mod.paths()) is not None
    state = mod.up()
    try:
        yield Cluster(
            kubeconfig=state["kubeconfig"], bin_dir=pathlib.Path(state["bin"]), prometheus_url=state.get("prometheusURL"),
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
