"""`moectl tree`: a deployment's status and its replica groups as a tree (role > group > stage > pod)."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException
from rich.console import Console
from rich.tree import Tree

from ..kube.clients import api_client
from ..planning import naming as N


def _pod_line(p: client.V1Pod) -> str:
    gpus = (p.spec.containers[0].resources.requests or {}).get("nvidia.com/gpu", "0")
    ready = any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    state = p.status.phase + (", ready" if ready else "")
    return f"{p.metadata.name}  node={p.spec.node_name or '-'}  GPUs={gpus}  {state}"


def print_tree(name: str, namespace: str, kubeconfig: str | None, console: Console) -> int:
    api = api_client(kubeconfig)
    try:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object("moe.inference.io", "v1alpha1", namespace, "moedeployments", name)
    except ApiException as e:
        console.print(f"[red]cannot read moedeployment {namespace}/{name}: {e.status} {e.reason}[/]")
        return 1
    status = obj.get("status") or {}
    cap = status.get("capacity") or {}
    root = Tree(f"[bold]{namespace}/{name}[/]  phase={status.get('phase', '-')}  feasible={status.get('feasible')}  "
                f"GPUs={status.get('gpus', 0)} (plan {cap.get('totalGPUs', '-')})")
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"{N.LABEL_DEPLOYMENT}={N.label_value(name)}").items
    for role, rs in (status.get("roles") or {}).items():
        tps = (cap.get("tokensPerSecondPerGPU") or {}).get(role)
        branch = root.add(f"[cyan]{role}[/]  ready {rs.get('readyReplicas', 0)}/{rs.get('desiredReplicas', 0)} groups, "
                          f"GPUs {rs.get('gpus', 0)}/{rs.get('desiredGPUs', 0)}, restarts {rs.get('restarts', 0)}"
                          + (f", predicted {tps:,} tokens/s per GPU" if tps else ""))
        mine = [p for p in pods if p.metadata.labels.get(N.LABEL_ROLE) == role]
        for group in sorted({p.metadata.labels[N.LABEL_GROUP] for p in mine}, key=lambda g: int(g.rsplit("-", 1)[-1])):
            g_branch = branch.add(f"group {group}")
            in_group = [p for p in mine if p.metadata.labels[N.LABEL_GROUP] == group]
            for stage in sorted({int(p.metadata.labels[N.LABEL_STAGE]) for p in in_group}):
                s_branch = g_branch.add(f"stage {stage}")
                for p in sorted((p for p in in_group if int(p.metadata.labels[N.LABEL_STAGE]) == stage), key=lambda p: p.metadata.name):
                    s_branch.add(_pod_line(p))
    console.print(root)
    for c in status.get("conditions") or []:
        console.print(f"  {c['type']}={c['status']} ({c.get('reason', '')}): {c.get('message', '')[:300]}", highlight=False)
    return 0
