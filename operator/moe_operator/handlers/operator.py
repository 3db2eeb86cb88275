"""The kopf layer: register callbacks, parse what kopf hands over, call the reconciler or the verdict.

One daemon per MoEDeployment runs its reconcile loop: it wakes when the deployment or one of its pods
changes, after a backoff it asked for, or every resync period. Watch handlers only wake daemons and
write nothing, so an idle operator makes no write calls.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.rest import ApiException

from ..api import GROUP, VERSION
from ..kube.certs import make_webhook_certificates
from ..kube.clients import api_client
from ..kube.reconciler import PLURAL, DeploymentMemory, Reconciler
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
    webhook_managed: bool = True  # kopf creates/updates the ValidatingWebhookConfiguration itself
    reconcile_workers: int = 8  # threads running blocking reconciles; daemons themselves hold none
    prometheus_url: str | None = None  # default for the planner when a spec names none


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
    settings.posting.enabled = False  # the reconciler posts its own, meaningful events
    settings.persistence.finalizer = "moe.inference.io/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="moe.inference.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="moe.inference.io")
    settings.watching.server_timeout = 300
    if cfg.webhook:
        names = [cfg.webhook_host or cfg.webhook_address, cfg.webhook_address]
        if cfg.webhook_service:
            ns, svc = cfg.webhook_service.split("/", 1)
            names += [f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
        certs = make_webhook_certificates(Path(cfg.webhook_cert_dir), list(dict.fromkeys(names)))
        settings.admission.server = kopf.WebhookServer(
            addr=cfg.webhook_address, port=cfg.webhook_port, host=cfg.webhook_host or cfg.webhook_address,
            certfile=str(certs.cert_file), pkeyfile=str(certs.key_file), cafile=str(certs.ca_file))
        if cfg.webhook_managed:
            settings.admission.managed = WEBHOOK_CONFIG_NAME


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    memo["executor"].shutdown(wait=False, cancel_futures=True)


async def validate(spec: Any, name: str | None, warnings: list[str], **_: Any) -> None:
    """Runs on the event loop: a verdict takes a few milliseconds, and no thread pool can starve it."""
    verdict = admission_verdict(dict(spec or {}), name or "unnamed")
    warnings.extend(verdict.warnings)
    if not verdict.allowed:
        raise kopf.AdmissionError(verdict.message, code=422)


def register_admission(registry: kopf.OperatorRegistry) -> None:
    """Register the validating webhook handler; only when a webhook server runs (kopf refuses handlers without one)."""
    kopf.on.validate(GROUP, VERSION, PLURAL, id="validate", operations=["CREATE", "UPDATE"], side_effects=False,
                     registry=registry)(validate)


def _reconcile_once(reconciler: Reconciler, custom: client.CustomObjectsApi, namespace: str, name: str,
                    memory: DeploymentMemory, resync_seconds: float) -> float | None:
    """One blocking reconcile (runs on the reconcile pool). Returns seconds until the next one, None to stop."""
    try:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as e:
        if e.status == 404:
            return None
        log.warning("reading %s/%s failed: %s", namespace, name, e.reason)
        return 5.0
    if body["metadata"].get("deletionTimestamp"):
        return None
    try:
        result = reconciler.reconcile(body, memory)
        return min(result.requeue_after_seconds or resync_seconds, resync_seconds)
    except ApiException as e:
        log.warning("reconcile of %s/%s failed: %s %s", namespace, name, e.status, e.reason)
        return 5.0
    except Exception:  # noqa: BLE001 - never let one object's bug kill its loop
        log.exception("reconcile of %s/%s crashed", namespace, name)
        return 30.0


@kopf.daemon(GROUP, VERSION, PLURAL, id="reconcile", cancellation_timeout=10.0, initial_delay=0)
async def reconcile_loop(name: str, namespace: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any) -> None:
    cfg: OperatorConfig = memo["config"]
    wakers: Wakers = memo["wakers"]
    reconciler = Reconciler(memo["api"], cfg.prometheus_url)
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
