"""The kopf layer's registration: what kopf will do with MoEDeployments before any of it runs."""

from __future__ import annotations

import kopf

from moe_operator.handlers import operator as handlers
from moe_operator.handlers.operator import OperatorConfig, webhook_names


def test_no_handler_puts_a_finalizer_on_moedeployments():
    """Deleting a MoEDeployment (or its namespace) must not wait for a running operator: uninstall leaves none."""
    registry = kopf.get_default_registry()
    spawning = registry._spawning.get_all_handlers()
    assert any(h.id == "reconcile" for h in spawning)
    assert not any(h.requires_finalizer for h in spawning)
    assert not any(getattr(h, "requires_finalizer", False) for h in registry._changing.get_all_handlers())


def test_webhook_names_cover_the_host_and_the_service_but_not_a_wildcard_address():
    cfg = OperatorConfig(webhook_address="0.0.0.0", webhook_host="127.0.0.1", webhook_service="moe-system/moe-operator-webhook")
    assert webhook_names(cfg) == ["127.0.0.1", "moe-operator-webhook.moe-system.svc",
                                  "moe-operator-webhook.moe-system.svc.cluster.local"]
