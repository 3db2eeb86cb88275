"""Forward-pass FLOPs. Two FLOPs per multiply-add. Pure functions; every result in FLOPs.

Linear layers cost 2 x parameters per token. Attention scores and the weighted sum of values
cost 2 x heads x (qk_dim + v_dim) x context per token per layer (4 x heads x head_dim x context
for GQA); sliding-window layers see at most their window.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import parameters as P
from .layout import StageLayout
from .types import ModelShape


def attention_score_flops_per_token_per_layer(m: ModelShape, context_tokens: float, absorbed: bool = False) -> float:
    """QK^T and AV for one query token against `context_tokens` keys, one layer, in FLOPs.
    MLA decode runs in the absorbed latent space (keys of kvLoraRank + ropeHeadDim, values of kvLoraRank)."""
    if m.attention == "mla" and m.mla is not None:
        a = m.mla
        if absorbed:
            qk, v = a.kv_lora_rank + a.rope_head_dim, a.kv_lora_rank
        else:
            qk, v = a.nope_head_dim + a.rope_head_dim, a.v_head_dim
        return 2 * m.attention_heads * (qk + v) * context_tokens
    return 4 * m.attention_heads * m.head_dim * context_tokens


@dataclass(frozen=True)
class FlopsPerToken:
    """FLOPs of one token's forward pass, split by the precision that runs them."""

    dense_flops: float  # attention projections and scores, dense FFN, shared experts, router, LM head
    expert_flops: float  # routed experts (top-k)

    @property
    def total_flops(self) -> float:
        return self.dense_flops + self.expert_flops


def _window(m: ModelShape, context_tokens: float) -> float:
    return min(context_tokens, m.sliding_window_tokens)


def stage_flops_per_token(m: ModelShape, stage: StageLayout, context_tokens: float, absorbed: bool = False) -> FlopsPerToken:
    """One token through the layers of one stage at `context_tokens` of attention context, in FLOPs."""
    attn_proj = 2 * P.attention_params_per_layer(m).total_params * stage.layers
    scores = (attention_score_flops_per_token_per_layer(m, context_tokens, absorbed) * stage.full_attention_layers
              + attention_score_flops_per_token_per_layer(m, _window(m, context_tokens), absorbed) * stage.sliding_window_layers)
    dense = 2 * P.dense_ffn_params_per_layer(m) * stage.dense_layers
    shared = 2 * (P.shared_expert_params_per_layer(m) + P.router_params_per_layer(m)) * stage.moe_layers
    head = 2 * m.vocab_size * m.hidden_size if stage.has_lm_head else 0
    routed = 2 * P.routed_expert_params(m) * m.experts_per_token * stage.moe_layers
    return FlopsPerToken(dense_flops=attn_proj + scores + dense + shared + head, expert_flops=routed)


def model_flops_per_token(m: ModelShape, context_tokens: float, absorbed: bool = False) -> FlopsPerToken:
    """One token through the whole model, in FLOPs."""
    whole = StageLayout(
        index=0, first_layer=0, layers=m.layers, dense_layers=m.dense_layers, moe_layers=m.moe_layers,
        sliding_window_layers=m.sliding_window_layers, has_embedding=True, has_lm_head=True, gpus=1, pods=1, gpus_per_pod=1,
    )
    return stage_flops_per_token(m, whole, context_tokens, absorbed)


def prefill_mean_context_tokens(prompt_tokens: float) -> float:
    """Mean attention context of a causal prefill of `prompt_tokens`: (n + 1) / 2, in tokens."""
    return (prompt_tokens + 1) / 2


def decode_mean_context_tokens(prompt_tokens: float, output_tokens: float) -> float:
    """Mean context of a decode step over a sequence's generation: n + (o + 1) / 2, in tokens."""
    return prompt_tokens + (output_tokens + 1) / 2
