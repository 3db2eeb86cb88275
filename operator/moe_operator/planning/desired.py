"""Desired Kubernetes objects of a MoEDeployment = f(spec, capacity report). Pure; objects are plain dicts.

Per role and replica, one *replica group* (a gang): a headless Service named after the group, and one
Pod per pipeline stage shard (a stage larger than a node is split into one pod per node). Pods are
owned by the MoEDeployment and created directly by the operator, not through a StatefulSet, so that the
operator alone decides when a whole group is recreated (a half-alive pipeline serves nothing). Pods
get stable DNS names through `hostname` + `subdomain` = the group's Service.
Per role, a ConfigMap holds the expert placement and the capacity report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..api import MoEDeploymentSpec, RoleSpec
from ..capacity.catalog import model_catalog, resolve_gpu, resolve_model
from ..capacity.layout import role_layout
from ..capacity.placement import stage_expert_map
from ..capacity.report import CapacityReport
from ..capacity.report_json import report_to_json
from . import naming as N
from .engine import PodPlace, engine_args
from .gang import pod_gang_metadata, pod_group_object


@dataclass(frozen=True)
class Owner:
    """The MoEDeployment the objects belong to."""

    name: str
    namespace: str
    uid: str
    api_version: str = "moe.inference.io/v1alpha1"
    kind: str = "MoEDeployment"

    def reference(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid,
                "controller": True, "blockOwnerDeletion": True}


@dataclass(frozen=True)
class GroupPlan:
    """One replica group: its pods and Service (and gang scheduler PodGroup), and a hash of all of it."""

    role: str
    replica: int
    name: str
    gpus: int
    template_hash: str
    service: dict[str, Any]
    pods: tuple[dict[str, Any], ...]
    pod_group: dict[str, Any] | None = None


@dataclass(frozen=True)
class DesiredState:
    groups: tuple[GroupPlan, ...]
    config_maps: tuple[dict[str, Any], ...]

    def role_groups(self, role: str) -> list[GroupPlan]:
        return [g for g in self.groups if g.role == role]


def served_model(spec: MoEDeploymentSpec) -> str:
    """What the engine loads: spec.model.servedModel, else the preset's repository."""
    if spec.model.served_model:
        return spec.model.served_model
    entry = model_catalog().get(spec.model.preset or "", {})
    return entry.get("servedModel") or (spec.model.preset or "model")


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _env(spec: MoEDeploymentSpec, owner: Owner, role: str, replica: int, role_spec: RoleSpec, place: PodPlace,
         leader: str) -> list[dict[str, Any]]:
    p = role_spec.parallelism
    values = {
        "MOE_DEPLOYMENT": owner.name, "MOE_ROLE": role, "MOE_REPLICA": str(replica), "MOE_STAGE": str(place.stage),
        "MOE_SHARD": str(place.shard), "MOE_NODE_RANK": str(place.node_rank), "MOE_NNODES": str(place.nnodes),
        "MOE_LEADER_ADDRESS": leader, "MOE_GPUS_PER_POD": str(place.gpus_per_pod),
        "MOE_TENSOR": str(p.tensor), "MOE_PIPELINE": str(p.pipeline), "MOE_DATA": str(p.data),
        "MOE_SEQUENCE": str(p.sequence), "MOE_EXPERT": str(p.expert),
    }
    env = [{"name": k, "value": v} for k, v in values.items()]
    env.append({"name": "MOE_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    env += [{"name": k, "value": v} for k, v in sorted(spec.engine.env.items())]
    return env


def _probes(spec: MoEDeploymentSpec, leader: bool) -> dict[str, Any]:
    """Only the leader serves HTTP; followers (headless ranks) have no endpoint to probe."""
    if not leader:
        return {}
    get = {"httpGet": {"path": "/health", "port": "http"}}
    return {
        "startupProbe": {**get, "periodSeconds": 10, "failureThreshold": max(6, spec.engine.startup_timeout_seconds // 10)},
        "readinessProbe": {**get, "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {**get, "periodSeconds": 30, "failureThreshold": 5},
    }


def _pod(spec: MoEDeploymentSpec, owner: Owner, role: str, replica: int, role_spec: RoleSpec, place: PodPlace,
         node_label: str) -> dict[str, Any]:
    group = N.group_name(owner.name, role, replica)
    name = N.pod_name(owner.name, role, replica, place.stage, place.shard)
    leader_host = N.pod_name(owner.name, role, replica, 0, 0)
    leader = f"{leader_host}.{group}.{owner.namespace}.svc"
    gpus = str(place.gpus_per_pod)
    resources = {
        "requests": {"nvidia.com/gpu": gpus, "cpu": str(spec.engine.cpu_per_gpu * place.gpus_per_pod),
                     "memory": f"{spec.engine.memory_gib_per_gpu * place.gpus_per_pod}Gi"},
        "limits": {"nvidia.com/gpu": gpus, "memory": f"{spec.engine.memory_gib_per_gpu * place.gpus_per_pod}Gi"},
    }
    container = {
        "name": "engine", "image": spec.engine.image_or_default(), "imagePullPolicy": "IfNotPresent",
        "args": engine_args(spec, served_model(spec), role_spec, place),
        "env": _env(spec, owner, role, replica, role_spec, place, leader),
        "ports": [{"name": "http", "containerPort": spec.engine.port, "protocol": "TCP"}],
        "resources": resources,
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
        **_probes(spec, place.node_rank == 0),
    }
    pod_spec: dict[str, Any] = {
        "hostname": name, "subdomain": group, "restartPolicy": "Never", "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 60,
        "nodeSelector": {"nvidia.com/gpu.product": node_label},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {N.LABEL_GROUP: group}},
                                               "topologyKey": spec.placement.topology_key}}]}},
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{spec.engine.shm_size_gib}Gi"}}],
    }
    if spec.scheduling.scheduler_name or spec.scheduling.gang == "volcano":
        pod_spec["schedulerName"] = spec.scheduling.scheduler_name or "volcano"
    if spec.scheduling.priority_class_name:
        pod_spec["priorityClassName"] = spec.scheduling.priority_class_name
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": owner.namespace,
                     "labels": N.pod_labels(owner.name, role, replica, place.stage, place.shard),
                     "ownerReferences": [owner.reference()]},
        "spec": pod_spec,
    }


def _service(spec: MoEDeploymentSpec, owner: Owner, role: str, replica: int) -> dict[str, Any]:
    group = N.group_name(owner.name, role, replica)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": group, "namespace": owner.namespace, "labels": N.group_labels(owner.name, role, replica),
                     "ownerReferences": [owner.reference()]},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": {N.LABEL_GROUP: group},
                 "ports": [{"name": "http", "port": spec.engine.port, "targetPort": "http", "protocol": "TCP"}]},
    }


def _group(spec: MoEDeploymentSpec, owner: Owner, role: str, replica: int, role_spec: RoleSpec, node_label: str,
           stage_pods: list[tuple[int, int, int]]) -> GroupPlan:
    """stage_pods: (stage, pods, gpus per pod) of every stage."""
    nnodes = sum(pods for _, pods, _ in stage_pods)
    pods, rank = [], 0
    for stage, count, gpus_per_pod in stage_pods:
        for shard in range(count):
            place = PodPlace(role, stage, shard, rank, nnodes, gpus_per_pod)
            pods.append(_pod(spec, owner, role, replica, role_spec, place, node_label))
            rank += 1
    service = _service(spec, owner, role, replica)
    group = N.group_name(owner.name, role, replica)
    gang_labels, gang_annotations = pod_gang_metadata(spec, group, len(pods))
    template_hash = _hash([p["spec"] for p in pods] + [service["spec"], gang_labels, gang_annotations])
    for p in pods:
        p["metadata"]["labels"].update(gang_labels)
        p["metadata"]["annotations"] = {**gang_annotations, N.ANNOTATION_TEMPLATE_HASH: template_hash}
    gpus = sum(count * g for _, count, g in stage_pods)
    totals: dict[str, int] = {"nvidia.com/gpu": gpus, "cpu": 0, "memory": 0}
    for p in pods:
        req = p["spec"]["containers"][0]["resources"]["requests"]
        totals["cpu"] += int(req["cpu"])
        totals["memory"] += int(req["memory"].removesuffix("Gi"))
    min_resources = {"nvidia.com/gpu": str(gpus), "cpu": str(totals["cpu"]), "memory": f"{totals['memory']}Gi"}
    pod_group = pod_group_object(spec, {"name": group, "namespace": owner.namespace, "labels": N.group_labels(owner.name, role, replica),
                                        "ownerReferences": [owner.reference()]}, len(pods), min_resources)
    return GroupPlan(role, replica, group, gpus, template_hash, service, tuple(pods), pod_group)


def _plan_config_map(spec: MoEDeploymentSpec, owner: Owner, role: str, role_spec: RoleSpec,
                     report: CapacityReport) -> dict[str, Any]:
    m = resolve_model(spec.model)
    layout = role_layout(m, role, role_spec, spec.hardware.gpus_per_node)
    placement = {"role": role, "experts": m.experts, "redundantExperts": layout.redundant_experts,
                 "expertParallel": layout.expert, "expertTensor": layout.expert_tensor, "stages": []}
    for stage in layout.stages:
        placement["stages"].append({
            "index": stage.index, "firstLayer": stage.first_layer, "layers": stage.layers, "moeLayers": stage.moe_layers,
            "gpus": [{"rank": g.rank, "pod": g.pod, "localGPU": g.local_rank, "expertGroup": g.expert_group,
                      "expertTensorRank": g.expert_tensor_rank, "experts": list(g.experts)}
                     for g in stage_expert_map(m, layout, stage)],
        })
    full = report_to_json(report)
    role_report = {k: v for k, v in full.items() if k != "roles"} | {"role": full["roles"].get(role)}
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": N.role_config_name(owner.name, role), "namespace": owner.namespace,
                     "labels": {**N.deployment_labels(owner.name), N.LABEL_ROLE: role},
                     "ownerReferences": [owner.reference()]},
        "data": {"expert-placement.json": json.dumps(placement, indent=1),
                 "capacity-report.json": json.dumps(role_report, indent=1, default=str)},
    }


def desired_state(spec: MoEDeploymentSpec, owner: Owner, report: CapacityReport) -> DesiredState:
    """Every object the deployment should own. Roles the capacity model could not lay out get none."""
    node_label = resolve_gpu(spec.hardware).node_label
    groups: list[GroupPlan] = []
    config_maps = []
    for role, role_spec in spec.roles.items():
        role_report = report.roles.get(role)
        if role_report is None:
            continue
        stage_pods = [(s.index, s.pods, s.gpus_per_pod) for s in role_report.stages]
        for replica in range(role_spec.replicas):
            groups.append(_group(spec, owner, role, replica, role_spec, node_label, stage_pods))
        config_maps.append(_plan_config_map(spec, owner, role, role_spec, report))
    return DesiredState(tuple(groups), tuple(config_maps))
