"""Test builders for MoEDeployment specs (after LeaderWorkerSet's test/wrappers): start from a small
valid plan and override only what a test is about."""

from __future__ import annotations

import copy
from typing import Any

from moe_operator.api import MoEDeployment, MoEDeploymentSpec
from moe_operator.capacity.catalog import resolve_model
from moe_operator.capacity.layout import RoleLayout, role_layout
from moe_operator.capacity.types import ModelShape

BASE: dict[str, Any] = {
    "apiVersion": "moe.inference.io/v1alpha1",
    "kind": "MoEDeployment",
    "metadata": {"name": "t"},
    "spec": {
        "model": {"preset": "mixtral-8x7b"},
        "hardware": {"gpu": "H100-SXM", "gpusPerNode": 8},
        "workload": {"inputTokens": {"min": 128, "mean": 2048, "max": 8192},
                     "outputTokens": {"min": 1, "mean": 256, "max": 1024}},
        "roles": {"aggregated": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 16}},
    },
}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; a None value deletes the key."""
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def doc(**spec_overrides: Any) -> dict[str, Any]:
    """A MoEDeployment document with spec fields overridden (camelCase keys)."""
    return merge(BASE, {"spec": spec_overrides})


def spec(**spec_overrides: Any) -> MoEDeploymentSpec:
    return MoEDeployment.model_validate(doc(**spec_overrides)).spec


def disaggregated(prefill: dict[str, Any], decode: dict[str, Any], **spec_overrides: Any) -> MoEDeploymentSpec:
    d = doc(**spec_overrides)
    d["spec"]["roles"] = {"prefill": prefill, "decode": decode}
    return MoEDeployment.model_validate(d).spec


def model(preset: str, **fields: Any) -> ModelShape:
    from moe_operator.api import ModelSpec

    return resolve_model(ModelSpec.model_validate({"preset": preset, **fields}))


def layout(preset: str, role: str = "aggregated", gpus_per_node: int = 8, **role_fields: Any) -> tuple[ModelShape, RoleLayout]:
    """A model shape and the layout of one replica of `role` with the given RoleSpec fields."""
    from moe_operator.api import RoleSpec

    m = model(preset)
    return m, role_layout(m, role, RoleSpec.model_validate(role_fields), gpus_per_node)
