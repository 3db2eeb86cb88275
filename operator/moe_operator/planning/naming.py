"""Names and labels of the objects the operator owns. Pure.

Kubernetes names of pods, services and label values are at most 63 characters; a MoEDeployment
name may be 253. Long names are cut and suffixed with a hash of the full name so that children of
different deployments never collide.
"""

from __future__ import annotations

import hashlib

GROUP = "moe.inference.io"
LABEL_DEPLOYMENT = f"{GROUP}/deployment"
LABEL_ROLE = f"{GROUP}/role"
LABEL_REPLICA = f"{GROUP}/replica"
LABEL_STAGE = f"{GROUP}/stage"
LABEL_SHARD = f"{GROUP}/shard"
LABEL_GROUP = f"{GROUP}/group"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION_TEMPLATE_HASH = f"{GROUP}/template-hash"
MANAGER = "moe-operator"

MAX_LABEL = 63
# room for "-<role>-<replica>-s<stage>-<shard>" after the base: "-aggregated-1023-s255-63" is 24 chars
BASE_MAX = MAX_LABEL - 24


def short_hash(text: str, length: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def base_name(deployment: str) -> str:
    """The deployment name, cut to leave room for child suffixes, with a hash when cut."""
    if len(deployment) <= BASE_MAX:
        return deployment
    return f"{deployment[:BASE_MAX - 7].rstrip('-.')}-{short_hash(deployment)}"


def label_value(value: str) -> str:
    """A label value of at most 63 characters (cut with a hash suffix when longer)."""
    if len(value) <= MAX_LABEL:
        return value
    return f"{value[:MAX_LABEL - 7].rstrip('-._')}-{short_hash(value)}"


def group_name(deployment: str, role: str, replica: int) -> str:
    """One replica group of a role: also the name of its headless Service (the pods' DNS subdomain)."""
    return f"{base_name(deployment)}-{role}-{replica}"


def pod_name(deployment: str, role: str, replica: int, stage: int, shard: int) -> str:
    return f"{group_name(deployment, role, replica)}-s{stage}-{shard}"


def role_config_name(deployment: str, role: str) -> str:
    return f"{base_name(deployment)}-{role}-plan"


def deployment_labels(deployment: str) -> dict[str, str]:
    return {LABEL_DEPLOYMENT: label_value(deployment), LABEL_MANAGED_BY: MANAGER}


def group_labels(deployment: str, role: str, replica: int) -> dict[str, str]:
    return {**deployment_labels(deployment), LABEL_ROLE: role, LABEL_REPLICA: str(replica),
            LABEL_GROUP: group_name(deployment, role, replica)}


def pod_labels(deployment: str, role: str, replica: int, stage: int, shard: int) -> dict[str, str]:
    return {**group_labels(deployment, role, replica), LABEL_STAGE: str(stage), LABEL_SHARD: str(shard),
            LABEL_COMPONENT: "engine"}


def scaler_name(deployment: str, role: str) -> str:
    """The role's MoERoleScaler: <deployment>-<role> (cut with a hash like every child name)."""
    return f"{base_name(deployment)}-{role}"


def role_selector(deployment: str, role: str) -> str:
    """Label selector of a role's pods, as the scale subresource reports it."""
    return f"{LABEL_DEPLOYMENT}={label_value(deployment)},{LABEL_ROLE}={role}"
