"""From a spec to the scaling planner's inputs, and its decisions to events and status. Pure."""

from __future__ import annotations

from typing import Any

from ..api import MoEDeploymentSpec
from ..capacity.slo_capacity import role_capacity_at_slo
from .scaling import PlannerConfig, PlannerResult, RoleDecision, RolePolicy

UNITS = {"prefill": "prompt tokens/s", "decode": "generated tokens/s", "aggregated": "requests/s"}


def planner_roles(spec: MoEDeploymentSpec) -> list[str]:
    return [role for role, rs in spec.roles.items() if rs.autoscaling.mode == "Planner"]


def planner_config(spec: MoEDeploymentSpec) -> PlannerConfig:
    a = spec.autoscaling
    return PlannerConfig(headroom=a.headroom_percent / 100, scale_up_window_seconds=a.scale_up_window_seconds,
                         scale_down_window_seconds=a.scale_down_window_seconds, stale_after_seconds=a.stale_after_seconds)


def planner_policies(spec: MoEDeploymentSpec, current: dict[str, int]) -> list[RolePolicy]:
    """Policies of the Planner-mode roles, with what one replica sustains at the SLO."""
    out = []
    for role, rs in spec.roles.items():
        if rs.autoscaling.mode != "Planner":
            continue
        cap = role_capacity_at_slo(spec, role)
        if cap is None:
            continue
        out.append(RolePolicy(
            role=role, current_replicas=current[role], min_replicas=rs.autoscaling.min_replicas, max_replicas=rs.autoscaling.max_replicas,
            gpus_per_replica=cap.gpus_per_replica, capacity=cap, mean_prompt_tokens=spec.workload.input_tokens.mean,
            mean_output_tokens=spec.workload.output_tokens.mean,
            ttft_target_seconds=spec.slo.ttft_milliseconds / 1e3 if spec.slo.ttft_milliseconds else None,
            tpot_target_seconds=spec.slo.tpot_milliseconds / 1e3 if spec.slo.tpot_milliseconds else None))
    return out


def planner_budget(spec: MoEDeploymentSpec, replicas: dict[str, int], gpus_per_replica: dict[str, int]) -> int | None:
    """GPUs the Planner roles may use: maxGPUs minus what the other roles hold."""
    if spec.hardware.max_gpus is None:
        return None
    others = sum(replicas[r] * gpus_per_replica[r] for r, rs in spec.roles.items() if rs.autoscaling.mode != "Planner")
    return max(0, spec.hardware.max_gpus - others)


def decision_message(d: RoleDecision) -> str:
    unit = UNITS[d.role]
    numbers = (f"demand {d.demand:,.1f} {unit} incl. headroom, {d.capacity_per_replica:,.1f} per replica at the SLO"
               if d.demand is not None else "no load figures")
    limited = " (limited by hardware.maxGPUs)" if d.limited_by_budget else ""
    return f"{d.role}: {d.current} -> {d.desired} replica groups{limited}; needed {d.needed}; {numbers}; reason {d.reason}"


def scaling_status(result: PlannerResult) -> dict[str, Any]:
    """Stable status fields (no fluctuating numbers, so an unchanged decision writes nothing)."""
    return {role: {"desiredReplicas": d.desired, "reason": d.reason.split(":")[0].split(" (")[0],
                   "limitedByBudget": d.limited_by_budget} for role, d in result.decisions.items()}
