"""The capacity report: every number the model computes for a plan, with units in the names."""

from __future__ import annotations

from dataclasses import dataclass, field

from .findings import Finding
from .memory import MemoryBreakdown
from .timing import StepTiming


@dataclass(frozen=True)
class StageReport:
    index: int
    first_layer: int
    layers: int
    dense_layers: int
    moe_layers: int
    gpus: int  # per replica, this stage
    pods: int
    gpus_per_pod: int
    experts_per_gpu_per_layer: float
    expert_instances_per_gpu: float
    memory: MemoryBreakdown  # per GPU
    memory_utilization_percent: float  # of the GPU's capacity
    max_concurrent_sequences_at_max_length: int  # per replica, limited by this stage


@dataclass(frozen=True)
class RoleReport:
    role: str
    replicas: int
    parallelism: dict[str, int]
    gpus_per_replica: int
    gpus: int  # whole role
    pods_per_replica: int
    max_concurrent_sequences: int  # per replica, as planned
    max_concurrent_sequences_at_max_length: int  # per replica, what fits
    tokens_kind: str  # what tokensPerSecond counts: prompt, generated, or prompt+generated
    tokens_per_second_per_replica: float
    tokens_per_second_per_gpu: float
    tokens_per_second: float  # whole role
    tokens_per_second_per_gpu_bound: float  # favourable bound, per GPU
    ttft_seconds: float | None
    tpot_seconds: float | None
    arrival_rate_per_second: float | None  # whole role, used for queueing
    communication_fraction: float
    links: dict[str, str]  # tensor / expert / pipeline -> nvlink | network | none
    stages: tuple[StageReport, ...]
    prefill_steps: tuple[StepTiming, ...] = ()
    decode_steps: tuple[StepTiming, ...] = ()


@dataclass(frozen=True)
class ModelSummary:
    name: str
    total_params: int
    active_params: int
    active_matmul_params: int
    kv_cache_bytes_per_token: float  # whole model, all layers
    flops_per_token: float  # whole model, forward, at the workload's mean decode context
    linear_flops_per_token: float  # 2 x active matmul parameters
    weight_dtype: str
    expert_weight_dtype: str
    kv_cache_dtype: str


@dataclass(frozen=True)
class CapacityReport:
    name: str
    gpu: str
    gpu_memory_bytes: int
    memory_limit_bytes: float  # per GPU, capacity x maxMemoryUtilizationPercent
    gpus_per_node: int
    max_gpus: int | None
    total_gpus: int
    model: ModelSummary
    efficiency: dict[str, float]
    roles: dict[str, RoleReport]
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def violations(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.is_violation)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.is_violation)

    @property
    def feasible(self) -> bool:
        return not self.violations
