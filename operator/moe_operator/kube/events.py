"""Kubernetes Events about a MoEDeployment (core/v1, so `kubectl describe` and `kubectl events` show them)."""

from __future__ import annotations

import datetime as dt
import uuid

from kubernetes import client
from kubernetes.client.rest import ApiException

from ..planning import naming as N


def post_event(core: client.CoreV1Api, namespace: str, name: str, uid: str, reason: str, message: str,
               event_type: str = "Normal") -> None:
    """Best effort: an event that cannot be written never fails a reconcile."""
    now = dt.datetime.now(dt.timezone.utc)
    body = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{N.label_value(name)}.{uuid.uuid4().hex[:12]}", namespace=namespace),
        involved_object=client.V1ObjectReference(api_version="moe.inference.io/v1alpha1", kind="MoEDeployment",
                                                 name=name, namespace=namespace, uid=uid),
        reason=reason, message=message[:1024], type=event_type, first_timestamp=now, last_timestamp=now, count=1,
        source=client.V1EventSource(component=N.MANAGER), reporting_component=N.MANAGER,
        reporting_instance=N.MANAGER,
    )
    try:
        core.create_namespaced_event(namespace, body)
    except ApiException:
        pass
