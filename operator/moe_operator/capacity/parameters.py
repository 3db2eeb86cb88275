"""Parameter counts of a MoE transformer, per component. Pure functions of a ModelShape.

Counts are numbers of parameters (not bytes). Gated FFNs (SwiGLU) have three matrices of
hidden x intermediate. Biases are ignored (under 0.01% for every catalog model).
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import ModelShape


@dataclass(frozen=True)
class AttentionParams:
    """Attention parameters of one layer, split by how tensor parallelism treats them."""

    tensor_sharded_params: int  # split over the tensor-parallel group
    replicated_params: int  # every tensor-parallel rank holds a full copy (MLA down-projections, norms)
    kv_projection_params: int  # GQA K and V projections (part of tensor_sharded); replicated when tensor > kvHeads

    @property
    def total_params(self) -> int:
        return self.tensor_sharded_params + self.replicated_params


def attention_params_per_layer(m: ModelShape) -> AttentionParams:
    """Attention (projections and the two layer norms) of one layer, in parameters."""
    norms = 2 * m.hidden_size
    if m.attention == "mla" and m.mla is not None:
        a = m.mla
        qk_head_dim = a.nope_head_dim + a.rope_head_dim
        if a.q_lora_rank > 0:
            q_down = m.hidden_size * a.q_lora_rank + a.q_lora_rank  # q_a_proj + q_a_layernorm
            q_up = a.q_lora_rank * m.attention_heads * qk_head_dim  # q_b_proj
        else:
            q_down, q_up = 0, m.hidden_size * m.attention_heads * qk_head_dim
        kv_down = m.hidden_size * (a.kv_lora_rank + a.rope_head_dim) + a.kv_lora_rank  # kv_a_proj_with_mqa + norm
        kv_up = a.kv_lora_rank * m.attention_heads * (a.nope_head_dim + a.v_head_dim)  # kv_b_proj
        out = m.attention_heads * a.v_head_dim * m.hidden_size  # o_proj
        return AttentionParams(q_up + kv_up + out, q_down + kv_down + norms, 0)
    q = m.hidden_size * m.attention_heads * m.head_dim
    kv = 2 * m.hidden_size * m.kv_heads * m.head_dim
    out = m.attention_heads * m.head_dim * m.hidden_size
    return AttentionParams(q + kv + out, norms, kv)


def routed_expert_params(m: ModelShape) -> int:
    """One routed expert (gate, up and down projections), in parameters."""
    return 3 * m.hidden_size * m.expert_intermediate_size


def shared_expert_params_per_layer(m: ModelShape) -> int:
    """All shared experts of one MoE layer, in parameters."""
    return m.shared_experts * 3 * m.hidden_size * m.shared_expert_intermediate_size


def router_params_per_layer(m: ModelShape) -> int:
    """The gate that scores experts, in parameters."""
    return m.hidden_size * m.experts


def dense_ffn_params_per_layer(m: ModelShape) -> int:
    """The FFN of one dense (non-MoE) layer, in parameters."""
    return 3 * m.hidden_size * m.dense_intermediate_size


def embedding_params(m: ModelShape) -> int:
    """The input embedding table, in parameters."""
    return m.vocab_size * m.hidden_size


def lm_head_params(m: ModelShape) -> int:
    """The output projection, in parameters (0 when tied to the embedding)."""
    return 0 if m.tied_embeddings else m.vocab_size * m.hidden_size


@dataclass(frozen=True)
class ParamTotals:
    total_params: int
    active_params: int  # a token touches: routed top-k experts, shared experts, everything dense, both embeddings
    active_matmul_params: int  # active minus the input embedding (a lookup): the FLOPs basis

    @property
    def active_params_without_input_embedding(self) -> int:
        return self.active_matmul_params


def param_totals(m: ModelShape) -> ParamTotals:
    """Whole-model totals in parameters (pure)."""
    attn = attention_params_per_layer(m).total_params * m.layers
    dense = dense_ffn_params_per_layer(m) * m.dense_layers
    per_moe_layer_fixed = shared_expert_params_per_layer(m) + router_params_per_layer(m)
    routed_all = routed_expert_params(m) * m.experts * m.moe_layers
    routed_active = routed_expert_params(m) * m.experts_per_token * m.moe_layers
    embed = embedding_params(m)
    head = lm_head_params(m) if not m.tied_embeddings else embed
    fixed = attn + dense + per_moe_layer_fixed * m.moe_layers
    total = fixed + routed_all + embed + lm_head_params(m)
    active = fixed + routed_active + embed + lm_head_params(m)
    return ParamTotals(total_params=total, active_params=active, active_matmul_params=fixed + routed_active + head)
