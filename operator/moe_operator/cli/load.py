"""Read MoEDeployment documents from a file and turn every schema problem into `field.path: reason`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..api import MoEDeployment
from ..api.errors import problems as schema_problems


class InputError(Exception):
    """Unreadable or schema-invalid input; `problems` are 'field.path: reason' lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def validation_problems(err: ValidationError) -> list[str]:
    return schema_problems(err)


def parse_deployment(doc: Any) -> MoEDeployment:
    """One parsed YAML/JSON document as a MoEDeployment, or InputError."""
    if not isinstance(doc, dict):
        raise InputError([f"(document): expected a mapping with apiVersion, kind, metadata and spec, got {type(doc).__name__}"])
    try:
        return MoEDeployment.model_validate(doc)
    except ValidationError as err:
        raise InputError(validation_problems(err)) from None


def load_deployments(path: str) -> list[MoEDeployment]:
    """Every document of a YAML file (`-` reads standard input)."""
    try:
        text = Path("/dev/stdin").read_text() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise InputError([f"{path}: cannot read: {err.strerror or err}"]) from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise InputError([f"{path}: not valid YAML: {err}"]) from None
    if not docs:
        raise InputError([f"{path}: no document found"])
    return [parse_deployment(d) for d in docs]
