"""Certificates for the admission webhook, made by the operator itself (cryptography).

A long-lived CA signs a short-lived serving certificate. Renewing the serving certificate keeps the CA, so
the webhook configuration's caBundle does not change and the API server keeps trusting the webhook across a
rotation. When the CA itself nears its end, a new CA is made and the bundle carries both until the old one
expires.
Pure functions on PEM bytes, plus `write_files` for the webhook server.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=5 * 365)
SERVING_VALIDITY = dt.timedelta(days=90)
BACKDATE = dt.timedelta(minutes=5)  # tolerate clock skew between the operator and the API server
CA_NAME = "moe-operator-webhook-ca"
# Secret keys (and file names): the CA bundle for caBundle, the CA key to renew with, the serving pair.
CA_BUNDLE, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


@dataclass(frozen=True)
class CertificateSet:
    """PEM bytes. `ca_bundle` starts with the CA that signed `cert`; a previous, still valid CA may follow."""

    ca_bundle: bytes
    ca_key: bytes
    cert: bytes
    key: bytes

    def as_data(self) -> dict[str, bytes]:
        return {CA_BUNDLE: self.ca_bundle, CA_KEY: self.ca_key, TLS_CERT: self.cert, TLS_KEY: self.key}

    @classmethod
    def from_data(cls, data: dict[str, bytes]) -> CertificateSet | None:
        try:
            return cls(data[CA_BUNDLE], data[CA_KEY], data[TLS_CERT], data[TLS_KEY])
        except KeyError:
            return None

    def as_secret_data(self) -> dict[str, str]:
        """A Secret's `data`: base64 of each PEM."""
        return {k: base64.b64encode(v).decode() for k, v in self.as_data().items()}

    @classmethod
    def from_secret_data(cls, data: dict[str, str] | None) -> CertificateSet | None:
        return cls.from_data({k: base64.b64decode(v) for k, v in (data or {}).items()})

    @property
    def serving_not_after(self) -> dt.datetime:
        return x509.load_pem_x509_certificate(self.cert).not_valid_after_utc


@dataclass(frozen=True)
class WebhookCertificates:
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def in_directory(cls, directory: Path) -> WebhookCertificates:
        """The serving files' paths, named as in a Secret (and as cert-manager's mounted Secret names them)."""
        return cls(directory / CA_BUNDLE, directory / TLS_CERT, directory / TLS_KEY)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _general_name(n: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(n))
    except ValueError:
        return x509.DNSName(n)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _new_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(CA_NAME)).issuer_name(_name(CA_NAME))
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(key, hashes.SHA256()))
    return ca, key


def _serving(names: list[str], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
             now: dt.datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + SERVING_VALIDITY, ca.not_valid_after_utc)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def issue(names: list[str], now: dt.datetime | None = None, previous: CertificateSet | None = None) -> CertificateSet:
    """A serving certificate for `names` (DNS names or IPs). Signed by `previous`'s CA while that CA outlives a
    whole serving period; otherwise by a new CA, with the previous CA kept in the bundle while it is valid."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if previous is not None:
        cas = x509.load_pem_x509_certificates(previous.ca_bundle)
        ca, ca_key = cas[0], serialization.load_pem_private_key(previous.ca_key, None)
        if ca.not_valid_after_utc - now > SERVING_VALIDITY and isinstance(ca_key, ec.EllipticCurvePrivateKey):
            cert, key = _serving(names, ca, ca_key, now)
            return CertificateSet(previous.ca_bundle, previous.ca_key, cert, key)
    new_ca, new_key = _new_ca(now)
    bundle = new_ca.public_bytes(serialization.Encoding.PEM)
    if previous is not None:
        bundle += b"".join(c.public_bytes(serialization.Encoding.PEM)
                           for c in x509.load_pem_x509_certificates(previous.ca_bundle)[:1] if c.not_valid_after_utc > now)
    cert, key = _serving(names, new_ca, new_key, now)
    return CertificateSet(bundle, _pem_key(new_key), cert, key)


def renewal_reason(current: CertificateSet | None, names: list[str], now: dt.datetime | None = None) -> str | None:
    """Why `current` must be replaced (missing, unreadable, other names, a third of its life left), or None."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if current is None:
        return "no certificate yet"
    try:
        cert = x509.load_pem_x509_certificate(current.cert)
        ca = x509.load_pem_x509_certificates(current.ca_bundle)[0]
        serialization.load_pem_private_key(current.key, None)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as err:
        return f"unreadable or not signed by its CA: {err}"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if set(san) != {_general_name(n) for n in names}:
        return "its names differ from the webhook's"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    if cert.not_valid_after_utc - now < lifetime / 3:
        return f"it expires at {cert.not_valid_after_utc.isoformat()}"
    return None


def write_files(certs: CertificateSet, directory: Path) -> WebhookCertificates:
    """Write the serving files; a file is rewritten only when its content changes (the server reloads then)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = WebhookCertificates.in_directory(directory)
    for path, content in ((out.ca_file, certs.ca_bundle), (out.cert_file, certs.cert), (out.key_file, certs.key)):
        if not path.exists() or path.read_bytes() != content:
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            tmp.chmod(0o600)
            tmp.replace(path)
    return out


def make_webhook_certificates(directory: Path, names: list[str]) -> WebhookCertificates:
    """A fresh CA and a serving certificate for `names`, written as PEM files (local development)."""
    return write_files(issue(names), directory)
