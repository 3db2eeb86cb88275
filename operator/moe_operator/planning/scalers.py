"""One MoERoleScaler per role: who owns the replica count, and what the scale subresource reports. Pure."""

from __future__ import annotations

from typing import Any

from ..api import MoEDeploymentSpec
from . import naming as N
from .desired import Owner
from .lifecycle import GroupView


def desired_scaler(owner: Owner, role: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "moe.inference.io/v1alpha1", "kind": "MoERoleScaler",
        "metadata": {"name": N.scaler_name(owner.name, role), "namespace": owner.namespace,
                     "labels": {**N.deployment_labels(owner.name), N.LABEL_ROLE: role},
                     "ownerReferences": [owner.reference()]},
        "spec": {"deployment": owner.name, "role": role, "replicas": replicas},
    }


def effective_replicas(spec: MoEDeploymentSpec, scaler_replicas: dict[str, int]) -> dict[str, int]:
    """Replicas per role: the spec's in Manual mode, the scaler's in External and Planner modes (the spec's
    until the scaler exists)."""
    out = {}
    for role, rs in spec.roles.items():
        external = rs.autoscaling.mode in ("External", "Planner") and role in scaler_replicas
        out[role] = scaler_replicas[role] if external else rs.replicas
    return out


def with_replicas(spec: MoEDeploymentSpec, replicas: dict[str, int]) -> MoEDeploymentSpec:
    """The spec with each role's replica count replaced (what the groups are planned from)."""
    roles = spec.roles.model_copy(update={role: rs.model_copy(update={"replicas": replicas[role]}) for role, rs in spec.roles.items()})
    return spec.model_copy(update={"roles": roles})


def scaler_status(owner: Owner, role: str, mode: str, views: list[GroupView]) -> dict[str, Any]:
    mine = [v for v in views if v.pods and v.pods[0].role == role]
    return {"replicas": len(mine), "readyReplicas": sum(1 for v in mine if v.ready),
            "selector": N.role_selector(owner.name, role), "mode": mode}
