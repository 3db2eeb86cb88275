"""The MoEDeployment models: camelCase on the wire, strict, with cross-field rules."""

import pytest
from pydantic import ValidationError

from moe_operator.api import MoEDeployment
from moe_operator.cli.load import validation_problems
from tests.builders import BASE, doc, merge


def _problems(d) -> list[str]:
    with pytest.raises(ValidationError) as e:
        MoEDeployment.model_validate(d)
    return validation_problems(e.value)


def test_camel_case_round_trip():
    d = MoEDeployment.model_validate(doc(slo={"ttftMilliseconds": 500, "minTokensPerSecondPerGPU": 10}))
    assert d.spec.slo.ttft_milliseconds == 500 and d.spec.slo.min_tokens_per_second_per_gpu == 10
    dumped = d.model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["slo"]["ttftMilliseconds"] == 500 and "minTokensPerSecondPerGPU" in dumped["spec"]["slo"]
    assert dumped["spec"]["roles"]["aggregated"]["maxConcurrentSequences"] == 16


def test_unknown_fields_are_refused_with_their_path():
    (p,) = _problems(doc(roles={"aggregated": {"parallelism": {"tensr": 2}}}))
    assert p.startswith("spec.roles.aggregated.parallelism.tensr:")


def test_wrong_types_and_ranges_name_the_field():
    assert _problems(doc(roles={"aggregated": {"parallelism": {"tensor": "two"}}}))[0].startswith("spec.roles.aggregated.parallelism.tensor:")
    assert _problems(doc(roles={"aggregated": {"parallelism": {"tensor": -1}}}))[0].startswith("spec.roles.aggregated.parallelism.tensor:")
    assert _problems(doc(roles={"aggregated": {"replicas": 10_000}}))[0].startswith("spec.roles.aggregated.replicas:")


def test_either_aggregated_or_prefill_and_decode():
    both = merge(BASE, {"spec": {"roles": {"prefill": {}, "decode": {}}}})
    assert "not both" in _problems(both)[0]
    only_prefill = merge(BASE, {"spec": {"roles": {"aggregated": None, "prefill": {}}}})
    assert "both roles.prefill and roles.decode" in _problems(only_prefill)[0]


def test_token_ranges_are_ordered():
    (p,) = _problems(doc(workload={"inputTokens": {"min": 100, "mean": 50, "max": 200}}))
    assert p.startswith("spec.workload.inputTokens:") and "min <= mean <= max" in p


def test_custom_gpu_block_required():
    (p,) = _problems(doc(hardware={"gpu": "custom"}))
    assert p.startswith("spec.hardware:") and "custom" in p


def test_model_needs_preset_or_architecture():
    (p,) = _problems(doc(model={"preset": None}))
    assert p.startswith("spec.model:")


def test_kind_and_api_version_are_checked():
    assert _problems(merge(BASE, {"kind": "Deployment"}))[0].startswith("kind:")
