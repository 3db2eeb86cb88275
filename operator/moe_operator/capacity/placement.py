"""Where routed experts live: per GPU per layer, per GPU over a stage, and the full map. Pure.

Two numbers people confuse, named apart:
  experts_per_gpu_per_layer   routed experts (slots) one GPU holds in ONE MoE layer: (experts + redundant) / expert
  expert_instances_per_gpu    expert weight sets one GPU holds over ALL MoE layers of its stage
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import RoleLayout, StageLayout
from .types import ModelShape


def experts_per_gpu_per_layer(m: ModelShape, layout: RoleLayout) -> float:
    """Routed expert slots one GPU holds in one MoE layer (each as a 1/expertTensor slice)."""
    return (m.experts + layout.redundant_experts) / layout.expert


def expert_instances_per_gpu(m: ModelShape, layout: RoleLayout, stage: StageLayout) -> float:
    """Routed expert slots one GPU holds summed over the MoE layers of its stage."""
    return experts_per_gpu_per_layer(m, layout) * stage.moe_layers


@dataclass(frozen=True)
class GPUExperts:
    rank: int  # rank within the stage, 0 .. stage GPUs - 1
    pod: int  # pod (node) index within the stage
    local_rank: int  # GPU index within the pod
    expert_group: int
    expert_tensor_rank: int  # which 1/expertTensor slice of each expert this GPU holds
    experts: tuple[int, ...]  # expert ids in every MoE layer of the stage; ids >= experts are redundant slots


def stage_expert_map(m: ModelShape, layout: RoleLayout, stage: StageLayout) -> tuple[GPUExperts, ...]:
    """Contiguous blocks: expert group g holds slots [g*k, (g+1)*k); redundant slots start as copies of
    experts 0.. (EPLB moves them to hot experts at run time). Same map for every MoE layer of the stage."""
    slots_per_group = (m.experts + layout.redundant_experts) // layout.expert
    out = []
    for rank in range(stage.gpus):
        group, slice_rank = divmod(rank, layout.expert_tensor)
        slots = range(group * slots_per_group, (group + 1) * slots_per_group)
        ids = tuple(s if s < m.experts else s - m.experts for s in slots)
        out.append(GPUExperts(rank, rank // stage.gpus_per_pod, rank % stage.gpus_per_pod, group, slice_rank, ids))
    return tuple(out)
