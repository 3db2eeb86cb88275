"""The `status` of a MoEDeployment, written by the operator through the status subresource."""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from .base import KubeModel


class Phase(str, Enum):
    PENDING = "Pending"
    INFEASIBLE = "Infeasible"
    DEPLOYING = "Deploying"
    READY = "Ready"
    DEGRADED = "Degraded"


class Condition(KubeModel):
    """A Kubernetes-style condition."""

    type: str = Field(..., max_length=316, description="Condition type: Validated, Ready, Progressing or Degraded.")
    status: str = Field(..., pattern="^(True|False|Unknown)$", description="True, False or Unknown.")
    reason: str = Field("", max_length=1024, description="CamelCase reason for the last transition.")
    message: str = Field("", max_length=32768, description="Human-readable details.")
    last_transition_time: str | None = Field(None, description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(None, ge=0, description="The .metadata.generation this condition was computed for.")


class Finding(KubeModel):
    """A capacity-model violation or warning."""

    code: str = Field(..., max_length=64, description="Machine-readable code, e.g. MemoryExceeded.")
    message: str = Field(..., max_length=4096, description="What is wrong, with numbers, and what would fix it.")
    role: str | None = Field(None, max_length=16, description="Role the finding applies to, if any.")
    stage: int | None = Field(None, ge=0, description="Pipeline stage the finding applies to, if any.")


class RoleStatus(KubeModel):
    """Observed state of one role."""

    desired_replicas: int = Field(0, ge=0, description="Replica groups the spec asks for.")
    ready_replicas: int = Field(0, ge=0, description="Replica groups whose every pod is ready.")
    gpus: int = Field(0, ge=0, description="GPUs requested by this role's existing pods.")
    desired_gpus: int = Field(0, ge=0, alias="desiredGPUs", description="GPUs the desired replicas need.")
    restarts: int = Field(0, ge=0, description="Whole-group restarts since the deployment was created.")


class RolesStatus(KubeModel):
    aggregated: RoleStatus | None = Field(None, description="The aggregated role.")
    prefill: RoleStatus | None = Field(None, description="The prefill role.")
    decode: RoleStatus | None = Field(None, description="The decode role.")


class CapacitySummary(KubeModel):
    """Headline numbers of the capacity report (per role where labelled); full report in the role ConfigMap."""

    feasible: bool = Field(..., description="Whether the capacity model found no violation.")
    total_gpus: int = Field(..., ge=0, alias="totalGPUs", description="GPUs the whole plan needs.")
    tokens_per_second_per_gpu: dict[str, int] = Field(default_factory=dict, alias="tokensPerSecondPerGPU",
                                                      description="Predicted tokens/s per GPU, by role.")
    ttft_milliseconds: dict[str, int] = Field(default_factory=dict, description="Predicted TTFT by role, in milliseconds.")
    tpot_milliseconds: dict[str, int] = Field(default_factory=dict, description="Predicted TPOT by role, in milliseconds.")
    peak_memory_utilization_percent: int = Field(0, ge=0, description="Highest predicted memory use of any stage, in percent of GPU memory.")


class ScalingDecision(KubeModel):
    """The planner's last decision for a role."""

    desired_replicas: int = Field(0, ge=0, description="Replica groups the planner wants.")
    reason: str = Field("", max_length=256, description="Load, TTFTAboveTarget, InterTokenLatencyAboveTarget, MetricsMissing, MetricsStale, PrometheusUnreachable, ...")
    limited_by_budget: bool = Field(False, description="Whether hardware.maxGPUs kept the role below what it needs.")


class ScalingStatus(KubeModel):
    aggregated: ScalingDecision | None = Field(None, description="The aggregated role.")
    prefill: ScalingDecision | None = Field(None, description="The prefill role.")
    decode: ScalingDecision | None = Field(None, description="The decode role.")


class MoEDeploymentStatus(KubeModel):
    """Observed state of a MoEDeployment."""

    phase: Phase | None = Field(None, description="Pending, Infeasible, Deploying, Ready or Degraded.")
    observed_generation: int | None = Field(None, ge=0, description="The .metadata.generation the status reflects.")
    conditions: list[Condition] = Field(default_factory=list, max_length=16, description="Validated, Ready, Progressing, Degraded.")
    feasible: bool | None = Field(None, description="Verdict of the capacity model for the current spec.")
    gpus: int | None = Field(None, ge=0, description="GPUs requested by existing pods, all roles.")
    roles: RolesStatus | None = Field(None, description="Per-role replica and GPU counts.")
    prefill: str | None = Field(None, max_length=32, description="Prefill ready/desired replica groups, for printing.")
    decode: str | None = Field(None, max_length=32, description="Decode ready/desired replica groups, for printing.")
    aggregated: str | None = Field(None, max_length=32, description="Aggregated ready/desired replica groups, for printing.")
    capacity: CapacitySummary | None = Field(None, description="Headline numbers of the capacity report.")
    violations: list[Finding] = Field(default_factory=list, max_length=64, description="Capacity-model violations of the current spec.")
    warnings: list[Finding] = Field(default_factory=list, max_length=64, description="Capacity-model warnings of the current spec.")
    scaling: ScalingStatus | None = Field(None, description="The planner's last decision per Planner-mode role.")
