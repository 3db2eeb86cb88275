"""Read and write the objects a MoEDeployment owns. Every write is skipped when nothing would change.

Services and ConfigMaps are server-side applied with one field manager; Pods are created (their specs
are immutable: a changed template is a rollout, which deletes and recreates the group).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from ..planning import naming as N
from ..planning.lifecycle import ObservedPod

FIELD_MANAGER = N.MANAGER
APPLY = "application/apply-patch+yaml"


class Writes:
    """Counts the write calls one reconcile makes (create, patch, delete), for metrics and benchmarks."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, n: int = 1) -> None:
        self.count += n


def _gpus(pod: client.V1Pod) -> int:
    total = 0
    for c in pod.spec.containers or []:
        req = (c.resources.requests or {}) if c.resources else {}
        lim = (c.resources.limits or {}) if c.resources else {}
        total += int(req.get("nvidia.com/gpu") or lim.get("nvidia.com/gpu") or 0)
    return total


def observed_pod(pod: client.V1Pod) -> ObservedPod:
    labels = pod.metadata.labels or {}
    statuses = (pod.status.container_statuses or []) if pod.status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in ((pod.status.conditions or []) if pod.status else []))
    return ObservedPod(
        name=pod.metadata.name, group=labels.get(N.LABEL_GROUP, ""), role=labels.get(N.LABEL_ROLE, ""),
        replica=int(labels.get(N.LABEL_REPLICA, "0")),
        template_hash=(pod.metadata.annotations or {}).get(N.ANNOTATION_TEMPLATE_HASH, ""),
        phase=(pod.status.phase if pod.status else None) or "Pending", ready=ready,
        restarts=sum(c.restart_count or 0 for c in statuses), terminating=pod.metadata.deletion_timestamp is not None,
        gpus=_gpus(pod),
    )


def owned(items: list[Any], uid: str) -> list[Any]:
    """Only objects whose controller is this MoEDeployment (a label alone can be forged or collide)."""
    return [o for o in items if any(r.uid == uid and r.controller for r in (o.metadata.owner_references or []))]


class OwnedObjects:
    """The pods, services and config maps of one deployment, listed once per reconcile."""

    def __init__(self, core: client.CoreV1Api, namespace: str, deployment: str, uid: str) -> None:
        selector = f"{N.LABEL_DEPLOYMENT}={N.label_value(deployment)}"
        self.pods = owned(core.list_namespaced_pod(namespace, label_selector=selector).items, uid)
        self.services = {s.metadata.name: s for s in owned(core.list_namespaced_service(namespace, label_selector=selector).items, uid)}
        self.config_maps = {c.metadata.name: c for c in owned(core.list_namespaced_config_map(namespace, label_selector=selector).items, uid)}

    def observed_pods(self) -> list[ObservedPod]:
        return [observed_pod(p) for p in self.pods]


def _labels_match(existing: client.V1ObjectMeta, desired: dict[str, Any]) -> bool:
    have = existing.labels or {}
    return all(have.get(k) == v for k, v in desired["metadata"].get("labels", {}).items())


def service_up_to_date(existing: client.V1Service | None, desired: dict[str, Any]) -> bool:
    if existing is None or not _labels_match(existing.metadata, desired):
        return False
    spec, want = existing.spec, desired["spec"]
    ports = [(p.name, p.port, str(p.target_port), p.protocol) for p in spec.ports or []]
    want_ports = [(p["name"], p["port"], str(p["targetPort"]), p["protocol"]) for p in want["ports"]]
    return (spec.cluster_ip == "None" and bool(spec.publish_not_ready_addresses) == want["publishNotReadyAddresses"]
            and (spec.selector or {}) == want["selector"] and ports == want_ports)


def config_map_up_to_date(existing: client.V1ConfigMap | None, desired: dict[str, Any]) -> bool:
    return existing is not None and _labels_match(existing.metadata, desired) and (existing.data or {}) == desired["data"]


def apply_service(core: client.CoreV1Api, desired: dict[str, Any], writes: Writes) -> None:
    m = desired["metadata"]
    core.patch_namespaced_service(m["name"], m["namespace"], desired, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)
    writes()


def apply_config_map(core: client.CoreV1Api, desired: dict[str, Any], writes: Writes) -> None:
    m = desired["metadata"]
    core.patch_namespaced_config_map(m["name"], m["namespace"], desired, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)
    writes()


def create_pod(core: client.CoreV1Api, desired: dict[str, Any], writes: Writes) -> None:
    try:
        core.create_namespaced_pod(desired["metadata"]["namespace"], desired, field_manager=FIELD_MANAGER)
    except ApiException as e:
        if e.status != 409:  # already there: a previous pass created it
            raise
    writes()


def delete_group_pods(core: client.CoreV1Api, namespace: str, group: str, writes: Writes) -> None:
    """All pods of a replica group in one call; they go together."""
    core.delete_collection_namespaced_pod(namespace, label_selector=f"{N.LABEL_GROUP}={group}", grace_period_seconds=30)
    writes()


def _delete_if_present(delete, name: str, namespace: str, writes: Writes) -> None:
    try:
        delete(name, namespace)
    except ApiException as e:
        if e.status != 404:
            raise
    writes()


def delete_service(core: client.CoreV1Api, namespace: str, name: str, writes: Writes) -> None:
    _delete_if_present(core.delete_namespaced_service, name, namespace, writes)


def delete_config_map(core: client.CoreV1Api, namespace: str, name: str, writes: Writes) -> None:
    _delete_if_present(core.delete_namespaced_config_map, name, namespace, writes)


def apply_pod_group(custom: client.CustomObjectsApi, desired: dict[str, Any], writes: Writes) -> str | None:
    """Server-side apply a gang scheduler's PodGroup unless it already matches; returns an error text when the
    scheduler's CRD is not installed (the pods are still created; they carry the gang labels)."""
    group, version = desired["apiVersion"].split("/")
    m = desired["metadata"]
    try:
        existing = custom.get_namespaced_custom_object(group, version, m["namespace"], "podgroups", m["name"])
        if existing.get("spec", {}) | desired["spec"] == existing.get("spec", {}):
            return None
    except ApiException as e:
        if e.status != 404:
            raise
    try:
        custom.patch_namespaced_custom_object(group, version, m["namespace"], "podgroups", m["name"], desired,
                                              field_manager=FIELD_MANAGER, force=True, _content_type=APPLY)
    except ApiException as e:
        if e.status == 404:
            return f"{desired['apiVersion']} PodGroup is not served by this cluster: is the gang scheduler installed?"
        raise
    writes()
    return None
