"""The pure planning layer: names, engine args, desired objects, lifecycle decisions, status, admission."""

from __future__ import annotations

import json

import pytest

from moe_operator.capacity.evaluate import evaluate
from moe_operator.planning import naming as N
from moe_operator.planning.admission import admission_verdict
from moe_operator.planning.desired import Owner, desired_state
from moe_operator.planning.lifecycle import (
    GroupHistory,
    ObservedPod,
    backoff_seconds,
    group_views,
    plan_actions,
)
from moe_operator.planning.status import compute_status
from tests.builders import disaggregated, doc, spec

OWNER = Owner("mix", "ns", "uid-1")


def _desired(s):
    return desired_state(s, OWNER, evaluate(s, OWNER.name))


def _running(plan, ready=True, phase="Running", restarts=0, template=None, terminating=False):
    out = []
    for pod in plan.pods:
        m = pod["metadata"]
        out.append(ObservedPod(m["name"], plan.name, plan.role, plan.replica, template or plan.template_hash, phase, ready,
                               restarts, terminating, int(pod["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"])))
    return out


# ---------------------------------------------------------------------------------------------- naming


def test_child_names_fit_kubernetes_limits_and_stay_distinct():
    a, b = "x" * 253, "x" * 252 + "y"
    assert len(N.pod_name(a, "aggregated", 1023, 255, 63)) <= 63
    assert N.group_name(a, "decode", 0) != N.group_name(b, "decode", 0)
    assert N.group_name("mix", "decode", 2) == "mix-decode-2"
    assert len(N.label_value(a)) == 63 and N.label_value("short") == "short"


# ---------------------------------------------------------------------------------------------- desired


def test_one_pod_per_stage_shard_with_exact_gpu_requests():
    s = spec(hardware={"gpusPerNode": 2}, roles={"aggregated": {"replicas": 2, "parallelism": {"tensor": 2, "pipeline": 2}}})
    d = _desired(s)
    assert [g.name for g in d.groups] == ["mix-aggregated-0", "mix-aggregated-1"]
    pods = d.groups[0].pods
    assert [p["metadata"]["name"] for p in pods] == ["mix-aggregated-0-s0-0", "mix-aggregated-0-s1-0"]
    for rank, p in enumerate(pods):
        c = p["spec"]["containers"][0]
        assert c["resources"]["requests"]["nvidia.com/gpu"] == "2" == c["resources"]["limits"]["nvidia.com/gpu"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["MOE_NODE_RANK"] == str(rank) and env["MOE_NNODES"] == "2" and env["MOE_STAGE"] == str(rank)
        assert env["MOE_LEADER_ADDRESS"] == "mix-aggregated-0-s0-0.mix-aggregated-0.ns.svc"
        assert p["metadata"]["labels"][N.LABEL_STAGE] == str(rank) and p["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert p["spec"]["subdomain"] == "mix-aggregated-0" and p["spec"]["restartPolicy"] == "Never"
        assert p["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert "startupProbe" in pods[0]["spec"]["containers"][0] and "startupProbe" not in pods[1]["spec"]["containers"][0]
    assert d.groups[0].gpus == 4


def test_a_stage_larger_than_a_node_becomes_one_pod_per_node():
    s = spec(model={"preset": "deepseek-v3"}, roles={"aggregated": {"parallelism": {"tensor": 1, "data": 16, "expert": 16}}},
             hardware={"gpu": "H200-SXM"})
    (group,) = _desired(s).groups
    assert [p["metadata"]["labels"][N.LABEL_SHARD] for p in group.pods] == ["0", "1"]
    args = group.pods[1]["spec"]["containers"][0]["args"]
    assert "--headless" in args and args[args.index("--data-parallel-start-rank") + 1] == "8"
    assert args[args.index("--data-parallel-size-local") + 1] == "8" and "--enable-expert-parallel" in args


def test_sglang_disaggregated_args():
    s = disaggregated(prefill={"parallelism": {"tensor": 1, "data": 8, "expert": 8}},
                      decode={"parallelism": {"tensor": 8, "expert": 8}}, model={"preset": "qwen3-235b-a22b", "kvCacheDtype": "fp8"},
                      engine={"kind": "sglang", "extraArgs": ["--foo", "1"]}, hardware={"gpu": "H200-SXM"})
    d = _desired(s)
    pre = d.role_groups("prefill")[0].pods[0]["spec"]["containers"][0]["args"]
    dec = d.role_groups("decode")[0].pods[0]["spec"]["containers"][0]["args"]
    assert pre[pre.index("--tp") + 1] == "8" and pre[pre.index("--dp") + 1] == "8" and "--enable-dp-attention" in pre
    assert pre[pre.index("--disaggregation-mode") + 1] == "prefill" and dec[dec.index("--disaggregation-mode") + 1] == "decode"
    assert dec[dec.index("--kv-cache-dtype") + 1] == "fp8_e4m3" and dec[-2:] == ["--foo", "1"]


def test_vllm_disaggregated_uses_the_nixl_connector():
    s = disaggregated(prefill={"parallelism": {"tensor": 4}}, decode={"parallelism": {"tensor": 2}})
    args = _desired(s).role_groups("decode")[0].pods[0]["spec"]["containers"][0]["args"]
    assert json.loads(args[args.index("--kv-transfer-config") + 1])["kv_connector"] == "NixlConnector"


def test_plan_config_map_has_placement_and_report():
    s = spec(model={"preset": "qwen3-30b-a3b"}, roles={"aggregated": {"parallelism": {"tensor": 2, "expert": 2}}})
    (cm,) = _desired(s).config_maps
    placement = json.loads(cm["data"]["expert-placement.json"])
    assert [g["experts"][0] for g in placement["stages"][0]["gpus"]] == [0, 64]
    assert json.loads(cm["data"]["capacity-report.json"])["role"]["gpusPerReplica"] == 2


def test_template_hash_changes_with_the_image_only_for_real_changes():
    a = _desired(spec(engine={"image": "x:1"})).groups[0].template_hash
    assert a == _desired(spec(engine={"image": "x:1"})).groups[0].template_hash
    assert a != _desired(spec(engine={"image": "x:2"})).groups[0].template_hash


# ---------------------------------------------------------------------------------------------- lifecycle


def _two_groups():
    return _desired(spec(hardware={"gpusPerNode": 2}, roles={"aggregated": {"replicas": 2, "parallelism": {"tensor": 2, "pipeline": 2}}}))


def test_nothing_to_do_when_everything_runs():
    d = _two_groups()
    pods = [p for g in d.groups for p in _running(g)]
    a = plan_actions(d, pods, {}, 100.0, max_gpus=None, max_unavailable=1)
    assert not a.writes and a.requeue_after_seconds is None


def test_missing_groups_are_created_within_the_gpu_budget():
    d = _two_groups()
    a = plan_actions(d, [], {}, 0.0, max_gpus=4, max_unavailable=1)
    assert [g.name for g in a.create] == ["mix-aggregated-0"] and a.blocked_by_budget == ("mix-aggregated-1",)


def test_a_half_alive_group_is_restarted_whole_and_then_backs_off():
    d = _two_groups()
    g0, g1 = d.groups
    broken = _running(g0)[:1] + _running(g1)  # g0 lost its stage-1 pod
    a = plan_actions(d, broken, {}, 0.0, None, 1)
    assert [r.group for r in a.restart] == ["mix-aggregated-0"] and "missing" in a.restart[0].reason
    h = a.history
    # it breaks again at t=5: second restart only after 10 s of backoff, counted from when it was seen broken
    failed = _running(g0, phase="Failed") + _running(g1)
    b = plan_actions(d, failed, h, 5.0, None, 1)
    assert not b.restart and b.waiting[0][0] == "mix-aggregated-0" and b.waiting[0][1] == pytest.approx(10.0)
    c = plan_actions(d, failed, b.history, 15.0, None, 1)
    assert [r.attempt for r in c.restart] == [2]
    assert backoff_seconds(3) == 20 and backoff_seconds(20) == 600


def test_a_restarted_container_breaks_the_group():
    d = _two_groups()
    pods = _running(d.groups[0], restarts=1) + _running(d.groups[1])
    assert "restarted" in plan_actions(d, pods, {}, 0.0, None, 1).restart[0].reason


def test_rollout_respects_max_unavailable():
    d = _two_groups()
    old = [p for g in d.groups for p in _running(g, template="old")]
    a = plan_actions(d, old, {}, 0.0, None, max_unavailable=1)
    assert [g for g, _ in a.delete] == ["mix-aggregated-0"]
    # group 0 is being replaced (empty): group 1 must wait
    b = plan_actions(d, [p for p in old if p.group == "mix-aggregated-1"], {}, 1.0, None, max_unavailable=1)
    assert [g.name for g in b.create] == ["mix-aggregated-0"] and not b.delete
    both = plan_actions(d, old, {}, 0.0, None, max_unavailable=2)
    assert len(both.delete) == 2


def test_rollout_never_creates_while_pods_terminate_beyond_the_budget():
    d = _two_groups()
    terminating = _running(d.groups[0], terminating=True) + _running(d.groups[1], template="old")
    a = plan_actions(d, terminating, {}, 0.0, max_gpus=8, max_unavailable=1)
    assert not a.create and not a.delete  # group 0's pods still hold GPUs; group 1 waits its turn


def test_scale_down_removes_whole_groups():
    d = _two_groups()
    extra = _running(_desired(spec(hardware={"gpusPerNode": 2}, roles={"aggregated": {
        "replicas": 3, "parallelism": {"tensor": 2, "pipeline": 2}}})).groups[2])
    pods = [p for g in d.groups for p in _running(g)] + extra
    assert plan_actions(d, pods, {}, 0.0, None, 1).delete == (("mix-aggregated-2", "scaled down"),)


# ---------------------------------------------------------------------------------------------- status


def test_status_phases_and_conditions():
    s = spec(hardware={"gpusPerNode": 2}, roles={"aggregated": {"replicas": 2, "parallelism": {"tensor": 2, "pipeline": 2}}})
    report = evaluate(s, "mix")
    d = desired_state(s, OWNER, report)
    ready_pods = [p for g in d.groups for p in _running(g)]
    st = compute_status(s, report, False, group_views(d, ready_pods), plan_actions(d, ready_pods, {}, 0, None, 1), {}, 3, {}, "T1")
    assert st["phase"] == "Ready" and st["aggregated"] == "2/2" and st["gpus"] == 8 and st["observedGeneration"] == 3
    assert {c["type"]: c["status"] for c in st["conditions"]} == {"Validated": "True", "Ready": "True", "Progressing": "False", "Degraded": "False"}
    again = compute_status(s, report, False, group_views(d, ready_pods), None, {}, 3, st, "T2")
    assert [c["lastTransitionTime"] for c in again["conditions"]] == ["T1"] * 4  # unchanged status keeps its times
    pending = compute_status(s, report, False, group_views(d, []), None, {}, 3, st, "T3")
    assert pending["phase"] == "Pending" and next(c for c in pending["conditions"] if c["type"] == "Ready")["lastTransitionTime"] == "T3"
    broken = ready_pods[1:]
    degraded = compute_status(s, report, False, group_views(d, broken), plan_actions(d, broken, {}, 0, None, 1), {}, 3, st, "T4")
    assert degraded["phase"] == "Degraded"


# ---------------------------------------------------------------------------------------------- admission


def test_admission_verdicts():
    ok = admission_verdict(doc()["spec"], "x")
    assert ok.allowed
    bad = admission_verdict(doc(roles={"aggregated": {"parallelism": {"tensor": 3}}})["spec"], "x")
    assert not bad.allowed and "InvalidParallelism" in bad.message
    warn = admission_verdict(doc(validation="Warn", roles={"aggregated": {"parallelism": {"tensor": 3}}})["spec"], "x")
    assert warn.allowed and any("InvalidParallelism" in w and "Warn" in w for w in warn.warnings)
    schema = admission_verdict(doc(roles={"aggregated": {"replicas": -1}})["spec"], "x")
    assert not schema.allowed and "spec.roles.aggregated.replicas" in schema.message
    preset = admission_verdict(doc(model={"preset": "nope"})["spec"], "x")
    assert not preset.allowed and "spec.model.preset" in preset.message


# ---------------------------------------------------------------------------------------------- gang


def test_volcano_pod_group_and_pod_annotations():
    s = spec(hardware={"gpusPerNode": 2}, scheduling={"gang": "volcano", "queueName": "gpu", "priorityClassName": "high"},
             roles={"aggregated": {"parallelism": {"tensor": 2, "pipeline": 2}}})
    g = _desired(s).groups[0]
    assert g.pod_group["apiVersion"] == "scheduling.volcano.sh/v1beta1"
    assert g.pod_group["spec"]["minMember"] == 2 and g.pod_group["spec"]["minResources"]["nvidia.com/gpu"] == "4"
    assert g.pod_group["spec"]["queue"] == "gpu" and g.pod_group["spec"]["priorityClassName"] == "high"
    for p in g.pods:
        assert p["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == g.name
        assert p["spec"]["schedulerName"] == "volcano" and p["spec"]["priorityClassName"] == "high"


def test_coscheduling_and_kueue_metadata():
    co = _desired(spec(scheduling={"gang": "coscheduling"})).groups[0]
    assert co.pod_group["apiVersion"] == "scheduling.x-k8s.io/v1alpha1" and co.pod_group["spec"]["minMember"] == 1
    assert co.pods[0]["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == co.name
    kq = _desired(spec(scheduling={"gang": "kueue", "queueName": "team-a"})).groups[0]
    assert kq.pod_group is None
    assert kq.pods[0]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert kq.pods[0]["metadata"]["annotations"]["kueue.x-k8s.io/pod-group-total-count"] == "1"
    none = _desired(spec()).groups[0]
    assert none.pod_group is None and "schedulerName" not in none.pods[0]["spec"]


def test_max_surge_is_flagged_as_not_acted_on():
    v = admission_verdict(doc(rollout={"maxSurge": 1})["spec"], "x")
    assert v.allowed and any("maxSurge" in w for w in v.warnings)



def test_who_owns_the_replica_count():
    from moe_operator.planning.scalers import effective_replicas

    s = disaggregated(prefill={"replicas": 2, "autoscaling": {"mode": "Planner"}}, decode={"replicas": 3, "autoscaling": {"mode": "External"}})
    assert effective_replicas(s, {"prefill": 5, "decode": 7}) == {"prefill": 5, "decode": 7}
    assert effective_replicas(s, {}) == {"prefill": 2, "decode": 3}  # until the scalers exist
    manual = disaggregated(prefill={"replicas": 2}, decode={"replicas": 3})
    assert effective_replicas(manual, {"prefill": 5, "decode": 7}) == {"prefill": 2, "decode": 3}
