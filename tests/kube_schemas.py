"""JSON schemas for kubeconform, generated offline from a running API server's OpenAPI v3 documents.

kubeconform normally downloads schemas; here they come from the local API server (which also publishes the
schemas of every installed CRD). One file per kind, `<dir>/<group>/<kind>_<version>.json`, each carrying the
components it references. Strict: objects that list their properties get `additionalProperties: false`, so an
unknown or misspelt field fails, as in kubeconform's own -strict schemas.
"""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any, Callable

LOCATION = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def generate(get: Callable[[str], dict[str, Any]], group_versions: set[str], out: pathlib.Path) -> list[pathlib.Path]:
    """Write schemas for every kind of the given group/versions ("v1", "apps/v1", ...); returns the files.
    `get` fetches an API server path as JSON (e.g. through `kubectl get --raw`)."""
    index = get("/openapi/v3")["paths"]
    written = []
    for gv in sorted(group_versions):
        key = f"api/{gv}" if "/" not in gv else f"apis/{gv}"
        if key not in index:
            raise KeyError(f"the API server serves no {gv}")
        components = get(index[key]["serverRelativeURL"])["components"]["schemas"]
        strict = {name: _strict(copy.deepcopy(s)) for name, s in components.items()}
        for name, schema in strict.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                if (f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]) != gv:
                    continue
                doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "components": {"schemas": strict}}
                # kubeconform's {{ .Group }} is the apiVersion's first part: the version itself for the core group
                path = out / (gvk["group"] or gvk["version"]) / f"{gvk['kind'].lower()}_{gvk['version']}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(doc))
                written.append(path)
    return written
