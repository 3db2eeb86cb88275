"""Engine command lines for one pod of a replica group. Pure.

Flags follow each engine's documentation:
- vLLM (`vllm serve`): --tensor-parallel-size, --pipeline-parallel-size, --data-parallel-size,
  --enable-expert-parallel, --max-num-seqs, --max-num-batched-tokens, --max-model-len,
  --kv-cache-dtype, --gpu-memory-utilization; a replica spanning pods runs data-parallel ranks per
  pod (--data-parallel-size-local, --data-parallel-address, --data-parallel-rpc-port,
  --data-parallel-start-rank, --headless on followers) or, with pipeline/tensor across pods, the
  multiprocessing multi-node launcher (--nnodes, --node-rank, --master-addr, --master-port,
  --headless); disaggregated roles get --kv-transfer-config for the NIXL connector.
- SGLang (`python3 -m sglang.launch_server`): --tp is the total GPUs of a stage across nodes,
  --dp with --enable-dp-attention, --ep-size, --pp-size, --nnodes, --node-rank, --dist-init-addr,
  --disaggregation-mode, --max-running-requests, --chunked-prefill-size, --context-length,
  --kv-cache-dtype, --mem-fraction-static.
Kubernetes expands $(VAR) in args from the container's environment (MOE_NODE_RANK, MOE_LEADER_ADDRESS).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..api import MoEDeploymentSpec, RoleSpec
from ..capacity.layout import DEFAULT_PREFILL_BATCH_TOKENS

DIST_PORT = 29500
DP_RPC_PORT = 13345


@dataclass(frozen=True)
class PodPlace:
    """Where one pod sits in its replica group."""

    role: str
    stage: int
    shard: int
    node_rank: int  # 0 .. pods per replica - 1; rank 0 is the leader
    nnodes: int  # pods per replica
    gpus_per_pod: int


def _kv_dtype(spec: MoEDeploymentSpec, engine: str) -> str:
    kv = spec.model.kv_cache_dtype or "bf16"
    if kv == "bf16":
        return "auto"
    return "fp8_e4m3" if engine == "sglang" and kv == "fp8" else str(kv)


def _common_limits(spec: MoEDeploymentSpec, role: RoleSpec, role_name: str) -> tuple[int, int]:
    """Longest sequence (max model length) and tokens per forward pass, as the capacity model sized them."""
    max_len = spec.workload.input_tokens.max + spec.workload.output_tokens.max
    default_batch = role.max_concurrent_sequences if role_name == "decode" else DEFAULT_PREFILL_BATCH_TOKENS
    return max_len, role.max_batch_tokens or default_batch


def vllm_args(spec: MoEDeploymentSpec, model: str, role: RoleSpec, place: PodPlace) -> list[str]:
    p = role.parallelism
    max_len, batch = _common_limits(spec, role, place.role)
    args = ["vllm", "serve", model, "--host", "0.0.0.0", "--port", str(spec.engine.port),
            "--tensor-parallel-size", str(p.tensor), "--pipeline-parallel-size", str(p.pipeline),
            "--max-num-seqs", str(role.max_concurrent_sequences), "--max-num-batched-tokens", str(batch),
            "--max-model-len", str(max_len), "--kv-cache-dtype", _kv_dtype(spec, "vllm"),
            "--gpu-memory-utilization", f"{spec.slo.max_memory_utilization_percent / 100:.2f}"]
    if p.data > 1:
        args += ["--data-parallel-size", str(p.data)]
    if p.expert > 1:
        args.append("--enable-expert-parallel")
    if place.role in ("prefill", "decode"):
        args += ["--kv-transfer-config", json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"}, separators=(",", ":"))]
    if place.nnodes > 1:
        ranks_per_pod = place.gpus_per_pod // (p.tensor * p.sequence) if p.pipeline == 1 else 0
        if ranks_per_pod >= 1 and p.data > 1:
            args += ["--data-parallel-size-local", str(ranks_per_pod), "--data-parallel-address", "$(MOE_LEADER_ADDRESS)",
                     "--data-parallel-rpc-port", str(DP_RPC_PORT), "--data-parallel-start-rank", str(place.node_rank * ranks_per_pod)]
        else:
            args += ["--distributed-executor-backend", "mp", "--nnodes", str(place.nnodes), "--node-rank", "$(MOE_NODE_RANK)",
                     "--master-addr", "$(MOE_LEADER_ADDRESS)", "--master-port", str(DIST_PORT)]
        if place.node_rank > 0:
            args.append("--headless")
    return args


def sglang_args(spec: MoEDeploymentSpec, model: str, role: RoleSpec, place: PodPlace) -> list[str]:
    p = role.parallelism
    max_len, batch = _common_limits(spec, role, place.role)
    stage_gpus = p.tensor * p.data * p.sequence
    args = ["python3", "-m", "sglang.launch_server", "--model-path", model, "--host", "0.0.0.0", "--port", str(spec.engine.port),
            "--tp", str(stage_gpus), "--max-running-requests", str(role.max_concurrent_sequences),
            "--chunked-prefill-size", str(batch), "--context-length", str(max_len),
            "--kv-cache-dtype", _kv_dtype(spec, "sglang"),
            "--mem-fraction-static", f"{spec.slo.max_memory_utilization_percent / 100:.2f}", "--enable-metrics"]
    if p.pipeline > 1:
        args += ["--pp-size", str(p.pipeline)]
    if p.data > 1:
        args += ["--dp", str(p.data), "--enable-dp-attention"]
    if p.expert > 1:
        args += ["--ep-size", str(p.expert)]
    if p.redundant_experts:
        args += ["--enable-eplb", "--ep-num-redundant-experts", str(p.redundant_experts)]
    if place.role in ("prefill", "decode"):
        args += ["--disaggregation-mode", place.role]
    if place.nnodes > 1:
        args += ["--nnodes", str(place.nnodes), "--node-rank", "$(MOE_NODE_RANK)",
                 "--dist-init-addr", f"$(MOE_LEADER_ADDRESS):{DIST_PORT}"]
    return args


def engine_args(spec: MoEDeploymentSpec, model: str, role: RoleSpec, place: PodPlace) -> list[str]:
    """The full command of the engine container, user extraArgs last."""
    build = sglang_args if spec.engine.kind == "sglang" else vllm_args
    return build(spec, model, role, place) + list(spec.engine.extra_args)
