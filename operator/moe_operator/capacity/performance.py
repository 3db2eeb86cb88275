"""Throughput, TTFT and TPOT of one replica of a role, from the stage step times. Pure.

Prefill: a replica processes `batch_tokens` per pass; stages work on different passes at once,
so its throughput is set by the slowest stage. Decode: the replica's sequences are split into one
micro-batch per stage; every sequence gets one token each time all micro-batches have passed
every stage, so TPOT = pipeline x slowest stage step. TTFT queues prefill as M/D/1 (DistServe).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, inf

from ..api import WorkloadSpec
from .compute import decode_mean_context_tokens, prefill_mean_context_tokens
from .layout import RoleLayout
from .timing import StepTiming, stage_step
from .types import GPU, Efficiency, ModelShape


def md1_waiting_seconds(service_seconds: float, arrival_rate_per_second: float) -> float:
    """Mean wait in an M/D/1 queue: R D^2 / (2 (1 - R D)); infinite at or above saturation."""
    load = arrival_rate_per_second * service_seconds
    if load >= 1.0:
        return inf
    return arrival_rate_per_second * service_seconds**2 / (2 * (1 - load))


@dataclass(frozen=True)
class PrefillPerformance:
    tokens_per_second_per_replica: float  # prompt tokens
    latency_seconds: float  # one mean-length prompt through every stage, no queueing
    steps: tuple[StepTiming, ...]  # one full pass of batch_tokens per stage


@dataclass(frozen=True)
class DecodePerformance:
    tokens_per_second_per_replica: float  # generated tokens
    tpot_seconds: float
    steps: tuple[StepTiming, ...]  # one micro-batch step per stage


def prefill_performance(m: ModelShape, gpu: GPU, eff: Efficiency, layout: RoleLayout, prompt_tokens: int) -> PrefillPerformance:
    """Prompt tokens per second of one replica with full passes, and the latency of one prompt."""
    context = prefill_mean_context_tokens(prompt_tokens)
    batch = layout.batch_tokens
    sequences = max(1, ceil(batch / prompt_tokens))
    steps = tuple(stage_step(m, gpu, eff, layout, s, batch, sequences, context, decode=False) for s in layout.stages)
    throughput = batch / max(s.total_seconds for s in steps)
    chunks = ceil(prompt_tokens / batch)
    chunk_tokens = prompt_tokens / chunks
    one = sum(stage_step(m, gpu, eff, layout, s, chunk_tokens, 1, context, decode=False).total_seconds for s in layout.stages)
    return PrefillPerformance(throughput, one * chunks, steps)


def decode_performance(m: ModelShape, gpu: GPU, eff: Efficiency, layout: RoleLayout,
                       prompt_tokens: int, output_tokens: int) -> DecodePerformance:
    """Generated tokens per second of one replica running `max_concurrent_sequences`, and its TPOT."""
    context = decode_mean_context_tokens(prompt_tokens, output_tokens)
    micro_batch = ceil(layout.max_concurrent_sequences / layout.pipeline)
    steps = tuple(stage_step(m, gpu, eff, layout, s, micro_batch, micro_batch, context, decode=True) for s in layout.stages)
    tpot = layout.pipeline * max(s.total_seconds for s in steps)
    return DecodePerformance(layout.max_concurrent_sequences / tpot, tpot, steps)


def communication_fraction(steps: tuple[StepTiming, ...]) -> float:
    """Share of the stages' step time spent communicating."""
    total = sum(s.total_seconds for s in steps)
    return sum(s.communication_seconds for s in steps) / total if total > 0 else 0.0


def aggregated_seconds_per_request(prefill: PrefillPerformance, decode: DecodePerformance,
                                   prompt_tokens: int, output_tokens: int) -> float:
    """Replica busy time one request costs in an aggregated pool: its prompt plus its share of decode."""
    return prompt_tokens / prefill.tokens_per_second_per_replica + output_tokens / decode.tokens_per_second_per_replica


def arrival_rate_per_second(workload: WorkloadSpec, target_tokens_per_second_per_gpu: int | None,
                            role_gpus: int, tokens_per_request: int) -> float | None:
    """Requests per second the whole role must absorb: the workload's rate, or the one its throughput
    target implies; None when neither is given."""
    if workload.requests_per_minute is not None:
        return workload.requests_per_minute / 60.0
    if target_tokens_per_second_per_gpu is not None:
        return target_tokens_per_second_per_gpu * role_gpus / tokens_per_request
    return None


def ttft_seconds(latency_seconds: float, service_seconds: float, arrival_rate_per_replica: float,
                 transfer_seconds: float = 0.0) -> float:
    """Prefill latency plus M/D/1 queueing at the replica's arrival rate plus any KV transfer."""
    return latency_seconds + md1_waiting_seconds(service_seconds, arrival_rate_per_replica) + transfer_seconds
