"""The `spec.roles` part: serving roles, their parallel degrees and limits.

Parallel semantics (also in the README):
  GPUs per replica = tensor x pipeline x data x sequence.
  Layers are split over `pipeline` stages. In every stage the MoE layers use all of the stage's
  GPUs: expert x expertTensor = tensor x data x sequence, so `expert` must divide that product.
  Attention, dense FFN, shared experts and embeddings are sharded by `tensor` only and replicated
  over `data` and `sequence`. `sequence` splits activations and KV cache, never weights.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import Field, model_validator

from .base import KubeModel


class RoleName(str, Enum):
    AGGREGATED = "aggregated"
    PREFILL = "prefill"
    DECODE = "decode"


class Parallelism(KubeModel):
    """Parallel degrees of one replica of a role."""

    model_config = KubeModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.stageLayers) || size(self.stageLayers) == self.pipeline",
         "message": "stageLayers must have one entry per pipeline stage"},
        {"rule": "(self.tensor * self.data * self.sequence) % self.expert == 0",
         "message": "expert must divide tensor x data x sequence (the GPUs of a stage)"},
    ]}}

    tensor: int = Field(1, ge=1, le=1024, description="Tensor-parallel degree: shards attention, dense FFN, shared experts and embeddings.")
    pipeline: int = Field(1, ge=1, le=256, description="Pipeline-parallel degree: number of stages the layers are split over.")
    data: int = Field(1, ge=1, le=4096, description="Data-parallel attention degree inside a replica: attention replicas that share the MoE layers.")
    sequence: int = Field(1, ge=1, le=1024, description="Sequence (context) parallel degree: splits each sequence's tokens, activations and KV cache; never weights.")
    expert: int = Field(1, ge=1, le=65536, description="Expert-parallel degree: routed experts are spread over this many groups; must divide tensor x data x sequence.")
    redundant_experts: int = Field(0, ge=0, le=65536, description="Extra expert slots per MoE layer for replicas of hot experts (EPLB); they cost memory.")
    stage_layers: list[Annotated[int, Field(ge=1, le=1024)]] | None = Field(
        None, min_length=1, max_length=256,
        description="Explicit layers per pipeline stage; must have `pipeline` entries summing to the model's layers. Default: vLLM's even split.",
    )

    @property
    def gpus_per_replica(self) -> int:
        """tensor x pipeline x data x sequence."""
        return self.tensor * self.pipeline * self.data * self.sequence


class ScalingMode(str, Enum):
    MANUAL = "Manual"
    EXTERNAL = "External"
    PLANNER = "Planner"


class RoleAutoscaling(KubeModel):
    """Who owns the role's replica count."""

    model_config = KubeModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
    ]}}

    mode: ScalingMode = Field(ScalingMode.MANUAL, description="Manual: roles.<role>.replicas here. External: the role's MoERoleScaler "
                                                          "(<deployment>-<role>), written by kubectl scale, an HPA or KEDA. Planner: "
                                                          "the operator's planner, from observed load, the SLO and the capacity model.")
    min_replicas: int = Field(1, ge=0, le=1024, description="Planner: fewest replica groups (never scales below).")
    max_replicas: int = Field(64, ge=1, le=1024, description="Planner: most replica groups.")


class RoleSpec(KubeModel):
    """One serving role: how many replicas, how each replica is parallelised, and its batching limits."""

    replicas: int = Field(1, ge=0, le=1024, description="Replica groups of this role; each is one gang of pods.")
    parallelism: Parallelism = Field(default_factory=Parallelism, description="Parallel degrees of one replica.")
    max_concurrent_sequences: int = Field(64, ge=1, le=1048576, description="Running sequences per replica (vLLM --max-num-seqs, SGLang --max-running-requests); KV cache is sized for this many at the longest length.")
    autoscaling: RoleAutoscaling = Field(default_factory=RoleAutoscaling, description="Who owns the replica count.")
    max_batch_tokens: int | None = Field(
        None, ge=1, le=16777216,
        description="Tokens per forward pass per replica (prefill chunk); defaults to 16384 for prefill and aggregated, maxConcurrentSequences for decode.",
    )


class RolesSpec(KubeModel):
    """Either `aggregated`, or `prefill` and `decode` (disaggregated serving)."""

    model_config = KubeModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!(has(self.aggregated) && (has(self.prefill) || has(self.decode)))",
         "message": "set either roles.aggregated, or roles.prefill and roles.decode, not both"},
        {"rule": "has(self.aggregated) || (has(self.prefill) && has(self.decode))",
         "message": "set roles.aggregated, or both roles.prefill and roles.decode"},
    ]}}

    aggregated: RoleSpec | None = Field(None, description="One pool that does both prefill and decode.")
    prefill: RoleSpec | None = Field(None, description="The prefill pool of a disaggregated deployment.")
    decode: RoleSpec | None = Field(None, description="The decode pool of a disaggregated deployment.")

    @model_validator(mode="after")
    def _either_aggregated_or_disaggregated(self) -> "RolesSpec":
        disaggregated = self.prefill is not None or self.decode is not None
        if self.aggregated is not None and disaggregated:
            raise ValueError("set either roles.aggregated, or roles.prefill and roles.decode, not both")
        if self.aggregated is None and not (self.prefill is not None and self.decode is not None):
            raise ValueError("set roles.aggregated, or both roles.prefill and roles.decode")
        return self

    def items(self) -> list[tuple[str, RoleSpec]]:
        """The roles that are set, in a stable order (pure)."""
        named = (("aggregated", self.aggregated), ("prefill", self.prefill), ("decode", self.decode))
        return [(name, spec) for name, spec in named if spec is not None]
