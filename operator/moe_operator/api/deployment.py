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


DEFAULT_IMAGES = {"vllm": "vllm/vllm-openai:v0.11.0", "sglang": "lmsysorg/sglang:v0.5.4"}


class EngineSpec(KubeModel):
    """The serving engine the pods run."""

    kind: EngineKind = Field(EngineKind.VLLM, description="Engine: vllm or sglang.")
    image: str | None = Field(None, min_length=1, max_length=512, description="Container image; defaults to a pinned release of the engine.")
    extra_args: list[str] = Field(default_factory=list, max_length=128, description="Extra engine command-line arguments, appended last.")
    env: dict[str, str] = Field(default_factory=dict, max_length=128, description="Extra environment variables for every engine container.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port the engine serves on (OpenAI API and /metrics).")
    shm_size_gib: int = Field(16, alias="shmSizeGiB", ge=1, le=4096, description="Size of the memory-backed /dev/shm volume, in GiB.")
    cpu_per_gpu: int = Field(8, alias="cpuPerGPU", ge=1, le=256, description="CPU cores requested per GPU.")
    memory_gib_per_gpu: int = Field(64, alias="memoryGiBPerGPU", ge=1, le=4096, description="Host memory requested per GPU, in GiB.")
    startup_timeout_seconds: int = Field(1800, ge=60, le=86400, description="How long a pod may take to load the model before its startup probe fails.")

    def image_or_default(self) -> str:
        return self.image or DEFAULT_IMAGES[str(self.kind)]


class PlacementSpec(KubeModel):
    """Where replica groups land."""

    topology_key: str = Field("topology.kubernetes.io/zone", min_length=1, max_length=316,
                              description="Node label whose value the pods of one replica group should share (preferred pod affinity): a rack, NVLink domain or zone.")


class GangScheduler(str, Enum):
    NONE = "none"
    VOLCANO = "volcano"
    COSCHEDULING = "coscheduling"
    KUEUE = "kueue"


class SchedulingSpec(KubeModel):
    """How replica groups are scheduled."""

    gang: GangScheduler = Field(GangScheduler.NONE, description="Gang scheduling objects to emit per replica group: none, volcano, coscheduling or kueue.")
    scheduler_name: str | None = Field(None, max_length=253, description="schedulerName for every pod (volcano sets it when unset).")
    priority_class_name: str | None = Field(None, max_length=253, description="priorityClassName for every pod.")
    queue_name: str | None = Field(None, max_length=253, description="Volcano queue or Kueue LocalQueue name.")


class RolloutSpec(KubeModel):
    """How spec changes roll out, replica group by replica group, per role."""

    max_unavailable: int = Field(1, ge=0, le=1024, description="Replica groups of a role that may be down at once during a rollout.")
    max_surge: int = Field(0, ge=0, le=1024, description="Extra replica groups a rollout may create; 0 because spare GPUs are rarely there. Not acted on yet (the webhook warns): rollouts replace groups in place.")


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


class AutoscalingSpec(KubeModel):
    """The planner of roles in Planner mode."""

    prometheus_url: str | None = Field(None, alias="prometheusURL", max_length=2048,
                                       description="Prometheus the planner reads engine metrics from; default: the operator's --prometheus-url.")
    interval_seconds: int = Field(30, ge=1, le=3600, description="How often the planner decides.")
    headroom_percent: int = Field(20, ge=0, le=500, description="Capacity kept above observed demand, in percent.")
    scale_up_window_seconds: int = Field(0, ge=0, le=3600, description="Scale up to the lowest recommendation of this window (0: at once).")
    scale_down_window_seconds: int = Field(300, ge=0, le=86400, description="Scale down only to the highest recommendation of this window.")
    stale_after_seconds: int = Field(120, ge=1, le=86400, description="Metrics older than this hold the replicas where they are.")
    rate_window_seconds: int = Field(60, ge=10, le=3600, description="Window of the PromQL rate() over engine counters.")
    queries: dict[str, str] = Field(
        default_factory=dict, max_length=8,
        description="PromQL overrides, by name: requestsPerSecond, promptTokensPerSecond, generatedTokensPerSecond, queuedRequests, "
                    "ttftP95Seconds, itlP95Seconds, ageSeconds. {selector} and {window} are filled in "
                    "(e.g. sum(rate(my_prompt_tokens_total{{{selector}}}[{window}]))).",
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
    placement: PlacementSpec = Field(default_factory=PlacementSpec, description="Topology of replica groups.")
    scheduling: SchedulingSpec = Field(default_factory=SchedulingSpec, description="Gang scheduling, scheduler and priority.")
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="Rolling update limits.")
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec, description="The planner of roles in Planner mode.")


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
