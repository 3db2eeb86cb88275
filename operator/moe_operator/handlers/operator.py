"""The kopf layer: register callbacks, parse what kopf hands over, call the reconciler or the verdict.

One daemon per MoEDeployment runs its reconcile loop: it wakes when the deployment or one of its pods
changes, after a backoff it asked for, or every resync period. Watch handlers only wake daemons and
write nothing, so an idle operator makes no write calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.rest import ApiException

from ..api import GROUP, VERSION
from ..kube.certs import WebhookCertificates, make_webhook_certificates
from ..kube.clients import api_client
from ..kube.metrics import OperatorMetrics
from ..kube.reconciler import PLURAL, DeploymentMemory, Reconciler
from ..kube.webhook_tls import SecretCertificateKeeper
from ..planning import naming as N
from ..planning.admission import admission_verdict

log = logging.getLogger("moe_operator")
WEBHOOK_CONFIG_NAME = "moe-operator.moe.inference.io"


@dataclass
class OperatorConfig:
    """Settings of one operator process (from `moectl run`), carried in kopf's memo."""

    kubeconfig: str | None = None
    resync_seconds: float = 60.0
    webhook: bool = True
    webhook_address: str = "127.0.0.1"
    webhook_port: int = 9443
    webhook_host: str | None = None  # how the API server reaches us; defaults to the address
    webhook_service: str | None = None  # in-cluster: namespace/name of the webhook Service
    webhook_cert_dir: str = "/tmp/moe-operator-webhook"
    # generate: a CA and certificate made at start (local development); secret: kept in webhook_cert_secret,
    # shared by replicas and rotated; files: tls.crt/tls.key (and ca.crt) read from webhook_cert_dir (cert-manager)
    webhook_cert_source: str = "generate"
    webhook_cert_secret: str | None = None  # namespace/name
    webhook_config: str | None = None  # ValidatingWebhookConfiguration whose caBundle the operator keeps (secret)
    webhook_cert_check_seconds: float = 60.0
    webhook_managed: bool = True  # kopf creates/updates the ValidatingWebhookConfiguration itself
    reconcile_workers: int = 8  # threads running blocking reconciles; daemons themselves hold none
    prometheus_url: str | None = None  # default for the planner when a spec names none
    metrics_address: str | None = "127.0.0.1:8080"  # where /metrics is served; None: not served


@dataclass
class Wakers:
    """One asyncio event per deployment, set by watch handlers to wake that deployment's daemon.
    Used only from the operator's event loop."""

    events: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)

    def get(self, namespace: str, name: str) -> asyncio.Event:
        return self.events.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str, name: str) -> None:
        self.get(namespace, name).set()

    def forget(self, namespace: str, name: str) -> None:
        self.events.pop((namespace, name), None)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    cfg: OperatorConfig = memo.get("config") or OperatorConfig()
    memo["config"] = cfg
    memo["api"] = api_client(cfg.kubeconfig)
    memo["wakers"] = Wakers()
    memo["executor"] = ThreadPoolExecutor(max_workers=cfg.reconcile_workers, thread_name_prefix="reconcile")
    memo["metrics"] = OperatorMetrics()
    if cfg.metrics_address:
        from prometheus_client import start_http_server

        host, _, port = cfg.metrics_address.rpartition(":")
        try:
            start_http_server(int(port), addr=host or "127.0.0.1", registry=memo["metrics"].registry)
        except OSError as err:  # a busy port must not stop the operator from operating
            log.error("cannot serve metrics on %s: %s", cfg.metrics_address, err)
    settings.posting.enabled = False  # the reconciler posts its own, meaningful events
    settings.persistence.finalizer = "moe.inference.io/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="moe.inference.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="moe.inference.io")
    settings.watching.server_timeout = 300
    # The chart installs the CRDs before the operator; watching CRDs would need cluster-wide read on them.
    settings.scanning.disabled = True
    if cfg.webhook:
        files = _webhook_certificates(cfg, memo)
        settings.admission.server = kopf.WebhookServer(
            addr=cfg.webhook_address, port=cfg.webhook_port, host=cfg.webhook_host or cfg.webhook_address,
            certfile=str(files.cert_file), pkeyfile=str(files.key_file),
            cafile=str(files.ca_file) if files.ca_file.exists() else None,
            file_check_interval=cfg.webhook_cert_check_seconds)  # renewed files are served within this time
        if cfg.webhook_managed:
            settings.admission.managed = WEBHOOK_CONFIG_NAME


def webhook_names(cfg: OperatorConfig) -> list[str]:
    """The names the API server may use to reach the webhook: its host, its address, the Service's DNS names."""
    names = [cfg.webhook_host or cfg.webhook_address, cfg.webhook_address]
    if cfg.webhook_service:
        ns, svc = cfg.webhook_service.split("/", 1)
        names += [f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
    return [n for n in dict.fromkeys(names) if n not in ("0.0.0.0", "::")]


def _webhook_certificates(cfg: OperatorConfig, memo: kopf.Memo) -> WebhookCertificates:
    directory = Path(cfg.webhook_cert_dir)
    if cfg.webhook_cert_source == "files":  # provided (cert-manager): the server reloads them when they change
        return WebhookCertificates.in_directory(directory)
    if cfg.webhook_cert_source != "secret":
        return make_webhook_certificates(directory, webhook_names(cfg))
    ns, name = cfg.webhook_cert_secret.split("/", 1)  # `moectl run` checked the NAMESPACE/NAME form
    keeper = SecretCertificateKeeper(memo["api"], ns, name, webhook_names(cfg), directory, cfg.webhook_config)
    certs = keeper.sync()  # before the server starts: it needs the files; a failure here stops the operator
    memo["metrics"].webhook_cert_expiry.set(certs.serving_not_after.timestamp())
    memo["stop_cert_keeper"] = stop = threading.Event()
    threading.Thread(target=_keep_certificate, args=(keeper, stop, cfg.webhook_cert_check_seconds, memo["metrics"]),
                     name="webhook-cert", daemon=True).start()
    return keeper.files


def _keep_certificate(keeper: SecretCertificateKeeper, stop: threading.Event, interval: float,
                      metrics: OperatorMetrics) -> None:
    """Renew before expiry and follow renewals by other replicas; the webhook server reloads changed files."""
    while not stop.wait(interval):
        try:
            metrics.webhook_cert_expiry.set(keeper.sync().serving_not_after.timestamp())
        except Exception:  # noqa: BLE001 - keep trying; the expiry metric and its alert tell if it keeps failing
            log.exception("keeping the webhook certificate in %s/%s failed", keeper.namespace, keeper.secret_name)


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    memo["executor"].shutdown(wait=False, cancel_futures=True)
    if "stop_cert_keeper" in memo:
        memo["stop_cert_keeper"].set()


async def validate(spec: Any, name: str | None, warnings: list[str], memo: kopf.Memo, **_: Any) -> None:
    """Runs on the event loop: a verdict takes a few milliseconds, and no thread pool can starve it."""
    metrics: OperatorMetrics | None = memo.get("metrics")
    start = time.perf_counter()
    verdict = admission_verdict(dict(spec or {}), name or "unnamed")
    if metrics:
        metrics.webhook_seconds.observe(time.perf_counter() - start)
        metrics.webhook.labels("allowed" if verdict.allowed else "denied").inc()
    warnings.extend(verdict.warnings)
    if not verdict.allowed:
        raise kopf.AdmissionError(verdict.message, code=422)


def register_admission(registry: kopf.OperatorRegistry) -> None:
    """Register the validating webhook handler; only when a webhook server runs (kopf refuses handlers without one)."""
    kopf.on.validate(GROUP, VERSION, PLURAL, id="validate", operations=["CREATE", "UPDATE"], side_effects=False,
                     registry=registry)(validate)


def _reconcile_once(reconciler: Reconciler, custom: client.CustomObjectsApi, namespace: str, name: str,
                    memory: DeploymentMemory, resync_seconds: float) -> float | None:
    """One blocking reconcile (runs on the reconcile pool), timed and counted by result. Returns seconds until the
    next one, None to stop."""
    start = time.perf_counter()
    timeout, result = _reconcile_body(reconciler, custom, namespace, name, memory, resync_seconds)
    if reconciler.metrics:
        reconciler.metrics.reconcile_seconds.observe(time.perf_counter() - start)
        reconciler.metrics.reconciles.labels(result).inc()
    return timeout


def _reconcile_body(reconciler: Reconciler, custom: client.CustomObjectsApi, namespace: str, name: str,
                    memory: DeploymentMemory, resync_seconds: float) -> tuple[float | None, str]:
    """(seconds to the next reconcile or None to stop, result label: ok, gone, api_error, crashed)."""
    try:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status == 404:
            return None, "gone"
        log.warning("reading %s/%s failed: %s", namespace, name, e.reason)
        return 5.0, "api_error"
    if body["metadata"].get("deletionTimestamp"):
        return None, "gone"
    try:
        result = reconciler.reconcile(body, memory)
        return min(result.requeue_after_seconds or resync_seconds, resync_seconds), "ok"
    except ApiException as e:
        log.warning("reconcile of %s/%s failed: %s %s", namespace, name, e.status, e.reason)
        return 5.0, "api_error"
    except Exception:  # noqa: BLE001 - never let one object's bug kill its loop
        log.exception("reconcile of %s/%s crashed", namespace, name)
        return 30.0, "crashed"


@kopf.daemon(GROUP, VERSION, PLURAL, id="reconcile", cancellation_timeout=10.0, initial_delay=0)
async def reconcile_loop(name: str, namespace: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any) -> None:
    cfg: OperatorConfig = memo["config"]
    wakers: Wakers = memo["wakers"]
    reconciler = Reconciler(memo["api"], cfg.prometheus_url, memo.get("metrics"))
    custom = client.CustomObjectsApi(memo["api"])
    memory = DeploymentMemory()
    wake = wakers.get(namespace, name)
    loop = asyncio.get_running_loop()
    try:
        while not stopped:
            wake.clear()
            timeout = await loop.run_in_executor(memo["executor"], _reconcile_once, reconciler, custom, namespace, name,
                                                 memory, cfg.resync_seconds)
            if timeout is None:
                break
            deadline = loop.time() + timeout
            while not stopped and not wake.is_set() and loop.time() < deadline:
                try:
                    await asyncio.wait_for(wake.wait(), timeout=min(1.0, deadline - loop.time()))
                except asyncio.TimeoutError:
                    pass
    finally:
        wakers.forget(namespace, name)
        if memo.get("metrics"):
            memo["metrics"].forget(namespace, name)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def deployment_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    memo["wakers"].wake(namespace, name)


@kopf.on.event("", "v1", "pods", labels={N.LABEL_MANAGED_BY: N.MANAGER})
async def pod_changed(meta: Any, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "MoEDeployment" and ref.get("controller"):
            memo["wakers"].wake(namespace, ref["name"])


@kopf.on.event(GROUP, VERSION, "moerolescalers")
async def scaler_changed(meta: Any, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """kubectl scale, an HPA or KEDA changed a role's replicas: wake its deployment."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "MoEDeployment" and ref.get("controller"):
            memo["wakers"].wake(namespace, ref["name"])


def _without_finalizers(registry: kopf.OperatorRegistry) -> None:
    """kopf hard-codes a finalizer for daemons. The loop needs none: pods, Services and ConfigMaps carry owner
    references (the garbage collector removes them) and the loop exits when its object is gone. Without it, a
    MoEDeployment (and its namespace) deletes even while no operator runs, e.g. after `helm uninstall`; kopf
    removes the finalizer that older operator versions left on existing objects. Uses kopf's registry
    internals; tests/unit/test_handlers.py fails if they change."""
    spawning = registry._spawning
    spawning._handlers = [dataclasses.replace(h, requires_finalizer=False) for h in spawning._handlers]


_without_finalizers(kopf.get_default_registry())
