"""The operator's own webhook certificates: renewal keeps the CA (caBundle stays), CA rotation bundles both."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from moe_operator.kube.certs import CA_VALIDITY, SERVING_VALIDITY, issue, renewal_reason, write_files

NAMES = ["moe-operator-webhook.moe-system.svc", "moe-operator-webhook.moe-system.svc.cluster.local", "127.0.0.1"]
NOW = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)


def _chain_ok(certs) -> bool:
    leaf = x509.load_pem_x509_certificate(certs.cert)
    try:
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificates(certs.ca_bundle)[0])
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def test_a_fresh_certificate_covers_its_names_and_needs_nothing():
    certs = issue(NAMES, NOW)
    assert _chain_ok(certs)
    leaf = x509.load_pem_x509_certificate(certs.cert)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == set(NAMES[:2])
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert renewal_reason(certs, NAMES, NOW) is None
    assert renewal_reason(None, NAMES, NOW) == "no certificate yet"


def test_other_names_or_a_third_of_life_left_ask_for_renewal():
    certs = issue(NAMES, NOW)
    assert "names differ" in renewal_reason(certs, NAMES + ["other.svc"], NOW)
    assert renewal_reason(certs, NAMES, NOW + SERVING_VALIDITY * 0.6) is None
    assert "expires" in renewal_reason(certs, NAMES, NOW + SERVING_VALIDITY * 0.7)


def test_a_certificate_not_signed_by_its_ca_is_replaced():
    a, b = issue(NAMES, NOW), issue(NAMES, NOW)
    mixed = type(a)(a.ca_bundle, a.ca_key, b.cert, b.key)
    assert "not signed" in renewal_reason(mixed, NAMES, NOW)


def test_renewal_keeps_the_ca_so_the_ca_bundle_does_not_change():
    first = issue(NAMES, NOW)
    later = NOW + SERVING_VALIDITY * 0.7
    renewed = issue(NAMES, later, first)
    assert renewed.ca_bundle == first.ca_bundle and renewed.ca_key == first.ca_key
    assert renewed.cert != first.cert and _chain_ok(renewed)
    assert renewal_reason(renewed, NAMES, later) is None


def test_a_ca_near_its_end_is_replaced_and_the_old_one_stays_in_the_bundle():
    first = issue(NAMES, NOW)
    late = NOW + CA_VALIDITY - SERVING_VALIDITY / 2
    rotated = issue(NAMES, late, first)
    cas = x509.load_pem_x509_certificates(rotated.ca_bundle)
    assert len(cas) == 2 and cas[1] == x509.load_pem_x509_certificates(first.ca_bundle)[0]
    assert rotated.ca_key != first.ca_key and _chain_ok(rotated)
    # a serving certificate never outlives the CA that signed it
    assert x509.load_pem_x509_certificate(rotated.cert).not_valid_after_utc <= cas[0].not_valid_after_utc


def test_files_are_rewritten_only_when_their_content_changes(tmp_path):
    certs = issue(NAMES, NOW)
    files = write_files(certs, tmp_path)
    inode = files.cert_file.stat().st_ino
    write_files(certs, tmp_path)
    assert files.cert_file.stat().st_ino == inode  # unchanged: the webhook server does not reload
    renewed = issue(NAMES, NOW + SERVING_VALIDITY * 0.7, certs)
    write_files(renewed, tmp_path)
    assert files.cert_file.read_bytes() == renewed.cert and files.key_file.read_bytes() == renewed.key
    assert oct(files.key_file.stat().st_mode & 0o777) == "0o600"
