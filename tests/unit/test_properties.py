"""Invariants of the capacity model over generated plans (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from moe_operator.capacity.catalog import model_catalog
from moe_operator.capacity.evaluate import evaluate
from moe_operator.capacity.findings import Code
from moe_operator.capacity.report import CapacityReport
from tests.builders import disaggregated, model, spec

PRESETS = sorted(model_catalog())
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@st.composite
def plans(draw):
    """A preset, valid-looking degrees and a workload; invalid combinations are filtered by the model itself."""
    preset = draw(st.sampled_from(PRESETS))
    tensor = draw(st.sampled_from([1, 2, 4, 8]))
    data = draw(st.sampled_from([1, 2, 4]))
    sequence = draw(st.sampled_from([1, 2]))
    stage_gpus = tensor * data * sequence
    expert = draw(st.sampled_from([e for e in (1, 2, 4, 8, 16, 32) if stage_gpus % e == 0]))
    pipeline = draw(st.sampled_from([1, 2, 4]))
    n_min = draw(st.integers(1, 512))
    n_mean = draw(st.integers(n_min, 8192))
    n_max = draw(st.integers(n_mean, 32768))
    o_mean = draw(st.integers(1, 2048))
    return {
        "preset": preset,
        "parallelism": {"tensor": tensor, "data": data, "sequence": sequence, "expert": expert, "pipeline": pipeline},
        "concurrency": draw(st.integers(1, 512)),
        "batch": draw(st.sampled_from([2048, 8192, 16384])),
        "replicas": draw(st.integers(1, 4)),
        "workload": {"inputTokens": {"min": n_min, "mean": n_mean, "max": n_max},
                     "outputTokens": {"min": 1, "mean": o_mean, "max": o_mean * 2}},
        "kv": draw(st.sampled_from(["bf16", "fp8"])),
        "role": draw(st.sampled_from(["aggregated", "disaggregated"])),
    }


def _role(p, **changes):
    r = {"replicas": p["replicas"], "parallelism": dict(p["parallelism"]), "maxConcurrentSequences": p["concurrency"],
         "maxBatchTokens": p["batch"]}
    for k, v in changes.items():
        if k == "parallelism":
            r["parallelism"].update(v)
        else:
            r[k] = v
    return r


def _evaluate(p, workload=None, kv=None, max_gpus=None, slo=None, **role_changes) -> CapacityReport:
    common = dict(model={"preset": p["preset"], "kvCacheDtype": kv or p["kv"]}, workload=workload or p["workload"],
                  hardware={"gpu": "H100-SXM", "gpusPerNode": 8, "maxGPUs": max_gpus}, slo=slo or {})
    if p["role"] == "aggregated":
        return evaluate(spec(roles={"aggregated": _role(p, **role_changes)}, **common))
    return evaluate(disaggregated(prefill=_role(p, **role_changes), decode=_role(p, **role_changes), **common))


def _valid(r: CapacityReport) -> bool:
    return not any(f.code == Code.INVALID_PARALLELISM for f in r.findings)


def _peak_memory(r: CapacityReport, component: str = "total_bytes") -> dict[str, float]:
    return {n: max(getattr(s.memory, component) for s in role.stages) for n, role in r.roles.items()}


@SETTINGS
@given(plans(), st.integers(1, 8192), st.integers(1, 64))
def test_memory_never_falls_when_length_concurrency_or_precision_grows(p, extra_tokens, extra_sequences):
    base = _evaluate(p)
    assume(_valid(base))
    w = p["workload"]
    longer = _evaluate(p, workload={**w, "inputTokens": {**w["inputTokens"], "max": w["inputTokens"]["max"] + extra_tokens}})
    busier = _evaluate(p, maxConcurrentSequences=p["concurrency"] + extra_sequences)
    wider = _evaluate(p, kv="bf16")
    for grown in (longer, busier, wider):
        for role, mem in _peak_memory(grown).items():
            assert mem >= _peak_memory(base)[role]


@SETTINGS
@given(plans(), st.sampled_from(["tensor", "pipeline", "expert"]))
def test_weights_per_gpu_never_grow_with_tensor_pipeline_or_expert_degree(p, degree):
    base = _evaluate(p)
    assume(_valid(base))
    par = p["parallelism"]
    if degree == "expert":
        bigger = {"expert": par["expert"] * 2}
    else:
        bigger = {degree: par[degree] * 2}
    grown = _evaluate(p, parallelism=bigger)
    assume(_valid(grown))
    for role, weights in _peak_memory(grown, "weights_bytes").items():
        assert weights <= _peak_memory(base, "weights_bytes")[role] * (1 + 1e-12)


@SETTINGS
@given(plans())
def test_gpus_add_up(p):
    r = _evaluate(p)
    assume(_valid(r))
    assert r.total_gpus == sum(role.gpus for role in r.roles.values())
    for role in r.roles.values():
        par = role.parallelism
        assert role.gpus_per_replica == par["tensor"] * par["pipeline"] * par["data"] * par["sequence"]
        assert role.gpus == role.replicas * role.gpus_per_replica
        assert sum(s.gpus for s in role.stages) == role.gpus_per_replica
        assert sum(s.layers for s in role.stages) == model(p["preset"]).layers
        for s in role.stages:
            assert s.pods * s.gpus_per_pod == s.gpus
            assert par["expert"] * par["expertTensor"] == s.gpus


@SETTINGS
@given(plans())
def test_predictions_never_beat_the_favourable_bound(p):
    r = _evaluate(p, max_gpus=10_000)
    assume(_valid(r))
    for role in r.roles.values():
        assert role.tokens_per_second_per_gpu <= role.tokens_per_second_per_gpu_bound * (1 + 1e-9)


@SETTINGS
@given(plans(), st.floats(0.01, 1.0))
def test_physically_impossible_never_fires_when_the_favourable_bound_holds(p, fraction):
    probe = _evaluate(p)
    assume(_valid(probe))
    bound = min(role.tokens_per_second_per_gpu_bound for role in probe.roles.values())
    target = max(1, int(bound * fraction))
    r = _evaluate(p, slo={"minTokensPerSecondPerGPU": target})
    assert Code.PHYSICALLY_IMPOSSIBLE not in {f.code for f in r.findings}
    # and a latency target at or above what the plan predicts is never impossible either
    for role in r.roles.values():
        if role.tpot_seconds is not None:
            t = _evaluate(p, max_gpus=max(1, r.total_gpus), slo={"tpotMilliseconds": int(role.tpot_seconds * 1e3) + 1})
            assert Code.PHYSICALLY_IMPOSSIBLE not in {f.code for f in t.findings}
