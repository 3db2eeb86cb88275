"""The operator on the real local cluster: admission, pod groups, lifecycle, status, cleanup."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.wait import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))
GROUP, VERSION, PLURAL = "moe.inference.io", "v1alpha1", "moedeployments"
pytestmark = pytest.mark.usefixtures("operator")


def _doc(path: pathlib.Path, **spec_changes) -> dict:
    d = yaml.safe_load(path.read_text())
    for key, value in spec_changes.items():
        d["spec"][key] = value
    return d


def _create(api, namespace: str, doc: dict) -> dict:
    return client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)


def _get(api, namespace: str, name: str) -> dict:
    return client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def _patch(api, namespace: str, name: str, patch: dict) -> dict:
    return client.CustomObjectsApi(api).patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)


def _pods(api, namespace: str, selector: str = "app.kubernetes.io/managed-by=moe-operator") -> list[client.V1Pod]:
    return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items


def _phase(api, namespace: str, name: str, phase: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (o := _get(api, namespace, name)).get("status", {}).get("phase") == phase and
                    o["status"].get("observedGeneration") == o["metadata"]["generation"] and o,
                    timeout_seconds=timeout, what=f"{name} to be {phase}")


def _report(path_or_doc) -> dict:
    """What moectl validate says of a plan: the expectations the cluster must match."""
    text = yaml.safe_dump(path_or_doc) if isinstance(path_or_doc, dict) else pathlib.Path(path_or_doc).read_text()
    moectl = pathlib.Path(sys.executable).parent / "moectl"
    out = subprocess.run([str(moectl), "validate", "-f", "-", "-o", "json"], input=text, capture_output=True, text=True)
    return json.loads(out.stdout)


def _gpus(pod: client.V1Pod) -> int:
    return int(pod.spec.containers[0].resources.requests["nvidia.com/gpu"])


def _running_and_ready(pods) -> bool:
    return bool(pods) and all(p.status.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                                  for c in p.status.conditions or []) for p in pods)


# ------------------------------------------------------------------------------------------ pod groups


@pytest.mark.usefixtures("gpu_nodes")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_becomes_the_expected_pods(api, namespace, path):
    doc = _doc(path)
    name = doc["metadata"]["name"]
    report = _report(path)
    _create(api, namespace, doc)
    status = _phase(api, namespace, name, "Ready", timeout=120)["status"]
    pods = _pods(api, namespace)
    gpu_label = {"H100-SXM": "NVIDIA-H100-80GB-HBM3", "H200-SXM": "NVIDIA-H200"}[doc["spec"]["hardware"]["gpu"]]
    assert status["gpus"] == report["totalGPUs"] == sum(_gpus(p) for p in pods)
    for role, r in report["roles"].items():
        mine = [p for p in pods if p.metadata.labels["moe.inference.io/role"] == role]
        assert len(mine) == r["replicas"] * r["podsPerReplica"]
        assert status["roles"][role] == {"desiredReplicas": r["replicas"], "readyReplicas": r["replicas"], "gpus": r["gpus"],
                                         "desiredGPUs": r["gpus"], "restarts": 0}
        for p in mine:
            labels, env = p.metadata.labels, {e.name: e.value for e in p.spec.containers[0].env}
            stage = r["stages"][int(labels["moe.inference.io/stage"])]
            assert _gpus(p) == stage["gpusPerPod"] and p.spec.node_selector == {"nvidia.com/gpu.product": gpu_label}
            assert {labels[f"moe.inference.io/{k}"] for k in ("deployment", "role")} == {name, role}
            assert env["MOE_ROLE"] == role and env["MOE_NNODES"] == str(r["podsPerReplica"])
            assert env["MOE_TENSOR"] == str(r["parallelism"]["tensor"]) and env["MOE_EXPERT"] == str(r["parallelism"]["expert"])
            assert env["MOE_LEADER_ADDRESS"].startswith(f"{name}-{role}-{labels['moe.inference.io/replica']}-s0-0.")
            assert p.spec.subdomain == labels["moe.inference.io/group"]
            args = p.spec.containers[0].args
            if doc["spec"]["engine"]["kind"] == "vllm":
                assert args[args.index("--tensor-parallel-size") + 1] == str(r["parallelism"]["tensor"])
                assert args[args.index("--max-num-seqs") + 1] == str(r["maxConcurrentSequences"])
            else:
                stage_gpus = r["parallelism"]["tensor"] * r["parallelism"]["data"] * r["parallelism"]["sequence"]
                assert args[args.index("--tp") + 1] == str(stage_gpus)
                if role in ("prefill", "decode"):
                    assert args[args.index("--disaggregation-mode") + 1] == role
            shm = next(v for v in p.spec.volumes if v.name == "dshm")
            assert shm.empty_dir.medium == "Memory"
        cm = client.CoreV1Api(api).read_namespaced_config_map(f"{name}-{role}-plan", namespace)
        placement = json.loads(cm.data["expert-placement.json"])
        assert len(placement["stages"]) == r["parallelism"]["pipeline"]
        held = [e for s in placement["stages"][:1] for g in s["gpus"] for e in g["experts"]]
        assert set(held) == set(range(placement["experts"]))


def test_mixtral_example_by_hand(api, namespace):
    """Hand-written expectation for one example: 4 replicas of TP2 -> 4 pods x 2 GPUs, vLLM TP 2."""
    _create(api, namespace, _doc(ROOT / "deploy" / "examples" / "mixtral-8x7b.yaml"))
    _phase(api, namespace, "mixtral-8x7b", "Ready")
    pods = sorted(_pods(api, namespace), key=lambda p: p.metadata.name)
    assert [p.metadata.name for p in pods] == [f"mixtral-8x7b-aggregated-{i}-s0-0" for i in range(4)]
    assert [_gpus(p) for p in pods] == [2, 2, 2, 2]
    args = pods[0].spec.containers[0].args
    assert args[:3] == ["vllm", "serve", "mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2" and args[args.index("--max-model-len") + 1] == "11264"
    assert "--headless" not in args
    table = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "mixtral-8x7b")
    assert table["status"]["aggregated"] == "4/4" and table["status"]["feasible"] is True


# ------------------------------------------------------------------------------------------ admission


def test_infeasible_plan_is_refused_at_apply_with_the_violation(cluster, namespace):
    path = ROOT / "deploy" / "examples" / "infeasible" / "memory-exceeded.yaml"
    for extra in ([], ["--dry-run=server"]):
        out = cluster.kubectl("apply", "-n", namespace, "-f", str(path), *extra, check=False)
        assert out.returncode != 0
        assert "MemoryExceeded" in out.stderr and "GiB per GPU" in out.stderr and "denied the request" in out.stderr


def test_warnings_come_back_as_admission_warnings(cluster, namespace):
    out = cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "deploy" / "examples" / "deepseek-v3-pipeline.yaml"),
                          "--dry-run=server")
    assert out.returncode == 0 and "UnevenPipeline" in out.stderr


def test_warn_mode_deploys_an_infeasible_plan_with_validated_false(api, namespace):
    doc = _doc(ROOT / "deploy" / "examples" / "infeasible" / "tpot-exceeded.yaml", validation="Warn")
    _create(api, namespace, doc)
    obj = wait_for(lambda: (o := _get(api, namespace, "tpot-exceeded")).get("status", {}).get("roles") and
                   o["status"]["roles"]["decode"]["readyReplicas"] == 1 and o, timeout_seconds=90, what="Warn-mode pods")
    validated = next(c for c in obj["status"]["conditions"] if c["type"] == "Validated")
    assert validated["status"] == "False" and validated["reason"] == "InfeasibleWarnMode" and "TPOTExceeded" in validated["message"]
    assert obj["status"]["violations"][0]["code"] == "TPOTExceeded" and obj["status"]["feasible"] is False
    assert len(_pods(api, namespace)) == 2


def test_without_the_webhook_the_reconcile_applies_the_verdict(api, namespace, operator):
    adm = client.AdmissionregistrationV1Api(api)
    saved = adm.read_validating_webhook_configuration(operator.webhook_config)
    adm.delete_validating_webhook_configuration(operator.webhook_config)
    try:
        # the API server drops the webhook from its cache a moment after the configuration is deleted
        wait_for(lambda: _create(api, namespace, _doc(ROOT / "deploy" / "examples" / "infeasible" / "memory-exceeded.yaml")),
                 timeout_seconds=30, what="the API server to stop calling the deleted webhook")
    finally:
        saved.metadata = client.V1ObjectMeta(name=saved.metadata.name, labels=saved.metadata.labels,
                                             annotations=saved.metadata.annotations)
        adm.create_validating_webhook_configuration(saved)
    obj = _phase(api, namespace, "memory-exceeded", "Infeasible")
    validated = next(c for c in obj["status"]["conditions"] if c["type"] == "Validated")
    assert validated["status"] == "False" and "MemoryExceeded" in validated["message"]
    assert _pods(api, namespace) == []


# ------------------------------------------------------------------------------------------ lifecycle


def _pipeline_doc(name: str, replicas: int = 2, max_gpus: int | None = None, image: str | None = None) -> dict:
    """Mixtral-8x7B with 2 pipeline stages of 2 GPUs: 2 pods per replica group."""
    spec = {"model": {"preset": "mixtral-8x7b"}, "hardware": {"gpu": "H100-SXM", "gpusPerNode": 2, "maxGPUs": max_gpus},
            "workload": {"inputTokens": {"min": 128, "mean": 1024, "max": 4096}, "outputTokens": {"min": 1, "mean": 128, "max": 512}},
            "roles": {"aggregated": {"replicas": replicas, "parallelism": {"tensor": 2, "pipeline": 2}, "maxConcurrentSequences": 16}}}
    if max_gpus is None:
        del spec["hardware"]["maxGPUs"]
    if image:
        spec["engine"] = {"image": image}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MoEDeployment", "metadata": {"name": name}, "spec": spec}


def test_a_deleted_child_is_put_back(api, namespace):
    _create(api, namespace, _pipeline_doc("heal", replicas=1))
    _phase(api, namespace, "heal", "Ready")
    core = client.CoreV1Api(api)
    core.delete_namespaced_service("heal-aggregated-0", namespace)
    core.delete_namespaced_config_map("heal-aggregated-plan", namespace)
    wait_for(lambda: core.read_namespaced_service("heal-aggregated-0", namespace), what="the Service to come back")
    wait_for(lambda: core.read_namespaced_config_map("heal-aggregated-plan", namespace), what="the ConfigMap to come back")


def test_killing_a_pod_recreates_its_whole_group_and_keeps_the_other(api, namespace):
    _create(api, namespace, _pipeline_doc("gang", replicas=2))
    _phase(api, namespace, "gang", "Ready")
    before = {p.metadata.name: p.metadata.uid for p in _pods(api, namespace)}
    assert len(before) == 4
    client.CoreV1Api(api).delete_namespaced_pod("gang-aggregated-0-s1-0", namespace, grace_period_seconds=0)

    def regrouped():
        pods = _pods(api, namespace)
        now = {p.metadata.name: p.metadata.uid for p in pods}
        return (len(now) == 4 and now["gang-aggregated-0-s0-0"] != before["gang-aggregated-0-s0-0"]
                and now["gang-aggregated-0-s1-0"] != before["gang-aggregated-0-s1-0"] and _running_and_ready(pods) and now)

    now = wait_for(regrouped, timeout_seconds=60, what="group 0 recreated whole")
    assert now["gang-aggregated-1-s0-0"] == before["gang-aggregated-1-s0-0"], "the healthy group was left alone"
    obj = _phase(api, namespace, "gang", "Ready")
    assert obj["status"]["roles"]["aggregated"]["restarts"] == 1
    events = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector="reason=GroupRestart").items
    assert any("gang-aggregated-0" in e.message for e in events)


def test_a_group_that_keeps_failing_backs_off(api, namespace):
    _create(api, namespace, _pipeline_doc("flaky", replicas=1))
    _phase(api, namespace, "flaky", "Ready")
    core = client.CoreV1Api(api)
    restart_times = []
    for attempt in range(3):
        pod = wait_for(lambda: next((p for p in _pods(api, namespace) if p.metadata.name == "flaky-aggregated-0-s0-0"
                                     and p.status.phase == "Running" and p.metadata.deletion_timestamp is None), None),
                       timeout_seconds=60, what="the group's leader to run")
        uid = pod.metadata.uid
        core.patch_namespaced_pod_status("flaky-aggregated-0-s0-0", namespace, {"status": {"phase": "Failed"}})
        failed_at = time.monotonic()
        wait_for(lambda: all(p.metadata.uid != uid for p in _pods(api, namespace) if p.metadata.name == "flaky-aggregated-0-s0-0")
                 and any(p.metadata.name == "flaky-aggregated-0-s0-0" for p in _pods(api, namespace)),
                 timeout_seconds=60, what=f"restart {attempt + 1}")
        restart_times.append(time.monotonic() - failed_at)
        if attempt == 1:
            obj = _get(api, namespace, "flaky")
    # first restart at once, the second after the 10 s backoff, the third after 20 s
    assert restart_times[0] < 8
    assert restart_times[1] >= 9
    assert restart_times[2] >= 19
    assert _get(api, namespace, "flaky")["status"]["roles"]["aggregated"]["restarts"] == 3


def test_an_image_change_rolls_without_exceeding_the_gpu_budget(api, namespace):
    _create(api, namespace, _pipeline_doc("roll", replicas=3, max_gpus=12, image="engine:v1"))
    _phase(api, namespace, "roll", "Ready")
    _patch(api, namespace, "roll", {"spec": {"engine": {"image": "engine:v2"}}})
    peak = 0

    def rolled():
        nonlocal peak
        pods = _pods(api, namespace)
        peak = max(peak, sum(_gpus(p) for p in pods))
        return (len(pods) == 6 and all(p.spec.containers[0].image == "engine:v2" for p in pods) and _running_and_ready(pods))

    wait_for(rolled, timeout_seconds=120, interval_seconds=0.05, what="all groups on engine:v2")
    assert peak <= 12
    events = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector="reason=RollingUpdate").items
    assert len({e.message.split()[2] for e in events}) == 3
    _phase(api, namespace, "roll", "Ready")


def test_scaling_adds_and_removes_whole_groups(api, namespace):
    _create(api, namespace, _pipeline_doc("scale", replicas=1))
    _phase(api, namespace, "scale", "Ready")
    _patch(api, namespace, "scale", {"spec": {"roles": {"aggregated": {"replicas": 3}}}})
    obj = _phase(api, namespace, "scale", "Ready")
    assert obj["status"]["aggregated"] == "3/3" and len(_pods(api, namespace)) == 6
    _patch(api, namespace, "scale", {"spec": {"roles": {"aggregated": {"replicas": 1}}}})
    wait_for(lambda: {p.metadata.labels["moe.inference.io/replica"] for p in _pods(api, namespace)} == {"0"},
             what="groups 1 and 2 removed")
    svcs = {s.metadata.name for s in client.CoreV1Api(api).list_namespaced_service(namespace).items}
    assert svcs == {"scale-aggregated-0"}


def test_deleting_the_deployment_removes_everything(api, namespace):
    _create(api, namespace, _pipeline_doc("gone", replicas=2))
    _phase(api, namespace, "gone", "Ready")
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone")
    core = client.CoreV1Api(api)
    wait_for(lambda: not _pods(api, namespace) and not core.list_namespaced_service(namespace).items
             and not [c for c in core.list_namespaced_config_map(namespace).items if c.metadata.name != "kube-root-ca.crt"],
             timeout_seconds=60, what="pods, services and config maps garbage-collected")


def test_an_idle_operator_makes_zero_write_calls(cluster, api, namespace, operator):
    if cluster.audit_log is None:
        pytest.skip("needs the local cluster's audit log")
    _create(api, namespace, _pipeline_doc("idle", replicas=2))
    _phase(api, namespace, "idle", "Ready")

    def operator_writes() -> list[dict]:
        out = []
        for line in cluster.audit_log.read_text().splitlines():
            e = json.loads(line)
            if (e["user"]["username"] == operator.user and e.get("objectRef", {}).get("namespace") == namespace
                    and e["verb"] in ("create", "update", "patch", "delete", "deletecollection")):
                out.append(e)
        return out

    settled = len(operator_writes())
    assert settled > 0, "the audit log shows the operator's writes (pods, services, status)"
    # Idleness is a property of a time window: watch three resync periods (the fixture runs the operator
    # with --resync-seconds 5, so it reconciles this deployment at least three times meanwhile).
    time.sleep(16)
    after = operator_writes()
    assert len(after) == settled, [f"{e['verb']} {e['objectRef']}" for e in after[settled:]]
    assert operator.alive()


# ------------------------------------------------------------------------------------------ hostile input


HOSTILE = {
    "wrong type": {"roles": {"aggregated": {"parallelism": {"tensor": "eight"}}}},
    "missing roles": {"roles": None},
    "negative degree": {"roles": {"aggregated": {"parallelism": {"tensor": -2}}}},
    "huge degree": {"roles": {"aggregated": {"parallelism": {"tensor": 1 << 40}}}},
    "10000 replicas": {"roles": {"aggregated": {"replicas": 10000}}},
    "unknown preset": {"model": {"preset": "gpt-17"}},
    "both role kinds": {"roles": {"aggregated": {}, "prefill": {}, "decode": {}}},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_objects_are_refused_with_a_clear_message(api, namespace, operator, case):
    doc = _doc(ROOT / "deploy" / "examples" / "mixtral-8x7b.yaml")
    doc["metadata"]["name"] = "hostile"
    for key, value in HOSTILE[case].items():
        if value is None:
            doc["spec"].pop(key)
        else:
            doc["spec"][key] = value
    with pytest.raises(ApiException) as e:
        _create(api, namespace, doc)
    assert e.value.status in (400, 422)
    body = json.loads(e.value.body)
    assert "spec" in body["message"]
    assert operator.alive(), operator.log_tail()


def test_a_name_at_the_length_limit_works(api, namespace):
    name = "n" * 253
    doc = _pipeline_doc(name, replicas=1)
    _create(api, namespace, doc)
    obj = _phase(api, namespace, name, "Ready")
    pods = _pods(api, namespace)
    assert len(pods) == 2 and all(len(p.metadata.name) <= 63 for p in pods)
    assert obj["status"]["aggregated"] == "1/1"


# ------------------------------------------------------------------------------------------ gang scheduling


def _stub_podgroup_crd(group: str, version: str) -> dict:
    """A schemaless stand-in for a gang scheduler's PodGroup CRD (no gang scheduler runs locally)."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"podgroups.{group}"},
            "spec": {"group": group, "scope": "Namespaced", "names": {"plural": "podgroups", "singular": "podgroup", "kind": "PodGroup"},
                     "versions": [{"name": version, "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


def test_gang_scheduler_objects(api, namespace):
    ext, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    doc = _pipeline_doc("gangco", replicas=2)
    doc["spec"]["scheduling"] = {"gang": "coscheduling"}
    try:
        ext.delete_custom_resource_definition("podgroups.scheduling.x-k8s.io")
    except ApiException:
        pass
    wait_for(lambda: not any(c.metadata.name == "podgroups.scheduling.x-k8s.io" for c in ext.list_custom_resource_definition().items),
             what="no coscheduling CRD")
    _create(api, namespace, doc)
    # without the scheduler's CRD the pods are still made, and the user is told why there is no PodGroup
    _phase(api, namespace, "gangco", "Ready")
    events = wait_for(lambda: client.CoreV1Api(api).list_namespaced_event(namespace, field_selector="reason=GangSchedulerMissing").items,
                      what="a GangSchedulerMissing event")
    assert "scheduling.x-k8s.io/v1alpha1" in events[0].message
    assert all(p.metadata.labels["scheduling.x-k8s.io/pod-group"] == p.metadata.labels["moe.inference.io/group"]
               for p in _pods(api, namespace))
    ext.create_custom_resource_definition(_stub_podgroup_crd("scheduling.x-k8s.io", "v1alpha1"))
    groups = wait_for(lambda: custom.list_namespaced_custom_object("scheduling.x-k8s.io", "v1alpha1", namespace, "podgroups")["items"],
                      timeout_seconds=60, what="PodGroups once the CRD exists")
    wait_for(lambda: len(custom.list_namespaced_custom_object("scheduling.x-k8s.io", "v1alpha1", namespace, "podgroups")["items"]) == 2,
             what="one PodGroup per replica group")
    assert {g["spec"]["minMember"] for g in groups} == {2}
    assert {g["metadata"]["ownerReferences"][0]["kind"] for g in groups} == {"MoEDeployment"}


def test_volcano_pods_wait_for_their_scheduler(api, namespace):
    ext, custom = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    try:
        ext.create_custom_resource_definition(_stub_podgroup_crd("scheduling.volcano.sh", "v1beta1"))
    except ApiException as e:
        if e.status != 409:
            raise
    doc = _pipeline_doc("gangvc", replicas=1)
    doc["spec"]["scheduling"] = {"gang": "volcano", "queueName": "inference"}
    wait_for(lambda: _create(api, namespace, doc), what="creating the deployment")
    group = wait_for(lambda: custom.list_namespaced_custom_object("scheduling.volcano.sh", "v1beta1", namespace, "podgroups")["items"],
                     what="the volcano PodGroup")[0]
    assert group["spec"]["minMember"] == 2 and group["spec"]["queue"] == "inference"
    assert group["spec"]["minResources"]["nvidia.com/gpu"] == "4"
    pods = wait_for(lambda: len(p := _pods(api, namespace)) == 2 and p, what="the group's pods")
    for p in pods:
        assert p.spec.scheduler_name == "volcano"
        assert p.metadata.annotations["scheduling.k8s.io/group-name"] == "gangvc-aggregated-0"
        assert p.status.phase == "Pending"  # no volcano scheduler runs here: the gang waits for it
    # the status is written after the pods are created: wait for it rather than race it
    phase = wait_for(lambda: _get(api, namespace, "gangvc").get("status", {}).get("phase"), what="the status phase")
    assert phase in ("Pending", "Deploying")


# ------------------------------------------------------------------------------------------ standby replica


def test_a_second_replica_stands_by_until_the_active_one_goes(cluster, api, namespace, tmp_path):
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings",
                                           {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "moe"}})
    moectl = pathlib.Path(sys.executable).parent / "moectl"
    env = {**__import__("os").environ, "KUBECONFIG": cluster.operator_kubeconfig or cluster.kubeconfig}

    def start(priority: int) -> tuple[subprocess.Popen, pathlib.Path]:
        log = tmp_path / f"op-{priority}.log"
        proc = subprocess.Popen([str(moectl), "run", "-n", namespace, "--no-webhook", "--peering", "moe", "--priority", str(priority),
                                 "--metrics-address", ""],
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)
        return proc, log

    def peering_state(log: pathlib.Path) -> str:
        """kopf starts a peer paused and logs only transitions: 'active' after a resume, else 'standby'."""
        lines = [ln for ln in log.read_text().splitlines() if "Resuming operations" in ln or "Pausing operations" in ln]
        return "active" if lines and "Resuming operations" in lines[-1] else "standby"

    active, active_log = start(100)
    standby, standby_log = start(50)
    try:
        peers = wait_for(lambda: len(st := (custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", "moe")
                                            .get("status") or {})) == 2 and st, what="both peers registered")
        assert sorted(p["priority"] for p in peers.values()) == [50, 100]
        wait_for(lambda: peering_state(active_log) == "active" and peering_state(standby_log) == "standby",
                 timeout_seconds=30, what="priority 100 active, priority 50 standing by")
        active.terminate()
        active.wait(timeout=60)
        wait_for(lambda: peering_state(standby_log) == "active", timeout_seconds=90, what="the standby to take over")
    finally:
        for proc in (active, standby):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


# ------------------------------------------------------------------------------------------ role scalers


def _scaler(api, namespace, name):
    return client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "moerolescalers", name)


def test_manual_mode_scaler_mirrors_the_spec_and_reports_groups(cluster, api, namespace):
    _create(api, namespace, _pipeline_doc("man", replicas=2))
    _phase(api, namespace, "man", "Ready")
    sc = wait_for(lambda: (s := _scaler(api, namespace, "man-aggregated")).get("status", {}).get("readyReplicas") == 2 and s,
                  what="the scaler's status")
    assert sc["spec"]["replicas"] == 2 and sc["status"]["mode"] == "Manual"
    assert sc["status"]["selector"] == "moe.inference.io/deployment=man,moe.inference.io/role=aggregated"
    # the scale subresource an HPA reads
    scale = json.loads(cluster.kubectl("get", "--raw", f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/moerolescalers/man-aggregated/scale").stdout)
    assert scale["spec"]["replicas"] == 2 and scale["status"]["replicas"] == 2 and "role=aggregated" in scale["status"]["selector"]
    # in Manual mode the MoEDeployment owns the count: a kubectl scale is put back
    cluster.kubectl("scale", "-n", namespace, "moerolescaler/man-aggregated", "--replicas=4")
    wait_for(lambda: _scaler(api, namespace, "man-aggregated")["spec"]["replicas"] == 2, what="the manual count restored")
    assert len(_pods(api, namespace)) == 4


def test_external_mode_kubectl_scale_drives_the_role(cluster, api, namespace):
    doc = _pipeline_doc("ext", replicas=1)
    doc["spec"]["roles"]["aggregated"]["autoscaling"] = {"mode": "External"}
    _create(api, namespace, doc)
    _phase(api, namespace, "ext", "Ready")
    cluster.kubectl("scale", "-n", namespace, "moerolescaler/ext-aggregated", "--replicas=3")
    obj = wait_for(lambda: (o := _get(api, namespace, "ext"))["status"].get("aggregated") == "3/3" and o, timeout_seconds=60,
                   what="3 groups from the scaler")
    assert obj["spec"]["roles"]["aggregated"]["replicas"] == 1  # the spec is not the owner in External mode
    assert obj["status"]["roles"]["aggregated"]["desiredReplicas"] == 3 and len(_pods(api, namespace)) == 6
    cluster.kubectl("scale", "-n", namespace, "moerolescaler/ext-aggregated", "--replicas=1")
    wait_for(lambda: {p.metadata.labels["moe.inference.io/replica"] for p in _pods(api, namespace)} == {"0"},
             what="back to one group")
    wait_for(lambda: _scaler(api, namespace, "ext-aggregated")["status"]["replicas"] == 1, what="scaler status")
