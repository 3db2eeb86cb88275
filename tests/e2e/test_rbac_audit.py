"""RBAC sufficiency from the API server's audit log, after every other end-to-end test has run (this file sorts
last): no call the operator made under the chart's ServiceAccount was refused, and the namespace-scoped chart's
Roles allow the same calls in a watched namespace (and nowhere else)."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.e2e.conftest import ROOT, SESSION_STARTED
from tests.e2e.test_chart import LEAST_PRIVILEGE_AGENT, _docs, _tool

# Calls a namespace-scoped operator makes differently: kopf's peering object is namespaced there.
NAMESPACED_EQUIVALENT = {("kopf.dev", "clusterkopfpeerings"): ("kopf.dev", "kopfpeerings")}


@pytest.fixture
def whole_suite(request):
    """These tests judge the calls the operator made during the other end-to-end tests."""
    if sum("test_operator.py" in item.nodeid for item in request.session.items) < 20:
        pytest.skip("judges the operator's calls during tests/e2e/test_operator.py: run with the whole e2e suite")


def _operator_calls(cluster, operator) -> list[dict]:
    assert cluster.audit_log and cluster.audit_log.exists(), "the local cluster writes an audit log"
    calls = []
    with open(cluster.audit_log) as f:
        for line in f:
            e = json.loads(line)
            if (e["user"]["username"] == operator.user and e["stage"] == "ResponseComplete" and e.get("objectRef")
                    and e["requestReceivedTimestamp"] >= SESSION_STARTED and not e.get("userAgent", "").startswith(LEAST_PRIVILEGE_AGENT)):
                calls.append(e)
    return calls


def _kinds(calls: list[dict]) -> set[tuple[str, str, str, str, str]]:
    """(verb, apiGroup, resource, subresource, name if the rule names it) of each distinct call."""
    out = set()
    for e in calls:
        o = e["objectRef"]
        named = o.get("resource") in ("secrets", "validatingwebhookconfigurations", "clusterkopfpeerings", "kopfpeerings")
        out.add((e["verb"], o.get("apiGroup", ""), o["resource"], o.get("subresource", ""),
                 o.get("name", "") if named and e["verb"] not in ("list", "watch") else ""))
    return out


def test_no_call_of_the_operator_was_refused_by_rbac(cluster, operator, whole_suite):
    calls = _operator_calls(cluster, operator)
    forbidden = [(e["verb"], e["requestURI"], e["annotations"].get("authorization.k8s.io/reason"))
                 for e in calls if e.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid"]
    assert not forbidden, forbidden[:20]
    kinds = {(v, g, r, s) for v, g, r, s, _ in _kinds(calls)}
    # the suite exercised the operator's whole repertoire under this identity
    assert {("create", "", "pods", ""), ("deletecollection", "", "pods", ""), ("patch", "", "services", ""),
            ("patch", "", "configmaps", ""), ("create", "", "events", ""), ("create", "moe.inference.io", "moerolescalers", ""),
            ("patch", "moe.inference.io", "moedeployments", "status"), ("patch", "moe.inference.io", "moerolescalers", ""),
            ("patch", "scheduling.volcano.sh", "podgroups", ""), ("update", "", "secrets", ""),
            ("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", ""),
            ("watch", "kopf.dev", "clusterkopfpeerings", "")} <= kinds, sorted(kinds)


def test_the_namespace_scoped_chart_allows_the_same_calls_only_in_its_namespaces(cluster, api, operator, namespace, whole_suite):
    """Install the chart in namespaces mode (watching this test's namespace) and ask the API server's authorizer,
    for each kind of call the cluster-wide operator made, whether the namespace-scoped identity may make it there."""
    release = "moe-ns"
    webhook = ["--set", "webhook.url=https://127.0.0.1:1", "--set", "webhook.failurePolicy=Ignore",
               "--set", "webhook.namespaceSelector.matchLabels.moe-test/never=match"]
    _tool(cluster, "helm", "install", release, str(ROOT / "charts" / "moe-operator"), "-n", namespace, "-f",
          str(ROOT / "deploy" / "local" / "values-host-operator.yaml"), "--set", "watch.mode=namespaces",
          "--set", f"watch.namespaces={{{namespace}}}", *webhook, "--wait")
    try:
        manifest = _docs(_tool(cluster, "helm", "get", "manifest", release, "-n", namespace).stdout)
        names = {d["kind"]: d["metadata"]["name"] for d in manifest}
        sa = f"system:serviceaccount:{namespace}:{names['ServiceAccount']}"
        rename = {"moe-operator-webhook-cert": names["Secret"], operator.webhook_config: names["ValidatingWebhookConfiguration"],
                  "moe-operator-moe-system": names["KopfPeering"]}
        authz = client.AuthorizationV1Api(api)

        def allowed(ns: str, verb: str, group: str, resource: str, sub: str, name: str) -> bool:
            group, resource = NAMESPACED_EQUIVALENT.get((group, resource), (group, resource))
            cluster_scoped = resource == "validatingwebhookconfigurations"
            where = namespace if resource == "secrets" else None if cluster_scoped else ns  # its Secret lives in the release namespace
            review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
                user=sa, groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
                resource_attributes=client.V1ResourceAttributes(namespace=where, verb=verb, group=group, resource=resource,
                                                                subresource=sub or None, name=rename.get(name, name) or None)))
            return authz.create_subject_access_review(review).status.allowed

        kinds = _kinds(_operator_calls(cluster, operator))
        assert len(kinds) > 15
        denied_here = [k for k in kinds if not allowed(namespace, *k)]
        assert not denied_here, denied_here
        # ... and none of the workload calls anywhere else
        workload = [k for k in kinds if k[2] not in ("secrets", "validatingwebhookconfigurations")]
        allowed_elsewhere = [k for k in workload if allowed("default", *k)]
        assert not allowed_elsewhere, allowed_elsewhere
    finally:
        _tool(cluster, "helm", "uninstall", release, "-n", namespace, "--wait")
