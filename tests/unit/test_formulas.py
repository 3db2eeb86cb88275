"""Each formula pinned to a hand calculation written out in the test."""

import math

import pytest

from moe_operator.capacity import communication as C
from moe_operator.capacity import parameters as P
from moe_operator.capacity.compute import (
    attention_score_flops_per_token_per_layer,
    decode_mean_context_tokens,
    model_flops_per_token,
    prefill_mean_context_tokens,
)
from moe_operator.capacity.layout import vllm_stage_layer_counts
from moe_operator.capacity.memory import (
    kv_cache_bytes_per_sequence_per_gpu,
    kv_tensor_share,
    stage_memory,
    weight_bytes_per_gpu,
)
from moe_operator.capacity.performance import md1_waiting_seconds
from moe_operator.capacity.placement import expert_instances_per_gpu, experts_per_gpu_per_layer, stage_expert_map
from moe_operator.capacity.timing import expected_distinct_experts_fraction
from moe_operator.capacity.types import Efficiency
from tests.builders import layout, model


def test_mixtral_attention_and_expert_params():
    m = model("mixtral-8x7b")
    # q 4096x4096 + k,v 4096x1024 each + o 4096x4096; norms 2x4096
    a = P.attention_params_per_layer(m)
    assert a.tensor_sharded_params == 4096 * 4096 * 2 + 2 * 4096 * 1024
    assert a.replicated_params == 2 * 4096
    assert P.routed_expert_params(m) == 3 * 4096 * 14336


def test_deepseek_mla_params():
    m = model("deepseek-v3")
    a = P.attention_params_per_layer(m)
    q_down = 7168 * 1536 + 1536
    kv_down = 7168 * (512 + 64) + 512
    assert a.replicated_params == q_down + kv_down + 2 * 7168
    assert a.tensor_sharded_params == 1536 * 128 * 192 + 512 * 128 * 256 + 128 * 128 * 7168


def test_flops_are_two_per_multiply_add():
    m = model("mixtral-8x7b")
    f = model_flops_per_token(m, context_tokens=0)
    assert f.total_flops == 2 * P.param_totals(m).active_matmul_params
    # attention: QK^T and AV each 2 x heads x head_dim per context token per layer
    assert attention_score_flops_per_token_per_layer(m, 1000) == 4 * 32 * 128 * 1000
    assert model_flops_per_token(m, 1000).total_flops - f.total_flops == 32 * 4 * 32 * 128 * 1000


def test_sliding_window_layers_see_only_their_window():
    m = model("gpt-oss-120b")
    full_only = 18 * attention_score_flops_per_token_per_layer(m, 4096)
    windowed = 18 * attention_score_flops_per_token_per_layer(m, 128)
    assert model_flops_per_token(m, 4096).total_flops - model_flops_per_token(m, 0).total_flops == full_only + windowed


def test_mean_contexts():
    assert prefill_mean_context_tokens(2047) == 1024
    assert decode_mean_context_tokens(2048, 255) == 2048 + 128


def test_vllm_stage_split_gives_remainder_to_stages_before_the_last():
    assert vllm_stage_layer_counts(61, 2) == [31, 30]
    assert vllm_stage_layer_counts(61, 4) == [15, 15, 16, 15]
    assert vllm_stage_layer_counts(32, 4) == [8, 8, 8, 8]
    assert sum(vllm_stage_layer_counts(94, 8)) == 94


def test_weights_shard_by_tensor_and_expert_not_by_data_or_sequence():
    _, tp2 = layout("mixtral-8x7b", parallelism={"tensor": 2})
    m, tp2_dp2 = layout("mixtral-8x7b", parallelism={"tensor": 2, "data": 2, "expert": 2})
    _, tp2_sp2 = layout("mixtral-8x7b", parallelism={"tensor": 2, "sequence": 2})
    attn = (4096 * 4096 * 2 + 2 * 4096 * 1024) / 2 + 2 * 4096  # sharded by tensor, norms replicated
    experts = 8 * 3 * 4096 * 14336
    embed = 32000 * 4096 * 2 / 2  # embedding + LM head, vocab-parallel over tensor
    router = 4096 * 8 * 32 * 2  # BF16
    per_gpu_tp2 = (attn * 32 + experts * 32 / 2 + embed) * 2 + router
    assert weight_bytes_per_gpu(m, tp2, tp2.stages[0]) == pytest.approx(per_gpu_tp2)
    # data=2 doubles the stage's GPUs for experts (expert=2 x expertTensor=2) but replicates attention
    per_gpu_tp2_dp2 = (attn * 32 + experts * 32 / 4 + embed) * 2 + router
    assert weight_bytes_per_gpu(m, tp2_dp2, tp2_dp2.stages[0]) == pytest.approx(per_gpu_tp2_dp2)
    # sequence=2 likewise: experts over 4 GPUs, nothing else changes
    assert weight_bytes_per_gpu(m, tp2_sp2, tp2_sp2.stages[0]) == pytest.approx(per_gpu_tp2_dp2)


def test_pipeline_splits_layers_and_places_embedding_and_head():
    m, lay = layout("deepseek-v3", parallelism={"tensor": 8, "pipeline": 2, "expert": 8})
    first, last = lay.stages
    assert (first.layers, first.dense_layers, first.moe_layers) == (31, 3, 28)
    assert (last.layers, last.dense_layers, last.moe_layers) == (30, 0, 30)
    assert first.has_embedding and not first.has_lm_head and last.has_lm_head
    assert experts_per_gpu_per_layer(m, lay) == 32
    assert expert_instances_per_gpu(m, lay, first) == 32 * 28
    assert expert_instances_per_gpu(m, lay, last) == 32 * 30


def test_kv_cache_gqa_splits_heads_then_replicates():
    m = model("qwen3-235b-a22b")  # 4 KV heads
    assert kv_tensor_share(m, 2) == 0.5
    assert kv_tensor_share(m, 4) == 0.25
    assert kv_tensor_share(m, 8) == 0.25  # 8 ranks, 4 heads: each rank keeps one head
    assert kv_tensor_share(model("deepseek-v3"), 8) == 1.0  # MLA latent is replicated over tensor ranks


def test_kv_cache_per_sequence_with_sequence_parallel():
    m, lay = layout("mixtral-8x7b", parallelism={"tensor": 2, "sequence": 2})
    per_layer_token = 2 * 8 * 128 * 2
    assert kv_cache_bytes_per_sequence_per_gpu(m, lay, lay.stages[0], 10_001) == math.ceil(10_001 / 2) * 32 * per_layer_token / 2


def test_kv_cache_concurrency_divides_over_data_parallel_ranks():
    m, lay = layout("deepseek-v3", parallelism={"tensor": 1, "data": 8, "expert": 8}, maxConcurrentSequences=20)
    mem = stage_memory(m, lay, lay.stages[0], Efficiency.ideal(), 20, 4096)
    assert mem.kv_cache_bytes == 3 * 4096 * 61 * 576 * 2  # ceil(20 / 8) = 3 sequences on the busiest rank


def test_tensor_all_reduce_moves_two_n_minus_one_over_n():
    links = C.Links(nvlink_bytes_per_second=100e9, network_bytes_per_second=10e9)
    assert C.all_reduce_seconds(1e9, 8, 8, links) == pytest.approx(2 * 7 / 8 * 1e9 / 100e9)
    assert C.all_reduce_seconds(1e9, 16, 8, links) == pytest.approx(2 * 15 / 16 * 1e9 / 10e9)  # spans nodes
    assert C.all_reduce_seconds(1e9, 1, 8, links) == 0.0


def test_deepseek_decode_all_to_all_bound():
    # DeepSeek-V3 paper ("Insights into DeepSeek-V3", ISCA 2025, sec. 2.3.2): (1 B + 2 B) x 32 tokens x 9 experts
    # x 7K / 50 GB/s = 120.96 us per layer for dispatch (FP8) + combine (BF16) over 400 Gb/s; the paper rounds
    # the hidden size 7168 to 7K = 7000.
    sent = C.expert_all_to_all_bytes_per_gpu(32, 9, 7000, dispatch_bytes_per_value=1, combine_bytes_per_value=2)
    assert sent / 50e9 == pytest.approx(120.96e-6, rel=1e-9)
    # 61 layers x 2 micro-batches x 120.96 us: "a TPOT of 14.76 ms".
    assert 61 * 2 * sent / 50e9 == pytest.approx(14.76e-3, rel=1e-3)


def test_all_to_all_copies_by_link():
    # decode: 8 experts spread over 32 GPUs on 4 nodes: 7/32 of copies stay on NVLink, 24/32 cross the network
    c = C.per_expert_copies(8, 32, 8)
    assert (c.nvlink, c.network) == (8 * 7 / 32, 8 * 24 / 32)
    # prefill: one network copy per remote node hit: 3 x (1 - (3/4)^8)
    d = C.node_deduplicated_copies(8, 32, 8)
    assert d.network == pytest.approx(3 * (1 - 0.75**8)) and d.network < c.network
    # inside one node both are the same and nothing crosses the network
    assert C.node_deduplicated_copies(8, 8, 8) == C.per_expert_copies(8, 8, 8) and C.per_expert_copies(8, 8, 8).network == 0


def test_expected_distinct_experts():
    m = model("deepseek-v3")  # 8 of 256
    assert expected_distinct_experts_fraction(m, 1) == pytest.approx(8 / 256)
    assert expected_distinct_experts_fraction(m, 32) == pytest.approx(1 - (1 - 8 / 256) ** 32)
    assert expected_distinct_experts_fraction(m, 4096) > 0.999


def test_md1_queue():
    # DistServe: TTFT = D + R D^2 / (2 (1 - R D)); D = 0.2 s, R = 2/s -> 2 x 0.04 / (2 x 0.6)
    assert md1_waiting_seconds(0.2, 2.0) == pytest.approx(0.08 / 1.2)
    assert md1_waiting_seconds(0.2, 5.0) == math.inf
    assert md1_waiting_seconds(0.2, 0.0) == 0.0


def test_expert_map_covers_every_expert_once_per_stage():
    m, lay = layout("deepseek-v3", parallelism={"tensor": 1, "data": 16, "expert": 16, "redundantExperts": 32})
    gpus = stage_expert_map(m, lay, lay.stages[0])
    assert len(gpus) == 16 and all(len(g.experts) == 18 for g in gpus)
    ids = [e for g in gpus for e in g.experts]
    assert set(ids) == set(range(256)) and len(ids) == 288
    assert [g.pod for g in gpus] == [0] * 8 + [1] * 8
