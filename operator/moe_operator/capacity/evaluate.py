"""Evaluate a MoEDeployment spec: layout, memory, performance and verdict for every role. Pure.

`evaluate(spec)` is the one entry point the CLI, the admission webhook and the reconciler call.
It raises `CatalogError` for specs that name unknown catalog entries or leave the model
incomplete; every other problem is a finding in the report.
"""

from __future__ import annotations

from ..api import MoEDeploymentSpec, RoleSpec
from . import bounds, verdict
from .catalog import resolve_efficiency, resolve_gpu, resolve_model
from .communication import Links, kv_transfer_seconds, link_name
from .compute import decode_mean_context_tokens, model_flops_per_token
from .findings import Finding
from .layout import RoleLayout, check_parallelism, role_layout
from .memory import kv_cache_bytes_per_token, max_sequences_that_fit, stage_memory
from .parameters import param_totals
from .performance import (
    aggregated_seconds_per_request,
    arrival_rate_per_second,
    communication_fraction,
    decode_performance,
    md1_waiting_seconds,
    prefill_performance,
    ttft_seconds,
)
from .placement import expert_instances_per_gpu, experts_per_gpu_per_layer
from .report import CapacityReport, ModelSummary, RoleReport, StageReport
from .types import GPU, Efficiency, ModelShape


def _sequence_tokens(spec: MoEDeploymentSpec, role: str) -> int:
    """Longest sequence a role holds KV for: the prompt for prefill, prompt + output otherwise."""
    w = spec.workload
    return w.input_tokens.max if role == "prefill" else w.input_tokens.max + w.output_tokens.max


def _links(layout: RoleLayout) -> dict[str, str]:
    gpn = layout.gpus_per_node
    return {
        "tensor": link_name(layout.tensor, gpn) if layout.tensor > 1 else "none",
        "expert": link_name(layout.gpus_per_stage, gpn) if layout.expert > 1 else "none",
        "pipeline": link_name(layout.gpus_per_replica, gpn) if layout.pipeline > 1 else "none",
    }


def _stage_reports(m: ModelShape, layout: RoleLayout, eff: Efficiency, gpu: GPU, limit_bytes: float,
                   sequence_tokens: int) -> tuple[StageReport, ...]:
    out = []
    for s in layout.stages:
        mem = stage_memory(m, layout, s, eff, layout.max_concurrent_sequences, sequence_tokens)
        out.append(StageReport(
            index=s.index, first_layer=s.first_layer, layers=s.layers, dense_layers=s.dense_layers, moe_layers=s.moe_layers,
            gpus=s.gpus, pods=s.pods, gpus_per_pod=s.gpus_per_pod,
            experts_per_gpu_per_layer=experts_per_gpu_per_layer(m, layout),
            expert_instances_per_gpu=expert_instances_per_gpu(m, layout, s),
            memory=mem, memory_utilization_percent=100 * mem.total_bytes / gpu.memory_bytes,
            max_concurrent_sequences_at_max_length=max_sequences_that_fit(m, layout, s, mem, limit_bytes, sequence_tokens),
        ))
    return tuple(out)


def _role_report(spec: MoEDeploymentSpec, m: ModelShape, gpu: GPU, eff: Efficiency, layout: RoleLayout,
                 limit_bytes: float) -> RoleReport:
    w, role = spec.workload, layout.role
    n, o = w.input_tokens.mean, w.output_tokens.mean
    stages = _stage_reports(m, layout, eff, gpu, limit_bytes, _sequence_tokens(spec, role))
    target = spec.slo.min_tokens_per_second_per_gpu
    ttft = tpot = None
    prefill_steps = decode_steps = ()
    prefill_bound = bounds.prefill_tokens_per_second_per_gpu_bound(m, gpu, w.input_tokens.min)
    decode_bound = bounds.decode_tokens_per_second_per_gpu_bound(m, gpu, w.input_tokens.min)
    replicas = max(layout.replicas, 1)
    if role == "prefill":
        p = prefill_performance(m, gpu, eff, layout, n)
        per_replica, kind, bound, prefill_steps = p.tokens_per_second_per_replica, "prompt", prefill_bound, p.steps
        rate = arrival_rate_per_second(w, target, layout.gpus, n)
        transfer = kv_transfer_seconds(bounds.kv_cache_bytes_for_context(m, n), layout.gpus_per_replica, Links.of(gpu, eff))
        ttft = ttft_seconds(p.latency_seconds, n / per_replica, (rate or 0.0) / replicas, transfer)
        comm = communication_fraction(p.steps)
    elif role == "decode":
        d = decode_performance(m, gpu, eff, layout, n, o)
        per_replica, kind, bound, decode_steps = d.tokens_per_second_per_replica, "generated", decode_bound, d.steps
        rate = arrival_rate_per_second(w, target, layout.gpus, o)
        tpot = d.tpot_seconds
        comm = communication_fraction(d.steps)
    else:
        p = prefill_performance(m, gpu, eff, layout, n)
        d = decode_performance(m, gpu, eff, layout, n, o)
        prefill_steps, decode_steps = p.steps, d.steps
        busy = aggregated_seconds_per_request(p, d, n, o)
        per_replica, kind, bound = (n + o) / busy, "prompt+generated", max(prefill_bound, decode_bound)
        rate = arrival_rate_per_second(w, target, layout.gpus, n + o)
        rate_per_replica = (rate or 0.0) / replicas
        ttft = p.latency_seconds + md1_waiting_seconds(busy, rate_per_replica)
        prefill_share = min(rate_per_replica * n / p.tokens_per_second_per_replica, 1.0)
        tpot = d.tpot_seconds + prefill_share * max(s.total_seconds for s in p.steps)
        comm = communication_fraction(p.steps + d.steps)
    return RoleReport(
        role=role, replicas=layout.replicas,
        parallelism={"tensor": layout.tensor, "pipeline": layout.pipeline, "data": layout.data,
                     "sequence": layout.sequence, "expert": layout.expert, "expertTensor": layout.expert_tensor},
        gpus_per_replica=layout.gpus_per_replica, gpus=layout.gpus, pods_per_replica=sum(s.pods for s in layout.stages),
        max_concurrent_sequences=layout.max_concurrent_sequences,
        max_concurrent_sequences_at_max_length=min(s.max_concurrent_sequences_at_max_length for s in stages),
        tokens_kind=kind, tokens_per_second_per_replica=per_replica,
        tokens_per_second_per_gpu=per_replica / layout.gpus_per_replica,
        tokens_per_second=per_replica * layout.replicas, tokens_per_second_per_gpu_bound=bound,
        ttft_seconds=ttft, tpot_seconds=tpot, arrival_rate_per_second=rate, communication_fraction=comm,
        links=_links(layout), stages=stages, prefill_steps=prefill_steps, decode_steps=decode_steps,
    )


def _role_findings(spec: MoEDeploymentSpec, m: ModelShape, gpu: GPU, report: RoleReport, layout: RoleLayout,
                   limit_bytes: float) -> list[Finding]:
    slo, w, max_gpus = spec.slo, spec.workload, spec.hardware.max_gpus
    limit_text = f"{verdict.gib(limit_bytes)} ({slo.max_memory_utilization_percent}% of {verdict.gib(gpu.memory_bytes)} on {gpu.name})"
    out = verdict.memory_findings(report, limit_bytes, limit_text, _sequence_tokens(spec, report.role))
    out += verdict.throughput_findings(report, slo.min_tokens_per_second_per_gpu, gpu.name)
    ttft_bound = bounds.ttft_seconds_bound(m, gpu, w.input_tokens.min, max_gpus) if max_gpus else None
    tpot_bound = bounds.tpot_seconds_bound(m, gpu, w.input_tokens.min, max_gpus) if max_gpus else None
    out += verdict.latency_finding(report, "ttft", report.ttft_seconds, slo.ttft_milliseconds, ttft_bound, max_gpus)
    out += verdict.latency_finding(report, "tpot", report.tpot_seconds, slo.tpot_milliseconds, tpot_bound, max_gpus)
    return out + verdict.topology_warnings(layout)


def _gpus(spec: RoleSpec) -> tuple[int, int, int]:
    per = spec.parallelism.gpus_per_replica
    return spec.replicas, per, spec.replicas * per


def evaluate(spec: MoEDeploymentSpec, name: str = "unnamed") -> CapacityReport:
    """The capacity report for a spec (pure; raises CatalogError for unknown catalog names)."""
    gpu, m, eff = resolve_gpu(spec.hardware), resolve_model(spec.model), resolve_efficiency(spec.efficiency)
    limit_bytes = gpu.memory_bytes * spec.slo.max_memory_utilization_percent / 100
    findings: list[Finding] = []
    roles: dict[str, RoleReport] = {}
    for role_name, role_spec in spec.roles.items():
        invalid = check_parallelism(m, role_name, role_spec, spec.hardware.gpus_per_node)
        findings += invalid
        if invalid:
            continue
        layout = role_layout(m, role_name, role_spec, spec.hardware.gpus_per_node)
        roles[role_name] = _role_report(spec, m, gpu, eff, layout, limit_bytes)
        findings += _role_findings(spec, m, gpu, roles[role_name], layout, limit_bytes)
    gpu_counts = {n: _gpus(s) for n, s in spec.roles.items()}
    findings += verdict.budget_findings(gpu_counts, spec.hardware.max_gpus)
    if "prefill" in roles and "decode" in roles:
        findings += verdict.balance_warning(roles["prefill"], roles["decode"], spec.workload.input_tokens.mean,
                                            spec.workload.output_tokens.mean)
    totals = param_totals(m)
    context = decode_mean_context_tokens(spec.workload.input_tokens.mean, spec.workload.output_tokens.mean)
    summary = ModelSummary(
        name=m.name, total_params=totals.total_params, active_params=totals.active_params,
        active_matmul_params=totals.active_matmul_params,
        kv_cache_bytes_per_token=kv_cache_bytes_per_token(m),
        flops_per_token=model_flops_per_token(m, context).total_flops,
        linear_flops_per_token=2.0 * totals.active_matmul_params,
        weight_dtype=m.weight_dtype, expert_weight_dtype=m.expert_weight_dtype, kv_cache_dtype=m.kv_cache_dtype,
    )
    return CapacityReport(
        name=name, gpu=gpu.name, gpu_memory_bytes=gpu.memory_bytes, memory_limit_bytes=limit_bytes,
        gpus_per_node=spec.hardware.gpus_per_node, max_gpus=spec.hardware.max_gpus,
        total_gpus=sum(g for _, _, g in gpu_counts.values()), model=summary,
        efficiency={"compute": eff.compute, "memoryBandwidth": eff.memory_bandwidth, "nvlink": eff.nvlink,
                    "network": eff.network, "runtimeOverheadBytes": float(eff.runtime_overhead_bytes)},
        roles=roles, findings=tuple(findings),
    )

