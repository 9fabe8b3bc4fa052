"""A test PKI made with the openssl command: a CA, a server certificate for
localhost/127.0.0.1, a client certificate, and the bad ones (expired, for
another host name, issued by another CA), each key PEM; one key encrypted.
The CA, the server's and the client's key and certificate also as DER
(``openssl pkey/x509 -outform DER``), and the server key as encrypted PKCS#8
DER (its password ``password``)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Pki:
    root: Path
    ca: Path
    server_key: Path
    server_cert: Path
    client_key: Path
    client_cert: Path
    expired_key: Path
    expired_cert: Path
    wronghost_key: Path
    wronghost_cert: Path
    rogue_ca: Path
    rogue_key: Path
    rogue_cert: Path
    encrypted_key: Path
    revoked_key: Path
    revoked_cert: Path
    crl: Path
    der: DerFiles
    password: str = "s3cret"


@dataclass
class DerFiles:
    ca: Path
    server_key: Path
    server_cert: Path
    client_key: Path
    client_cert: Path
    encrypted_key: Path  # the server's key, PKCS#8 encrypted with Pki.password


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr}")


def _ca(root: Path, name: str) -> tuple[Path, Path]:
    key, cert = root / f"{name}.key", root / f"{name}.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.name, "-out", cert.name, "-days", "30",
             "-subj", f"/CN=dcmcli test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=root)
    return key, cert


def _leaf(root: Path, name: str, ca: tuple[Path, Path], cn: str, san: str, *, days: int = 30,
          expired: bool = False, usage: str = "serverAuth,clientAuth") -> tuple[Path, Path]:
    key, csr, cert = root / f"{name}.key", root / f"{name}.csr", root / f"{name}.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key.name, "-out", csr.name, "-subj", f"/CN={cn}",
             cwd=root)
    ext = root / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    if expired:
        # a certificate that ended yesterday: openssl x509 cannot back-date, the ca command can
        db = root / f"{name}-db"
        db.mkdir()
        (db / "index.txt").write_text("")
        (db / "serial").write_text("1000\n")
        conf = root / f"{name}-ca.cnf"
        conf.write_text(f"""[ca]
default_ca = d
[d]
database = {db}/index.txt
serial = {db}/serial
new_certs_dir = {db}
default_md = sha256
policy = p
copy_extensions = none
[p]
commonName = supplied
""")
        _openssl("ca", "-batch", "-config", conf.name, "-cert", ca[1].name, "-keyfile", ca[0].name, "-in", csr.name,
                 "-out", cert.name, "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
                 "-extfile", ext.name, "-notext", cwd=root)
    else:
        _openssl("x509", "-req", "-in", csr.name, "-CA", ca[1].name, "-CAkey", ca[0].name, "-CAcreateserial",
                 "-out", cert.name, "-days", str(days), "-extfile", ext.name, cwd=root)
    return key, cert


def _revoked(root: Path, ca: tuple[Path, Path]) -> tuple[Path, Path, Path]:
    """A server certificate the CA has revoked, and the CA's revocation list."""
    db = root / "revoked-db"
    db.mkdir()
    (db / "index.txt").write_text("")
    (db / "serial").write_text("2000\n")
    (db / "crlnumber").write_text("01\n")
    conf = root / "revoked-ca.cnf"
    conf.write_text(f"""[ca]
default_ca = d
[d]
database = {db}/index.txt
serial = {db}/serial
crlnumber = {db}/crlnumber
new_certs_dir = {db}
default_md = sha256
default_days = 30
default_crl_days = 30
policy = p
copy_extensions = none
[p]
commonName = supplied
""")
    key, csr, cert, crl = root / "revoked.key", root / "revoked.csr", root / "revoked.pem", root / "crl.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key.name, "-out", csr.name, "-subj", "/CN=localhost",
             cwd=root)
    ext = root / "revoked.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _openssl("ca", "-batch", "-config", conf.name, "-cert", ca[1].name, "-keyfile", ca[0].name, "-in", csr.name,
             "-out", cert.name, "-extfile", ext.name, "-notext", cwd=root)
    _openssl("ca", "-config", conf.name, "-cert", ca[1].name, "-keyfile", ca[0].name, "-revoke", cert.name, cwd=root)
    _openssl("ca", "-config", conf.name, "-cert", ca[1].name, "-keyfile", ca[0].name, "-gencrl", "-out", crl.name,
             cwd=root)
    return key, cert, crl


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make the test certificates (apt-get install openssl)")
    root = tmp_path_factory.mktemp("pki")
    ca = _ca(root, "ca")
    rogue = _ca(root, "rogue-ca")
    server = _leaf(root, "server", ca, "localhost", "DNS:localhost,IP:127.0.0.1,IP:::1")
    client = _leaf(root, "client", ca, "dcmcli test client", "DNS:client.test", usage="clientAuth")
    expired = _leaf(root, "expired", ca, "localhost", "DNS:localhost,IP:127.0.0.1", expired=True)
    wrong = _leaf(root, "wronghost", ca, "pacs.example.org", "DNS:pacs.example.org")
    rogue_leaf = _leaf(root, "rogue", rogue, "localhost", "DNS:localhost,IP:127.0.0.1")
    revoked_key, revoked_cert, crl = _revoked(root, ca)
    enc = root / "server-encrypted.key"
    _openssl("pkey", "-in", server[0].name, "-out", enc.name, "-aes256", "-passout", "pass:s3cret", cwd=root)
    der = DerFiles(*(root / f"{n}.der" for n in ("ca", "server-key", "server", "client-key", "client",
                                                   "server-encrypted-key")))
    _openssl("x509", "-in", ca[1].name, "-outform", "DER", "-out", der.ca.name, cwd=root)
    for key, cert, key_der, cert_der in ((server[0], server[1], der.server_key, der.server_cert),
                                         (client[0], client[1], der.client_key, der.client_cert)):
        _openssl("pkey", "-in", key.name, "-outform", "DER", "-out", key_der.name, cwd=root)
        _openssl("x509", "-in", cert.name, "-outform", "DER", "-out", cert_der.name, cwd=root)
    _openssl("pkcs8", "-topk8", "-in", server[0].name, "-outform", "DER", "-out", der.encrypted_key.name,
             "-v2", "aes-256-cbc", "-passout", "pass:s3cret", cwd=root)
    return Pki(root, ca[1], server[0], server[1], client[0], client[1], expired[0], expired[1], wrong[0], wrong[1],
               rogue[1], rogue_leaf[0], rogue_leaf[1], enc, revoked_key, revoked_cert, crl, der)
