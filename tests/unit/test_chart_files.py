"""Files the chart carries are copies of generated sources (make generate): they must not drift."""

from __future__ import annotations

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "moe-operator"


def test_the_chart_crds_are_the_top_level_crds():
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert sorted(chart) == sorted(top), "charts/moe-operator/crds/ lists other files than crds/: run make generate"
    drifted = [name for name in top if top[name] != chart[name]]
    assert not drifted, f"charts/moe-operator/crds/ drifted from crds/ for {drifted}: run make generate"


def test_the_chart_rules_are_the_generated_rules():
    assert (CHART / "files" / "moe-rules.yaml").read_bytes() == (ROOT / "deploy" / "monitoring" / "moe-rules.yaml").read_bytes()


def _undescribed(values, schema, path=""):
    """Keys of values.yaml the schema has no property for (where the schema lists properties)."""
    if not isinstance(values, dict) or "properties" not in schema:
        return []
    out = []
    for key, value in values.items():
        if key not in schema["properties"]:
            out.append(f"{path}{key}")
        else:
            out += _undescribed(value, schema["properties"][key], f"{path}{key}.")
    return out


def test_every_default_value_is_described_by_the_schema():
    import yaml

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert schema["additionalProperties"] is False
    assert _undescribed(values, schema) == []
    assert _undescribed({"webhook": {"certificate": {"sorce": "operator"}}}, schema) == ["webhook.certificate.sorce"]
