#!/usr/bin/env python3
"""Install the Helm chart into the local cluster and run the operator on the host as the chart's ServiceAccount.

The local cluster's nodes are simulated, so the chart's Deployment has no replicas here (values-host-operator.yaml);
this script runs `moectl run` with the arguments the chart gives its container, overriding only what differs on
a host (listen addresses, ports, the certificate directory), and a kubeconfig holding a token of the chart's
ServiceAccount: the operator has exactly the chart's RBAC, no more.

    python deploy/local/host_operator.py up [--webhook-port 9443] [--metrics-port 8080]
    python deploy/local/host_operator.py down        # stop it and `helm uninstall`
Used by `make demo` and by the end-to-end tests (tests/e2e/conftest.py).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "moe-operator"
LOCAL_VALUES = pathlib.Path(__file__).resolve().parent / "values-host-operator.yaml"
RELEASE = "moe-operator"
NAMESPACE = "moe-system"
SERVICE_ACCOUNT = "moe-operator"  # the chart's fullname for release moe-operator
WEBHOOK_CONFIG = f"{RELEASE}-{NAMESPACE}"  # the chart's cluster-scoped name: fullname-namespace
STATE_DIR = ROOT / ".local-cluster"
SA_KUBECONFIG = "operator-sa.kubeconfig"  # written by start() into its workdir


@dataclass(frozen=True)
class Tools:
    bin_dir: pathlib.Path
    kubeconfig: str

    def run(self, tool: str, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run([str(self.bin_dir / tool), f"--kubeconfig={self.kubeconfig}", *args], input=stdin,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
        return proc.stdout


def helm_install(tools: Tools, webhook_port: int, values: dict[str, object] | None = None, release: str = RELEASE,
                 namespace: str = NAMESPACE, chart: str | pathlib.Path = CHART, value_files: tuple[pathlib.Path, ...] = (LOCAL_VALUES,)) -> None:
    """`helm upgrade --install` with the local values; the webhook URL points at the host operator."""
    sets = {"webhook.url": f"https://127.0.0.1:{webhook_port}", **(values or {})}
    args = ["upgrade", "--install", release, str(chart), "-n", namespace, "--create-namespace", "--wait", "--timeout", "120s"]
    for f in value_files:
        args += ["-f", str(f)]
    for k, v in sets.items():
        args += ["--set-string" if isinstance(v, str) else "--set", f"{k}={v}"]
    tools.run("helm", *args)


def service_account_kubeconfig(tools: Tools, path: pathlib.Path, namespace: str = NAMESPACE,
                               service_account: str = SERVICE_ACCOUNT, seconds: int = 24 * 3600) -> pathlib.Path:
    """A kubeconfig that authenticates with a bound token of the ServiceAccount (TokenRequest API)."""
    token = tools.run("kubectl", "-n", namespace, "create", "token", service_account, f"--duration={seconds}s").strip()
    admin = yaml.safe_load(pathlib.Path(tools.kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    user = f"system:serviceaccount:{namespace}:{service_account}"
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": user,
           "clusters": [{"name": "local", "cluster": cluster}],
           "users": [{"name": user, "user": {"token": token}}],
           "contexts": [{"name": user, "context": {"cluster": "local", "user": user}}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def chart_arguments(tools: Tools, release: str = RELEASE, namespace: str = NAMESPACE) -> list[str]:
    """The operator container's arguments from the installed release's Deployment."""
    for doc in yaml.safe_load_all(tools.run("helm", "get", "manifest", release, "-n", namespace)):
        if doc and doc.get("kind") == "Deployment":
            return list(doc["spec"]["template"]["spec"]["containers"][0]["args"])
    raise RuntimeError(f"release {release} has no Deployment")


def host_overrides(workdir: pathlib.Path, webhook_port: int, metrics_port: int, liveness_port: int) -> list[str]:
    """What differs on the host: loopback listeners on free ports, a writable certificate directory."""
    return ["--webhook-address=127.0.0.1", f"--webhook-port={webhook_port}", f"--metrics-address=127.0.0.1:{metrics_port}",
            f"--liveness=http://127.0.0.1:{liveness_port}/healthz", f"--webhook-cert-dir={workdir / 'webhook-certs'}"]


def start(tools: Tools, workdir: pathlib.Path, webhook_port: int, metrics_port: int, liveness_port: int,
          log_path: pathlib.Path, release: str = RELEASE, namespace: str = NAMESPACE,
          service_account: str = SERVICE_ACCOUNT, extra_args: tuple[str, ...] = ()) -> subprocess.Popen:
    kubeconfig = service_account_kubeconfig(tools, workdir / SA_KUBECONFIG, namespace, service_account)
    args = chart_arguments(tools, release, namespace)
    assert args[0] == "run", args
    moectl = pathlib.Path(sys.executable).parent / "moectl"
    cmd = [str(moectl), *args, *host_overrides(workdir, webhook_port, metrics_port, liveness_port), *extra_args]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def ca_bundle_patched(tools: Tools, name: str = WEBHOOK_CONFIG) -> bool:
    cfg = json.loads(tools.run("kubectl", "get", "validatingwebhookconfiguration", name, "-o", "json"))
    return all(base64.b64decode(w["clientConfig"].get("caBundle", "")).startswith(b"-----BEGIN CERTIFICATE")
               for w in cfg["webhooks"])


def _local_tools() -> Tools:
    state = json.loads((STATE_DIR / "state.json").read_text())
    return Tools(pathlib.Path(state["bin"]), state["kubeconfig"]), state


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["up", "down"])
    ap.add_argument("--webhook-port", type=int, default=9443)
    ap.add_argument("--metrics-port", type=int, default=8080)
    ap.add_argument("--liveness-port", type=int, default=8081)
    a = ap.parse_args()
    tools, state = _local_tools()
    pid_file = STATE_DIR / "operator.pid"
    if a.action == "down":
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
            pid_file.unlink()
        tools.run("helm", "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--ignore-not-found")
        return 0
    values = {"operator.prometheusURL": state["prometheusURL"]} if state.get("prometheusURL") else {}
    helm_install(tools, a.webhook_port, values)
    proc = start(tools, STATE_DIR / "operator", a.webhook_port, a.metrics_port, a.liveness_port,
                 STATE_DIR / "logs" / "operator.log")
    pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + 60
    while not ca_bundle_patched(tools):
        if proc.poll() is not None or time.monotonic() > deadline:
            print((STATE_DIR / "logs" / "operator.log").read_text()[-3000:], file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"operator running as system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT} (pid {proc.pid}); "
          f"webhook https://127.0.0.1:{a.webhook_port}, metrics http://127.0.0.1:{a.metrics_port}/metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
