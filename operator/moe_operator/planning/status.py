"""The MoEDeployment status from the capacity report and the observed groups. Pure.

Conditions keep their lastTransitionTime while their status is unchanged, so an idle deployment's
status is stable and the operator writes nothing.
"""

from __future__ import annotations

from math import isfinite
from typing import Any

from ..api import MoEDeploymentSpec
from ..capacity.report import CapacityReport
from .lifecycle import Actions, GroupView


def _condition(type_: str, ok: bool, reason: str, message: str, generation: int, previous: dict[str, dict], now: str) -> dict:
    status = "True" if ok else "False"
    old = previous.get(type_)
    changed = old is None or old.get("status") != status
    return {"type": type_, "status": status, "reason": reason, "message": message[:32000],
            "lastTransitionTime": now if changed else old.get("lastTransitionTime", now), "observedGeneration": generation}


def capacity_summary(report: CapacityReport) -> dict[str, Any]:
    def ms(v: float | None) -> int | None:
        return round(v * 1e3) if v is not None and isfinite(v) else None

    peak = max((s.memory_utilization_percent for r in report.roles.values() for s in r.stages), default=0.0)
    return {
        "feasible": report.feasible, "totalGPUs": report.total_gpus,
        "tokensPerSecondPerGPU": {n: round(r.tokens_per_second_per_gpu) for n, r in report.roles.items()},
        "ttftMilliseconds": {n: v for n, r in report.roles.items() if (v := ms(r.ttft_seconds)) is not None},
        "tpotMilliseconds": {n: v for n, r in report.roles.items() if (v := ms(r.tpot_seconds)) is not None},
        "peakMemoryUtilizationPercent": round(peak),
    }


def _findings(items) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.as_dict().items() if v is not None} for f in items][:64]


def compute_status(spec: MoEDeploymentSpec, report: CapacityReport, blocked: bool, views: list[GroupView],
                   actions: Actions | None, restarts: dict[str, int], generation: int, previous: dict[str, Any],
                   now: str, scaling: dict[str, Any] | None = None, scaling_limited: str = "",
                   expert_imbalance: str | None = None) -> dict[str, Any]:
    """Status for the current spec. `blocked`: the verdict forbids pods (infeasible under Enforce)."""
    prev_conditions = {c["type"]: c for c in previous.get("conditions", []) if "type" in c}
    roles: dict[str, dict[str, int]] = {}
    printable: dict[str, str] = {}
    for role, role_spec in spec.roles.items():
        mine = [v for v in views if v.plan is not None and v.plan.role == role]
        ready = sum(1 for v in mine if v.ready)
        per_group = mine[0].plan.gpus if mine else 0
        roles[role] = {"desiredReplicas": role_spec.replicas, "readyReplicas": ready,
                       "gpus": sum(p.gpus for v in views for p in v.pods if p.role == role),
                       "desiredGPUs": role_spec.replicas * per_group, "restarts": restarts.get(role, 0)}
        printable[role] = f"{ready}/{role_spec.replicas}"
    desired_groups = [v for v in views if v.plan is not None]
    all_ready = bool(desired_groups) and all(v.ready for v in desired_groups) and not any(v.plan is None for v in views)
    broken = [v for v in desired_groups if v.broken_reason()]
    waiting = actions.waiting if actions else ()
    budget_blocked = actions.blocked_by_budget if actions else ()
    any_pods = any(v.pods for v in views)
    if blocked:
        phase = "Infeasible"
    elif all_ready or (not desired_groups and not any_pods):
        phase = "Ready"
    elif broken or waiting:
        phase = "Degraded"
    elif not any_pods:
        phase = "Pending"
    else:
        phase = "Deploying"

    verdict = "; ".join(f"{f.code.value}: {f.message}" for f in report.violations) or "the capacity model found no violation"
    validated_reason = "Feasible" if report.feasible else ("Infeasible" if blocked else "InfeasibleWarnMode")
    not_ready = [v.name for v in desired_groups if not v.ready]
    degraded_msg = "; ".join([f"{v.name}: {v.broken_reason()}" for v in broken] +
                             [f"{g}: restarting in {s:.0f}s (backoff)" for g, s in waiting] +
                             [f"{g}: not created, hardware.maxGPUs reached" for g in budget_blocked])
    conditions = [
        _condition("Validated", report.feasible, validated_reason, verdict, generation, prev_conditions, now),
        _condition("Ready", phase == "Ready" and not blocked, "AllGroupsReady" if phase == "Ready" else "GroupsNotReady",
                   "every replica group is ready" if phase == "Ready" else f"not ready: {', '.join(not_ready[:20]) or 'none created'}",
                   generation, prev_conditions, now),
        _condition("Progressing", phase in ("Deploying", "Pending"), "Deploying" if phase in ("Deploying", "Pending") else "Stable",
                   "replica groups are being created or rolled" if phase in ("Deploying", "Pending") else "no change in progress",
                   generation, prev_conditions, now),
        _condition("Degraded", bool(broken or waiting or budget_blocked),
                   "GroupFailure" if broken or waiting else ("GPUBudget" if budget_blocked else "Healthy"),
                   degraded_msg or "no group is failing", generation, prev_conditions, now),
    ]
    if scaling is not None:
        conditions.append(_condition("ScalingLimited", bool(scaling_limited), "GPUBudget" if scaling_limited else "WithinBudget",
                                     scaling_limited or "the planner's choices fit hardware.maxGPUs", generation, prev_conditions, now))
    if expert_imbalance is not None:
        conditions.append(_condition("ExpertImbalance", bool(expert_imbalance), "CVAboveSLO" if expert_imbalance else "Balanced",
                                     expert_imbalance or "expert load CV within slo.maxExpertLoadCVPercent (or no expert counters yet)",
                                     generation, prev_conditions, now))
    status: dict[str, Any] = {
        "phase": phase, "observedGeneration": generation, "conditions": conditions, "feasible": report.feasible,
        "gpus": sum(p.gpus for v in views for p in v.pods), "roles": roles,
        "capacity": capacity_summary(report), "violations": _findings(report.violations), "warnings": _findings(report.warnings),
    }
    for role in ("aggregated", "prefill", "decode"):
        status[role] = printable.get(role)
    if scaling is not None:
        status["scaling"] = scaling
    return status


def without_volatile(status: dict[str, Any]) -> dict[str, Any]:
    """The status minus timestamps, for deciding whether anything changed."""
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []]
    return out
