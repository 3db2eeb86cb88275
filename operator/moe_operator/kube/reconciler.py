"""One reconcile of one MoEDeployment: decide on an immutable snapshot, then write the difference.

parse spec -> capacity verdict -> desired objects (planning) -> list what exists -> plan actions
(planning) -> write only what differs -> status (only if it changed) -> events for what was done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from ..api import MoEDeploymentSpec
from ..api.errors import problems
from ..capacity.catalog import CatalogError
from ..capacity.evaluate import evaluate
from ..planning.desired import DesiredState, Owner, desired_state
from ..planning.lifecycle import Actions, GroupHistory, group_views, plan_actions
from ..planning.autoscale import (
    decision_message,
    planner_budget,
    planner_config,
    planner_policies,
    planner_roles,
    scaling_status,
)
from ..planning.scalers import desired_scaler, effective_replicas, scaler_status, with_replicas
from ..planning.scaling import Recommendation, plan_replicas
from .metrics import OperatorMetrics
from .prometheus import PrometheusError, expert_load, observe_roles
from ..planning.status import compute_status, without_volatile
from . import objects as O
from .events import post_event

log = logging.getLogger("moe_operator.reconciler")
GROUP, VERSION, PLURAL = "moe.inference.io", "v1alpha1", "moedeployments"


@dataclass
class DeploymentMemory:
    """What the operator keeps between reconciles of one deployment (lost on restart, by design)."""

    history: dict[str, GroupHistory] = field(default_factory=dict)
    restarts_by_role: dict[str, int] = field(default_factory=dict)
    last_verdict: str | None = None
    last_blocked_by_budget: tuple[str, ...] = ()
    last_gang_problem: str | None = None
    planner_history: dict[str, tuple[Recommendation, ...]] = field(default_factory=dict)
    last_plan_seconds: float | None = None
    scaling: dict[str, Any] = field(default_factory=dict)
    scaling_limited: str = ""
    expert_imbalance: str = ""  # message while some layer's expert CV is above slo.maxExpertLoadCVPercent


@dataclass(frozen=True)
class Result:
    writes: int
    requeue_after_seconds: float | None
    phase: str | None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Reconciler:
    def __init__(self, api_client: client.ApiClient, default_prometheus_url: str | None = None,
                 metrics: OperatorMetrics | None = None) -> None:
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.default_prometheus_url = default_prometheus_url
        self.metrics = metrics

    def _patch_status(self, namespace: str, name: str, status: dict[str, Any], writes: O.Writes) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": status})
            writes()
        except ApiException as e:
            if e.status != 404:  # deleted meanwhile
                raise

    def _invalid(self, body: dict[str, Any], message: str, writes: O.Writes) -> Result:
        meta, previous = body["metadata"], body.get("status") or {}
        cond = {"type": "Validated", "status": "False", "reason": "InvalidSpec", "message": message[:32000],
                "observedGeneration": meta.get("generation", 0)}
        old = next((c for c in previous.get("conditions", []) if c.get("type") == "Validated"), {})
        cond["lastTransitionTime"] = old.get("lastTransitionTime") if old.get("reason") == "InvalidSpec" else now_iso()
        status = {"phase": "Infeasible", "observedGeneration": meta.get("generation", 0), "feasible": False, "conditions": [cond]}
        if without_volatile(status) != without_volatile({k: previous.get(k) for k in status}):
            self._patch_status(meta["namespace"], meta["name"], status, writes)
        return Result(writes.count, None, "Infeasible")

    def reconcile(self, body: dict[str, Any], memory: DeploymentMemory, now_seconds: float | None = None) -> Result:
        meta = body["metadata"]
        name, namespace, uid, generation = meta["name"], meta["namespace"], meta["uid"], meta.get("generation", 0)
        now_seconds = time.monotonic() if now_seconds is None else now_seconds
        writes = O.Writes()
        try:
            spec = MoEDeploymentSpec.model_validate(body.get("spec") or {})
            report = evaluate(spec, name)
        except ValidationError as err:
            return self._invalid(body, "; ".join(problems(err, "spec")), writes)
        except CatalogError as err:
            return self._invalid(body, str(err), writes)
        blocked = not report.feasible and spec.validation == "Enforce"
        owner = Owner(name, namespace, uid)
        if self.metrics:
            self.metrics.record_slo(namespace, name, spec.slo.ttft_milliseconds, spec.slo.tpot_milliseconds,
                                    spec.slo.max_expert_load_cv_percent)
        scalers = self._scalers(namespace, uid)
        planner_requeue = None
        if scalers is not None and not blocked:
            planner_requeue = self._observe(spec, owner, report, scalers, memory, now_seconds, writes)
        running = effective_replicas(spec, {r: s["spec"]["replicas"] for r, s in (scalers or {}).items()})
        spec = with_replicas(spec, running)
        if self.metrics:
            self.metrics.record_report(namespace, name, report, running)
        desired = DesiredState((), ()) if blocked else desired_state(spec, owner, report)
        existing = O.OwnedObjects(self.core, namespace, name, uid)
        pods = existing.observed_pods()
        verdict = "feasible" if report.feasible else "; ".join(f.code.value for f in report.violations)
        if verdict != memory.last_verdict:
            reason = "Validated" if report.feasible else ("Rejected" if blocked else "ValidatedWithViolations")
            text = "capacity model: plan is feasible" if report.feasible else \
                "capacity model: " + "; ".join(f"{f.code.value}: {f.message}" for f in report.violations)
            post_event(self.core, namespace, name, uid, reason, text, "Normal" if report.feasible else "Warning")
            writes()
            memory.last_verdict = verdict

        actions: Actions | None = None
        if not blocked:
            actions = plan_actions(desired, pods, memory.history, now_seconds, spec.hardware.max_gpus, spec.rollout.max_unavailable)
            memory.history = actions.history
            self._write(spec, owner, desired, existing, actions, memory, writes)
        views = group_views(desired, pods)
        if scalers is not None:
            self._sync_scalers(spec, owner, scalers, views, writes)
        status = compute_status(spec, report, blocked, views, actions, memory.restarts_by_role, generation,
                                body.get("status") or {}, now_iso(), memory.scaling if planner_roles(spec) else None,
                                memory.scaling_limited,
                                memory.expert_imbalance if spec.slo.max_expert_load_cv_percent else None)
        previous = {k: (body.get("status") or {}).get(k) for k in status}
        if without_volatile(status) != without_volatile(previous):
            self._patch_status(namespace, name, status, writes)
        requeue = min((r for r in (actions.requeue_after_seconds if actions else None, planner_requeue) if r is not None), default=None)
        if self.metrics:
            self.metrics.record_status(namespace, name, status)
            self.metrics.record_pods(namespace, name, [(p.metadata.labels.get("moe.inference.io/role", ""),
                                                        p.metadata.labels.get("moe.inference.io/stage", ""), p.metadata.name)
                                                       for p in existing.pods])
            self.metrics.writes.inc(writes.count)
        return Result(writes.count, requeue, status["phase"])

    def _observe(self, spec: MoEDeploymentSpec, owner: Owner, report, scalers: dict[str, dict[str, Any]], memory: DeploymentMemory,
                 now_seconds: float, writes: O.Writes) -> float | None:
        """Every autoscaling interval: read the roles' load and expert balance from Prometheus (metrics, the
        ExpertImbalance condition), and run the planner for Planner roles. Returns seconds to the next run."""
        url = spec.autoscaling.prometheus_url or self.default_prometheus_url
        if not url and not planner_roles(spec):
            return None
        interval = float(spec.autoscaling.interval_seconds)
        if memory.last_plan_seconds is not None and now_seconds - memory.last_plan_seconds < interval:
            return interval - (now_seconds - memory.last_plan_seconds)
        memory.last_plan_seconds = now_seconds
        roles = [role for role, _ in spec.roles.items()]
        observation = observe_roles(url, str(spec.engine.kind), owner.namespace, owner.name, roles,
                                    spec.autoscaling.rate_window_seconds, spec.autoscaling.queries)
        self._record_observation(spec, owner, report, url, observation, memory, writes)
        if planner_roles(spec):
            self._plan(spec, owner, scalers, memory, now_seconds, writes, observation)
        return interval

    def _record_observation(self, spec: MoEDeploymentSpec, owner: Owner, report, url: str | None, observation,
                            memory: DeploymentMemory, writes: O.Writes) -> None:
        if not observation.reachable or not url:
            return
        worst: tuple[float, str, str] | None = None
        for role, load in observation.roles.items():
            predicted = report.roles.get(role)
            if self.metrics:
                tokens = {"prefill": load.prompt_tokens_per_second, "decode": load.generated_tokens_per_second}.get(
                    role, None if load.prompt_tokens_per_second is None else (load.prompt_tokens_per_second or 0) + (load.generated_tokens_per_second or 0))
                self.metrics.record_observed(owner.namespace, owner.name, role, tokens, predicted.tokens_per_second if predicted else None,
                                             load.ttft_p95_seconds, load.itl_p95_seconds)
            try:
                layers = expert_load(url, owner.namespace, owner.name, role, max(spec.autoscaling.rate_window_seconds, 60))
            except PrometheusError:
                continue
            for layer, v in layers.items():
                if self.metrics:
                    self.metrics.record_expert_load(owner.namespace, owner.name, role, layer, v.get("cv"), v.get("max_over_mean"))
                cv = v.get("cv")
                if cv is not None and (worst is None or cv > worst[0]):
                    worst = (cv, role, layer)
        limit = spec.slo.max_expert_load_cv_percent
        message = ""
        if limit and worst and worst[0] * 100 > limit:
            message = (f"expert load CV {worst[0]:.1%} in {worst[1]} layer {worst[2]} is above slo.maxExpertLoadCVPercent={limit}%: "
                       f"rebalance experts (EPLB, redundantExperts) or check the routing skew")
        if message and not memory.expert_imbalance:
            post_event(self.core, owner.namespace, owner.name, owner.uid, "ExpertImbalance", message, "Warning")
            writes()
        memory.expert_imbalance = message

    def _plan(self, spec: MoEDeploymentSpec, owner: Owner, scalers: dict[str, dict[str, Any]], memory: DeploymentMemory,
              now_seconds: float, writes: O.Writes, all_roles) -> None:
        """The planner's step: write Planner roles' scaler replicas, with events and status."""
        current = {role: (scalers[role]["spec"]["replicas"] if role in scalers else rs.replicas) for role, rs in spec.roles.items()}
        policies = [p for p in planner_policies(spec, current) if p.role in scalers]
        if not policies:
            return
        gpus_per_replica = {role: rs.parallelism.gpus_per_replica for role, rs in spec.roles.items()}
        observation = replace(all_roles, roles={p.role: all_roles.roles[p.role] for p in policies if p.role in all_roles.roles})
        result = plan_replicas(policies, observation, memory.planner_history, now_seconds,
                               planner_budget(spec, current, gpus_per_replica), planner_config(spec))
        memory.planner_history = result.history
        for role, d in result.decisions.items():
            if d.desired != d.current:
                self.custom.patch_namespaced_custom_object(GROUP, VERSION, owner.namespace, "moerolescalers",
                                                           scalers[role]["metadata"]["name"], {"spec": {"replicas": d.desired}})
                writes()
                post_event(self.core, owner.namespace, owner.name, owner.uid, "ScaledUp" if d.direction == "up" else "ScaledDown",
                           "planner: " + decision_message(d))
                writes()
                if self.metrics:
                    self.metrics.count_scaling(owner.namespace, owner.name, role, d.direction, d.reason.split(":")[0].split(" (")[0])
        new_status = scaling_status(result)
        if result.budget_message != memory.scaling_limited and result.budget_message:
            post_event(self.core, owner.namespace, owner.name, owner.uid, "ScalingLimited", result.budget_message, "Warning")
            writes()
        held = [d for d in result.decisions.values() if d.held]
        if held and new_status != memory.scaling:
            post_event(self.core, owner.namespace, owner.name, owner.uid, "ScalingHeld",
                       "; ".join(f"{d.role}: {d.reason}" for d in held), "Warning")
            writes()
        memory.scaling, memory.scaling_limited = new_status, result.budget_message

    def _scalers(self, namespace: str, uid: str) -> dict[str, dict[str, Any]] | None:
        """This deployment's MoERoleScalers by role (owned ones only); None when the CRD is not installed."""
        try:
            items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "moerolescalers")["items"]
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return {s["spec"]["role"]: s for s in items
                if any(r.get("uid") == uid and r.get("controller") for r in s["metadata"].get("ownerReferences") or [])}

    def _sync_scalers(self, spec: MoEDeploymentSpec, owner: Owner, scalers: dict[str, dict[str, Any]], views, writes: O.Writes) -> None:
        """Create missing scalers; in Manual mode mirror the spec's replicas into them; keep their status current."""
        for role, rs in spec.roles.items():
            mode = str(rs.autoscaling.mode)
            current = scalers.get(role)
            if current is None:
                try:
                    current = self.custom.create_namespaced_custom_object(GROUP, VERSION, owner.namespace, "moerolescalers",
                                                                          desired_scaler(owner, role, rs.replicas))
                    writes()
                except ApiException as e:
                    if e.status != 409:
                        raise
                    continue
            elif mode == "Manual" and current["spec"].get("replicas") != rs.replicas:
                current = self.custom.patch_namespaced_custom_object(GROUP, VERSION, owner.namespace, "moerolescalers",
                                                                     current["metadata"]["name"], {"spec": {"replicas": rs.replicas}})
                writes()
            status = scaler_status(owner, role, mode, views)
            if (current.get("status") or {}) != status:
                self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, owner.namespace, "moerolescalers",
                                                                  current["metadata"]["name"], {"status": status})
                writes()

    def _write(self, spec: MoEDeploymentSpec, owner: Owner, desired: DesiredState, existing: O.OwnedObjects,
               actions: Actions, memory: DeploymentMemory, writes: O.Writes) -> None:
        ns, core = owner.namespace, self.core
        for cm in desired.config_maps:
            if not O.config_map_up_to_date(existing.config_maps.get(cm["metadata"]["name"]), cm):
                O.apply_config_map(core, cm, writes)
        wanted_maps = {cm["metadata"]["name"] for cm in desired.config_maps}
        for stale in sorted(set(existing.config_maps) - wanted_maps):
            O.delete_config_map(core, ns, stale, writes)
        role_of = {g.name: g.role for g in desired.groups}
        for r in actions.restart:
            O.delete_group_pods(core, ns, r.group, writes)
            role = role_of.get(r.group, "unknown")
            memory.restarts_by_role[role] = memory.restarts_by_role.get(role, 0) + 1
            if self.metrics:
                self.metrics.count_restart(ns, owner.name, role)
            post_event(core, ns, owner.name, owner.uid, "GroupRestart",
                       f"replica group {r.group} is recreated whole: {r.reason} (attempt {r.attempt})", "Warning")
            writes()
        for group, reason in actions.delete:
            O.delete_group_pods(core, ns, group, writes)
            if reason == "scaled down":
                O.delete_service(core, ns, group, writes)
                post_event(core, ns, owner.name, owner.uid, "ScaledDown", f"replica group {group} removed")
            else:
                post_event(core, ns, owner.name, owner.uid, "RollingUpdate", f"replica group {group} replaced: {reason}")
            writes()
        for g, seconds in actions.waiting:
            log.info("group %s/%s backing off %.0fs", ns, g, seconds)
        services_wanted = {g.name: g.service for g in desired.groups}
        for gname, svc in services_wanted.items():
            if not O.service_up_to_date(existing.services.get(gname), svc):
                O.apply_service(core, svc, writes)
        for g in desired.groups:
            if g.pod_group is not None:
                problem = O.apply_pod_group(self.custom, g.pod_group, writes)
                if problem and problem != memory.last_gang_problem:
                    post_event(core, ns, owner.name, owner.uid, "GangSchedulerMissing", problem, "Warning")
                    writes()
                memory.last_gang_problem = problem
        for g in actions.create:
            for pod in g.pods:
                O.create_pod(core, pod, writes)
            post_event(core, ns, owner.name, owner.uid, "GroupCreated",
                       f"replica group {g.name}: {len(g.pods)} pods, {g.gpus} GPUs")
            writes()
        if actions.blocked_by_budget and actions.blocked_by_budget != memory.last_blocked_by_budget:
            post_event(core, ns, owner.name, owner.uid, "GPUBudget",
                       f"not creating {', '.join(actions.blocked_by_budget)}: hardware.maxGPUs={spec.hardware.max_gpus} reached",
                       "Warning")
            writes()
        memory.last_blocked_by_budget = actions.blocked_by_budget
