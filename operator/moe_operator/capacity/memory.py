"""GPU memory per GPU of one pipeline stage, by component. Pure functions; every result in bytes.

Inference only: weights, KV cache, activations of the largest forward pass, communication
buffers and runtime overhead. No optimizer state and no gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from . import parameters as P
from .layout import RoleLayout, StageLayout
from .types import Efficiency, ModelShape

EMBEDDING_BYTES_PER_PARAM = 2.0  # embeddings, LM head and router stay BF16 in FP8/FP4 checkpoints
ACTIVATION_BYTES = 2.0  # BF16 activations
LOGIT_BYTES = 4.0  # FP32 logits
RESIDUAL_BUFFERS = 4  # residual, normed input, attention output, FFN output
MIN_COMM_BUFFER_BYTES = 256 * 1024**2  # NCCL / DeepEP buffers have a floor of a few hundred MiB


@dataclass(frozen=True)
class MemoryBreakdown:
    weights_bytes: float
    kv_cache_bytes: float
    activations_bytes: float
    communication_bytes: float
    runtime_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes + self.activations_bytes + self.communication_bytes + self.runtime_bytes


def kv_heads_per_gpu(m: ModelShape, tensor: int) -> int:
    """GQA KV heads each tensor rank holds: split when tensor <= kvHeads, else replicated (one each)."""
    return max(m.kv_heads // tensor, 1)


def attention_weight_bytes_per_gpu_per_layer(m: ModelShape, tensor: int) -> float:
    """Attention weights one GPU holds for one layer, in bytes."""
    a = P.attention_params_per_layer(m)
    kv = a.kv_projection_params * kv_heads_per_gpu(m, tensor) / m.kv_heads
    sharded = (a.tensor_sharded_params - a.kv_projection_params) / tensor + kv
    return (sharded + a.replicated_params) * m.weight_bytes_per_param


def routed_expert_weight_bytes_per_gpu_per_layer(m: ModelShape, layout: RoleLayout) -> float:
    """Routed experts (plus redundant slots) of one MoE layer, spread over all GPUs of the stage, in bytes."""
    slots = m.experts + layout.redundant_experts
    return slots * P.routed_expert_params(m) * m.expert_weight_bytes_per_param / layout.gpus_per_stage


def non_expert_weight_bytes_per_gpu(m: ModelShape, layout: RoleLayout, stage: StageLayout) -> float:
    """Everything but routed experts that one GPU of the stage holds, in bytes."""
    t = layout.tensor
    attn = attention_weight_bytes_per_gpu_per_layer(m, t) * stage.layers
    dense = P.dense_ffn_params_per_layer(m) / t * m.weight_bytes_per_param * stage.dense_layers
    shared = P.shared_expert_params_per_layer(m) / t * m.weight_bytes_per_param * stage.moe_layers
    router = P.router_params_per_layer(m) * EMBEDDING_BYTES_PER_PARAM * stage.moe_layers
    table = m.vocab_size * m.hidden_size / t * EMBEDDING_BYTES_PER_PARAM
    embed = table if stage.has_embedding else 0.0
    tied_on_same_stage = m.tied_embeddings and stage.has_embedding
    head = table if stage.has_lm_head and not tied_on_same_stage else 0.0
    return attn + dense + shared + router + embed + head


def weight_bytes_per_gpu(m: ModelShape, layout: RoleLayout, stage: StageLayout) -> float:
    """All weights one GPU of the stage holds, in bytes."""
    routed = routed_expert_weight_bytes_per_gpu_per_layer(m, layout) * stage.moe_layers
    return non_expert_weight_bytes_per_gpu(m, layout, stage) + routed


def kv_bytes_per_token_per_layer(m: ModelShape) -> float:
    """KV cache of one token in one layer for the whole model width, in bytes.
    GQA: K and V for every KV head; MLA: the compressed latent plus the shared RoPE key."""
    if m.attention == "mla" and m.mla is not None:
        return (m.mla.kv_lora_rank + m.mla.rope_head_dim) * m.kv_cache_bytes_per_value
    return 2 * m.kv_heads * m.head_dim * m.kv_cache_bytes_per_value


def kv_cache_bytes_per_token(m: ModelShape) -> float:
    """KV cache of one token over all layers (sliding-window layers included), whole model, in bytes."""
    return kv_bytes_per_token_per_layer(m) * m.layers


def kv_tensor_share(m: ModelShape, tensor: int) -> float:
    """Share of a layer's per-token KV cache one tensor rank stores: GQA splits heads, MLA's latent is
    replicated on every tensor rank (why SGLang uses data-parallel attention for DeepSeek)."""
    if m.attention == "mla":
        return 1.0
    return kv_heads_per_gpu(m, tensor) / m.kv_heads


def cached_token_layers(m: ModelShape, stage: StageLayout, sequence_tokens: int, sequence_parallel: int) -> int:
    """Token-layers of KV one sequence leaves on one GPU of the stage (sequence parallel splits tokens)."""
    full = ceil(sequence_tokens / sequence_parallel) * stage.full_attention_layers
    windowed = ceil(min(sequence_tokens, m.sliding_window_tokens) / sequence_parallel) * stage.sliding_window_layers
    return full + windowed


def kv_cache_bytes_per_sequence_per_gpu(m: ModelShape, layout: RoleLayout, stage: StageLayout, sequence_tokens: int) -> float:
    """KV cache one sequence of `sequence_tokens` occupies on one GPU of the stage, in bytes."""
    token_layers = cached_token_layers(m, stage, sequence_tokens, layout.sequence)
    return token_layers * kv_bytes_per_token_per_layer(m) * kv_tensor_share(m, layout.tensor)


def sequences_per_gpu(concurrent_sequences: int, data: int) -> int:
    """Sequences one data-parallel attention rank holds when a replica runs `concurrent_sequences`."""
    return ceil(concurrent_sequences / data)


def activation_bytes_per_gpu(m: ModelShape, layout: RoleLayout, stage: StageLayout, batch_tokens: int) -> float:
    """Peak activations of one forward pass of `batch_tokens` (whole replica) on one GPU, in bytes."""
    t = layout.tensor
    local_tokens = ceil(ceil(batch_tokens / layout.data) / layout.sequence)
    residual = local_tokens * m.hidden_size * ACTIVATION_BYTES * RESIDUAL_BUFFERS
    if m.attention == "mla" and m.mla is not None:
        qkv_width = m.attention_heads * (2 * (m.mla.nope_head_dim + m.mla.rope_head_dim) + m.mla.v_head_dim)
    else:
        qkv_width = (m.attention_heads + 2 * m.kv_heads) * m.head_dim
    attention = local_tokens * qkv_width / t * ACTIVATION_BYTES
    received = batch_tokens * m.experts_per_token / layout.expert
    moe = received * (m.hidden_size + 3 * m.expert_intermediate_size / layout.expert_tensor) * ACTIVATION_BYTES if stage.moe_layers else 0.0
    dense = local_tokens * 3 * m.dense_intermediate_size / t * ACTIVATION_BYTES if stage.dense_layers else 0.0
    sampled = min(batch_tokens, layout.max_concurrent_sequences)
    logits = ceil(sampled / layout.data) * m.vocab_size / t * LOGIT_BYTES if stage.has_lm_head else 0.0
    return residual + max(attention, moe, dense, logits)


def dispatch_bytes_per_value(m: ModelShape) -> float:
    """Bytes per hidden value sent to experts: FP8 with 1/128 FP32 scales when the model computes in FP8, else BF16."""
    return 1.0 + 4.0 / 128 if m.expert_compute_class in ("fp8", "fp4", "int8") else 2.0


def communication_buffer_bytes_per_gpu(m: ModelShape, layout: RoleLayout, batch_tokens: int) -> float:
    """Send and receive buffers for expert dispatch/combine and collectives on one GPU, in bytes."""
    if layout.gpus_per_stage == 1 and layout.pipeline == 1:
        return 0.0
    tokens_per_gpu = ceil(batch_tokens / layout.gpus_per_stage)
    per_copy = tokens_per_gpu * m.experts_per_token * m.hidden_size
    a2a = 2 * per_copy * (dispatch_bytes_per_value(m) + ACTIVATION_BYTES) if layout.expert > 1 else 0.0
    return max(MIN_COMM_BUFFER_BYTES, a2a)


def stage_memory(m: ModelShape, layout: RoleLayout, stage: StageLayout, eff: Efficiency,
                 concurrent_sequences: int, sequence_tokens: int) -> MemoryBreakdown:
    """Memory per GPU of a stage with `concurrent_sequences` per replica of `sequence_tokens` each."""
    kv = sequences_per_gpu(concurrent_sequences, layout.data) * kv_cache_bytes_per_sequence_per_gpu(m, layout, stage, sequence_tokens)
    return MemoryBreakdown(
        weights_bytes=weight_bytes_per_gpu(m, layout, stage),
        kv_cache_bytes=kv,
        activations_bytes=activation_bytes_per_gpu(m, layout, stage, layout.batch_tokens),
        communication_bytes=communication_buffer_bytes_per_gpu(m, layout, layout.batch_tokens),
        runtime_bytes=float(eff.runtime_overhead_bytes),
    )


def max_sequences_that_fit(m: ModelShape, layout: RoleLayout, stage: StageLayout, memory: MemoryBreakdown,
                           limit_bytes: float, sequence_tokens: int) -> int:
    """Largest concurrency per replica whose KV cache fits beside everything else under `limit_bytes`."""
    free = limit_bytes - (memory.total_bytes - memory.kv_cache_bytes)
    per_sequence = kv_cache_bytes_per_sequence_per_gpu(m, layout, stage, sequence_tokens)
    if free <= 0:
        return 0
    if per_sequence <= 0:
        return 1 << 30
    return int(free // per_sequence) * layout.data
