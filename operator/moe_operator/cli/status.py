"""`moectl status`: one deployment at a glance, for people who live in a terminal.

Roles with replica groups and GPUs, pods ready per pipeline stage, predicted tokens/s per GPU and peak memory,
and, when a Prometheus URL is given, observed tokens/s, the observed/predicted ratio and the worst expert CV.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..kube.clients import api_client
from ..kube.prometheus import PrometheusError, expert_load, observe_roles
from ..planning import naming as N


def _observed(url: str | None, spec: dict[str, Any], namespace: str, name: str, roles: list[str]) -> dict[str, dict[str, float]]:
    if not url:
        return {}
    engine = (spec.get("engine") or {}).get("kind", "vllm")
    obs = observe_roles(url, engine, namespace, name, roles, 60)
    out: dict[str, dict[str, float]] = {}
    for role, load in obs.roles.items():
        tokens = {"prefill": load.prompt_tokens_per_second, "decode": load.generated_tokens_per_second}.get(
            role, (load.prompt_tokens_per_second or 0) + (load.generated_tokens_per_second or 0))
        out[role] = {"tokens": tokens or 0.0}
        try:
            cvs = [v["cv"] for v in expert_load(url, namespace, name, role, 60).values() if "cv" in v]
        except PrometheusError:
            cvs = []
        if cvs:
            out[role]["cv"] = max(cvs)
    return out


def render(name: str, namespace: str, api: client.ApiClient, prometheus_url: str | None) -> Group:
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object("moe.inference.io", "v1alpha1", namespace, "moedeployments", name)
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    cap = status.get("capacity") or {}
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"{N.LABEL_DEPLOYMENT}={N.label_value(name)}").items
    roles = list((status.get("roles") or {}).keys())
    try:
        observed = _observed(prometheus_url, spec, namespace, name, roles)
    except PrometheusError as err:
        observed = {"_error": {"message": str(err)}}  # type: ignore[dict-item]
    head = Text.assemble((f"{namespace}/{name}", "bold"), f"  phase {status.get('phase', '-')}  feasible {status.get('feasible')}  ",
                         f"GPUs {status.get('gpus', 0)} of plan {cap.get('totalGPUs', '-')}  ",
                         f"peak predicted memory {cap.get('peakMemoryUtilizationPercent', '-')}% of a GPU")
    t = Table("role", "groups ready/desired", "GPUs alloc/desired", "pods ready per stage", "predicted tok/s per GPU",
              "observed tok/s (role)", "observed/predicted", "worst expert CV")
    for role, rs in (status.get("roles") or {}).items():
        mine = [p for p in pods if p.metadata.labels.get(N.LABEL_ROLE) == role]
        stages: dict[str, list[int]] = {}
        for p in mine:
            ready = any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
            s = stages.setdefault(p.metadata.labels.get(N.LABEL_STAGE, "?"), [0, 0])
            s[0] += int(ready)
            s[1] += 1
        per_gpu = (cap.get("tokensPerSecondPerGPU") or {}).get(role)
        o = observed.get(role, {})
        predicted_role = per_gpu * rs.get("desiredGPUs", 0) if per_gpu else None
        ratio = f"{o['tokens'] / predicted_role:.0%}" if o.get("tokens") is not None and predicted_role else "-"
        t.add_row(role, f"{rs.get('readyReplicas', 0)}/{rs.get('desiredReplicas', 0)}", f"{rs.get('gpus', 0)}/{rs.get('desiredGPUs', 0)}",
                  ", ".join(f"s{k}: {v[0]}/{v[1]}" for k, v in sorted(stages.items())) or "-",
                  f"{per_gpu:,}" if per_gpu else "-", f"{o['tokens']:,.0f}" if "tokens" in o else "-", ratio,
                  f"{o['cv']:.0%}" if "cv" in o else "-")
    lines: list[Any] = [head, t]
    if "_error" in observed:
        lines.append(Text(f"Prometheus: {observed['_error']['message']}", style="yellow"))
    for c in status.get("conditions") or []:
        style = "green" if (c["status"] == "True") == (c["type"] in ("Validated", "Ready")) else "yellow"
        lines.append(Text(f"{c['type']}={c['status']} ({c.get('reason', '')}): {c.get('message', '')[:200]}", style=style))
    return Group(*lines)


def run_status(name: str, namespace: str, kubeconfig: str | None, prometheus_url: str | None, watch: bool,
               interval_seconds: float, console: Console) -> int:
    api = api_client(kubeconfig)
    try:
        if not watch:
            console.print(render(name, namespace, api, prometheus_url))
            return 0
        with Live(render(name, namespace, api, prometheus_url), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(interval_seconds)
                live.update(render(name, namespace, api, prometheus_url))
    except ApiException as e:
        console.print(f"[red]cannot read moedeployment {namespace}/{name}: {e.status} {e.reason}[/]")
        return 1
    except KeyboardInterrupt:
        return 0
