"""Node identities for the real network: a cluster CA, one certificate per node, mutual TLS.

Each cluster has its own certificate authority (an ECDSA P-256 key, self-signed). Node ``i``
gets a certificate signed by it whose subject CN is ``jungle-node-<i>`` and whose subject
alternative names hold the URI ``urn:jungle:node:<i>`` (the binding of the node id) and the
node's IP address. A connection is accepted only when

1. the TLS handshake succeeds with a certificate chaining to the cluster CA, on *both* sides
   (``ssl.CERT_REQUIRED`` for server and client: mutual TLS, TLS 1.3 only), and
2. the id in the certificate's URI SAN is a node of the cluster, and the SHA-256 fingerprint
   of the certificate is the one the cluster configuration lists for that id (pinning: a
   certificate the CA signed by mistake for the same id is still refused), and
3. on the dialing side, that id is the node it meant to reach.

The authenticated id is then the only sender the transport accepts on that connection
(:mod:`netsim.net.transport`): a frame that claims another sender is a fault.

Key generation uses the ``cryptography`` package; the TLS itself is the standard ``ssl``
module (through anyio's backend-neutral TLS streams).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

URI_PREFIX = "urn:jungle:node:"
"""A node's certificate carries the URI SAN ``urn:jungle:node:<id>``."""

CERT_LIFETIME_DAYS = 3650


class AuthError(Exception):
    """A peer failed authentication (bad certificate, unknown id, fingerprint mismatch)."""


@dataclass(frozen=True)
class NodeCredentials:
    """PEM bytes of one node's certificate and private key."""

    node_id: int
    cert_pem: bytes
    key_pem: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_pem(self.cert_pem)


@dataclass(frozen=True)
class ClusterCA:
    """The cluster's certificate authority (PEM bytes of its certificate and key)."""

    cert_pem: bytes
    key_pem: bytes


def fingerprint_der(der: bytes) -> str:
    """SHA-256 of a DER certificate, as lowercase hex pairs joined by ``:``."""
    h = hashlib.sha256(der).hexdigest()
    return ":".join(h[i : i + 2] for i in range(0, len(h), 2))


def fingerprint_pem(pem: bytes) -> str:
    """SHA-256 fingerprint of a PEM certificate, the first one of a chain (see
    :func:`fingerprint_der`)."""
    text = pem.decode("ascii")
    end = "-----END CERTIFICATE-----"
    if text.count(end) > 1:
        text = text[: text.index(end) + len(end)] + "\n"
    return fingerprint_der(ssl.PEM_cert_to_DER_cert(text))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def make_ca(name: str = "jungle cluster CA") -> ClusterCA:
    """A fresh self-signed CA (ECDSA P-256), valid for :data:`CERT_LIFETIME_DAYS` days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = _now() - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=CERT_LIFETIME_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return ClusterCA(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def issue_node_cert(ca: ClusterCA, node_id: int, host: str = "127.0.0.1") -> NodeCredentials:
    """A certificate for node ``node_id`` signed by ``ca``: CN ``jungle-node-<id>``, SANs
    ``urn:jungle:node:<id>`` and ``host`` (an IP address or a DNS name)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not 0 <= node_id < 2**16:
        raise ValueError(f"node ids are in [0, 65536), got {node_id}")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        host_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        host_name = x509.DNSName(host)
    start = _now() - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                    f"jungle-node-{node_id}")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=CERT_LIFETIME_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"{URI_PREFIX}{node_id}"), host_name]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return NodeCredentials(
        node_id,
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def self_signed_node_cert(node_id: int, host: str = "127.0.0.1") -> NodeCredentials:
    """A self-signed certificate for node ``node_id`` (for rendezvous without a cluster CA:
    each node makes its own key, which never leaves it, and publishes the certificate; the
    peers trust exactly the published certificates, pinned by fingerprint)."""
    ca = make_ca(f"jungle-node-{node_id} (self-signed)")
    # the node's own CA issues its one certificate: the CA certificate is the trust anchor
    # the peers load, the leaf is what the node presents
    return _with_chain(issue_node_cert(ca, node_id, host), ca)


def _with_chain(cred: NodeCredentials, ca: ClusterCA) -> NodeCredentials:
    return NodeCredentials(cred.node_id, cred.cert_pem + ca.cert_pem, cred.key_pem)


def node_id_of(der: bytes) -> int:
    """The node id bound to a DER certificate (its ``urn:jungle:node:<id>`` URI SAN).

    Raises :class:`AuthError` when there is none, more than one, or it is malformed."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier)
                if u.startswith(URI_PREFIX)]
    except Exception as exc:  # malformed certificate or no SAN
        raise AuthError(f"certificate without a node id: {exc}") from None
    if len(uris) != 1:
        raise AuthError(f"certificate must bind exactly one node id, has {len(uris)}")
    text = uris[0][len(URI_PREFIX):]
    if not text.isdigit() or len(text) > 5:
        raise AuthError(f"malformed node id {text!r} in certificate")
    return int(text)


def authenticate(der: bytes | None, fingerprints: dict[int, str],
                 expected: int | None = None) -> int:
    """Check a peer's certificate (already verified against the CA by ``ssl``) and return its
    node id: the id must be a cluster node, the fingerprint the pinned one, and, when
    ``expected`` is given, equal to it. Raises :class:`AuthError` otherwise."""
    if not der:
        raise AuthError("peer presented no certificate")
    node = node_id_of(der)
    pinned = fingerprints.get(node)
    if pinned is None:
        raise AuthError(f"node id {node} is not in the cluster")
    if fingerprint_der(der) != pinned:
        raise AuthError(f"certificate fingerprint for node {node} does not match the config")
    if expected is not None and node != expected:
        raise AuthError(f"dialed node {expected} but the peer is node {node}")
    return node


def _context(purpose: ssl.Purpose, ca_pem: bytes, cert_file: str | os.PathLike[str],
             key_file: str | os.PathLike[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(purpose, cadata=ca_pem.decode("ascii"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # the node id is checked from the certificate instead
    ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the server requires a client cert too
    ctx.load_cert_chain(os.fspath(cert_file), os.fspath(key_file))
    return ctx


def server_context(ca_pem: bytes, cert_file: str | os.PathLike[str],
                   key_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """TLS 1.3 server context that *requires* a client certificate from the cluster CA."""
    return _context(ssl.Purpose.CLIENT_AUTH, ca_pem, cert_file, key_file)


def client_context(ca_pem: bytes, cert_file: str | os.PathLike[str],
                   key_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """TLS 1.3 client context presenting this node's certificate, verifying the server's."""
    return _context(ssl.Purpose.SERVER_AUTH, ca_pem, cert_file, key_file)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
