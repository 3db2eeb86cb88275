#!/usr/bin/env python3
"""Install-path timings on the local cluster (make bench-chart): helm template, helm install, operator start to
its webhook answering under the chart's ServiceAccount, and a webhook certificate renewal end to end.

Writes bench/results/chart.json. Uses a fresh release in its own namespace; removes it afterwards.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import pathlib
import socket
import ssl
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(condition, timeout_seconds: float = 120.0, interval: float = 0.05) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout_seconds:
            raise TimeoutError("condition not met")
        time.sleep(interval)
    return time.perf_counter() - start


def main() -> int:
    cluster = _load("moe_local_cluster", ROOT / "deploy" / "local" / "cluster.py")
    host = _load("moe_host_operator", ROOT / "deploy" / "local" / "host_operator.py")
    import yaml
    from cryptography import x509
    from kubernetes import client, config

    from moe_operator.kube.certs import CertificateSet, issue

    state = cluster.up()
    tools = host.Tools(pathlib.Path(state["bin"]), state["kubeconfig"])
    api = config.new_client_from_config(config_file=state["kubeconfig"])
    core = client.CoreV1Api(api)
    tools.run("kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    results: dict[str, object] = {}

    runs = []
    for _ in range(5):
        start = time.perf_counter()
        tools.run("helm", "template", "moe-operator", str(host.CHART), "-n", "moe-system")
        runs.append(time.perf_counter() - start)
    results["helm_template_seconds_median"] = round(statistics.median(runs), 3)

    if "moe-operator" in tools.run("helm", "list", "-n", host.NAMESPACE, "-q").split():
        raise SystemExit("a moe-operator release is installed (make demo?): make demo-down first")
    port = _free_port()
    start = time.perf_counter()
    host.helm_install(tools, port, {"operator.resyncSeconds": 5})
    results["helm_install_wait_seconds"] = round(time.perf_counter() - start, 3)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="moe-chart-bench-"))
    start = time.perf_counter()
    proc = host.start(tools, workdir, port, _free_port(), _free_port(), workdir / "operator.log",
                      extra_args=("--webhook-cert-check-seconds=1",))
    try:
        _until(lambda: host.ca_bundle_patched(tools))
        results["operator_start_to_ca_bundle_patched_seconds"] = round(time.perf_counter() - start, 3)
        doc = yaml.safe_load((ROOT / "deploy" / "examples" / "infeasible" / "memory-exceeded.yaml").read_text())
        custom = client.CustomObjectsApi(api)

        def refused() -> bool:
            try:
                custom.create_namespaced_custom_object("moe.inference.io", "v1alpha1", "default", "moedeployments", doc, dry_run="All")
            except client.ApiException as e:
                return e.status == 422
            return False

        _until(refused)
        results["operator_start_to_first_refusal_seconds"] = round(time.perf_counter() - start, 3)
        latencies = []
        for _ in range(20):
            t = time.perf_counter()
            assert refused()
            latencies.append(time.perf_counter() - t)
        results["admission_round_trip_seconds_median"] = round(statistics.median(latencies), 4)

        # renewal: a certificate with a sixth of its life left, same CA; time to renewed in the Secret and served
        secret = core.read_namespaced_secret("moe-operator-webhook-cert", host.NAMESPACE)
        current = CertificateSet.from_secret_data(secret.data)
        names = ["127.0.0.1", "moe-operator-webhook.moe-system.svc", "moe-operator-webhook.moe-system.svc.cluster.local"]
        stale = issue(names, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=75), current)
        secret.data = stale.as_secret_data()
        core.replace_namespaced_secret("moe-operator-webhook-cert", host.NAMESPACE, secret)
        t = time.perf_counter()
        secret_changed = served_changed = None
        reviews = failures = 0
        while served_changed is None and time.perf_counter() - t < 120:
            # the webhook keeps answering (a 422 refusal, not a TLS error) while the certificate is renewed
            reviews += 1
            failures += 0 if refused() else 1
            data = core.read_namespaced_secret("moe-operator-webhook-cert", host.NAMESPACE).data
            renewed = base64.b64decode(data["tls.crt"])
            if secret_changed is None and renewed != stale.cert:
                secret_changed = time.perf_counter() - t
            served = x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", port)).encode())
            if secret_changed is not None and served == x509.load_pem_x509_certificate(renewed):
                served_changed = time.perf_counter() - t
                results["ca_bundle_unchanged_by_renewal"] = base64.b64decode(data["ca.crt"]) == current.ca_bundle
        results["renewal_to_secret_seconds_check_interval_1s"] = round(secret_changed, 3)
        results["renewal_to_served_seconds_check_interval_1s"] = round(served_changed, 3)
        results["admission_reviews_during_renewal"] = reviews
        results["admission_failures_during_renewal"] = failures
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        start = time.perf_counter()
        tools.run("helm", "uninstall", host.RELEASE, "-n", host.NAMESPACE, "--wait")
        results["helm_uninstall_wait_seconds"] = round(time.perf_counter() - start, 3)
    out = ROOT / "bench" / "results" / "chart.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
