"""The capacity report as the stable JSON document `moectl validate -o json` prints. Pure.

Shape (more fields may be added, none renamed):
  {feasible, violations[{code,message,role,stage}], warnings[...], model{totalParams, activeParams,
   kvCacheBytesPerToken, flopsPerToken}, totalGPUs, roles{<role>{replicas, gpusPerReplica, gpus,
   maxConcurrentSequencesAtMaxLength, tokensPerSecondPerGPU, ttftMilliseconds, tpotMilliseconds,
   communicationFraction, stages[{index, layers, gpus, pods, expertsPerGPUPerLayer, expertInstancesPerGPU,
   memoryBytesPerGPU{weights, kvCache, activations, communication, runtime, total}, memoryUtilizationPercent}]}}}
"""

from __future__ import annotations

from math import isfinite
from typing import Any

from .report import CapacityReport, RoleReport, StageReport
from .timing import StepTiming


def _ms(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return round(seconds * 1e3, 3) if isfinite(seconds) else None


def _stage(s: StageReport) -> dict[str, Any]:
    m = s.memory
    return {
        "index": s.index, "firstLayer": s.first_layer, "layers": s.layers, "denseLayers": s.dense_layers,
        "moeLayers": s.moe_layers, "gpus": s.gpus, "pods": s.pods, "gpusPerPod": s.gpus_per_pod,
        "expertsPerGPUPerLayer": s.experts_per_gpu_per_layer, "expertInstancesPerGPU": s.expert_instances_per_gpu,
        "memoryBytesPerGPU": {
            "weights": round(m.weights_bytes), "kvCache": round(m.kv_cache_bytes), "activations": round(m.activations_bytes),
            "communication": round(m.communication_bytes), "runtime": round(m.runtime_bytes), "total": round(m.total_bytes),
        },
        "memoryUtilizationPercent": round(s.memory_utilization_percent, 2),
        "maxConcurrentSequencesAtMaxLength": s.max_concurrent_sequences_at_max_length,
    }


def _step(t: StepTiming) -> dict[str, float]:
    return {
        "computeMilliseconds": round(t.compute_seconds * 1e3, 4), "memoryMilliseconds": round(t.memory_seconds * 1e3, 4),
        "tensorCommMilliseconds": round(t.tensor_comm_seconds * 1e3, 4),
        "expertCommMilliseconds": round(t.expert_comm_seconds * 1e3, 4),
        "pipelineCommMilliseconds": round(t.pipeline_comm_seconds * 1e3, 4), "totalMilliseconds": round(t.total_seconds * 1e3, 4),
    }


def _role(r: RoleReport) -> dict[str, Any]:
    return {
        "replicas": r.replicas, "parallelism": r.parallelism, "gpusPerReplica": r.gpus_per_replica, "gpus": r.gpus,
        "podsPerReplica": r.pods_per_replica, "maxConcurrentSequences": r.max_concurrent_sequences,
        "maxConcurrentSequencesAtMaxLength": r.max_concurrent_sequences_at_max_length,
        "tokensKind": r.tokens_kind,
        "tokensPerSecondPerGPU": round(r.tokens_per_second_per_gpu, 3),
        "tokensPerSecondPerReplica": round(r.tokens_per_second_per_replica, 3),
        "tokensPerSecond": round(r.tokens_per_second, 3),
        "tokensPerSecondPerGPUBound": round(r.tokens_per_second_per_gpu_bound, 3),
        "ttftMilliseconds": _ms(r.ttft_seconds), "tpotMilliseconds": _ms(r.tpot_seconds),
        "queueSaturated": r.ttft_seconds is not None and not isfinite(r.ttft_seconds),
        "arrivalRatePerSecond": r.arrival_rate_per_second,
        "communicationFraction": round(r.communication_fraction, 4), "links": r.links,
        "prefillStepPerStage": [_step(t) for t in r.prefill_steps],
        "decodeStepPerStage": [_step(t) for t in r.decode_steps],
        "stages": [_stage(s) for s in r.stages],
    }


def report_to_json(report: CapacityReport) -> dict[str, Any]:
    """The report as plain JSON-serialisable data."""
    m = report.model
    return {
        "name": report.name,
        "feasible": report.feasible,
        "violations": [f.as_dict() for f in report.violations],
        "warnings": [f.as_dict() for f in report.warnings],
        "model": {
            "name": m.name, "totalParams": m.total_params, "activeParams": m.active_params,
            "activeMatmulParams": m.active_matmul_params, "kvCacheBytesPerToken": m.kv_cache_bytes_per_token,
            "flopsPerToken": m.flops_per_token, "linearFlopsPerToken": m.linear_flops_per_token,
            "weightDtype": m.weight_dtype, "expertWeightDtype": m.expert_weight_dtype, "kvCacheDtype": m.kv_cache_dtype,
        },
        "gpu": report.gpu, "gpuMemoryBytes": report.gpu_memory_bytes, "memoryLimitBytesPerGPU": round(report.memory_limit_bytes),
        "gpusPerNode": report.gpus_per_node, "maxGPUs": report.max_gpus, "totalGPUs": report.total_gpus,
        "efficiency": report.efficiency,
        "roles": {name: _role(r) for name, r in report.roles.items()},
    }
