"""Favourable bounds: what no plan on this hardware can beat. Pure.

Every bound assumes 100% of peak FLOP/s and HBM bandwidth, the shortest sequences of the
workload, no communication and perfect parallelism, so a target beyond a bound is physically
impossible, and a target within it never is. Throughputs are per GPU; latencies assume the
whole GPU budget works on one request.
"""

from __future__ import annotations

from . import parameters as P
from .compute import model_flops_per_token, prefill_mean_context_tokens
from .memory import EMBEDDING_BYTES_PER_PARAM, kv_bytes_per_token_per_layer
from .types import GPU, ModelShape


def _seconds_per_token_compute(m: ModelShape, gpu: GPU, context_tokens: float, absorbed: bool) -> float:
    f = model_flops_per_token(m, context_tokens, absorbed)
    return f.dense_flops / gpu.peak_flops_for(m.compute_class) + f.expert_flops / gpu.peak_flops_for(m.expert_compute_class)


def kv_cache_bytes_for_context(m: ModelShape, context_tokens: int) -> float:
    """KV cache of `context_tokens` tokens of one sequence, whole model, no replication, in bytes: what one
    decode token reads at that context, or what prefill hands to decode for a prompt of that length."""
    windowed = min(context_tokens, m.sliding_window_tokens)
    return kv_bytes_per_token_per_layer(m) * (m.full_attention_layers * context_tokens + m.sliding_window_layers * windowed)


def prefill_tokens_per_second_per_gpu_bound(m: ModelShape, gpu: GPU, shortest_prompt_tokens: int) -> float:
    """Prompt tokens per second one GPU cannot exceed: peak FLOP/s over FLOPs per token at the shortest prompt."""
    return 1.0 / _seconds_per_token_compute(m, gpu, prefill_mean_context_tokens(shortest_prompt_tokens), absorbed=False)


def decode_tokens_per_second_per_gpu_bound(m: ModelShape, gpu: GPU, shortest_prompt_tokens: int) -> float:
    """Generated tokens per second one GPU cannot exceed: weights amortised over an unbounded batch, but
    each token still costs its FLOPs and reads its own KV cache at the shortest context."""
    context = shortest_prompt_tokens + 1
    compute = min(_seconds_per_token_compute(m, gpu, context, absorbed=True),
                  _seconds_per_token_compute(m, gpu, context, absorbed=False))
    kv = kv_cache_bytes_for_context(m, context) / gpu.memory_bandwidth_bytes_per_second
    return 1.0 / max(compute, kv)


def active_weight_bytes_per_token(m: ModelShape) -> float:
    """Weights one token must read: everything dense, shared experts, its top-k routed experts and the
    LM head (the embedding is a one-row lookup), in bytes."""
    attn = P.attention_params_per_layer(m).total_params * m.layers
    dense = P.dense_ffn_params_per_layer(m) * m.dense_layers + P.shared_expert_params_per_layer(m) * m.moe_layers
    routed = P.routed_expert_params(m) * m.experts_per_token * m.moe_layers
    head = m.vocab_size * m.hidden_size
    return (attn + dense) * m.weight_bytes_per_param + routed * m.expert_weight_bytes_per_param + head * EMBEDDING_BYTES_PER_PARAM


def tpot_seconds_bound(m: ModelShape, gpu: GPU, shortest_prompt_tokens: int, max_gpus: int) -> float:
    """Shortest possible time per output token: one token's weights and KV read by the whole budget at peak bandwidth."""
    bytes_read = active_weight_bytes_per_token(m) + kv_cache_bytes_for_context(m, shortest_prompt_tokens + 1)
    return bytes_read / (max_gpus * gpu.memory_bandwidth_bytes_per_second)


def ttft_seconds_bound(m: ModelShape, gpu: GPU, shortest_prompt_tokens: int, max_gpus: int) -> float:
    """Shortest possible time to first token: the shortest prompt's FLOPs on the whole budget at peak,
    or reading one token's weights, whichever is longer; no queueing."""
    context = prefill_mean_context_tokens(shortest_prompt_tokens)
    compute = shortest_prompt_tokens * _seconds_per_token_compute(m, gpu, context, absorbed=False) / max_gpus
    memory = active_weight_bytes_per_token(m) / (max_gpus * gpu.memory_bandwidth_bytes_per_second)
    return max(compute, memory)
