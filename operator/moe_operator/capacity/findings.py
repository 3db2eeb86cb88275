"""Violation and warning codes, and the finding value that carries one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Code(str, Enum):
    """Machine-readable codes. Violations make a plan infeasible; warnings do not."""

    # violations
    INVALID_PARALLELISM = "InvalidParallelism"
    GPU_BUDGET_EXCEEDED = "GPUBudgetExceeded"
    MEMORY_EXCEEDED = "MemoryExceeded"
    PHYSICALLY_IMPOSSIBLE = "PhysicallyImpossible"
    THROUGHPUT_BELOW_TARGET = "ThroughputBelowTarget"
    TTFT_EXCEEDED = "TTFTExceeded"
    TPOT_EXCEEDED = "TPOTExceeded"
    # warnings
    ROLE_IMBALANCE = "RoleImbalance"
    TENSOR_GROUP_SPANS_NODES = "TensorGroupSpansNodes"
    UNEVEN_PIPELINE = "UnevenPipeline"
    EXPERT_ALL_TO_ALL_CROSSES_NETWORK = "ExpertAllToAllCrossesNetwork"
    NODE_UNDERFILLED = "NodeUnderfilled"
    LOAD_UNSPECIFIED = "LoadUnspecified"


VIOLATIONS = frozenset({
    Code.INVALID_PARALLELISM, Code.GPU_BUDGET_EXCEEDED, Code.MEMORY_EXCEEDED, Code.PHYSICALLY_IMPOSSIBLE,
    Code.THROUGHPUT_BELOW_TARGET, Code.TTFT_EXCEEDED, Code.TPOT_EXCEEDED,
})


@dataclass(frozen=True)
class Finding:
    """One problem: its code, a message a person can act on, and where it applies."""

    code: Code
    message: str
    role: str | None = None
    stage: int | None = None

    @property
    def is_violation(self) -> bool:
        return self.code in VIOLATIONS

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code.value, "message": self.message, "role": self.role, "stage": self.stage}
