"""MoERoleScaler: one scalable object per role of a MoEDeployment (a CRD has only one scale subresource).

`kubectl scale moerolescaler/<deployment>-<role> --replicas=N`, an HPA or KEDA writes `spec.replicas`
through the scale subresource; the operator reads it when the role's `autoscaling.mode` is External.
"""

from __future__ import annotations

from pydantic import Field

from .base import KubeModel

SCALER_KIND = "MoERoleScaler"
SCALER_PLURAL = "moerolescalers"


class MoERoleScalerSpec(KubeModel):
    """Replica groups one role should run."""

    deployment: str = Field(..., min_length=1, max_length=253, description="The MoEDeployment this scaler belongs to.")
    role: str = Field(..., pattern="^(aggregated|prefill|decode)$", description="The role it scales: aggregated, prefill or decode.")
    replicas: int = Field(..., ge=0, le=1024, description="Replica groups of the role (the scale subresource's spec.replicas).")


class MoERoleScalerStatus(KubeModel):
    """Observed state, for `kubectl get` and the scale subresource."""

    replicas: int = Field(0, ge=0, description="Replica groups that exist.")
    ready_replicas: int = Field(0, ge=0, description="Replica groups whose pods are all ready.")
    selector: str = Field("", max_length=1024, description="Label selector of the role's pods (for HPA pod metrics).")
    mode: str = Field("", max_length=16, description="Who owns spec.replicas: Manual (the MoEDeployment) or External.")
