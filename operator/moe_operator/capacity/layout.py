"""How one replica of a role is laid out: pipeline stages, their layers, GPUs and pods. Pure.

GPUs per replica = tensor x pipeline x data x sequence; each stage has tensor x data x sequence
GPUs, and its MoE layers spread routed experts over all of them (expert x expertTensor).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..api import RoleSpec
from .findings import Code, Finding
from .types import ModelShape

DEFAULT_PREFILL_BATCH_TOKENS = 16384


@dataclass(frozen=True)
class StageLayout:
    index: int
    first_layer: int
    layers: int
    dense_layers: int
    moe_layers: int
    sliding_window_layers: int
    has_embedding: bool
    has_lm_head: bool
    gpus: int
    pods: int
    gpus_per_pod: int

    @property
    def full_attention_layers(self) -> int:
        return self.layers - self.sliding_window_layers


@dataclass(frozen=True)
class RoleLayout:
    role: str
    replicas: int
    tensor: int
    pipeline: int
    data: int
    sequence: int
    expert: int
    expert_tensor: int
    redundant_experts: int
    gpus_per_node: int
    max_concurrent_sequences: int
    batch_tokens: int
    stages: tuple[StageLayout, ...]

    @property
    def gpus_per_stage(self) -> int:
        return self.tensor * self.data * self.sequence

    @property
    def gpus_per_replica(self) -> int:
        return self.gpus_per_stage * self.pipeline

    @property
    def gpus(self) -> int:
        return self.gpus_per_replica * self.replicas


def vllm_stage_layer_counts(layers: int, pipeline: int) -> list[int]:
    """vLLM's default split (vllm/distributed/utils.py get_pp_indices): even, and the remainder
    goes one layer each to the stages before the last, whose LM head already makes it heavier."""
    counts = [layers // pipeline] * pipeline
    for i in range(2, layers % pipeline + 2):
        counts[-i] += 1
    return counts


def _count_in(first: int, count: int, selected: int, total: int) -> int:
    """How many of `selected` layers, spread evenly over `total`, fall in [first, first+count)."""
    return (first + count) * selected // total - first * selected // total


def stage_layouts(m: ModelShape, counts: list[int], stage_gpus: int, gpus_per_node: int) -> tuple[StageLayout, ...]:
    """Layer ranges, dense/MoE/sliding counts, embedding and head placement, and pods per stage."""
    pods = max(1, -(-stage_gpus // gpus_per_node))
    stages, first = [], 0
    for i, n in enumerate(counts):
        dense = max(0, min(first + n, m.dense_layers) - first)
        stages.append(StageLayout(
            index=i, first_layer=first, layers=n, dense_layers=dense, moe_layers=n - dense,
            sliding_window_layers=_count_in(first, n, m.sliding_window_layers, m.layers),
            has_embedding=i == 0, has_lm_head=i == len(counts) - 1,
            gpus=stage_gpus, pods=pods, gpus_per_pod=stage_gpus // pods,
        ))
        first += n
    return tuple(stages)


def _divides(findings: list[Finding], role: str, what: str, divisor: int, dividend: int, fix: str) -> None:
    if dividend % divisor:
        findings.append(Finding(Code.INVALID_PARALLELISM, f"{what}: {dividend} is not divisible by {divisor}; {fix}", role))


def check_parallelism(m: ModelShape, role: str, spec: RoleSpec, gpus_per_node: int) -> list[Finding]:
    """Every degree must divide what it shards. Returns InvalidParallelism findings (pure)."""
    p = spec.parallelism
    f: list[Finding] = []
    stage_gpus = p.tensor * p.data * p.sequence
    _divides(f, role, f"tensor={p.tensor} must divide attentionHeads", p.tensor, m.attention_heads,
             "choose a tensor degree that divides the head count")
    if m.attention == "gqa" and p.tensor % m.kv_heads and m.kv_heads % p.tensor:
        f.append(Finding(Code.INVALID_PARALLELISM,
                         f"tensor={p.tensor} and kvHeads={m.kv_heads}: one must divide the other so KV heads shard or replicate evenly",
                         role))
    _divides(f, role, f"expert={p.expert} must divide the stage's GPUs (tensor x data x sequence)", p.expert, stage_gpus,
             f"use an expert degree that divides {stage_gpus}")
    slots = m.experts + p.redundant_experts
    _divides(f, role, f"expert={p.expert} must divide routed experts + redundant slots", p.expert, slots,
             f"use an expert degree that divides {slots}")
    if stage_gpus % p.expert == 0:
        _divides(f, role, f"expertTensor={stage_gpus // p.expert} must divide expertIntermediateSize", stage_gpus // p.expert,
                 m.expert_intermediate_size, "raise the expert degree")
    if p.pipeline > m.layers:
        f.append(Finding(Code.INVALID_PARALLELISM, f"pipeline={p.pipeline} exceeds the model's {m.layers} layers", role))
    if p.stage_layers is not None:
        if len(p.stage_layers) != p.pipeline or sum(p.stage_layers) != m.layers or min(p.stage_layers) < 1:
            f.append(Finding(Code.INVALID_PARALLELISM,
                             f"stageLayers {p.stage_layers} must have pipeline={p.pipeline} entries, each >= 1, summing to {m.layers} layers",
                             role))
    if stage_gpus > gpus_per_node and stage_gpus % gpus_per_node:
        f.append(Finding(Code.INVALID_PARALLELISM,
                         f"a stage needs {stage_gpus} GPUs, more than a node's {gpus_per_node}, and does not split evenly into one pod per node; "
                         f"use a multiple of {gpus_per_node}",
                         role))
    elif stage_gpus > gpus_per_node and p.tensor <= gpus_per_node and gpus_per_node % p.tensor:
        f.append(Finding(Code.INVALID_PARALLELISM,
                         f"tensor={p.tensor} does not divide the {gpus_per_node} GPUs of a node, so the stage's per-node pods would split "
                         f"tensor groups across nodes; use a tensor degree that divides {gpus_per_node}",
                         role))
    return f


def role_layout(m: ModelShape, role: str, spec: RoleSpec, gpus_per_node: int) -> RoleLayout:
    """The layout of one replica of a role. Call only when check_parallelism found nothing (pure)."""
    p = spec.parallelism
    stage_gpus = p.tensor * p.data * p.sequence
    counts = list(p.stage_layers) if p.stage_layers else vllm_stage_layer_counts(m.layers, p.pipeline)
    default_batch = spec.max_concurrent_sequences if role == "decode" else DEFAULT_PREFILL_BATCH_TOKENS
    return RoleLayout(
        role=role, replicas=spec.replicas, tensor=p.tensor, pipeline=p.pipeline, data=p.data, sequence=p.sequence,
        expert=p.expert, expert_tensor=stage_gpus // p.expert, redundant_experts=p.redundant_experts,
        gpus_per_node=gpus_per_node, max_concurrent_sequences=spec.max_concurrent_sequences,
        batch_tokens=spec.max_batch_tokens or default_batch,
        stages=stage_layouts(m, counts, stage_gpus, gpus_per_node),
    )
