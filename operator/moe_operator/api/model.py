"""The `spec.model` part of a MoEDeployment: which model, its architecture and precisions."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from .base import KubeModel


class AttentionKind(str, Enum):
    GQA = "gqa"
    MLA = "mla"


class Dtype(str, Enum):
    BF16 = "bf16"
    FP8 = "fp8"
    INT8 = "int8"
    FP4 = "fp4"
    INT4 = "int4"


class MLAConfig(KubeModel):
    """Multi-head latent attention (DeepSeek-V2/V3) projection ranks."""

    kv_lora_rank: int = Field(512, ge=1, le=65536, description="Rank of the compressed KV latent; the KV cache stores this many values per token per layer (plus the RoPE key).")
    q_lora_rank: int = Field(1536, ge=0, le=65536, description="Rank of the compressed query projection; 0 means queries are projected directly from the hidden state.")
    rope_head_dim: int = Field(64, ge=0, le=4096, description="Per-head dimension of the decoupled RoPE key, shared by all heads and cached per token.")
    nope_head_dim: int = Field(128, ge=1, le=4096, description="Per-head dimension of the non-positional part of queries and keys.")
    v_head_dim: int = Field(128, ge=1, le=4096, description="Per-head dimension of values.")


class Architecture(KubeModel):
    """Transformer shape. Every field is optional here so that it can override a preset field by field."""

    layers: int | None = Field(None, ge=1, le=1024, description="Number of transformer layers (dense and MoE together).")
    hidden_size: int | None = Field(None, ge=1, le=1048576, description="Model (residual stream) width.")
    attention_heads: int | None = Field(None, ge=1, le=4096, description="Number of query heads.")
    kv_heads: int | None = Field(None, ge=1, le=4096, description="Number of key/value heads (GQA); equal to attentionHeads for MHA. Ignored for MLA.")
    head_dim: int | None = Field(None, ge=1, le=4096, description="Per-head dimension of queries, keys and values (GQA).")
    vocab_size: int | None = Field(None, ge=1, le=4194304, description="Vocabulary size (rows of the embedding and the LM head).")
    tied_embeddings: bool | None = Field(None, description="Whether the LM head shares the input embedding matrix.")
    dense_layers: int | None = Field(None, ge=0, le=1024, description="Leading layers with a dense FFN instead of experts (DeepSeek-V3: 3).")
    dense_intermediate_size: int | None = Field(None, ge=0, le=1048576, description="FFN width of the dense layers.")
    experts: int | None = Field(None, ge=1, le=65536, description="Routed experts per MoE layer.")
    shared_experts: int | None = Field(None, ge=0, le=64, description="Shared (always active) experts per MoE layer.")
    shared_expert_intermediate_size: int | None = Field(None, ge=0, le=1048576, description="FFN width of one shared expert; defaults to expertIntermediateSize.")
    experts_per_token: int | None = Field(None, ge=1, le=1024, description="Routed experts each token activates (top-k).")
    expert_intermediate_size: int | None = Field(None, ge=1, le=1048576, description="FFN width of one routed expert (gated: three matrices of hiddenSize x this).")
    attention: AttentionKind | None = Field(None, description="Attention kind: gqa (covers MHA and MQA) or mla.")
    mla: MLAConfig | None = Field(None, description="MLA ranks; required when attention is mla.")
    sliding_window_layers: int | None = Field(None, ge=0, le=1024, description="Layers that use sliding-window attention (gpt-oss: every other layer).")
    sliding_window_tokens: int | None = Field(None, ge=0, le=16777216, description="Window of the sliding-window layers, in tokens.")


class ModelSpec(KubeModel):
    """Which model is served: a catalog preset, an explicit architecture, or a preset with overrides."""

    model_config = KubeModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "has(self.preset) || has(self.architecture)", "message": "set model.preset or model.architecture (or both)"},
    ]}}

    preset: str | None = Field(None, min_length=1, max_length=63, description="Name of a model in the catalog (moectl catalog models lists them).")
    architecture: Architecture | None = Field(None, description="Explicit architecture; its fields override the preset's.")
    weight_dtype: Dtype | None = Field(None, description="Storage precision of the weights; defaults to the preset's.")
    expert_weight_dtype: Dtype | None = Field(None, description="Storage precision of routed experts when it differs from weightDtype (gpt-oss: fp4).")
    kv_cache_dtype: Dtype | None = Field(None, description="Precision of the KV cache; defaults to bf16.")
    served_model: str | None = Field(None, min_length=1, max_length=512,
                                     description="Hugging Face repository id or local path the engine loads; defaults to the preset's repository.")

    @model_validator(mode="after")
    def _preset_or_architecture(self) -> "ModelSpec":
        if self.preset is None and self.architecture is None:
            raise ValueError("set model.preset or model.architecture (or both)")
        return self
