"""The admission verdict on a MoEDeployment spec. Pure: the webhook returns what this decides.

Schema problems and catalog misses are refused with their field paths. An infeasible plan is refused
under `validation: Enforce` with every violation; under `Warn` it is admitted and the violations come
back as admission warnings. Capacity-model warnings always come back as admission warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..api import MoEDeploymentSpec
from ..api.errors import problems
from ..capacity.catalog import CatalogError
from ..capacity.evaluate import evaluate

MAX_WARNINGS = 20  # the API server shows each; keep the list readable


@dataclass(frozen=True)
class AdmissionVerdict:
    allowed: bool
    message: str
    warnings: tuple[str, ...]


def admission_verdict(spec: dict[str, Any] | None, name: str) -> AdmissionVerdict:
    try:
        parsed = MoEDeploymentSpec.model_validate(spec or {})
        report = evaluate(parsed, name)
    except ValidationError as err:
        return AdmissionVerdict(False, "invalid MoEDeployment spec: " + "; ".join(problems(err, "spec")), ())
    except CatalogError as err:
        return AdmissionVerdict(False, f"invalid MoEDeployment spec: {err}", ())
    warnings = [f"{f.code.value}: {f.message}" for f in report.warnings]
    if parsed.rollout.max_surge > 0:
        warnings.append("spec.rollout.maxSurge is not acted on yet: rollouts replace groups in place within maxUnavailable")
    if report.feasible:
        return AdmissionVerdict(True, "feasible", tuple(warnings[:MAX_WARNINGS]))
    violations = [f"{f.code.value}: {f.message}" for f in report.violations]
    if parsed.validation == "Enforce":
        return AdmissionVerdict(False, f"MoEDeployment {name} is infeasible (spec.validation: Enforce): " + " | ".join(violations),
                                tuple(warnings[:MAX_WARNINGS]))
    warned = [f"deployed despite {v} (spec.validation: Warn)" for v in violations]
    return AdmissionVerdict(True, "infeasible, admitted in Warn mode", tuple((warned + warnings)[:MAX_WARNINGS]))
