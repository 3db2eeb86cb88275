"""Time of one forward pass of one pipeline stage: a roofline plus the communication it waits on.

step = max(compute, HBM traffic) + tensor all-reduce + expert all-to-all + pipeline hand-off.
Communication is not assumed to overlap compute (conservative; DeepSeek-style two-micro-batch
overlap would hide part of it). Pure; results in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from . import communication as C
from .compute import stage_flops_per_token
from .layout import RoleLayout, StageLayout
from .memory import (
    ACTIVATION_BYTES,
    dispatch_bytes_per_value,
    kv_cache_bytes_per_sequence_per_gpu,
    non_expert_weight_bytes_per_gpu,
    routed_expert_weight_bytes_per_gpu_per_layer,
    sequences_per_gpu,
)
from .types import GPU, Efficiency, ModelShape


@dataclass(frozen=True)
class StepTiming:
    compute_seconds: float
    memory_seconds: float
    tensor_comm_seconds: float
    expert_comm_seconds: float
    pipeline_comm_seconds: float

    @property
    def communication_seconds(self) -> float:
        return self.tensor_comm_seconds + self.expert_comm_seconds + self.pipeline_comm_seconds

    @property
    def total_seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds) + self.communication_seconds


def expected_distinct_experts_fraction(m: ModelShape, routed_tokens: float) -> float:
    """Expected share of a layer's experts that `routed_tokens` tokens touch: 1 - (1 - k/E)^tokens."""
    return 1.0 - (1.0 - m.experts_per_token / m.experts) ** max(routed_tokens, 1.0)


def compute_seconds(m: ModelShape, gpu: GPU, eff: Efficiency, layout: RoleLayout, stage: StageLayout,
                    tokens: float, context_tokens: float, absorbed: bool) -> float:
    """`tokens` through the stage, spread evenly over its GPUs, at the achievable peak of each precision."""
    f = stage_flops_per_token(m, stage, context_tokens, absorbed)
    per_token = f.dense_flops / gpu.peak_flops_for(m.compute_class) + f.expert_flops / gpu.peak_flops_for(m.expert_compute_class)
    return tokens * per_token / (layout.gpus_per_stage * eff.compute)


def hbm_bytes_per_gpu(m: ModelShape, layout: RoleLayout, stage: StageLayout, tokens: float,
                      sequences: int, context_tokens: float) -> float:
    """Bytes one GPU reads or writes from HBM in the pass: the weights it touches and the KV cache."""
    touched = expected_distinct_experts_fraction(m, tokens)
    routed = routed_expert_weight_bytes_per_gpu_per_layer(m, layout) * stage.moe_layers * touched
    kv_per_sequence = kv_cache_bytes_per_sequence_per_gpu(m, layout, stage, max(1, round(context_tokens)))
    kv = sequences_per_gpu(sequences, layout.data) * kv_per_sequence
    return non_expert_weight_bytes_per_gpu(m, layout, stage) + routed + kv


def tensor_comm_seconds(m: ModelShape, layout: RoleLayout, stage: StageLayout, tokens: float, links: C.Links) -> float:
    """All-reduces over the tensor group: after attention every layer, after the FFN in dense layers
    and in MoE layers without expert parallelism."""
    if layout.tensor <= 1:
        return 0.0
    local_tokens = ceil(ceil(tokens / layout.data) / layout.sequence)
    buffer = local_tokens * m.hidden_size * ACTIVATION_BYTES
    per_op = C.all_reduce_seconds(buffer, layout.tensor, layout.gpus_per_node, links)
    reductions = stage.layers + stage.dense_layers + (stage.moe_layers if layout.expert == 1 else 0)
    return per_op * reductions


def expert_comm_seconds(m: ModelShape, layout: RoleLayout, stage: StageLayout, tokens: float, links: C.Links,
                        decode: bool) -> float:
    """Dispatch and combine of every MoE layer when experts are spread over more than one group:
    per-expert copies in decode (low-latency kernels), node-deduplicated copies in prefill."""
    if layout.expert <= 1 or stage.moe_layers == 0:
        return 0.0
    copies_of = C.per_expert_copies if decode else C.node_deduplicated_copies
    copies = copies_of(m.experts_per_token * layout.expert_tensor, layout.gpus_per_stage, layout.gpus_per_node)
    per_layer = C.expert_all_to_all_seconds(
        tokens_per_gpu=tokens / layout.gpus_per_stage, copies=copies, hidden_size=m.hidden_size,
        dispatch_bytes_per_value=dispatch_bytes_per_value(m), combine_bytes_per_value=ACTIVATION_BYTES, links=links,
    )
    return per_layer * stage.moe_layers


def stage_step(m: ModelShape, gpu: GPU, eff: Efficiency, layout: RoleLayout, stage: StageLayout,
               tokens: float, sequences: int, context_tokens: float, decode: bool) -> StepTiming:
    """One forward pass of `tokens` tokens (whole replica) belonging to `sequences` sequences at
    `context_tokens` of context, through one stage."""
    links = C.Links.of(gpu, eff)
    hbm = hbm_bytes_per_gpu(m, layout, stage, tokens, sequences, context_tokens)
    handoff = 0.0
    if not stage.has_lm_head:
        handoff = C.pipeline_handoff_seconds(tokens, m.hidden_size, ACTIVATION_BYTES, layout.gpus_per_stage,
                                             layout.gpus_per_replica, layout.gpus_per_node, links)
    return StepTiming(
        compute_seconds=compute_seconds(m, gpu, eff, layout, stage, tokens, context_tokens, absorbed=decode),
        memory_seconds=hbm / (gpu.memory_bandwidth_bytes_per_second * eff.memory_bandwidth),
        tensor_comm_seconds=tensor_comm_seconds(m, layout, stage, tokens, links),
        expert_comm_seconds=expert_comm_seconds(m, layout, stage, tokens, links, decode),
        pipeline_comm_seconds=handoff,
    )
