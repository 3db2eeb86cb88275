"""Shared pydantic configuration for the custom resource models.

Python attributes are snake_case; the wire format (YAML, JSON, the CRD schema) is the
Kubernetes camelCase produced by the alias generator, or an explicit alias where the unit
abbreviation would be mangled (``memoryGiB``, ``bf16TFLOPS``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class KubeModel(BaseModel):
    """Base for every spec object: camelCase on the wire, unknown fields refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=True,
        validate_default=True,  # so defaults become plain values too (enums as strings)
    )
