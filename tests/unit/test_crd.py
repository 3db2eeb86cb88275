"""The committed CRD is exactly what the models generate, and it is a structural schema."""

import pathlib

from moe_operator.api.crd import moedeployment_crd
from moe_operator.api.crd_yaml import render_crd_yaml, render_peering_crds_yaml, render_scaler_crd_yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "moedeployments.moe.inference.io.yaml"


def test_committed_crd_matches_a_fresh_generation():
    assert CRD_FILE.read_text() == render_crd_yaml(), "crds/ is stale: run `make generate` and commit the result"
    peering = ROOT / "crds" / "kopfpeerings.kopf.dev.yaml"
    assert peering.read_text() == render_peering_crds_yaml(), "crds/ is stale: run `make generate` and commit the result"
    scaler = ROOT / "crds" / "moerolescalers.moe.inference.io.yaml"
    assert scaler.read_text() == render_scaler_crd_yaml(), "crds/ is stale: run `make generate` and commit the result"


def _walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_schema_is_structural_and_documented():
    schema = moedeployment_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "const", "title"):
            assert forbidden not in node, f"{forbidden} at {path}"
        assert node.get("additionalProperties") is not False, path
        if node.get("type") == "object" and "properties" in node and path.startswith("$.properties.spec"):
            for name, prop in node["properties"].items():
                assert prop.get("description"), f"{path}.{name} has no description"
        assert not isinstance(node.get("default"), (dict, list)), f"object default at {path}"


def test_crd_surface():
    crd = moedeployment_crd()
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["moed"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Aggregated", "Prefill", "Decode", "GPUs", "Feasible", "Age"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    roles = spec["properties"]["roles"]
    assert any("not both" in r["message"] for r in roles["x-kubernetes-validations"])
    tensor = roles["properties"]["decode"]["properties"]["parallelism"]["properties"]["tensor"]
    assert (tensor["type"], tensor["minimum"], tensor["default"]) == ("integer", 1, 1)
    assert spec["properties"]["engine"]["properties"]["kind"]["enum"] == ["vllm", "sglang"]
    assert spec["properties"]["validation"]["enum"] == ["Enforce", "Warn"]


def test_scaler_crd_has_a_scale_subresource():
    from moe_operator.api.crd import moerolescaler_crd

    version = moerolescaler_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                                "labelSelectorPath": ".status.selector"}
