"""End-to-end predictions (default efficiencies) pinned to published measurements.

Source: SGLang team, "Deploying DeepSeek with PD Disaggregation and Large-scale Expert Parallelism
on 96 H100 GPUs", lmsys.org blog, 2025-05-05. DeepSeek-V3 on 12 nodes of 8 x H100: prefill on
4 nodes (EP32, DP attention), decode on 9 nodes (EP72, DP attention, 32 redundant experts via EPLB).
Reported: 52.3k input tokens/s and 22.3k output tokens/s per node for 2,000-token inputs, and
50,302 input tokens/s per node for 4K prompts on the 4-node prefill. The blog lists ~100 ms
inter-token latency as a current limitation.

The model does not assume the two-micro-batch overlap SGLang uses, so it is allowed to be
somewhat pessimistic; we pin to +-25%.
"""

import pytest

from moe_operator.capacity.evaluate import evaluate
from tests.builders import disaggregated

PER_NODE_GPUS = 8


def _sglang_96_h100(prompt_tokens: int):
    return evaluate(disaggregated(
        prefill={"replicas": 1, "parallelism": {"tensor": 1, "data": 32, "expert": 32},
                 "maxConcurrentSequences": 256, "maxBatchTokens": 32 * 16384},
        decode={"replicas": 1, "parallelism": {"tensor": 1, "data": 72, "expert": 72, "redundantExperts": 32},
                "maxConcurrentSequences": 72 * 256},
        model={"preset": "deepseek-v3"},
        hardware={"gpu": "H100-SXM", "gpusPerNode": 8, "maxGPUs": 104},
        workload={"inputTokens": {"min": prompt_tokens, "mean": prompt_tokens, "max": prompt_tokens},
                  "outputTokens": {"min": 100, "mean": 100, "max": 100}},
    ))


def test_prefill_throughput_2k_prompts():
    r = _sglang_96_h100(2000).roles["prefill"]
    assert r.tokens_per_second_per_gpu == pytest.approx(52_300 / PER_NODE_GPUS, rel=0.25)


def test_prefill_throughput_4k_prompts():
    r = _sglang_96_h100(4096).roles["prefill"]
    assert r.tokens_per_second_per_gpu == pytest.approx(50_302 / PER_NODE_GPUS, rel=0.25)


def test_decode_throughput_and_latency_2k_prompts():
    r = _sglang_96_h100(2000).roles["decode"]
    assert r.tokens_per_second_per_gpu == pytest.approx(22_300 / PER_NODE_GPUS, rel=0.25)
    assert r.tpot_seconds == pytest.approx(0.100, rel=0.25)


def test_expert_traffic_crosses_the_network_in_both_pools():
    r = _sglang_96_h100(2000)
    assert r.roles["prefill"].links["expert"] == "network" and r.roles["decode"].links["expert"] == "network"
    # communication is a large, modelled share, not a flat 10%
    assert r.roles["decode"].communication_fraction > 0.3
