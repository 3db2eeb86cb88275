"""The CRD as the YAML text committed under crds/ (deterministic: a test compares it byte for byte)."""

from __future__ import annotations

import yaml

from .crd import kopf_peering_crds, moedeployment_crd, moerolescaler_crd

HEADER = "# Generated from operator/moe_operator/api by `moectl crd` (make generate). Do not edit by hand.\n"


def render_crd_yaml() -> str:
    return HEADER + yaml.safe_dump(moedeployment_crd(), sort_keys=False, width=120, allow_unicode=True)


def render_peering_crds_yaml() -> str:
    return HEADER + yaml.safe_dump_all(kopf_peering_crds(), sort_keys=False, width=120)


def render_scaler_crd_yaml() -> str:
    return HEADER + yaml.safe_dump(moerolescaler_crd(), sort_keys=False, width=120, allow_unicode=True)
