"""Workers over TLS with a shared token: the coordinator dials with the CA; plaintext dialling fails."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import hand_started_worker, repo_env, run_cli


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msparity-test-worker")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    return tmp_path / "cert.pem", tmp_path / "key.pem"


def test_compare_over_tls_with_token(tmp_path):
    cert, key = self_signed(tmp_path)
    (tmp_path / "token").write_text("tls-token\n")
    tls = ("--tls-cert", str(cert), "--tls-key", str(key), "--token-file", str(tmp_path / "token"))
    with hand_started_worker("pt", "examples.mlp_pt:build", *tls) as pt, \
            hand_started_worker("ms", "examples.mlp_ms:build", *tls) as ms:
        ok = run_cli("compare", "--pt", pt, "--ms", ms, "--tls-ca", str(cert), "--token", "tls-token")
        assert ok.code == 0, ok.stdout + ok.stderr
        plaintext = run_cli("ping", "--pt", pt, "--ms", ms, "--token", "tls-token", env=repo_env(), timeout=120)
        assert plaintext.code == 3 and "cannot reach" in plaintext.stderr
