"""GPU, model and dtype catalogs, read from the package's own data files (read-only, cached).

Resolution functions turn a spec (catalog name plus overrides) into the plain value types of
`types.py`. They raise `CatalogError` with the spec field path for unknown or incomplete input.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from ..api import EfficiencySpec, HardwareSpec, ModelSpec
from .types import GPU, MIB_BYTES, Efficiency, MLAShape, ModelShape


class CatalogError(ValueError):
    """A spec names something the catalog lacks, or leaves a required field unset."""

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"{field_path}: {reason}")
        self.field_path = field_path
        self.reason = reason


@cache
def _load(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def gpu_catalog() -> dict[str, Any]:
    return _load("gpus.yaml")


def model_catalog() -> dict[str, Any]:
    return _load("models.yaml")


def dtype_catalog() -> dict[str, Any]:
    return _load("dtypes.yaml")


def resolve_gpu(hardware: HardwareSpec) -> GPU:
    """The GPU a hardware spec names, from the catalog or its custom block."""
    if hardware.gpu == "custom":
        c = hardware.custom
        if c is None:
            raise CatalogError("spec.hardware.custom", "required when hardware.gpu is 'custom'")
        return GPU(
            name="custom",
            memory_bytes=c.memory_gib * 1024**3,
            memory_bandwidth_bytes_per_second=c.memory_bandwidth_gbps * 1e9,
            peak_flops_per_second={
                "bf16": c.bf16_tflops * 1e12, "fp8": c.fp8_tflops * 1e12,
                "int8": c.fp8_tflops * 1e12, "fp4": c.fp4_tflops * 1e12,
            },
            nvlink_bytes_per_second=c.nvlink_gbps * 1e9,
            network_bytes_per_second=c.network_gbps * 1e9 / 8,
            node_label=c.node_label_value,
        )
    entry = gpu_catalog().get(hardware.gpu)
    if entry is None:
        known = ", ".join(sorted(gpu_catalog()))
        raise CatalogError("spec.hardware.gpu", f"unknown GPU {hardware.gpu!r}; known: {known}, or 'custom'")
    return GPU(
        name=hardware.gpu,
        memory_bytes=entry["memoryMiB"] * MIB_BYTES,
        memory_bandwidth_bytes_per_second=entry["memoryBandwidthGBps"] * 1e9,
        peak_flops_per_second={k: v * 1e12 for k, v in entry["tflops"].items()},
        nvlink_bytes_per_second=entry["nvlinkGBps"] * 1e9,
        network_bytes_per_second=entry["networkGbps"] * 1e9 / 8,
        node_label=entry["nodeLabel"],
    )


_REQUIRED = (
    "layers", "hiddenSize", "attentionHeads", "vocabSize", "experts", "expertsPerToken",
    "expertIntermediateSize",
)
_DEFAULTS: dict[str, Any] = {
    "tiedEmbeddings": False, "denseLayers": 0, "denseIntermediateSize": 0, "sharedExperts": 0,
    "attention": "gqa", "slidingWindowLayers": 0, "slidingWindowTokens": 0,
}


def _merged_architecture(model: ModelSpec) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Preset fields overlaid with the explicit architecture's set fields (camelCase keys)."""
    preset: dict[str, Any] = {}
    name = model.preset or "custom"
    if model.preset is not None:
        preset = model_catalog().get(model.preset) or {}
        if not preset:
            known = ", ".join(sorted(model_catalog()))
            raise CatalogError("spec.model.preset", f"unknown model preset {model.preset!r}; known: {known}")
    arch = dict(_DEFAULTS) | dict(preset.get("architecture", {}))
    if model.architecture is not None:
        arch |= model.architecture.model_dump(by_alias=True, exclude_none=True)
    return name, preset, arch


def _dtype(field_path: str, name: str) -> dict[str, Any]:
    entry = dtype_catalog().get(name)
    if entry is None:
        raise CatalogError(field_path, f"unknown dtype {name!r}")
    return entry


def resolve_model(model: ModelSpec) -> ModelShape:
    """The model shape a model spec describes: preset, overridden field by field by `architecture`."""
    name, preset, a = _merged_architecture(model)
    for key in _REQUIRED:
        if a.get(key) is None:
            raise CatalogError(f"spec.model.architecture.{key}", "required (no preset supplies it)")
    heads = a["attentionHeads"]
    mla = None
    if a["attention"] == "mla":
        m = a.get("mla")
        if m is None:
            raise CatalogError("spec.model.architecture.mla", "required when attention is mla")
        mla = MLAShape(m["kvLoraRank"], m["qLoraRank"], m["ropeHeadDim"], m["nopeHeadDim"], m["vHeadDim"])
    elif a.get("headDim") is None and a["hiddenSize"] % heads:
        raise CatalogError("spec.model.architecture.headDim", "required when hiddenSize is not a multiple of attentionHeads")
    weight_dtype = model.weight_dtype or preset.get("weightDtype", "bf16")
    expert_dtype = model.expert_weight_dtype or preset.get("expertWeightDtype", weight_dtype)
    kv_dtype = model.kv_cache_dtype or "bf16"
    weights = _dtype("spec.model.weightDtype", weight_dtype)
    experts = _dtype("spec.model.expertWeightDtype", expert_dtype)
    kv = _dtype("spec.model.kvCacheDtype", kv_dtype)
    if a["denseLayers"] >= a["layers"]:
        raise CatalogError("spec.model.architecture.denseLayers", f"{a['denseLayers']} dense layers leave no MoE layer of {a['layers']}")
    if a["denseLayers"] > 0 and a["denseIntermediateSize"] <= 0:
        raise CatalogError("spec.model.architecture.denseIntermediateSize", "must be > 0 when denseLayers > 0")
    if a["expertsPerToken"] > a["experts"]:
        raise CatalogError("spec.model.architecture.expertsPerToken", f"top-k {a['expertsPerToken']} exceeds {a['experts']} experts")
    if a["slidingWindowLayers"] > a["layers"]:
        raise CatalogError("spec.model.architecture.slidingWindowLayers", "exceeds layers")
    return ModelShape(
        name=name,
        layers=a["layers"],
        hidden_size=a["hiddenSize"],
        attention_heads=heads,
        kv_heads=a.get("kvHeads") or heads,
        head_dim=a.get("headDim") or a["hiddenSize"] // heads,
        vocab_size=a["vocabSize"],
        tied_embeddings=bool(a["tiedEmbeddings"]),
        dense_layers=a["denseLayers"],
        dense_intermediate_size=a["denseIntermediateSize"],
        experts=a["experts"],
        shared_experts=a["sharedExperts"],
        shared_expert_intermediate_size=a.get("sharedExpertIntermediateSize") or a["expertIntermediateSize"],
        experts_per_token=a["expertsPerToken"],
        expert_intermediate_size=a["expertIntermediateSize"],
        attention=a["attention"],
        mla=mla,
        sliding_window_layers=a["slidingWindowLayers"],
        sliding_window_tokens=a["slidingWindowTokens"],
        weight_bytes_per_param=float(weights["bytes"]),
        expert_weight_bytes_per_param=float(experts["bytes"]),
        kv_cache_bytes_per_value=float(kv["kvCacheBytes"]),
        compute_class=str(weights["computeClass"]),
        expert_compute_class=str(experts["computeClass"]),
        weight_dtype=weight_dtype,
        expert_weight_dtype=expert_dtype,
        kv_cache_dtype=kv_dtype,
    )


def resolve_efficiency(spec: EfficiencySpec) -> Efficiency:
    """Percent integers of the spec as fractions (pure)."""
    return Efficiency(
        compute=spec.compute_percent / 100,
        memory_bandwidth=spec.memory_bandwidth_percent / 100,
        nvlink=spec.nvlink_percent / 100,
        network=spec.network_percent / 100,
        runtime_overhead_bytes=spec.runtime_overhead_mib * MIB_BYTES,
    )
