"""Plain value types the capacity model computes with: a resolved GPU, model shape and efficiencies.

Every quantity carries its unit in its name. Instances are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB_BYTES = 1024**3
MIB_BYTES = 1024**2


@dataclass(frozen=True)
class GPU:
    """One GPU's figures, per GPU, dense peaks."""

    name: str
    memory_bytes: int
    memory_bandwidth_bytes_per_second: float
    peak_flops_per_second: dict[str, float]  # by compute class: bf16, fp8, int8, fp4 (0 = unsupported)
    nvlink_bytes_per_second: float  # per direction
    network_bytes_per_second: float  # scale-out, per GPU
    node_label: str

    def peak_flops_for(self, compute_class: str) -> float:
        """Peak dense FLOP/s for a compute class, falling back to BF16 where the GPU lacks it (pure)."""
        peak = self.peak_flops_per_second.get(compute_class, 0.0)
        return peak if peak > 0 else self.peak_flops_per_second["bf16"]


@dataclass(frozen=True)
class MLAShape:
    kv_lora_rank: int
    q_lora_rank: int
    rope_head_dim: int
    nope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class ModelShape:
    """A fully resolved architecture (no optional fields) plus its precisions."""

    name: str
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    dense_layers: int
    dense_intermediate_size: int
    experts: int
    shared_experts: int
    shared_expert_intermediate_size: int
    experts_per_token: int
    expert_intermediate_size: int
    attention: str  # "gqa" | "mla"
    mla: MLAShape | None
    sliding_window_layers: int
    sliding_window_tokens: int
    weight_bytes_per_param: float
    expert_weight_bytes_per_param: float
    kv_cache_bytes_per_value: float
    compute_class: str
    expert_compute_class: str
    weight_dtype: str
    expert_weight_dtype: str
    kv_cache_dtype: str

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers

    @property
    def full_attention_layers(self) -> int:
        return self.layers - self.sliding_window_layers


@dataclass(frozen=True)
class Efficiency:
    """Achievable fractions of peak (0..1] and fixed per-GPU runtime memory."""

    compute: float
    memory_bandwidth: float
    nvlink: float
    network: float
    runtime_overhead_bytes: int

    @staticmethod
    def ideal() -> "Efficiency":
        """100% of every peak, no runtime overhead: the favourable bound (pure)."""
        return Efficiency(1.0, 1.0, 1.0, 1.0, 0)
