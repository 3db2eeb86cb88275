"""The Helm chart against the real local API server: lint, every documented values combination rendered and
accepted (server-side dry run, kubeconform with schemas generated here), least privilege of the operator's
identity, upgrade from the previous chart version and uninstall without orphans, the kustomize manifests."""

from __future__ import annotations

import base64
import datetime as dt
import json
import pathlib
import ssl
import subprocess
import urllib.request
import uuid

import pytest
import yaml
from kubernetes import client, config
from cryptography import x509
from kubernetes.client.rest import ApiException

from moe_operator.kube.certs import CertificateSet, issue, renewal_reason
from tests.e2e.conftest import _free_port, webhook_answers
from tests.kube_schemas import LOCATION, generate
from tests.wait import wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "moe-operator"
PREVIOUS_CHART = ROOT / "tests" / "fixtures" / "charts" / "moe-operator-0.1.0.tgz"
LOCAL_VALUES = ROOT / "deploy" / "local" / "values-host-operator.yaml"
# What the session operator's certificate must name: the host it is reached at, and the chart's Service.
WEBHOOK_NAMES = ["127.0.0.1", "moe-operator-webhook.moe-system.svc", "moe-operator-webhook.moe-system.svc.cluster.local"]
# The documented combinations: charts/moe-operator/ci/*-values.yaml, and the local cluster's values.
COMBINATIONS = {p.name.removesuffix("-values.yaml"): ["-f", str(p)] for p in sorted((CHART / "ci").glob("*-values.yaml"))}
COMBINATIONS["host-operator"] = ["-f", str(LOCAL_VALUES), "--set", "webhook.url=https://127.0.0.1:9443"]


def _tool(cluster, name: str, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(cluster.bin_dir / name), f"--kubeconfig={cluster.kubeconfig}", *args], input=stdin,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


def _kubeconform(cluster, schemas: pathlib.Path, text: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(cluster.bin_dir / "kubeconform"), "-strict", "-summary", "-output", "json",
                           "-schema-location", str(schemas / LOCATION), "-"], input=text, capture_output=True, text=True)


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _render(cluster, release: str, namespace: str, *args: str, include_crds: bool = False) -> list[dict]:
    extra = ["--include-crds"] if include_crds else []
    return _docs(_tool(cluster, "helm", "template", release, str(CHART), "-n", namespace, *extra, *args).stdout)


@pytest.fixture(scope="module")
def schemas(cluster, chart, tmp_path_factory) -> pathlib.Path:
    """kubeconform schemas for every group/version the chart renders, from this API server's OpenAPI (the chart
    fixture installed our CRDs, third_party_crds the others)."""
    out = tmp_path_factory.mktemp("schemas")
    gvs = {"v1", "apps/v1", "policy/v1", "rbac.authorization.k8s.io/v1", "admissionregistration.k8s.io/v1",
           "apiextensions.k8s.io/v1", "kopf.dev/v1", "monitoring.coreos.com/v1", "cert-manager.io/v1"}
    def get(path: str) -> dict:
        return json.loads(cluster.kubectl("get", "--raw", path).stdout)

    # the API server publishes a new CRD's OpenAPI a moment after the CRD is Established
    wait_for(lambda: all((f"apis/{gv}" if "/" in gv else f"api/{gv}") in get("/openapi/v3")["paths"] for gv in gvs),
             timeout_seconds=60, what="the OpenAPI v3 documents of every group/version")
    assert len(generate(get, gvs, out)) > 20
    return out


def test_helm_lint_passes_for_every_combination(cluster):
    for name, args in COMBINATIONS.items():
        out = _tool(cluster, "helm", "lint", str(CHART), "--strict", *args)
        assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout, (name, out.stdout)


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_each_combination_renders_objects_the_api_server_and_kubeconform_accept(cluster, api, namespace, schemas,
                                                                                combination):
    docs = _render(cluster, "moe-operator", namespace, *COMBINATIONS[combination], include_crds=True)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "CustomResourceDefinition"} <= kinds
    # namespaces the combination names (watched namespaces, a dashboards namespace) exist in a real install
    core = client.CoreV1Api(api)
    made = []
    for ns in sorted({d["metadata"].get("namespace") for d in docs} - {None, namespace}):
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            made.append(ns)
        except ApiException as e:
            assert e.status == 409
    try:
        text = yaml.safe_dump_all(docs)
        dry = _tool(cluster, "kubectl", "apply", "--server-side", "--dry-run=server", "--force-conflicts",
                    "--field-manager=chart-test", "-f", "-", stdin=text)
        assert dry.stdout.count("serverside-applied (server dry run)") == len(docs), dry.stdout
    finally:
        for ns in made:
            core.delete_namespace(ns)
    conform = _kubeconform(cluster, schemas, text)
    report = json.loads(conform.stdout)
    assert conform.returncode == 0 and report["summary"]["valid"] == len(docs), conform.stdout[-3000:]


def test_kubeconform_and_the_schema_catch_what_they_should(cluster, schemas, namespace):
    """The checks above can fail: a misspelt field, and a bad value, are refused."""
    docs = _render(cluster, "moe-operator", namespace)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesytem"] = True
    conform = _kubeconform(cluster, schemas, yaml.safe_dump(deployment))
    assert conform.returncode != 0 and "readOnlyRootFilesytem" in conform.stdout
    bad = _tool(cluster, "helm", "template", "r", str(CHART), "--set", "webhook.failurePolicy=Sometimes", check=False)
    assert bad.returncode != 0 and "/webhook/failurePolicy" in bad.stderr and "Fail" in bad.stderr


def test_the_pod_is_restricted_and_probed(cluster, namespace):
    docs = _render(cluster, "moe-operator", namespace)
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["tcpSocket"]["port"] == "webhook"
    assert "--peering=moe-operator-" + namespace in c["args"] and "--all-namespaces" in c["args"]
    # the namespace's Pod Security admission at `restricted` accepts it (server-side dry run)
    _tool(cluster, "kubectl", "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    dry = _tool(cluster, "kubectl", "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "restricted-check", "namespace": namespace},
        "spec": {k: v for k, v in pod.items() if k != "topologySpreadConstraints"} | {"serviceAccountName": "default"}}), check=False)
    assert dry.returncode == 0 and "Warning" not in dry.stderr, dry.stderr


def test_namespaces_mode_grants_roles_only_in_the_watched_namespaces(cluster, namespace):
    docs = _render(cluster, "moe-operator", namespace, *COMBINATIONS["namespaces"])
    roles = {(d["kind"], d["metadata"].get("namespace")) for d in docs if d["kind"] in ("Role", "ClusterRole")}
    assert ("Role", "team-a") in roles and ("Role", "team-b") in roles
    cluster_roles = [d for d in docs if d["kind"] == "ClusterRole"]
    # the only cluster-wide grant: get/patch of the chart's own webhook configuration, by name
    assert [r["resources"] for cr in cluster_roles for r in cr["rules"]] == [["validatingwebhookconfigurations"]]
    assert all(r.get("resourceNames") for cr in cluster_roles for r in cr["rules"])
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args


# ------------------------------------------------------------------------------------------ least privilege

LEAST_PRIVILEGE_AGENT = "moe-least-privilege-test"  # tests/e2e/test_rbac_audit.py leaves these calls out


def _as_operator(operator) -> client.ApiClient:
    """The operator's own credentials, with a user agent that marks these deliberate refusals in the audit log."""
    api = config.new_client_from_config(config_file=str(operator.kubeconfig))
    api.user_agent = LEAST_PRIVILEGE_AGENT
    return api


def _status(call) -> int:
    try:
        call()
        return 200
    except ApiException as e:
        return e.status


def test_the_operator_identity_is_refused_what_it_must_not_do(api, operator, namespace):
    node = client.CoreV1Api(api).list_node().items[0].metadata.name
    op = _as_operator(operator)
    core, rbac = client.CoreV1Api(op), client.RbacAuthorizationV1Api(op)
    ext, adm = client.ApiextensionsV1Api(op), client.AdmissionregistrationV1Api(op)
    client.CoreV1Api(api).create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="db-password"),
                                                                                string_data={"password": "hunter2"}))
    crd = yaml.safe_load((ROOT / "crds" / "moedeployments.moe.inference.io.yaml").read_text())
    admin_binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": {"name": f"escalate-{uuid.uuid4().hex[:6]}"},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                     "subjects": [{"kind": "ServiceAccount", "name": "moe-operator", "namespace": "moe-system"}]}
    secret_role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "read-secrets"},
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}
    refused = {
        "read another namespace's secret": lambda: core.read_namespaced_secret("db-password", namespace),
        "list secrets in kube-system": lambda: core.list_namespaced_secret("kube-system"),
        "list secrets in its own namespace": lambda: core.list_namespaced_secret("moe-system"),
        "delete a node": lambda: core.delete_node(node),
        "create a CRD": lambda: ext.create_custom_resource_definition(crd | {"metadata": {"name": "x.moe.inference.io"}}),
        "change its own CRD": lambda: ext.patch_custom_resource_definition("moedeployments.moe.inference.io", {"metadata": {"labels": {"x": "y"}}}),
        "bind itself cluster-admin": lambda: rbac.create_cluster_role_binding(admin_binding),
        "grant itself secrets via a Role": lambda: rbac.create_namespaced_role("moe-system", secret_role),
        "patch another webhook configuration": lambda: adm.patch_validating_webhook_configuration("other", {"metadata": {"labels": {"x": "y"}}}),
        "delete its webhook configuration": lambda: adm.delete_validating_webhook_configuration(operator.webhook_config),
        "exec into pods": lambda: core.connect_get_namespaced_pod_exec("any", namespace, command=["true"]),
        "delete namespaces": lambda: core.delete_namespace(namespace),
    }
    statuses = {what: _status(call) for what, call in refused.items()}
    assert statuses == {what: 403 for what in refused}, statuses
    # what it needs: its own certificate Secret, and (tested by the whole operator suite) its workloads
    assert _status(lambda: core.read_namespaced_secret("moe-operator-webhook-cert", "moe-system")) == 200


# ------------------------------------------------------------------------------------------ webhook certificate

def _secret_certs(api) -> CertificateSet:
    secret = client.CoreV1Api(api).read_namespaced_secret("moe-operator-webhook-cert", "moe-system")
    certs = CertificateSet.from_secret_data(secret.data)
    assert certs is not None, sorted(secret.data or {})
    return certs


def _served_cert(port: int) -> bytes:
    return ssl.get_server_certificate(("127.0.0.1", port)).encode()


def _ca_bundle(api, name: str) -> bytes:
    hooks = client.AdmissionregistrationV1Api(api).read_validating_webhook_configuration(name).webhooks
    bundles = {base64.b64decode(h.client_config.ca_bundle) for h in hooks}
    assert len(bundles) == 1
    return bundles.pop()


def _pem_equal(a: bytes, b: bytes) -> bool:
    return x509.load_pem_x509_certificate(a) == x509.load_pem_x509_certificate(b)


def test_the_operator_keeps_its_certificate_in_the_secret_and_its_ca_in_the_webhook(api, operator, chart):
    certs = _secret_certs(api)
    assert renewal_reason(certs, WEBHOOK_NAMES) is None
    assert _ca_bundle(api, operator.webhook_config) == certs.ca_bundle
    assert _pem_equal(_served_cert(chart.webhook_port), certs.cert)


def test_a_certificate_near_expiry_is_renewed_under_the_same_ca_without_a_refusal(api, operator, chart):
    current = _secret_certs(api)
    # a certificate issued 70 days ago by the same CA: 20 of its 90 days left, under the third that triggers renewal
    stale = issue(WEBHOOK_NAMES, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=70), current)
    assert renewal_reason(stale, WEBHOOK_NAMES) is not None and stale.ca_bundle == current.ca_bundle
    core = client.CoreV1Api(api)
    secret = core.read_namespaced_secret("moe-operator-webhook-cert", "moe-system")
    secret.data = stale.as_secret_data()
    core.replace_namespaced_secret("moe-operator-webhook-cert", "moe-system", secret)

    renewed = wait_for(lambda: (c := _secret_certs(api)).cert != stale.cert and c, timeout_seconds=30,
                       what="the operator to renew the certificate")
    assert renewal_reason(renewed, WEBHOOK_NAMES) is None
    assert renewed.ca_bundle == current.ca_bundle and _ca_bundle(api, operator.webhook_config) == current.ca_bundle
    wait_for(lambda: _pem_equal(_served_cert(chart.webhook_port), renewed.cert), timeout_seconds=30,
             what="the webhook server to serve the renewed certificate")
    # the API server trusts it: the webhook still refuses an infeasible plan (not a TLS error)
    assert webhook_answers(api)


def test_helm_upgrade_keeps_the_ca_bundle_and_the_webhook_answering(api, operator, chart):
    """The chart renders no caBundle of its own; an upgrade must not wipe the one the operator patched in."""
    before = _ca_bundle(api, operator.webhook_config)
    chart.install()  # helm upgrade --install of the installed release, same values
    assert _ca_bundle(api, operator.webhook_config) == before == _secret_certs(api).ca_bundle
    assert webhook_answers(api)


def _review(port: int, ca: bytes, spec: dict) -> dict:
    body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "moe.inference.io", "version": "v1alpha1", "kind": "MoEDeployment"},
        "resource": {"group": "moe.inference.io", "version": "v1alpha1", "resource": "moedeployments"},
        "operation": "CREATE", "name": spec["metadata"]["name"], "namespace": "default", "userInfo": {"username": "test"},
        "object": spec, "dryRun": True}}).encode()
    ctx = ssl.create_default_context(cadata=ca.decode())
    req = urllib.request.Request(f"https://127.0.0.1:{port}/validate", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.load(r)["response"]


def test_a_second_replica_shares_the_certificate_stands_by_and_answers_reviews(api, operator, chart, tmp_path):
    port = _free_port()
    log = tmp_path / "second.log"
    # priority 0: below the session operator's random one, so this replica stands by
    liveness = _free_port()
    second = chart.mod.start(chart.tools, tmp_path, port, _free_port(), liveness, log, extra_args=("--priority=0",))
    peering = client.CustomObjectsApi(api)
    try:
        wait_for(lambda: len(peering.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "moe-operator-moe-system")
                             .get("status") or {}) == 2, timeout_seconds=30, what="both replicas in the peering object")
        certs = _secret_certs(api)
        wait_for(lambda: _pem_equal(_served_cert(port), certs.cert), timeout_seconds=30, what="the second replica's webhook")
        infeasible = yaml.safe_load((ROOT / "deploy" / "examples" / "infeasible" / "memory-exceeded.yaml").read_text())
        response = _review(port, certs.ca_bundle, infeasible)
        assert response["allowed"] is False and "MemoryExceeded" in response["status"]["message"]
        assert "Pausing operations" in log.read_text() or "Resuming operations" not in log.read_text()
        # a standby replica is alive for its liveness probe (Kubernetes must not restart it for standing by)
        with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=5) as r:
            assert r.status == 200
        assert second.poll() is None and operator.alive()
    finally:
        second.terminate()
        second.wait(timeout=30)


# ------------------------------------------------------------------------------------------ upgrade and uninstall

def _live_release_objects(cluster, release: str, derived: bool = True) -> set[tuple[str, str, str]]:
    """Every object of any listable kind labelled with the release, as (kind, namespace, name). derived=False
    leaves out what controllers make from the release's objects (owned ReplicaSets and EndpointSlices, and
    Endpoints, which the endpoints controller names after the Service)."""
    kinds = _tool(cluster, "kubectl", "api-resources", "--verbs=list", "-o", "name").stdout.split()
    kinds = [k for k in kinds if k not in ("events", "events.events.k8s.io", "componentstatuses")]
    out = _tool(cluster, "kubectl", "get", ",".join(kinds), "-A", "-l", f"app.kubernetes.io/instance={release}", "-o", "json")
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in json.loads(out.stdout)["items"]
            if derived or not (o["metadata"].get("ownerReferences") or o["kind"] == "Endpoints")}


def _manifest_objects(cluster, release: str, namespace: str) -> set[tuple[str, str, str]]:
    docs = _docs(_tool(cluster, "helm", "get", "manifest", release, "-n", namespace).stdout)
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration", "ClusterKopfPeering"}
    return {(d["kind"], "" if d["kind"] in cluster_scoped else d["metadata"].get("namespace", namespace), d["metadata"]["name"])
            for d in docs}


def test_upgrade_from_the_previous_chart_and_uninstall_leave_no_orphans(cluster, namespace, third_party_crds):
    release = f"up-{namespace[-6:]}"
    # an isolated webhook: only this test's namespace, Ignore, so the rest of the suite never meets it
    common = ["-n", namespace, "-f", str(LOCAL_VALUES), "--set", "webhook.failurePolicy=Ignore",
              "--set", f"webhook.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={namespace}",
              "--set", "watch.mode=namespaces", "--wait", "--timeout", "120s"]
    # 0.1.0 with cert-manager certificates and monitoring objects; the upgrade switches to operator-made certificates
    _tool(cluster, "helm", "install", release, str(PREVIOUS_CHART), *common, "--set", "webhook.certificate.source=cert-manager",
          "--set", "webhook.url=")
    before = _live_release_objects(cluster, release, derived=False)
    assert {"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule", "KopfPeering"} <= {k for k, _, _ in before}
    assert before == _manifest_objects(cluster, release, namespace)

    _tool(cluster, "helm", "upgrade", release, str(CHART), *common, "--set", "webhook.url=https://127.0.0.1:1")
    after = _live_release_objects(cluster, release, derived=False)
    assert after == _manifest_objects(cluster, release, namespace), after ^ _manifest_objects(cluster, release, namespace)
    assert not {k for k, _, _ in after} & {"Certificate", "Issuer"}  # gone with the values that made them
    assert {"Secret", "ClusterRole"} <= {k for k, _, _ in after}
    assert _tool(cluster, "helm", "history", release, "-n", namespace, "-o", "json").stdout.count('"deployed"') == 1

    _tool(cluster, "helm", "uninstall", release, "-n", namespace, "--wait")
    wait_for(lambda: _live_release_objects(cluster, release) == set(), timeout_seconds=60,
             what="every object of the release to be deleted")
    # the CRDs stay (Helm never deletes them), as documented
    assert _tool(cluster, "kubectl", "get", "crd", "moedeployments.moe.inference.io", check=False).returncode == 0


# ------------------------------------------------------------------------------------------ plain manifests

def test_the_kustomize_manifests_are_the_rendered_chart_and_apply(cluster, chart):
    base = ROOT / "deploy" / "kustomize"
    built = _docs(_tool(cluster, "kubectl", "kustomize", str(base)).stdout)
    kinds = {d["kind"] for d in built}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "ValidatingWebhookConfiguration", "Namespace"} <= kinds
    rendered = _docs((base / "moe-operator.yaml").read_text())
    fresh = _render(cluster, "moe-operator", "moe-system", "-f", str(base / "values.yaml"), include_crds=True)
    assert rendered == fresh, "deploy/kustomize/moe-operator.yaml is stale: run make generate"
    # Dry run over the live release of this session (same names). Its webhook configuration is left out: applied
    # over the live one (url: the host operator) it would merge into one with both url and service; the same object
    # was accepted on its own in test_each_combination_renders_objects_the_api_server_and_kubeconform_accept[default].
    applied = [d for d in built if d["kind"] != "ValidatingWebhookConfiguration"]
    dry = _tool(cluster, "kubectl", "apply", "--server-side", "--dry-run=server", "--force-conflicts",
                "--field-manager=kustomize-test", "-f", "-", stdin=yaml.safe_dump_all(applied))
    assert dry.stdout.count("(server dry run)") == len(applied) == len(built) - 1
