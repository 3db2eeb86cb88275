"""Findings: turn computed numbers into violations and warnings a person can act on. Pure."""

from __future__ import annotations

from math import ceil, isfinite

from .findings import Code, Finding
from .layout import RoleLayout
from .report import RoleReport
from .types import GIB_BYTES

IMBALANCE_TOLERANCE = 1.25  # warn when one side of a disaggregated pair can serve 25% more than the other


def gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB_BYTES:.1f} GiB"


def ms(seconds: float | None) -> str:
    if seconds is None or not isfinite(seconds):
        return "unbounded (the queue never drains at this load)"
    return f"{seconds * 1e3:.1f} ms"


def memory_findings(role: RoleReport, limit_bytes: float, limit_text: str, sequence_tokens: int) -> list[Finding]:
    out = []
    for s in role.stages:
        mem = s.memory
        if mem.total_bytes <= limit_bytes:
            continue
        parts = (f"weights {gib(mem.weights_bytes)}, KV cache {gib(mem.kv_cache_bytes)}, activations {gib(mem.activations_bytes)}, "
                 f"communication {gib(mem.communication_bytes)}, runtime {gib(mem.runtime_bytes)}")
        if mem.total_bytes - mem.kv_cache_bytes > limit_bytes:
            fix = "the weights and fixed buffers alone do not fit: raise expert, tensor or pipeline parallelism, or use a smaller weight dtype"
        else:
            fix = (f"at {sequence_tokens} tokens per sequence at most {s.max_concurrent_sequences_at_max_length} concurrent sequences fit per replica: "
                   f"lower maxConcurrentSequences to that, or shard further (expert, tensor, pipeline, sequence) or use an FP8 KV cache")
        out.append(Finding(Code.MEMORY_EXCEEDED,
                           f"{role.role} stage {s.index} needs {gib(mem.total_bytes)} per GPU ({parts}) but the limit is {limit_text}; {fix}",
                           role.role, s.index))
    return out


def throughput_findings(role: RoleReport, target: int | None, gpu_name: str) -> list[Finding]:
    if target is None:
        return []
    kind = role.tokens_kind
    if target > role.tokens_per_second_per_gpu_bound:
        return [Finding(Code.PHYSICALLY_IMPOSSIBLE,
                        f"{role.role}: a target of {target:,} {kind} tokens/s per GPU exceeds what any plan can reach on {gpu_name}: "
                        f"at 100% of peak FLOP/s and HBM bandwidth, the shortest sequences and no communication, one GPU does at most "
                        f"{role.tokens_per_second_per_gpu_bound:,.0f} {kind} tokens/s; lower the target or choose a faster GPU",
                        role.role)]
    if role.tokens_per_second_per_gpu < target:
        return [Finding(Code.THROUGHPUT_BELOW_TARGET,
                        f"{role.role}: predicted {role.tokens_per_second_per_gpu:,.0f} {kind} tokens/s per GPU "
                        f"({role.tokens_per_second:,.0f} for the role's {role.gpus} GPUs), below the target of {target:,} per GPU; "
                        f"communication takes {role.communication_fraction:.0%} of step time; the favourable bound is "
                        f"{role.tokens_per_second_per_gpu_bound:,.0f} per GPU, so a plan with less communication (smaller tensor or expert groups, "
                        f"all-to-all inside a node) or larger batches may meet it; more replicas of the same plan do not raise the per-GPU rate",
                        role.role)]
    return []


def latency_finding(role: RoleReport, which: str, predicted: float | None, target_ms: int | None,
                    bound_seconds: float | None, max_gpus: int | None) -> list[Finding]:
    if target_ms is None or predicted is None:
        return []
    target = target_ms / 1e3
    label = "TTFT" if which == "ttft" else "TPOT"
    if bound_seconds is not None and target < bound_seconds:
        return [Finding(Code.PHYSICALLY_IMPOSSIBLE,
                        f"{role.role}: a {label} target of {target_ms} ms is below {ms(bound_seconds)}, the least any plan can reach "
                        f"with all {max_gpus} GPUs of the budget at 100% of peak, the shortest sequences and no communication",
                        role.role)]
    if predicted > target:
        code = Code.TTFT_EXCEEDED if which == "ttft" else Code.TPOT_EXCEEDED
        if which == "ttft":
            hint = "add replicas (less queueing), raise tensor parallelism (shorter prefill) or lower the load"
        else:
            hint = "lower maxConcurrentSequences (smaller batches), raise expert or tensor parallelism, or keep the expert all-to-all inside a node"
        return [Finding(code, f"{role.role}: predicted {label} {ms(predicted)} exceeds the {target_ms} ms target; {hint}", role.role)]
    return []


def topology_warnings(layout: RoleLayout) -> list[Finding]:
    out = []
    if layout.tensor > layout.gpus_per_node:
        out.append(Finding(Code.TENSOR_GROUP_SPANS_NODES,
                           f"{layout.role}: tensor={layout.tensor} exceeds {layout.gpus_per_node} GPUs per node, so every tensor all-reduce "
                           f"crosses the network; keep tensor <= {layout.gpus_per_node} and use data/expert parallelism across nodes",
                           layout.role))
    if layout.expert > 1 and layout.gpus_per_stage > layout.gpus_per_node:
        out.append(Finding(Code.EXPERT_ALL_TO_ALL_CROSSES_NETWORK,
                           f"{layout.role}: the expert group spans {layout.gpus_per_stage // layout.gpus_per_node} nodes per stage, so most "
                           f"dispatch/combine traffic crosses the network (modelled at its bandwidth, not as a flat overhead)",
                           layout.role))
    counts = {s.layers for s in layout.stages}
    if len(counts) > 1:
        out.append(Finding(Code.UNEVEN_PIPELINE,
                           f"{layout.role}: layers split unevenly over stages ({', '.join(str(s.layers) for s in layout.stages)}); "
                           f"the slowest stage sets the pace",
                           layout.role))
    return out


def budget_findings(roles: dict[str, tuple[int, int, int]], max_gpus: int | None) -> list[Finding]:
    """roles: name -> (replicas, gpus per replica, gpus)."""
    total = sum(g for _, _, g in roles.values())
    if max_gpus is None or total <= max_gpus:
        return []
    parts = ", ".join(f"{n} {r} x {per} = {g}" for n, (r, per, g) in roles.items())
    over = total - max_gpus
    fixes = "; ".join(f"{n} needs {ceil(over / per)} fewer replicas" for n, (r, per, _) in roles.items() if per and r >= ceil(over / per))
    return [Finding(Code.GPU_BUDGET_EXCEEDED,
                    f"the plan needs {total} GPUs ({parts}) but hardware.maxGPUs is {max_gpus}, {over} over"
                    + (f"; to fit: {fixes}" if fixes else "; reduce replicas or parallel degrees"))]


def balance_warning(prefill: RoleReport, decode: RoleReport, mean_prompt_tokens: int, mean_output_tokens: int) -> list[Finding]:
    """Can the prefill pool feed the decode pool at the workload's input:output ratio?"""
    prefill_rps = prefill.tokens_per_second / mean_prompt_tokens
    decode_rps = decode.tokens_per_second / mean_output_tokens
    if prefill_rps <= 0 or decode_rps <= 0:
        return []
    ratio = prefill_rps / decode_rps
    if 1 / IMBALANCE_TOLERANCE <= ratio <= IMBALANCE_TOLERANCE:
        return []
    if ratio < 1:
        idle, want = "decode", f"about {ceil(prefill.replicas / ratio)} prefill replicas"
    else:
        idle, want = "prefill", f"about {ceil(decode.replicas * ratio)} decode replicas"
    return [Finding(Code.ROLE_IMBALANCE,
                    f"prefill can serve {prefill_rps:,.1f} requests/s and decode {decode_rps:,.1f} at {mean_prompt_tokens} prompt / "
                    f"{mean_output_tokens} output tokens, so {idle} idles; balance with {want}")]
