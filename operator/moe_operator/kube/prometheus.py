"""Read instant values from Prometheus' HTTP API (GET /api/v1/query)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

from ..planning.promql import expert_load_queries, role_queries
from ..planning.scaling import Observation, RoleLoad


class PrometheusError(RuntimeError):
    pass


def query_vector(base_url: str, promql: str, timeout_seconds: float = 5.0) -> list[tuple[dict[str, str], float]]:
    """Every (labels, value) of an instant query, NaN and infinite values left out."""
    out = []
    for item in _query(base_url, promql, timeout_seconds):
        value = float(item["value"][1])
        if not (math.isnan(value) or math.isinf(value)):
            out.append((item["metric"], value))
    return out


def _query(base_url: str, promql: str, timeout_seconds: float) -> list[dict]:
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as r:
            body = json.load(r)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise PrometheusError(f"{base_url}: {err}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"{base_url}: {body.get('error', 'query failed')}")
    return body["data"]["result"]


def query_scalar(base_url: str, promql: str, timeout_seconds: float = 5.0) -> float | None:
    """The single value of an instant query; None when it has no data (or NaN)."""
    values = query_vector(base_url, promql, timeout_seconds)
    return values[0][1] if values else None


def observe_roles(base_url: str | None, engine: str, namespace: str, deployment: str, roles: list[str],
                  rate_window_seconds: int, overrides: dict[str, str] | None = None) -> Observation:
    """The load of each role, or an unreachable Observation with the error."""
    if not base_url:
        return Observation(False, error="no Prometheus URL (spec.autoscaling.prometheusURL or moectl run --prometheus-url)")
    loads = {}
    try:
        for role in roles:
            values = {k: query_scalar(base_url, q) for k, q in role_queries(engine, namespace, deployment, role, rate_window_seconds, overrides).items()}
            if values["age_seconds"] is None:
                continue  # no series at all for this role: missing
            loads[role] = RoleLoad(**{k: v for k, v in values.items() if k != "age_seconds"}, age_seconds=values["age_seconds"])
    except PrometheusError as err:
        return Observation(False, error=str(err))
    return Observation(True, loads)


def expert_load(base_url: str, namespace: str, deployment: str, role: str, window_seconds: int) -> dict[str, dict[str, float]]:
    """{layer: {"cv": x, "max_over_mean": y}} for one role; empty when no engine publishes expert counters."""
    out: dict[str, dict[str, float]] = {}
    for key, q in expert_load_queries(namespace, deployment, role, window_seconds).items():
        for labels, value in query_vector(base_url, q):
            out.setdefault(labels.get("layer", ""), {})[key] = value
    return out
