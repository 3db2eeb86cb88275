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


def uniform_exchange_seconds(bytes_per_gpu: float, group_gpus: int, gpus_per_node: int, links: Links) -> float:
    """One GPU sends `bytes_per_gpu` spread evenly over the group: max of NVLink and network time."""
    intra, inter = split_by_link(group_gpus, gpus_per_node)
    return max(bytes_per_gpu * intra / links.nvlink_bytes_per_second, bytes_per_gpu * inter / links.network_bytes_per_second)


def all_reduce_seconds(buffer_bytes: float, group_gpus: int, gpus_per_node: int, links: Links) -> float:
    """Ring all-reduce of a `buffer_bytes` buffer: each GPU moves 2 (n-1)/n x B over its slowest link."""
    if group_gpus <= 1:
        return 0.0
    moved = 2 * (group_gpus - 1) / group_gpus * buffer_bytes
    bw = links.nvlink_bytes_per_second if group_gpus <= gpus_per_node else links.network_bytes_per_second
    return moved / bw


def expert_all_to_all_bytes_per_gpu(tokens_per_gpu: float, copies_per_token: float, hidden_size: int,
                                    dispatch_bytes_per_value: float, combine_bytes_per_value: float) -> float:
    """Bytes one GPU sends per MoE layer: dispatch of its tokens to their experts plus the combine back."""
    return tokens_per_gpu * copies_per_token * hidden_size * (dispatch_bytes_per_value + combine_bytes_per_value)


def expert_all_to_all_seconds(tokens_per_gpu: float, copies_per_token: float, hidden_size: int,
                              dispatch_bytes_per_value: float, combine_bytes_per_value: float,
                              group_gpus: int, gpus_per_node: int, links: Links) -> float:
    """Dispatch + combine of one MoE layer across the expert group, in seconds."""
    sent = expert_all_to_all_bytes_per_gpu(tokens_per_gpu, copies_per_token, hidden_size,
                                           dispatch_bytes_per_value, combine_bytes_per_value)
    return uniform_exchange_seconds(sent, group_gpus, gpus_per_node, links)


def pipeline_handoff_seconds(tokens: float, hidden_size: int, activation_bytes: float, stage_gpus: int,
                             replica_gpus: int, gpus_per_node: int, links: Links) -> float:
    """Hidden states of `tokens` passed to the next stage; each GPU of the stage sends its share."""
    per_gpu = ceil(tokens * hidden_size * activation_bytes / stage_gpus)
    bw = links.nvlink_bytes_per_second if replica_gpus <= gpus_per_node else links.network_bytes_per_second
    return per_gpu / bw


def kv_transfer_seconds(kv_bytes: float, sender_gpus: int, links: Links) -> float:
    """Prefill-to-decode KV cache transfer of one request over the network, spread over the sender's GPUs."""
    return kv_bytes / (max(sender_gpus, 1) * links.network_bytes_per_second)
