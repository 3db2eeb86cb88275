"""The MoEDeployment custom resource (moe.inference.io/v1alpha1)."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field

from .base import KubeModel
from .hardware import HardwareSpec
from .model import ModelSpec
from .roles import RolesSpec
from .workload import SLOSpec, WorkloadSpec

GROUP = "moe.inference.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MoEDeployment"


class EngineKind(str, Enum):
    VLLM = "vllm"
    SGLANG = "sglang"


class EngineSpec(KubeModel):
    """The serving engine the pods run."""

    kind: EngineKind = Field(EngineKind.VLLM, description="Engine: vllm or sglang.")


class EfficiencySpec(KubeModel):
    """Achievable fractions of peak the capacity model assumes. Defaults come from published measurements (see README)."""

    compute_percent: int = Field(45, ge=1, le=100, description="Achievable share of peak dense FLOP/s, in percent (model FLOPs utilisation).")
    memory_bandwidth_percent: int = Field(80, ge=1, le=100, description="Achievable share of peak HBM bandwidth, in percent.")
    nvlink_percent: int = Field(80, alias="nvlinkPercent", ge=1, le=100, description="Achievable share of NVLink bandwidth, in percent (DeepEP on H800: 153-158 of 200 GB/s).")
    network_percent: int = Field(80, ge=1, le=100, description="Achievable share of scale-out network bandwidth, in percent (DeepEP: 39-58 GB/s of 50 GB/s).")
    runtime_overhead_mib: int = Field(
        3072, alias="runtimeOverheadMiB", ge=0, le=1048576,
        description="Per-GPU memory for the CUDA context, cuBLAS/NCCL workspaces and CUDA graphs, in MiB.",
    )


class ValidationMode(str, Enum):
    ENFORCE = "Enforce"
    WARN = "Warn"


class MoEDeploymentSpec(KubeModel):
    """Desired state of a Mixture-of-Experts inference deployment."""

    model: ModelSpec = Field(..., description="The model served.")
    engine: EngineSpec = Field(default_factory=EngineSpec, description="The serving engine.")
    hardware: HardwareSpec = Field(default_factory=HardwareSpec, description="GPU kind, node shape and GPU budget.")
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec, description="Request mix the plan is sized for.")
    slo: SLOSpec = Field(default_factory=SLOSpec, description="Service-level targets.")
    roles: RolesSpec = Field(..., description="Serving roles: aggregated, or prefill and decode.")
    efficiency: EfficiencySpec = Field(default_factory=EfficiencySpec, description="Capacity-model efficiency assumptions.")
    validation: ValidationMode = Field(ValidationMode.ENFORCE, description="Enforce refuses an infeasible plan; Warn deploys it and records the violations in status.")


class ObjectMeta(KubeModel):
    """The subset of metadata the capacity model and CLI read."""

    model_config = KubeModel.model_config | {"extra": "allow"}

    name: str = Field("unnamed", max_length=253, description="Object name.")
    namespace: str | None = Field(None, max_length=63, description="Object namespace.")


class MoEDeployment(KubeModel):
    """A MoEDeployment object as applied by a user."""

    api_version: Literal["moe.inference.io/v1alpha1"] = Field(API_VERSION, description="API version.")
    kind: Literal["MoEDeployment"] = Field(KIND, description="Kind.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: MoEDeploymentSpec = Field(..., description="Desired state.")
