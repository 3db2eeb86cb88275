"""The `spec.hardware` part of a MoEDeployment: GPU kind, node shape and GPU budget."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import KubeModel


class CustomGPU(KubeModel):
    """A GPU that is not in the catalog, described by its per-GPU figures (dense, no sparsity)."""

    memory_gib: int = Field(..., alias="memoryGiB", ge=1, le=4096, description="HBM capacity per GPU, in GiB.")
    memory_bandwidth_gbps: int = Field(..., alias="memoryBandwidthGBps", ge=1, le=100000, description="Peak HBM bandwidth per GPU, in GB/s (10^9 bytes per second).")
    bf16_tflops: int = Field(..., alias="bf16TFLOPS", ge=1, le=100000, description="Peak dense BF16 throughput per GPU, in TFLOP/s.")
    fp8_tflops: int = Field(0, alias="fp8TFLOPS", ge=0, le=100000, description="Peak dense FP8 throughput per GPU, in TFLOP/s; 0 if unsupported.")
    fp4_tflops: int = Field(0, alias="fp4TFLOPS", ge=0, le=100000, description="Peak dense FP4 throughput per GPU, in TFLOP/s; 0 if unsupported.")
    nvlink_gbps: int = Field(..., alias="nvlinkGBps", ge=1, le=100000, description="NVLink bandwidth per GPU per direction, in GB/s.")
    network_gbps: int = Field(..., alias="networkGbps", ge=1, le=100000, description="Scale-out network bandwidth per GPU, in Gb/s (bits).")
    node_label_value: str = Field("custom", alias="nodeLabelValue", max_length=63, description="Value of the nvidia.com/gpu.product node label that selects this GPU.")


class HardwareSpec(KubeModel):
    """Where the deployment runs."""

    model_config = KubeModel.model_config | {"json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "self.gpu != 'custom' || has(self.custom)", "message": "hardware.gpu is 'custom' but hardware.custom is missing"},
    ]}}

    gpu: str = Field("H100-SXM", min_length=1, max_length=63, description="GPU name from the catalog (moectl catalog gpus), or 'custom' to use the custom block.")
    custom: CustomGPU | None = Field(None, description="Figures of a GPU outside the catalog; required when gpu is 'custom'.")
    gpus_per_node: int = Field(8, alias="gpusPerNode", ge=1, le=64, description="GPUs per node; a pipeline stage with more GPUs is split into one pod per node.")
    max_gpus: int | None = Field(None, alias="maxGPUs", ge=1, le=100000, description="GPU budget for the whole deployment (all roles and replicas).")

    @model_validator(mode="after")
    def _custom_when_custom(self) -> "HardwareSpec":
        if self.gpu == "custom" and self.custom is None:
            raise ValueError("hardware.gpu is 'custom' but hardware.custom is missing")
        return self
