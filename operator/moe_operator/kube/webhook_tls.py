"""The webhook certificate kept in a Secret: made, shared by every operator replica, rotated, its CA patched
into the ValidatingWebhookConfiguration.

The Helm chart creates the (empty) Secret and the webhook configuration; the operator needs only get/update on
that one Secret and get/patch on that one configuration. Replicas race safely: a replacement carries the
resourceVersion it read, a replica that loses (409) reads the winner's certificate and serves that one.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from .certs import CertificateSet, WebhookCertificates, issue, renewal_reason, write_files

log = logging.getLogger("moe_operator.webhook")


@dataclass
class SecretCertificateKeeper:
    api: client.ApiClient
    namespace: str
    secret_name: str
    names: list[str]  # DNS names / IPs the API server uses to reach the webhook
    directory: Path  # where the serving files are written for the webhook server
    webhook_config: str | None = None  # ValidatingWebhookConfiguration whose caBundle is kept in step

    def sync(self, now: dt.datetime | None = None) -> CertificateSet:
        """Make or renew the certificate when due, write the serving files, patch caBundle. Idempotent: with a
        valid certificate in place it reads two objects and writes nothing."""
        core = client.CoreV1Api(self.api)
        for _ in range(3):
            secret = core.read_namespaced_secret(self.secret_name, self.namespace)
            current = CertificateSet.from_secret_data(secret.data)
            reason = renewal_reason(current, self.names, now)
            if reason is None and current is not None:
                break
            fresh = issue(self.names, now, current)
            secret.data = fresh.as_secret_data()
            try:  # replace carries the resourceVersion just read: a concurrent writer makes this a 409
                core.replace_namespaced_secret(self.secret_name, self.namespace, secret)
            except ApiException as err:
                if err.status == 409:
                    continue  # another replica renewed it first: read theirs
                raise
            log.info("webhook certificate in secret %s/%s renewed (%s); valid until %s", self.namespace,
                     self.secret_name, reason, fresh.serving_not_after.isoformat())
            current = fresh
            break
        else:
            raise RuntimeError(f"secret {self.namespace}/{self.secret_name} kept changing while renewing it")
        write_files(current, self.directory)
        if self.webhook_config:
            patch_ca_bundle(self.api, self.webhook_config, current.ca_bundle)
        return current

    @property
    def files(self) -> WebhookCertificates:
        return WebhookCertificates.in_directory(self.directory)


def patch_ca_bundle(api: client.ApiClient, name: str, ca_bundle: bytes) -> bool:
    """Set caBundle on every webhook of a ValidatingWebhookConfiguration; returns whether anything changed."""
    admission = client.AdmissionregistrationV1Api(api)
    config = admission.read_validating_webhook_configuration(name)
    wanted = base64.b64encode(ca_bundle).decode()
    ops = [{"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": wanted}
           for i, hook in enumerate(config.webhooks or []) if hook.client_config.ca_bundle != wanted]
    if not ops:
        return False
    # The test pins the version read, so a concurrent change of the webhook list makes this fail, not misapply.
    ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": config.metadata.resource_version})
    admission.patch_validating_webhook_configuration(name, ops)
    log.info("caBundle of validatingwebhookconfiguration %s updated (%d webhooks)", name, len(ops) - 1)
    return True
