"""Catalog figures and preset parameter counts pinned to their publishers."""

import pytest

from moe_operator.api import HardwareSpec, ModelSpec
from moe_operator.capacity.catalog import CatalogError, gpu_catalog, model_catalog, resolve_gpu, resolve_model
from moe_operator.capacity.memory import kv_cache_bytes_per_token
from moe_operator.capacity.parameters import param_totals
from tests.builders import model

# NVIDIA datasheets (A100 SXM4 80GB, H100 SXM5, H200 SXM, HGX B200), per GPU, dense.
DATASHEET = {
    "A100-SXM-80GB": {"memoryBandwidthGBps": 2039, "bf16": 312, "nvlinkGBps": 300},
    "H100-SXM": {"memoryBandwidthGBps": 3350, "bf16": 989, "fp8": 1979, "nvlinkGBps": 450},
    "H800": {"memoryBandwidthGBps": 3350, "bf16": 989, "fp8": 1979, "nvlinkGBps": 200},
    "H200-SXM": {"memoryBandwidthGBps": 4800, "bf16": 989, "fp8": 1979, "nvlinkGBps": 450},
    "B200": {"memoryBandwidthGBps": 8000, "bf16": 2250, "fp8": 4500, "fp4": 9000, "nvlinkGBps": 900},
}


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_gpu_catalog_matches_datasheets(name):
    entry, sheet = gpu_catalog()[name], DATASHEET[name]
    assert entry["memoryBandwidthGBps"] == sheet["memoryBandwidthGBps"]
    assert entry["nvlinkGBps"] == sheet["nvlinkGBps"]
    for dtype in ("bf16", "fp8", "fp4"):
        if dtype in sheet:
            assert entry["tflops"][dtype] == sheet[dtype]


def test_gpu_units_are_converted_once():
    gpu = resolve_gpu(HardwareSpec(gpu="H100-SXM"))
    assert gpu.memory_bytes == 81559 * 1024**2  # nvidia-smi: 81559 MiB
    assert gpu.memory_bandwidth_bytes_per_second == 3.35e12
    assert gpu.network_bytes_per_second == 400e9 / 8  # 400 Gb/s is 50 GB/s, not 400 GB/s
    assert gpu.peak_flops_for("fp8") == 1979e12
    # A100 has no FP8 tensor cores: FP8 weights run at the BF16 peak.
    assert resolve_gpu(HardwareSpec(gpu="A100-SXM-80GB")).peak_flops_for("fp8") == 312e12


@pytest.mark.parametrize("preset", sorted(model_catalog()))
def test_preset_parameter_totals_match_publisher(preset):
    published = model_catalog()[preset]["published"]
    totals = param_totals(model(preset))
    active = totals.active_matmul_params if published.get("activeExcludesInputEmbedding") else totals.active_params
    assert totals.total_params == pytest.approx(published["totalParamsB"] * 1e9, rel=0.03)
    assert active == pytest.approx(published["activeParamsB"] * 1e9, rel=0.03)


def test_kv_cache_per_token_matches_published_figures():
    # DeepSeek-V3: MLA caches kv_lora_rank + rope = 576 values per layer; DeepSeek publishes 70.272 KB per token (BF16).
    assert kv_cache_bytes_per_token(model("deepseek-v3")) == 61 * 576 * 2 == 70_272
    # Mixtral-8x7B GQA: 32 layers x 2 (K and V) x 8 heads x 128 dims x 2 bytes = 128 KiB.
    assert kv_cache_bytes_per_token(model("mixtral-8x7b")) == 131_072
    # An FP8 KV cache halves it.
    assert kv_cache_bytes_per_token(model("mixtral-8x7b", kvCacheDtype="fp8")) == 65_536


def test_architecture_overrides_preset_field_by_field():
    m = resolve_model(ModelSpec.model_validate({"preset": "mixtral-8x7b", "architecture": {"layers": 16}}))
    assert (m.layers, m.hidden_size, m.experts) == (16, 4096, 8)


def test_unknown_names_report_the_field_path():
    with pytest.raises(CatalogError) as e:
        resolve_model(ModelSpec(preset="mixtral-9x9b"))
    assert e.value.field_path == "spec.model.preset" and "mixtral-8x7b" in e.value.reason
    with pytest.raises(CatalogError) as e:
        resolve_gpu(HardwareSpec(gpu="H900"))
    assert e.value.field_path == "spec.hardware.gpu"


def test_architecture_without_preset_must_be_complete():
    with pytest.raises(CatalogError) as e:
        resolve_model(ModelSpec.model_validate({"architecture": {"layers": 4, "hiddenSize": 512}}))
    assert e.value.field_path.startswith("spec.model.architecture.")


def test_custom_gpu():
    hw = HardwareSpec.model_validate({"gpu": "custom", "custom": {
        "memoryGiB": 64, "memoryBandwidthGBps": 1800, "bf16TFLOPS": 400, "fp8TFLOPS": 800, "nvlinkGBps": 450, "networkGbps": 400}})
    gpu = resolve_gpu(hw)
    assert gpu.memory_bytes == 64 * 2**30 and gpu.peak_flops_for("fp8") == 800e12 and gpu.peak_flops_for("fp4") == 400e12
