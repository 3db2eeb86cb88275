"""Pydantic models of the MoEDeployment custom resource; the CRD is generated from them."""

from .deployment import (
    API_VERSION,
    GROUP,
    KIND,
    VERSION,
    EfficiencySpec,
    EngineKind,
    EngineSpec,
    MoEDeployment,
    MoEDeploymentSpec,
    ValidationMode,
)
from .hardware import CustomGPU, HardwareSpec
from .model import Architecture, AttentionKind, Dtype, MLAConfig, ModelSpec
from .roles import Parallelism, RoleName, RoleSpec, RolesSpec
from .workload import SLOSpec, TokenRange, WorkloadSpec

__all__ = [
    "API_VERSION", "GROUP", "KIND", "VERSION",
    "Architecture", "AttentionKind", "CustomGPU", "Dtype", "EfficiencySpec", "EngineKind", "EngineSpec",
    "HardwareSpec", "MLAConfig", "ModelSpec", "MoEDeployment", "MoEDeploymentSpec", "Parallelism",
    "RoleName", "RoleSpec", "RolesSpec", "SLOSpec", "TokenRange", "ValidationMode", "WorkloadSpec",
]
