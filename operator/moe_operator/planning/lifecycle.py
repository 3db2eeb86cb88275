"""Decide what to do with replica groups: an immutable snapshot in, actions out. Pure.

Rules, per role:
- a group with no pods is created, unless that would take the deployment over `hardware.maxGPUs`;
- a group above the desired replica count is deleted (scale down removes whole groups);
- a group with a failed, restarted or missing pod is broken: all its pods are deleted and the group
  is recreated, after an exponential backoff per group (a group that cannot start does not loop);
- a group whose template hash differs from the desired one is outdated: outdated groups are deleted
  (and so recreated) while at most `maxUnavailable` groups of the role are unavailable;
- nothing is done while a group still has terminating pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .desired import DesiredState, GroupPlan

BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 600.0
BACKOFF_RESET_AFTER_SECONDS = 900.0  # a group that stayed healthy this long starts its backoff afresh


@dataclass(frozen=True)
class ObservedPod:
    name: str
    group: str
    role: str
    replica: int
    template_hash: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    ready: bool
    restarts: int
    terminating: bool
    gpus: int


@dataclass(frozen=True)
class GroupHistory:
    """What the operator remembers of a group between reconciles."""

    failures: int = 0  # consecutive restarts
    last_failure_seconds: float | None = None  # monotonic time of the last restart
    broken_since_seconds: float | None = None  # monotonic time the current breakage was first seen


@dataclass(frozen=True)
class GroupView:
    plan: GroupPlan | None  # None: not desired (scaled away)
    pods: tuple[ObservedPod, ...]

    @property
    def name(self) -> str:
        return self.plan.name if self.plan else self.pods[0].group

    @property
    def terminating(self) -> bool:
        return any(p.terminating for p in self.pods)

    @property
    def empty(self) -> bool:
        return not self.pods

    def broken_reason(self) -> str | None:
        """Why a group with pods cannot serve as it is, if it cannot."""
        if self.plan is None or not self.pods or self.terminating:
            return None
        for p in self.pods:
            if p.phase == "Failed":
                return f"pod {p.name} failed"
            if p.restarts > 0:
                return f"pod {p.name} restarted"
        missing = {pod["metadata"]["name"] for pod in self.plan.pods} - {p.name for p in self.pods}
        if missing:
            return f"pod {sorted(missing)[0]} is missing"
        return None

    @property
    def outdated(self) -> bool:
        return self.plan is not None and any(p.template_hash != self.plan.template_hash for p in self.pods)

    @property
    def available(self) -> bool:
        """Every pod of the group exists, runs and is ready (whatever its template)."""
        if self.plan is None or self.terminating or self.broken_reason():
            return False
        return len(self.pods) == len(self.plan.pods) and all(p.phase == "Running" and p.ready for p in self.pods)

    @property
    def ready(self) -> bool:
        """Available and running the current template."""
        return self.available and not self.outdated


@dataclass(frozen=True)
class Restart:
    group: str
    reason: str
    attempt: int


@dataclass(frozen=True)
class Actions:
    create: tuple[GroupPlan, ...] = ()
    delete: tuple[tuple[str, str], ...] = ()  # (group, reason): scale-down and rollout
    restart: tuple[Restart, ...] = ()  # broken groups whose backoff has elapsed: delete now, recreate next pass
    waiting: tuple[tuple[str, float], ...] = ()  # (group, seconds left) broken groups still backing off
    blocked_by_budget: tuple[str, ...] = ()  # groups not created because of hardware.maxGPUs
    history: dict[str, GroupHistory] = field(default_factory=dict)

    @property
    def requeue_after_seconds(self) -> float | None:
        return min((s for _, s in self.waiting), default=None)

    @property
    def writes(self) -> bool:
        return bool(self.create or self.delete or self.restart)


def group_views(desired: DesiredState, pods: list[ObservedPod]) -> list[GroupView]:
    by_group: dict[str, list[ObservedPod]] = {}
    for p in pods:
        by_group.setdefault(p.group, []).append(p)
    views = [GroupView(g, tuple(sorted(by_group.pop(g.name, []), key=lambda p: p.name))) for g in desired.groups]
    views += [GroupView(None, tuple(ps)) for _, ps in sorted(by_group.items())]
    return views


def backoff_seconds(failures: int) -> float:
    """Delay between seeing a group broken and its n-th consecutive restart: 0 for the first, then 10 s
    doubling up to 10 min (like the kubelet's CrashLoopBackOff)."""
    if failures <= 1:
        return 0.0
    return min(BACKOFF_BASE_SECONDS * 2 ** (failures - 2), BACKOFF_MAX_SECONDS)


def plan_actions(desired: DesiredState, pods: list[ObservedPod], history: dict[str, GroupHistory],
                 now_seconds: float, max_gpus: int | None, max_unavailable: int) -> Actions:
    """What to do now. `history` is the operator's memory of group failures; an updated copy is returned."""
    views = group_views(desired, pods)
    hist = dict(history)
    create: list[GroupPlan] = []
    delete: list[tuple[str, str]] = []
    restart: list[Restart] = []
    waiting: list[tuple[str, float]] = []
    blocked: list[str] = []
    gpus_in_use = sum(p.gpus for p in pods)

    for v in views:
        if v.plan is None:
            if not v.terminating:
                delete.append((v.name, "scaled down"))
            continue
        reason = v.broken_reason()
        h = hist.get(v.name, GroupHistory())
        if h.last_failure_seconds is not None and now_seconds - h.last_failure_seconds > BACKOFF_RESET_AFTER_SECONDS:
            h = GroupHistory()
        if reason:
            failures = h.failures + 1
            since = h.broken_since_seconds if h.broken_since_seconds is not None else now_seconds
            due = since + backoff_seconds(failures)
            if now_seconds >= due:
                restart.append(Restart(v.name, reason, failures))
                hist[v.name] = GroupHistory(failures, now_seconds, None)
            else:
                waiting.append((v.name, due - now_seconds))
                hist[v.name] = GroupHistory(h.failures, h.last_failure_seconds, since)
            continue
        hist[v.name] = GroupHistory(h.failures, h.last_failure_seconds, None)

    for role in sorted({g.role for g in desired.groups}):
        role_views = [v for v in views if v.plan is not None and v.plan.role == role]
        unavailable = sum(1 for v in role_views if not v.available)
        for v in role_views:
            if v.empty and not v.terminating:
                if max_gpus is not None and gpus_in_use + v.plan.gpus > max_gpus:
                    blocked.append(v.name)
                    continue
                create.append(v.plan)
                gpus_in_use += v.plan.gpus
        budget = max_unavailable - unavailable
        for v in role_views:
            if not v.outdated or v.terminating or v.broken_reason():
                continue
            if not v.available:  # not serving anyway: replacing it costs no availability
                delete.append((v.name, "rollout: template changed"))
            elif budget > 0:
                delete.append((v.name, "rollout: template changed"))
                budget -= 1
    return Actions(tuple(create), tuple(delete), tuple(restart), tuple(waiting), tuple(blocked), hist)
