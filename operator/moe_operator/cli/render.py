"""Human-readable capacity report (rich). Every number says per GPU, per replica or per role."""

from __future__ import annotations

from math import isfinite

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..capacity.report import CapacityReport, RoleReport
from ..capacity.types import GIB_BYTES


def _gib(n: float) -> str:
    return f"{n / GIB_BYTES:,.1f}"


def _ms(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:,.1f}" if isfinite(s) else "unbounded"


def _experts(count: float, expert_tensor: int) -> str:
    return f"{count:g}" if expert_tensor == 1 else f"{count:g} (1/{expert_tensor} slices)"


def _header(r: CapacityReport) -> Text:
    m = r.model
    verdict = Text("FEASIBLE", style="bold green") if r.feasible else Text("INFEASIBLE", style="bold red")
    t = Text.assemble(f"{r.name}: ", verdict, "\n")
    t.append(f"model {m.name}: {m.total_params / 1e9:,.1f}B params, {m.active_params / 1e9:,.1f}B active per token; "
             f"weights {m.weight_dtype} (experts {m.expert_weight_dtype}), KV cache {m.kv_cache_dtype} "
             f"{m.kv_cache_bytes_per_token / 1024:,.1f} KiB per token (all layers); "
             f"{m.flops_per_token / 1e9:,.1f} GFLOP per token at the mean decode context\n")
    budget = f" of a {r.max_gpus}-GPU budget" if r.max_gpus else ""
    t.append(f"hardware {r.gpu}: {_gib(r.gpu_memory_bytes)} GiB per GPU, plan limit {_gib(r.memory_limit_bytes)} GiB per GPU, "
             f"{r.gpus_per_node} GPUs per node; plan uses {r.total_gpus} GPUs{budget}\n")
    e = r.efficiency
    t.append(f"efficiency assumed: {e['compute']:.0%} of peak FLOP/s, {e['memoryBandwidth']:.0%} of HBM bandwidth, "
             f"{e['nvlink']:.0%} of NVLink, {e['network']:.0%} of network; runtime {e['runtimeOverheadBytes'] / GIB_BYTES:.1f} GiB per GPU",
             style="dim")
    return t


def _roles_table(r: CapacityReport) -> Table:
    t = Table(title="Roles (throughput per GPU, per replica and per role as labelled)", title_justify="left")
    t.add_column("")
    for name in r.roles:
        t.add_column(name, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("replicas", [str(x.replicas) for x in r.roles.values()]),
        ("GPUs per replica / role", [f"{x.gpus_per_replica} / {x.gpus}" for x in r.roles.values()]),
        ("pods per replica", [str(x.pods_per_replica) for x in r.roles.values()]),
        ("tensor/pipeline/data/sequence/expert", [
            "/".join(str(x.parallelism[k]) for k in ("tensor", "pipeline", "data", "sequence", "expert")) for x in r.roles.values()]),
        ("tokens counted", [x.tokens_kind for x in r.roles.values()]),
        ("tokens/s per GPU", [f"{x.tokens_per_second_per_gpu:,.0f}" for x in r.roles.values()]),
        ("tokens/s per replica", [f"{x.tokens_per_second_per_replica:,.0f}" for x in r.roles.values()]),
        ("tokens/s whole role", [f"{x.tokens_per_second:,.0f}" for x in r.roles.values()]),
        ("bound: tokens/s per GPU", [f"{x.tokens_per_second_per_gpu_bound:,.0f}" for x in r.roles.values()]),
        ("TTFT ms", [_ms(x.ttft_seconds) for x in r.roles.values()]),
        ("TPOT ms", [_ms(x.tpot_seconds) for x in r.roles.values()]),
        ("communication share of step", [f"{x.communication_fraction:.0%}" for x in r.roles.values()]),
        ("links tensor / expert / pipeline", [" / ".join(x.links.values()) for x in r.roles.values()]),
        ("sequences per replica: planned", [str(x.max_concurrent_sequences) for x in r.roles.values()]),
        ("sequences per replica: fit at max length", [str(x.max_concurrent_sequences_at_max_length) for x in r.roles.values()]),
    ]
    for label, values in rows:
        t.add_row(label, *values)
    return t


def _stages_table(name: str, role: RoleReport) -> Table:
    t = Table(title=f"{name}: per pipeline stage, memory per GPU in GiB", title_justify="left")
    t.add_column("")
    for s in role.stages:
        t.add_column(f"stage {s.index}", justify="right")
    st = role.stages
    rows: list[tuple[str, list[str]]] = [
        ("layers", [f"{s.first_layer}-{s.first_layer + s.layers - 1} ({s.layers})" for s in st]),
        ("GPUs per stage / pods", [f"{s.gpus} / {s.pods}" for s in st]),
        ("routed experts per GPU per layer", [_experts(s.experts_per_gpu_per_layer, role.parallelism["expertTensor"]) for s in st]),
        ("expert instances per GPU (stage)", [f"{s.expert_instances_per_gpu:g}" for s in st]),
        ("weights", [_gib(s.memory.weights_bytes) for s in st]),
        ("KV cache", [_gib(s.memory.kv_cache_bytes) for s in st]),
        ("activations", [_gib(s.memory.activations_bytes) for s in st]),
        ("communication buffers", [_gib(s.memory.communication_bytes) for s in st]),
        ("runtime", [_gib(s.memory.runtime_bytes) for s in st]),
        ("total", [_gib(s.memory.total_bytes) for s in st]),
        ("% of GPU memory", [f"{s.memory_utilization_percent:.0f}%" for s in st]),
    ]
    for label, values in rows:
        t.add_row(label, *values)
    return t


def _findings(r: CapacityReport) -> Group:
    lines = []
    for f in r.violations:
        lines.append(Text.assemble(("VIOLATION ", "bold red"), (f.code.value, "bold"), f": {f.message}"))
    for f in r.warnings:
        lines.append(Text.assemble(("warning ", "yellow"), (f.code.value, "bold"), f": {f.message}"))
    return Group(*lines) if lines else Group(Text("no violations, no warnings", style="green"))


def print_report(report: CapacityReport, console: Console) -> None:
    console.print(Panel(_header(report), expand=False))
    console.print(_roles_table(report))
    for name, role in report.roles.items():
        console.print(_stages_table(name, role))
    console.print(_findings(report))
