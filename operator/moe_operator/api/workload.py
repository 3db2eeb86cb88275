"""The `spec.workload` and `spec.slo` parts: the traffic a plan is sized for and its targets."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import KubeModel


class TokenRange(KubeModel):
    """A distribution of sequence lengths, in tokens."""

    model_config = KubeModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "self.min <= self.mean && self.mean <= self.max", "message": "need min <= mean <= max"},
    ]}}

    min: int = Field(..., ge=1, le=16777216, description="Shortest length, in tokens.")
    mean: int = Field(..., ge=1, le=16777216, description="Mean length, in tokens.")
    max: int = Field(..., ge=1, le=16777216, description="Longest length, in tokens; memory is sized for it.")

    @model_validator(mode="after")
    def _ordered(self) -> "TokenRange":
        if not self.min <= self.mean <= self.max:
            raise ValueError(f"need min <= mean <= max, got {self.min} / {self.mean} / {self.max}")
        return self


class WorkloadSpec(KubeModel):
    """The request mix the plan must serve."""

    input_tokens: TokenRange = Field(
        default_factory=lambda: TokenRange(min=128, mean=2048, max=8192),
        description="Prompt length distribution, in tokens.",
    )
    output_tokens: TokenRange = Field(
        default_factory=lambda: TokenRange(min=1, mean=256, max=1024),
        description="Generated length distribution, in tokens.",
    )
    requests_per_minute: int | None = Field(
        None, ge=0, le=600000000,
        description="Expected arrival rate for the whole deployment, in requests per minute; used for queueing in TTFT. When unset, the throughput target implies it.",
    )


class SLOSpec(KubeModel):
    """Service-level targets. Every field is optional; an unset target is not checked."""

    ttft_milliseconds: int | None = Field(None, ge=1, le=3600000, description="Time to first token at the mean prompt length and the target load, in milliseconds.")
    tpot_milliseconds: int | None = Field(None, ge=1, le=3600000, description="Time per output token (inter-token latency), in milliseconds.")
    min_tokens_per_second_per_gpu: int | None = Field(
        None, alias="minTokensPerSecondPerGPU", ge=1, le=100000000,
        description="Throughput per GPU: prompt tokens for prefill, generated tokens for decode, both for aggregated.",
    )
    max_memory_utilization_percent: int = Field(90, ge=1, le=100, description="Share of GPU memory a stage may plan to use, in percent (vLLM's gpu-memory-utilization).")
    max_expert_load_cv_percent: int | None = Field(
        None, alias="maxExpertLoadCVPercent", ge=1, le=1000,
        description="Largest acceptable coefficient of variation of tokens per expert, in percent (observed at run time).",
    )
