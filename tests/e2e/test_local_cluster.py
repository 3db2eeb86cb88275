"""The local stack is real: schema validation, scheduling onto simulated GPU nodes, garbage collection,
RBAC and a Prometheus that scrapes."""

from __future__ import annotations

import json
import socket

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.wait import wait_for

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.e2e.moe.inference.io"},
    "spec": {
        "group": "e2e.moe.inference.io", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "required": ["gpus"], "properties": {
                "gpus": {"type": "integer", "minimum": 1, "maximum": 8}}}}}}}],
    },
}


def test_structural_crd_schema_rejects_a_bad_object_at_the_api_server(api, namespace):
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(WIDGET_CRD)
    except ApiException as e:
        if e.status != 409:
            raise
    custom = client.CustomObjectsApi(api)

    def create(gpus):
        return custom.create_namespaced_custom_object("e2e.moe.inference.io", "v1", namespace, "widgets", {
            "apiVersion": "e2e.moe.inference.io/v1", "kind": "Widget", "metadata": {"name": f"w{gpus}"}, "spec": {"gpus": gpus}})

    wait_for(lambda: create(4), what="the new CRD to be served")
    with pytest.raises(ApiException) as e:
        create(16)
    assert e.value.status == 422 and "spec.gpus" in e.value.body and "less than or equal to 8" in e.value.body


def test_gpu_statefulset_pods_are_scheduled_on_simulated_gpu_nodes_and_run(api, namespace):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    sts = client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="engine"),
        spec=client.V1StatefulSetSpec(
            replicas=2, service_name="engine", pod_management_policy="Parallel",
            selector=client.V1LabelSelector(match_labels={"app": "engine"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "engine"}),
                spec=client.V1PodSpec(
                    node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                    containers=[client.V1Container(name="engine", image="engine:simulated", resources=client.V1ResourceRequirements(
                        limits={"nvidia.com/gpu": "8"}, requests={"nvidia.com/gpu": "8", "cpu": "8", "memory": "64Gi"}))]))))
    apps.create_namespaced_stateful_set(namespace, sts)
    pods = wait_for(lambda: [p for p in core.list_namespaced_pod(namespace, label_selector="app=engine").items
                             if p.status.phase == "Running"] if len(core.list_namespaced_pod(namespace, label_selector="app=engine").items) == 2 else None,
                    what="2 engine pods Running")
    pods = core.list_namespaced_pod(namespace, label_selector="app=engine").items
    assert all(p.status.phase == "Running" for p in pods)
    nodes = {p.spec.node_name for p in pods}
    assert len(nodes) == 2, "8 GPUs each: two pods cannot share a node"
    for name in nodes:
        node = core.read_node(name)
        assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert node.status.allocatable["nvidia.com/gpu"] == "8"


def test_a_pod_asking_for_more_gpus_than_any_node_stays_pending(api, namespace):
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="too-big"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x", resources=client.V1ResourceRequirements(
            limits={"nvidia.com/gpu": "9"}))])))
    cond = wait_for(lambda: next((c for c in (core.read_namespaced_pod("too-big", namespace).status.conditions or [])
                                  if c.type == "PodScheduled" and c.status == "False"), None), what="a scheduling failure")
    assert cond.reason == "Unschedulable" and "nvidia.com/gpu" in cond.message


def test_deleting_the_owner_garbage_collects_its_children(api, namespace):
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid, controller=True)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[ref])))
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def child_gone():
        try:
            core.read_namespaced_config_map("child", namespace)
            return False
        except ApiException as e:
            return e.status == 404

    wait_for(child_gone, what="the garbage collector to delete the child")


def test_a_service_account_without_rbac_rights_gets_403(cluster, api, namespace):
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody")))
    as_sa = client.CoreV1Api(cluster.impersonating(f"system:serviceaccount:{namespace}:nobody"))
    with pytest.raises(ApiException) as e:
        as_sa.list_namespaced_pod(namespace)
    assert e.value.status == 403 and f"system:serviceaccount:{namespace}:nobody" in e.value.body
    # granting a Role makes the same call succeed: the 403 came from RBAC, not from a broken client
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(namespace, client.V1Role(metadata=client.V1ObjectMeta(name="pod-reader"), rules=[
        client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])]))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="pod-reader"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="nobody", namespace=namespace)]))
    wait_for(lambda: as_sa.list_namespaced_pod(namespace) is not None, what="RBAC to allow listing pods")


def test_prometheus_scrapes_a_file_discovered_target(cluster):
    if not cluster.prometheus_targets_dir:
        pytest.skip("no local Prometheus")
    registry = CollectorRegistry()
    Counter("moe_e2e_probe", "A probe counter", registry=registry).inc(7)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    target_file = cluster.prometheus_targets_dir / f"probe-{port}.json"
    try:
        target_file.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"probe": "e2e"}}]))
        result = wait_for(lambda: cluster.prometheus_query(f'moe_e2e_probe_total{{probe="e2e",instance="127.0.0.1:{port}"}}'),
                          timeout_seconds=60, what="Prometheus to scrape the probe")
        assert float(result[0]["value"][1]) == 7.0
        up = cluster.prometheus_query(f'up{{instance="127.0.0.1:{port}"}}')
        assert up[0]["value"][1] == "1"
    finally:
        target_file.unlink(missing_ok=True)
        server.shutdown()
