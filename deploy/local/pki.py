"""Certificates and kubeconfigs for the local control plane, made with the openssl CLI.

One CA signs the API server's serving certificate (SANs for loopback and the in-cluster names) and a
client certificate per identity; a separate RSA key pair signs service-account tokens.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# identity name -> (common name, organisation)
CLIENTS = {
    "admin": ("kubernetes-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", ""),
    "scheduler": ("system:kube-scheduler", ""),
    "kwok": ("kwok-controller", "system:masters"),
    # the operator when run from the host (tests, demo): its own user, so the audit log tells its writes apart
    "operator": ("moe-operator", "system:masters"),
}
SERVER_SANS = ("DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
               "DNS:kubernetes.default.svc.cluster.local", "IP:127.0.0.1", "IP:10.96.0.1")


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()[-500:]}")


def _key(name: str, pki: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=pki)


def _signed(name: str, subject: str, ext: str, pki: Path) -> None:
    _key(name, pki)
    (pki / f"{name}.ext").write_text(ext)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "3650", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)


def make_pki(pki: Path) -> None:
    """CA, API server serving cert, one client cert per identity, service-account key pair (idempotent)."""
    pki.mkdir(parents=True, exist_ok=True)
    expected = ["ca.crt", "apiserver.crt", "sa.key", "sa.pub"] + [f"{name}.crt" for name in CLIENTS]
    if all((pki / f).exists() for f in expected):
        return
    _key("ca", pki)
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=moe-operator-local-ca", "-days", "3650",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", "ca.crt", cwd=pki)
    _signed("apiserver", "/CN=kube-apiserver",
            f"subjectAltName={','.join(SERVER_SANS)}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n", pki)
    for name, (cn, org) in CLIENTS.items():
        subject = f"/CN={cn}" + (f"/O={org}" if org else "")
        _signed(name, subject, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n", pki)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=pki)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def kubeconfig(server: str, pki: Path, identity: str) -> str:
    """A kubeconfig for `identity` (a key of CLIENTS) against `server`, with file paths to the PKI."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: moe-local
  cluster:
    server: {server}
    certificate-authority: {pki / 'ca.crt'}
users:
- name: {identity}
  user:
    client-certificate: {pki / f'{identity}.crt'}
    client-key: {pki / f'{identity}.key'}
contexts:
- name: moe-local
  context: {{cluster: moe-local, user: {identity}}}
current-context: moe-local
"""
