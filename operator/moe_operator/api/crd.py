"""Generate the MoEDeployment CustomResourceDefinition from the pydantic models. Pure.

pydantic's JSON schema is turned into a Kubernetes structural schema: references inlined, optional
fields' `anyOf [X, null]` collapsed to X, `const` to a one-value enum, titles, object and array
defaults and `additionalProperties: false` dropped (the API server prunes unknown fields itself), scalar
defaults kept (so CEL rules can read defaulted fields), and the CEL rules the models carry
(`x-kubernetes-validations`) kept where they are.
"""

from __future__ import annotations

from typing import Any

from .deployment import GROUP, KIND, VERSION, MoEDeploymentSpec
from .scaler import SCALER_KIND, SCALER_PLURAL, MoERoleScalerSpec, MoERoleScalerStatus
from .status import MoEDeploymentStatus

PLURAL = "moedeployments"
CRD_NAME = f"{PLURAL}.{GROUP}"
_DROP = {"title", "examples"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "default" and (value is None or isinstance(value, (dict, list))):
            continue  # scalar defaults stay: the API server applies them before CEL rules read the fields
        if key == "const":
            out["enum"] = [value]
            out.setdefault("type", "string")
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
            continue
        out[key] = _structural(value, defs)
    return out


def structural_schema(model: type) -> dict[str, Any]:
    """The model's JSON schema (by alias, validation mode) as a structural OpenAPI v3 schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Pending, Infeasible, Deploying, Ready or Degraded."},
    {"name": "Aggregated", "type": "string", "jsonPath": ".status.aggregated", "description": "Aggregated replica groups ready/desired."},
    {"name": "Prefill", "type": "string", "jsonPath": ".status.prefill", "description": "Prefill replica groups ready/desired."},
    {"name": "Decode", "type": "string", "jsonPath": ".status.decode", "description": "Decode replica groups ready/desired."},
    {"name": "GPUs", "type": "integer", "jsonPath": ".status.gpus", "description": "GPUs requested by existing pods."},
    {"name": "Feasible", "type": "boolean", "jsonPath": ".status.feasible", "description": "Capacity-model verdict."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def moedeployment_crd() -> dict[str, Any]:
    """The CustomResourceDefinition object for MoEDeployment (pure)."""
    spec_schema = structural_schema(MoEDeploymentSpec)
    status_schema = structural_schema(MoEDeploymentStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/name": "moe-operator", "app.kubernetes.io/part-of": "moe-operator"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "moedeployment", "kind": KIND, "listKind": f"{KIND}List",
                      "shortNames": ["moed"], "categories": ["moe"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "MoEDeployment describes a Mixture-of-Experts inference deployment: the model, its parallel plan "
                                   "per role, the hardware and the targets. The operator validates the plan with its capacity model "
                                   "and runs one gang of GPU pods per role replica.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string", "description": "APIVersion of this object."},
                        "kind": {"type": "string", "description": "Kind of this object."},
                        "metadata": {"type": "object"},
                        "spec": spec_schema,
                        "status": status_schema,
                    },
                }},
            }],
        },
    }


def kopf_peering_crds() -> list[dict[str, Any]]:
    """kopf's peering resources (kopf.dev/v1), needed only to run operator replicas as active/standby peers.
    kopf keeps the list of live peers in `status`, written with a plain patch (no status subresource)."""
    out = []
    for kind, plural, scope in (("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"), ("KopfPeering", "kopfpeerings", "Namespaced")):
        out.append({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.kopf.dev", "labels": {"app.kubernetes.io/part-of": "moe-operator"}},
            "spec": {"group": "kopf.dev", "scope": scope,
                     "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "x-kubernetes-preserve-unknown-fields": True,
                         "description": "Peers of kopf-based operators: which replica is active (highest priority) and which stand by."}}}]},
        })
    return out


def moerolescaler_crd() -> dict[str, Any]:
    """The MoERoleScaler CRD, with the scale subresource HPA, KEDA and kubectl scale use (pure)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{SCALER_PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/name": "moe-operator", "app.kubernetes.io/part-of": "moe-operator"}},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"plural": SCALER_PLURAL, "singular": "moerolescaler", "kind": SCALER_KIND, "listKind": f"{SCALER_KIND}List",
                      "shortNames": ["moers"], "categories": ["moe"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                                                          "labelSelectorPath": ".status.selector"}},
                "additionalPrinterColumns": [
                    {"name": "Deployment", "type": "string", "jsonPath": ".spec.deployment"},
                    {"name": "Role", "type": "string", "jsonPath": ".spec.role"},
                    {"name": "Mode", "type": "string", "jsonPath": ".status.mode"},
                    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Current", "type": "integer", "jsonPath": ".status.replicas"},
                    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "MoERoleScaler scales one role of a MoEDeployment through its scale subresource.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string", "description": "APIVersion of this object."},
                        "kind": {"type": "string", "description": "Kind of this object."},
                        "metadata": {"type": "object"},
                        "spec": structural_schema(MoERoleScalerSpec),
                        "status": structural_schema(MoERoleScalerStatus),
                    },
                }},
            }],
        },
    }
