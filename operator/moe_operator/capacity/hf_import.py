"""Translate a Hugging Face `config.json` (already parsed) into a spec `architecture` block. Pure.

Understands the Mixtral, Qwen3-MoE, DeepSeek-V2/V3 and gpt-oss config keys. Raises
`HFConfigError` naming the missing key when a required one is absent.
"""

from __future__ import annotations

from typing import Any


class HFConfigError(ValueError):
    pass


def _first(cfg: dict[str, Any], *keys: str, default: Any = None, required: bool = True) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    if required and default is None:
        raise HFConfigError(f"config.json has none of {', '.join(keys)}")
    return default


def architecture_from_hf(cfg: dict[str, Any]) -> dict[str, Any]:
    """camelCase `architecture` fields for a MoEDeployment."""
    heads = _first(cfg, "num_attention_heads")
    hidden = _first(cfg, "hidden_size")
    arch: dict[str, Any] = {
        "layers": _first(cfg, "num_hidden_layers"),
        "hiddenSize": hidden,
        "attentionHeads": heads,
        "kvHeads": _first(cfg, "num_key_value_heads", default=heads),
        "headDim": _first(cfg, "head_dim", default=hidden // heads),
        "vocabSize": _first(cfg, "vocab_size"),
        "tiedEmbeddings": bool(cfg.get("tie_word_embeddings", False)),
        "experts": _first(cfg, "num_local_experts", "num_experts", "n_routed_experts"),
        "expertsPerToken": _first(cfg, "num_experts_per_tok", "num_experts_per_token", "experts_per_token"),
        "expertIntermediateSize": _first(cfg, "moe_intermediate_size", "intermediate_size"),
        "sharedExperts": int(cfg.get("n_shared_experts") or 0),
        "denseLayers": int(cfg.get("first_k_dense_replace") or 0),
        "denseIntermediateSize": int(cfg.get("intermediate_size") or 0) if cfg.get("first_k_dense_replace") else 0,
        "attention": "gqa",
    }
    if cfg.get("shared_expert_intermediate_size"):
        arch["sharedExperts"] = max(arch["sharedExperts"], 1)
        arch["sharedExpertIntermediateSize"] = cfg["shared_expert_intermediate_size"]
    if cfg.get("kv_lora_rank"):
        arch["attention"] = "mla"
        arch["mla"] = {
            "kvLoraRank": cfg["kv_lora_rank"], "qLoraRank": int(cfg.get("q_lora_rank") or 0),
            "ropeHeadDim": _first(cfg, "qk_rope_head_dim"), "nopeHeadDim": _first(cfg, "qk_nope_head_dim"),
            "vHeadDim": _first(cfg, "v_head_dim"),
        }
        arch.pop("headDim")
    layer_types = cfg.get("layer_types") or []
    sliding = sum(1 for t in layer_types if t == "sliding_attention")
    if sliding and cfg.get("sliding_window"):
        arch["slidingWindowLayers"] = sliding
        arch["slidingWindowTokens"] = cfg["sliding_window"]
    return arch
