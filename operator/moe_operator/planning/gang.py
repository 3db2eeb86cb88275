"""Gang-scheduling metadata for a replica group, per `spec.scheduling.gang`. Pure.

- volcano: a `scheduling.volcano.sh/v1beta1` PodGroup (minMember, minResources, queue,
  priorityClassName); pods get the `scheduling.k8s.io/group-name` annotation and schedulerName volcano.
- coscheduling (scheduler-plugins): a `scheduling.x-k8s.io/v1alpha1` PodGroup (minMember,
  scheduleTimeoutSeconds); pods get the `scheduling.x-k8s.io/pod-group` label.
- kueue (plain pods): pods get `kueue.x-k8s.io/pod-group-name`, `kueue.x-k8s.io/queue-name` labels and the
  `kueue.x-k8s.io/pod-group-total-count` annotation; Kueue needs no extra object.
"""

from __future__ import annotations

from typing import Any

from ..api import MoEDeploymentSpec

COSCHEDULING_TIMEOUT_SECONDS = 600


def pod_gang_metadata(spec: MoEDeploymentSpec, group: str, pod_count: int) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) every pod of the group carries."""
    gang = spec.scheduling.gang
    if gang == "volcano":
        return {}, {"scheduling.k8s.io/group-name": group}
    if gang == "coscheduling":
        return {"scheduling.x-k8s.io/pod-group": group}, {}
    if gang == "kueue":
        labels = {"kueue.x-k8s.io/pod-group-name": group}
        if spec.scheduling.queue_name:
            labels["kueue.x-k8s.io/queue-name"] = spec.scheduling.queue_name
        return labels, {"kueue.x-k8s.io/pod-group-total-count": str(pod_count)}
    return {}, {}


def pod_group_object(spec: MoEDeploymentSpec, metadata: dict[str, Any], pod_count: int,
                     min_resources: dict[str, str]) -> dict[str, Any] | None:
    """The PodGroup the gang scheduler needs for this group, or None (kueue, none)."""
    gang = spec.scheduling.gang
    if gang == "volcano":
        body: dict[str, Any] = {"minMember": pod_count, "minResources": min_resources}
        if spec.scheduling.queue_name:
            body["queue"] = spec.scheduling.queue_name
        if spec.scheduling.priority_class_name:
            body["priorityClassName"] = spec.scheduling.priority_class_name
        return {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup", "metadata": metadata, "spec": body}
    if gang == "coscheduling":
        return {"apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup", "metadata": metadata,
                "spec": {"minMember": pod_count, "scheduleTimeoutSeconds": COSCHEDULING_TIMEOUT_SECONDS}}
    return None
