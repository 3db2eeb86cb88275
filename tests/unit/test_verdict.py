"""Verdicts on the bundled examples and on targeted plans: the right code, a message a person can act on."""

import pathlib

import pytest
import yaml

from moe_operator.api import MoEDeployment
from moe_operator.capacity.evaluate import evaluate
from moe_operator.capacity.findings import Code
from tests.builders import disaggregated, spec

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "examples"
FEASIBLE = sorted(EXAMPLES.glob("*.yaml"))
INFEASIBLE = {
    "invalid-parallelism.yaml": Code.INVALID_PARALLELISM,
    "gpu-budget-exceeded.yaml": Code.GPU_BUDGET_EXCEEDED,
    "memory-exceeded.yaml": Code.MEMORY_EXCEEDED,
    "physically-impossible.yaml": Code.PHYSICALLY_IMPOSSIBLE,
    "throughput-below-target.yaml": Code.THROUGHPUT_BELOW_TARGET,
    "ttft-exceeded.yaml": Code.TTFT_EXCEEDED,
    "tpot-exceeded.yaml": Code.TPOT_EXCEEDED,
}


def _load(path: pathlib.Path):
    d = MoEDeployment.model_validate(yaml.safe_load(path.read_text()))
    return evaluate(d.spec, d.metadata.name)


def test_there_is_one_example_per_preset_and_per_violation_code():
    presets = {yaml.safe_load(p.read_text())["spec"]["model"]["preset"] for p in FEASIBLE}
    assert presets == {"mixtral-8x7b", "mixtral-8x22b", "deepseek-v3", "qwen3-30b-a3b", "qwen3-235b-a22b", "gpt-oss-120b"}
    assert {p.name for p in (EXAMPLES / "infeasible").glob("*.yaml")} == set(INFEASIBLE)
    assert any("prefill" in yaml.safe_load(p.read_text())["spec"]["roles"] for p in FEASIBLE)


@pytest.mark.parametrize("path", FEASIBLE, ids=lambda p: p.name)
def test_bundled_examples_are_feasible(path):
    report = _load(path)
    assert report.feasible, [f.message for f in report.violations]
    for role in report.roles.values():
        assert role.tokens_per_second_per_gpu <= role.tokens_per_second_per_gpu_bound
        for s in role.stages:
            assert s.memory.total_bytes <= report.memory_limit_bytes


@pytest.mark.parametrize("name", sorted(INFEASIBLE))
def test_infeasible_examples_raise_exactly_their_code(name):
    report = _load(EXAMPLES / "infeasible" / name)
    assert not report.feasible
    assert {f.code for f in report.violations} == {INFEASIBLE[name]}


def test_memory_message_names_role_stage_numbers_and_fix():
    r = evaluate(spec(roles={"aggregated": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 512}}))
    (v,) = r.violations
    assert (v.code, v.role, v.stage) == (Code.MEMORY_EXCEEDED, "aggregated", 0)
    fit = r.roles["aggregated"].max_concurrent_sequences_at_max_length
    assert 0 < fit < 512
    assert "GiB per GPU" in v.message and f"at most {fit} concurrent sequences" in v.message
    # lowering concurrency to what the report says fits makes the plan fit
    ok = evaluate(spec(roles={"aggregated": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": fit}}))
    assert not [f for f in ok.violations if f.code == Code.MEMORY_EXCEEDED]
    too_many = evaluate(spec(roles={"aggregated": {"replicas": 1, "parallelism": {"tensor": 2}, "maxConcurrentSequences": fit + 1}}))
    assert [f for f in too_many.violations if f.code == Code.MEMORY_EXCEEDED]


def test_memory_sized_for_longest_sequence_not_the_mean():
    short = evaluate(spec(workload={"inputTokens": {"min": 128, "mean": 1024, "max": 1024}}))
    long = evaluate(spec(workload={"inputTokens": {"min": 128, "mean": 1024, "max": 10240}}))
    assert long.roles["aggregated"].stages[0].memory.kv_cache_bytes > 5 * short.roles["aggregated"].stages[0].memory.kv_cache_bytes


def test_budget_message_shows_the_arithmetic():
    r = evaluate(spec(hardware={"maxGPUs": 24}, model={"preset": "qwen3-235b-a22b"},
                      roles={"aggregated": {"replicas": 1, "parallelism": {"tensor": 4, "pipeline": 4, "data": 3, "expert": 4}}}))
    (v,) = [f for f in r.violations if f.code == Code.GPU_BUDGET_EXCEEDED]
    assert "48 GPUs" in v.message and "1 x 48 = 48" in v.message and "maxGPUs is 24" in v.message


def test_physically_impossible_only_beyond_the_bound():
    base = evaluate(spec(slo={"minTokensPerSecondPerGPU": 1}))
    bound = base.roles["aggregated"].tokens_per_second_per_gpu_bound
    at = evaluate(spec(slo={"minTokensPerSecondPerGPU": int(bound)}))
    beyond = evaluate(spec(slo={"minTokensPerSecondPerGPU": int(bound) + 1}))
    assert Code.PHYSICALLY_IMPOSSIBLE not in {f.code for f in at.findings}
    assert Code.THROUGHPUT_BELOW_TARGET in {f.code for f in at.findings}
    assert {f.code for f in beyond.violations} == {Code.PHYSICALLY_IMPOSSIBLE}


def test_tpot_impossible_needs_the_whole_budget_to_fail():
    # Mixtral-8x7B reads ~25.8 GB of active weights per token: 4 H100s at 3.35 TB/s cannot go under ~1.9 ms.
    impossible = evaluate(spec(hardware={"maxGPUs": 4}, slo={"tpotMilliseconds": 1}))
    assert Code.PHYSICALLY_IMPOSSIBLE in {f.code for f in impossible.violations}
    no_budget = evaluate(spec(slo={"tpotMilliseconds": 1}))
    assert Code.PHYSICALLY_IMPOSSIBLE not in {f.code for f in no_budget.violations}
    assert Code.TPOT_EXCEEDED in {f.code for f in no_budget.violations}


def test_role_imbalance_is_a_warning_that_names_the_idle_side():
    r = evaluate(disaggregated(
        prefill={"replicas": 1, "parallelism": {"tensor": 4}, "maxConcurrentSequences": 16},
        decode={"replicas": 8, "parallelism": {"tensor": 2}, "maxConcurrentSequences": 32},
    ))
    (w,) = [f for f in r.warnings if f.code == Code.ROLE_IMBALANCE]
    assert "decode idles" in w.message and r.feasible


def test_tensor_group_across_nodes_is_a_warning():
    r = evaluate(spec(model={"preset": "deepseek-v3"}, roles={"aggregated": {"parallelism": {"tensor": 16, "expert": 16}}}))
    assert Code.TENSOR_GROUP_SPANS_NODES in {f.code for f in r.warnings}
    assert r.roles["aggregated"].links["tensor"] == "network"


def test_stage_larger_than_a_node_must_split_evenly():
    r = evaluate(spec(hardware={"gpusPerNode": 8}, roles={"aggregated": {"parallelism": {"tensor": 2, "data": 6, "expert": 4}}}))
    assert any(f.code == Code.INVALID_PARALLELISM and "one pod per node" in f.message for f in r.violations)
    ok = evaluate(spec(roles={"aggregated": {"parallelism": {"tensor": 2, "data": 8, "expert": 8}}}))
    assert ok.roles["aggregated"].stages[0].pods == 2 and ok.roles["aggregated"].stages[0].gpus_per_pod == 8


def test_tensor_groups_never_straddle_the_pods_of_a_split_stage():
    # Qwen3-235B has 64 heads and 4 KV heads: tensor=4 is valid; a stage of 4 x 6 = 24 GPUs splits into 3 pods of 8
    ok = evaluate(spec(model={"preset": "qwen3-235b-a22b"}, roles={"aggregated": {"parallelism": {"tensor": 4, "data": 6, "expert": 8}}}))
    assert not [f for f in ok.violations if f.code == Code.INVALID_PARALLELISM]
    # with 6-GPU nodes the same stage splits into 4 pods of 6 GPUs, and tensor groups of 4 would cross pods
    bad = evaluate(spec(model={"preset": "qwen3-235b-a22b"}, hardware={"gpusPerNode": 6},
                        roles={"aggregated": {"parallelism": {"tensor": 4, "data": 6, "expert": 8}}}))
    assert any("split tensor groups across nodes" in f.message for f in bad.violations)
