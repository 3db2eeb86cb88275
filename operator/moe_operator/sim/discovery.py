"""Which pods the simulator speaks for: the Running group leaders of a deployment, or a fixed list."""

from __future__ import annotations

from kubernetes import client

from ..planning import naming as N
from .server import SimPod


def cluster_pods(api: client.ApiClient, namespace: str, deployment: str):
    """A function listing the deployment's Running group leaders (stage 0, shard 0) in the cluster."""
    core = client.CoreV1Api(api)
    selector = f"{N.LABEL_DEPLOYMENT}={N.label_value(deployment)},{N.LABEL_STAGE}=0,{N.LABEL_SHARD}=0"

    def list_pods() -> list[SimPod]:
        out = []
        for p in core.list_namespaced_pod(namespace, label_selector=selector).items:
            if p.status.phase != "Running" or p.metadata.deletion_timestamp is not None:
                continue
            labels = p.metadata.labels
            out.append(SimPod(p.metadata.name, namespace, deployment, labels[N.LABEL_ROLE], labels[N.LABEL_REPLICA]))
        return out

    return list_pods


def static_pods(namespace: str, deployment: str, replicas: dict[str, int]):
    """A fixed set of group leaders named as the operator would name them (no cluster needed)."""
    pods = [SimPod(N.pod_name(deployment, role, r, 0, 0), namespace, deployment, role, str(r))
            for role, count in replicas.items() for r in range(count)]
    return lambda: list(pods)
