"""Communication time over the links a group really crosses. Pure; results in seconds.

A group of GPUs that fits in one node talks over NVLink; one that spans nodes sends the share
of its traffic bound for other nodes over the scale-out network, concurrently with the
NVLink share, so its time is the larger of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from .types import GPU, Efficiency


@dataclass(frozen=True)
class Links:
    """Achievable per-GPU bandwidths, in bytes per second."""

    nvlink_bytes_per_second: float
    network_bytes_per_second: float

    @staticmethod
    def of(gpu: GPU, eff: Efficiency) -> "Links":
        return Links(gpu.nvlink_bytes_per_second * eff.nvlink, gpu.network_bytes_per_second * eff.network)


def link_name(group_gpus: int, gpus_per_node: int) -> str:
    """'nvlink' when the group fits in one node, else 'network'."""
    return "nvlink" if group_gpus <= gpus_per_node else "network"


def split_by_link(group_gpus: int, gpus_per_node: int) -> tuple[float, float]:
    """Shares of a GPU's uniformly spread traffic that stay in its node and that leave it."""
    if group_gpus <= 1:
        return 0.0, 0.0
    local = min(group_gpus, gpus_per_node)
    return (local - 1) / group_gpus, (group_gpus - local) / group_gpus


def all_reduce_seconds(buffer_bytes: float, group_gpus: int, gpus_per_node: int, links: Links) -> float:
    """Ring all-reduce of a `buffer_bytes` buffer: each GPU moves 2 (n-1)/n x B over its slowest link."""
    if group_gpus <= 1:
        return 0.0
    moved = 2 * (group_gpus - 1) / group_gpus * buffer_bytes
    bw = links.nvlink_bytes_per_second if group_gpus <= gpus_per_node else links.network_bytes_per_second
    return moved / bw


def expert_all_to_all_bytes_per_gpu(tokens_per_gpu: float, copies_per_token: float, hidden_size: int,
                                    dispatch_bytes_per_value: float, combine_bytes_per_value: float) -> float:
    """Bytes one GPU sends per MoE layer: dispatch of `copies_per_token` copies of each of its tokens
    plus the combine of as many results back."""
    return tokens_per_gpu * copies_per_token * hidden_size * (dispatch_bytes_per_value + combine_bytes_per_value)


@dataclass(frozen=True)
class ExpertCopies:
    """Copies of one token (hidden vectors) a GPU sends per MoE layer, by link."""

    nvlink: float
    network: float


def per_expert_copies(experts_per_token: float, group_gpus: int, gpus_per_node: int) -> ExpertCopies:
    """Low-latency dispatch (DeepEP's decode kernels): one copy per routed expert, sent straight to
    the GPU that holds it, uniformly spread over the group."""
    intra, inter = split_by_link(group_gpus, gpus_per_node)
    return ExpertCopies(nvlink=experts_per_token * intra, network=experts_per_token * inter)


def node_deduplicated_copies(experts_per_token: float, group_gpus: int, gpus_per_node: int) -> ExpertCopies:
    """Normal dispatch (DeepEP's prefill kernels): one network copy per remote node that holds any of the
    token's experts, forwarded over NVLink inside that node. With N nodes and k uniform experts,
    remote nodes hit = (N - 1) (1 - (1 - 1/N)^k)."""
    if group_gpus <= gpus_per_node:
        return per_expert_copies(experts_per_token, group_gpus, gpus_per_node)
    nodes = group_gpus / gpus_per_node
    remote_nodes = (nodes - 1) * (1 - (1 - 1 / nodes) ** experts_per_token)
    forwarded = experts_per_token * (gpus_per_node - 1) / gpus_per_node
    return ExpertCopies(nvlink=forwarded, network=remote_nodes)


def expert_all_to_all_seconds(tokens_per_gpu: float, copies: ExpertCopies, hidden_size: int,
                              dispatch_bytes_per_value: float, combine_bytes_per_value: float, links: Links) -> float:
    """Dispatch + combine of one MoE layer: NVLink and network traffic run concurrently, the slower sets the time."""
    per_copy = expert_all_to_all_bytes_per_gpu(tokens_per_gpu, 1.0, hidden_size, dispatch_bytes_per_value, combine_bytes_per_value)
    return max(per_copy * copies.nvlink / links.nvlink_bytes_per_second, per_copy * copies.network / links.network_bytes_per_second)


def pipeline_handoff_seconds(tokens: float, hidden_size: int, activation_bytes: float, stage_gpus: int,
                             replica_gpus: int, gpus_per_node: int, links: Links) -> float:
    """Hidden states of `tokens` passed to the next stage; each GPU of the stage sends its share."""
    per_gpu = ceil(tokens * hidden_size * activation_bytes / stage_gpus)
    bw = links.nvlink_bytes_per_second if replica_gpus <= gpus_per_node else links.network_bytes_per_second
    return per_gpu / bw


def kv_transfer_seconds(kv_bytes: float, sender_gpus: int, links: Links) -> float:
    """Prefill-to-decode KV cache transfer of one request over the network, spread over the sender's GPUs."""
    return kv_bytes / (max(sender_gpus, 1) * links.network_bytes_per_second)
