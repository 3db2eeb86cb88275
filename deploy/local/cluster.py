#!/usr/bin/env python3
"""A real local Kubernetes control plane with simulated GPU nodes, and a real Prometheus.

    python deploy/local/cluster.py up       # build (once) and start; idempotent; prints the kubeconfig path
    python deploy/local/cluster.py down     # stop every process it started, by pid
    python deploy/local/cluster.py status

Everything listens on 127.0.0.1 on free ports chosen at start-up. State, logs, data and the admin
kubeconfig live in `.local-cluster/` at the repository root (git-ignored); binaries are built by
build.sh into ~/.cache/moe-operator. Environment:
    MOE_LOCAL_NODES (4)  MOE_LOCAL_GPUS_PER_NODE (8)  MOE_LOCAL_GPU (H100-SXM, a catalog name)
    MOE_LOCAL_DIR (<repo>/.local-cluster)  MOE_LOCAL_NO_PROMETHEUS (unset)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from pki import kubeconfig, make_pki  # noqa: E402

GPU_NODE_LABELS = {  # nvidia.com/gpu.product values, as NVIDIA GPU feature discovery writes them
    "A100-SXM-80GB": ("NVIDIA-A100-SXM4-80GB", 81920), "H100-SXM": ("NVIDIA-H100-80GB-HBM3", 81559),
    "H800": ("NVIDIA-H800", 81559), "H200-SXM": ("NVIDIA-H200", 143771), "B200": ("NVIDIA-B200", 183359),
}
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus")
START_TIMEOUT_SECONDS = 90
# At Metadata level: every call of the operator's own users (reads too, for API calls per reconcile), and
# write calls of everyone else but the control plane's busy components, so tests can count what a client did.
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [system:kube-controller-manager, system:kube-scheduler, kwok-controller]
  - level: Metadata
    users: [moe-operator, "system:serviceaccount:moe-system:moe-operator"]
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""


class ClusterError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Paths:
    base: Path

    @property
    def state(self) -> Path: return self.base / "state.json"
    @property
    def kubeconfig(self) -> Path: return self.base / "kubeconfig"
    @property
    def pki(self) -> Path: return self.base / "pki"
    @property
    def logs(self) -> Path: return self.base / "logs"
    @property
    def data(self) -> Path: return self.base / "data"
    @property
    def prometheus(self) -> Path: return self.base / "prometheus"

    def log_of(self, component: str) -> Path:
        return self.logs / f"{component}.log"


def paths() -> Paths:
    return Paths(Path(os.environ.get("MOE_LOCAL_DIR", ROOT / ".local-cluster")).resolve())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def reap(pid: int) -> None:
    """Collect the exit status of a process this interpreter started, so it leaves no zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # started by another process (e.g. `make cluster-up`); init reaps it


def read_state(p: Paths) -> dict:
    try:
        return json.loads(p.state.read_text())
    except (OSError, ValueError):
        return {}


def build_binaries() -> Path:
    proc = subprocess.run(["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise ClusterError("building the cluster binaries failed (see the build log above)")
    return Path(proc.stdout.strip().splitlines()[-1])


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


# ---------------------------------------------------------------------------------------------- health


def _get(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as e:
        return 0, str(e)


def admin_ssl_context(p: Paths) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(p.pki / "ca.crt"))
    ctx.load_cert_chain(str(p.pki / "admin.crt"), str(p.pki / "admin.key"))
    return ctx


def insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def health_url(component: str, ports: dict[str, int]) -> str:
    return {
        "etcd": f"http://127.0.0.1:{ports.get('etcd', 0)}/health",
        "kube-apiserver": f"https://127.0.0.1:{ports.get('apiserver', 0)}/readyz",
        "kube-controller-manager": f"https://127.0.0.1:{ports.get('controller-manager', 0)}/healthz",
        "kube-scheduler": f"https://127.0.0.1:{ports.get('scheduler', 0)}/healthz",
        "kwok": f"http://127.0.0.1:{ports.get('kwok', 0)}/healthz",
        "prometheus": f"http://127.0.0.1:{ports.get('prometheus', 0)}/-/ready",
    }[component]


def healthy(component: str, p: Paths, ports: dict[str, int]) -> bool:
    ctx = admin_ssl_context(p) if component == "kube-apiserver" else insecure_context()
    status, _ = _get(health_url(component, ports), ctx)
    return status == 200


def wait_healthy(component: str, p: Paths, ports: dict[str, int], pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not alive(pid):
            raise ClusterError(f"{component} exited during start-up; last lines of {p.log_of(component)}:\n{tail(p.log_of(component))}")
        if healthy(component, p, ports):
            return
        time.sleep(0.25)
    raise ClusterError(f"{component} not healthy after {START_TIMEOUT_SECONDS}s at {health_url(component, ports)}; "
                       f"last lines of {p.log_of(component)}:\n{tail(p.log_of(component))}")


# ---------------------------------------------------------------------------------------------- start


def commands(bin_dir: Path, p: Paths, ports: dict[str, int]) -> dict[str, list[str]]:
    b = lambda name: str(bin_dir / name)  # noqa: E731
    pki = p.pki
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    return {
        "etcd": [b("etcd"), "--name=local", f"--data-dir={p.data / 'etcd'}", f"--listen-client-urls={etcd_url}",
                 f"--advertise-client-urls={etcd_url}", f"--listen-peer-urls={peer_url}",
                 f"--initial-advertise-peer-urls={peer_url}", f"--initial-cluster=local={peer_url}",
                 "--unsafe-no-fsync", "--listen-metrics-urls=", "--log-level=warn"],
        "kube-apiserver": [
            b("kube-apiserver"), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}", f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}", f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC", "--allow-privileged=true",
            "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,"
            "PodSecurity,Priority,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,"
            "ValidatingAdmissionPolicy,StorageObjectInUseProtection,RuntimeClass",
            f"--audit-policy-file={p.base / 'audit-policy.yaml'}", f"--audit-log-path={p.logs / 'audit.log'}",
            "--audit-log-format=json", "--audit-log-maxsize=200",
            "--profiling=false", "--endpoint-reconciler-type=none", "--v=1"],
        "kube-controller-manager": [
            b("kube-controller-manager"), f"--kubeconfig={p.base / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={p.base / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={p.base / 'controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['controller-manager']}", "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true", f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}", "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle",
            "--concurrent-statefulset-syncs=10", "--profiling=false", "--v=1"],
        "kube-scheduler": [
            b("kube-scheduler"), f"--kubeconfig={p.base / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={p.base / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={p.base / 'scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1", f"--secure-port={ports['scheduler']}", "--leader-elect=false", "--profiling=false", "--v=1"],
        "kwok": [
            b("kwok"), f"--kubeconfig={p.base / 'kwok.kubeconfig'}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--cidr=10.244.0.1/16",
            "--node-ip=127.0.0.1", f"--server-address=127.0.0.1:{ports['kwok']}", "--node-lease-duration-seconds=40"],
        "prometheus": [
            prometheus_binary() or "prometheus", f"--config.file={p.prometheus / 'prometheus.yml'}",
            f"--storage.tsdb.path={p.data / 'prometheus'}", f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            "--web.enable-lifecycle", "--storage.tsdb.retention.time=1d", "--log.level=warn"],
    }


def write_prometheus_config(p: Paths, ports: dict[str, int]) -> None:
    """Scrapes itself and every target file dropped into prometheus/targets/ (file-based discovery)."""
    (p.prometheus / "targets").mkdir(parents=True, exist_ok=True)
    (p.prometheus / "rules").mkdir(parents=True, exist_ok=True)
    (p.prometheus / "prometheus.yml").write_text(f"""global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - {p.prometheus / 'rules'}/*.yml
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{ports['prometheus']}']
  - job_name: file-sd
    file_sd_configs:
      - files: ['{p.prometheus / 'targets'}/*.json']
        refresh_interval: 2s
""")


def node_manifest(index: int, gpu: str, gpus_per_node: int) -> dict:
    product, memory_mib = GPU_NODE_LABELS[gpu]
    name = f"gpu-node-{index}"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "type": "kwok", "node-role.kubernetes.io/gpu": "",
                "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(gpus_per_node), "nvidia.com/gpu.memory": str(memory_mib),
                "topology.kubernetes.io/region": "local", "topology.kubernetes.io/zone": f"zone-{index // 4}",
                "topology.moe.inference.io/rack": f"rack-{index // 2}",
            },
        },
        "status": {
            "allocatable": {"cpu": "192", "memory": "2000Gi", "pods": "110", "ephemeral-storage": "10Ti",
                            "nvidia.com/gpu": str(gpus_per_node)},
            "capacity": {"cpu": "192", "memory": "2000Gi", "pods": "110", "ephemeral-storage": "10Ti",
                         "nvidia.com/gpu": str(gpus_per_node)},
        },
    }


def kubectl(bin_dir: Path, p: Paths, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run([str(bin_dir / "kubectl"), f"--kubeconfig={p.kubeconfig}", *args], input=stdin,
                          capture_output=True, text=True)
    if proc.returncode:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def create_gpu_nodes(bin_dir: Path, p: Paths, count: int, gpu: str, gpus_per_node: int) -> None:
    items = [node_manifest(i, gpu, gpus_per_node) for i in range(count)]
    kubectl(bin_dir, p, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        out = kubectl(bin_dir, p, "get", "nodes", "-o",
                      "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}")
        if out.split().count("True") >= count:
            return
        time.sleep(0.5)
    raise ClusterError(f"kwok did not make {count} nodes Ready in {START_TIMEOUT_SECONDS}s; last lines of "
                       f"{p.log_of('kwok')}:\n{tail(p.log_of('kwok'))}")


def start_process(component: str, argv: list[str], p: Paths) -> int:
    logf = open(p.log_of(component), "ab")  # noqa: SIM115 - owned by the child from here on
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=p.base)
    logf.close()
    return proc.pid


def running(p: Paths) -> dict | None:
    """The state of a cluster that is up and healthy, else None."""
    state = read_state(p)
    pids = state.get("pids", {})
    if not pids or not all(alive(pid) for pid in pids.values()):
        return None
    if not healthy("kube-apiserver", p, state["ports"]):
        return None
    return state


def up() -> dict:
    """Start the cluster unless it is already running; return its state."""
    p = paths()
    existing = running(p)
    if existing:
        log(f"already running; kubeconfig {p.kubeconfig}")
        return existing
    down(quiet=True)
    t0 = time.monotonic()
    bin_dir = build_binaries()
    with_prometheus = not os.environ.get("MOE_LOCAL_NO_PROMETHEUS")
    if with_prometheus and not prometheus_binary():
        raise ClusterError("prometheus is not installed: run `apt-get install -y prometheus` (Debian package), "
                           "or set MOE_LOCAL_NO_PROMETHEUS=1 to start the cluster without it")
    shutil.rmtree(p.data, ignore_errors=True)
    for d in (p.base, p.logs, p.data, p.prometheus):
        d.mkdir(parents=True, exist_ok=True)
    make_pki(p.pki)
    ports = {k: free_port() for k in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok", "prometheus")}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    p.kubeconfig.write_text(kubeconfig(server, p.pki, "admin"))
    (p.base / "audit-policy.yaml").write_text(AUDIT_POLICY)
    for identity in ("controller-manager", "scheduler", "kwok", "operator"):
        (p.base / f"{identity}.kubeconfig").write_text(kubeconfig(server, p.pki, identity))
    write_prometheus_config(p, ports)
    argv = commands(bin_dir, p, ports)
    state = {"ports": ports, "pids": {}, "bin": str(bin_dir), "server": server, "kubeconfig": str(p.kubeconfig),
             "operatorKubeconfig": str(p.base / "operator.kubeconfig"), "auditLog": str(p.logs / "audit.log"),
             "prometheusURL": f"http://127.0.0.1:{ports['prometheus']}" if with_prometheus else None,
             "prometheusTargetsDir": str(p.prometheus / "targets"), "prometheusRulesDir": str(p.prometheus / "rules")}
    try:
        for component in COMPONENTS:
            if component == "prometheus" and not with_prometheus:
                continue
            pid = start_process(component, argv[component], p)
            state["pids"][component] = pid
            p.state.write_text(json.dumps(state, indent=2))
            wait_healthy(component, p, ports, pid)
            log(f"{component} healthy (pid {pid})")
        nodes = int(os.environ.get("MOE_LOCAL_NODES", "4"))
        gpus = int(os.environ.get("MOE_LOCAL_GPUS_PER_NODE", "8"))
        gpu = os.environ.get("MOE_LOCAL_GPU", "H100-SXM")
        if gpu not in GPU_NODE_LABELS:
            raise ClusterError(f"MOE_LOCAL_GPU={gpu!r} is not one of {', '.join(GPU_NODE_LABELS)}")
        create_gpu_nodes(bin_dir, p, nodes, gpu, gpus)
        state["nodes"] = {"count": nodes, "gpusPerNode": gpus, "gpu": gpu}
        p.state.write_text(json.dumps(state, indent=2))
    except BaseException:
        down(quiet=True)
        raise
    log(f"up in {time.monotonic() - t0:.1f}s: {nodes} simulated {gpu} nodes x {gpus} GPUs; "
        f"export KUBECONFIG={p.kubeconfig}")
    return state


def down(quiet: bool = False) -> None:
    """Stop every process this script started (SIGTERM, then SIGKILL), in reverse start order."""
    p = paths()
    state = read_state(p)
    pids = state.get("pids", {})
    for component in reversed(COMPONENTS):
        pid = pids.get(component)
        if pid is None or not alive(pid):
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            continue
        deadline = time.monotonic() + 15
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        reap(pid)
        if not quiet:
            log(f"stopped {component} (pid {pid})")
    if p.state.exists():
        p.state.unlink()


def status() -> int:
    p = paths()
    state = read_state(p)
    if not state:
        print("not running")
        return 1
    ok = True
    for component, pid in state.get("pids", {}).items():
        up_ = alive(pid) and healthy(component, p, state["ports"])
        ok &= up_
        print(f"{component:24s} pid {pid:<8d} {'healthy' if up_ else 'DOWN'}  {health_url(component, state['ports'])}")
    print(f"KUBECONFIG={p.kubeconfig}")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "status"
    try:
        if cmd == "up":
            up()
            print(paths().kubeconfig)
            return 0
        if cmd == "down":
            down()
            return 0
        if cmd == "status":
            return status()
    except ClusterError as err:
        log(f"ERROR: {err}")
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
