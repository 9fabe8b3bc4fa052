"""DICOM TLS (PS3.15 B) and user identity against real peers: DCMTK's
storescp/echoscu/storescu/findscu with +tls, Orthanc with DicomTlsEnabled,
dcmcli's own servers; certificates from a test CA (tests/tls_certs.py).
Every bad case asserts its message and exit code."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import (dcmcli_cmd, dcmtk, free_port, json_lines, received_events, recording_peers, remaining_events,
                      run_dcmcli, sample, stop, wait_listening)
from hostile_peer import assert_tls_refusals_logged, tls_hostile_clients
from qr_peers import orthanc  # noqa: F401 - the fixture
from test_nservices import npeer  # noqa: F401 - the fixture (tests/nservice_peer.py)
from tls_certs import Pki

MOVE_PEER = Path(__file__).with_name("move_peer.py")

pytestmark = pytest.mark.interop


def tls_server(p: Pki, key: Path | None = None, cert: Path | None = None) -> list[str]:
    return ["+tls", str(key or p.server_key), str(cert or p.server_cert), "+cf", str(p.ca)]


def client(p: Pki) -> list[str]:
    return ["+tls", str(p.client_key), str(p.client_cert), "+cf", str(p.ca)]


@pytest.fixture
def dcmtk_tls_storescp(tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[int, Path]:
        port = free_port()
        out = tmp_path / f"dcmtk-tls-{len(procs)}"
        out.mkdir()
        proc = subprocess.Popen([dcmtk("storescp"), *args, "-od", str(out), str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        procs.append(proc)
        wait_listening(port, proc)
        return port, out

    yield start
    for p in procs:
        stop(p)


def test_dcmcli_to_dcmtk_storescp_over_mutual_tls(pki: Pki, dcmtk_tls_storescp, tmp_path: Path) -> None:
    port, out = dcmtk_tls_storescp(*tls_server(pki))  # DCMTK requires a client certificate by default (-rc)
    r = run_dcmcli("echoscu", "--json", *client(pki), "localhost", str(port))
    assert r.returncode == 0, r.stderr
    assoc = next(e for e in json_lines(r.stdout) if e["event"] == "association")
    tls = assoc["tls"]
    assert tls["version"] in ("TLSv1.2", "TLSv1.3") and tls["cipher"]  # type: ignore[index]
    assert "localhost" in tls["peer_subject"] and "dcmcli test ca" in tls["peer_issuer"]  # type: ignore[index]
    r = run_dcmcli("storescu", *client(pki), "localhost", str(port), str(sample("CT_small.dcm")))
    assert r.returncode == 0, r.stderr
    assert len(list(out.iterdir())) == 1
    # without a certificate of our own, DCMTK refuses the handshake
    r = run_dcmcli("echoscu", "+tla", "+cf", str(pki.ca), "localhost", str(port))
    assert r.returncode == 71 and "requires a client certificate" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_dcmtk_clients_to_dcmcli_servers_over_tls(pki: Pki, dcmcli_storescp, tmp_path: Path) -> None:
    server = dcmcli_storescp(*tls_server(pki), "-rc")
    common = [*client(pki), "localhost", str(server.port)]
    assert subprocess.run([dcmtk("echoscu"), *common], capture_output=True, timeout=60).returncode == 0
    r = subprocess.run([dcmtk("storescu"), *common, str(sample("CT_small.dcm")), str(sample("MR_small.dcm"))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # the acceptor reports the TLS session and the client's certificate
    stop(server.proc)
    events = remaining_events(server)
    got = [e for e in events if e["event"] == "received"]
    assert len(got) == 2 and all(e["status"]["code"] == 0 for e in got)  # type: ignore[index]
    assocs = [e for e in events if e["event"] == "association"]
    assert assocs and all(a["tls"] and "dcmcli test client" in a["tls"]["peer_subject"] for a in assocs)  # type: ignore[index]


def test_dcmtk_findscu_to_dcmcli_mwlscp_over_tls(pki: Pki, dcmcli_mwlscp, tmp_path: Path) -> None:
    (tmp_path / "today.csv").write_text("PatientName,PatientID,ScheduledProcedureStepSequence[0].Modality\n"
                                        "Doe^Jane,P1,CT\n")
    port = dcmcli_mwlscp(*tls_server(pki), "--source", str(tmp_path / "today.csv")).port
    out = tmp_path / "rsp"
    out.mkdir()
    r = subprocess.run([dcmtk("findscu"), "-W", *client(pki), "-X", "-od", str(out), "-k", "PatientName",
                        "localhost", str(port)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("rsp*"))) == 1
    r = run_dcmcli("findscu", "-W", "--json", *client(pki), "localhost", str(port), "-k", "PatientID")
    assert r.returncode == 0 and json_lines(r.stdout)[-1]["matches"] == 1, r.stderr


def test_dcmcli_pair_mutual_tls_and_encrypted_key(pki: Pki, dcmcli_storescp) -> None:
    server = dcmcli_storescp("+tls", str(pki.encrypted_key), str(pki.server_cert), "+pw", pki.password,
                             "+cf", str(pki.ca), "-rc")
    r = run_dcmcli("storescu", *client(pki), "localhost", str(server.port), str(sample("CT_small.dcm")))
    assert r.returncode == 0, r.stderr
    assert len(received_events(server, 1)) == 1
    # no client certificate where one is required: named on both sides
    r = run_dcmcli("echoscu", "+tla", "+cf", str(pki.ca), "localhost", str(server.port))
    assert r.returncode == 71 and "requires a client certificate" in r.stderr, r.stderr
    stop(server.proc)
    err = server.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "sent no client certificate" in err


def test_wrong_or_missing_key_password(pki: Pki) -> None:
    """The same line and exit code for a PEM key and an encrypted PKCS#8
    DER key (-der): a wrong password, and none given with no terminal to ask on."""
    lines = {}
    for kind, key, cert, der in (("pem", pki.encrypted_key, pki.server_cert, []),
                                 ("der", pki.der.encrypted_key, pki.der.server_cert, ["-der"])):
        for case, pw in (("wrong", ["+pw", "wrong"]), ("missing", [])):
            r = run_dcmcli("storescp", "+tls", str(key), str(cert), *der, *pw, "0")
            assert r.returncode == 1 and "Traceback" not in r.stderr, (kind, case, r.stderr)
            (line,) = r.stderr.strip().splitlines()
            lines[kind, case] = line.replace(str(key), "KEY")
    assert lines["pem", "wrong"] == lines["der", "wrong"]
    assert "cannot decrypt the private key 'KEY': wrong password; check +pw" in lines["der", "wrong"]
    assert lines["pem", "missing"] == lines["der", "missing"]
    assert "'KEY' is encrypted and no password was given" in lines["der", "missing"]
    # a requestor's DER key the same way
    r = run_dcmcli("echoscu", "-der", "+tls", str(pki.der.encrypted_key), str(pki.der.server_cert), "+pw", "nope",
                   "+cf", str(pki.der.ca), "localhost", "1")
    assert r.returncode == 1 and "wrong password" in r.stderr, r.stderr


def test_der_keys_and_certificates_with_dcmtk(pki: Pki, dcmcli_storescp, dcmtk_tls_storescp) -> None:
    """-der: dcmcli storescp with a DER key and certificate (plain and
    encrypted PKCS#8 with +pw), DCMTK echoscu calling it with PEM files and
    with its own -der; dcmcli echoscu with a DER client key calling DCMTK storescp."""
    d = pki.der
    plain = dcmcli_storescp("+tls", str(d.server_key), str(d.server_cert), "-der", "+cf", str(d.ca), "-rc")
    encrypted = dcmcli_storescp("+tls", str(d.encrypted_key), str(d.server_cert), "-der", "+pw", pki.password,
                                "+cf", str(d.ca), "-rc")
    for server in (plain, encrypted):
        for args in (client(pki), ["-der", "+tls", str(d.client_key), str(d.client_cert), "+cf", str(d.ca)]):
            r = subprocess.run([dcmtk("echoscu"), *args, "localhost", str(server.port)], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        stop(server.proc)
        assocs = [e for e in remaining_events(server) if e["event"] == "association"]
        assert len(assocs) == 2 and all("dcmcli test client" in a["tls"]["peer_subject"] for a in assocs)  # type: ignore[index]
    port, _ = dcmtk_tls_storescp(*tls_server(pki))  # requires our client certificate
    r = run_dcmcli("echoscu", "--json", "-der", "+tls", str(d.client_key), str(d.client_cert), "+cf", str(d.ca),
                   "localhost", str(port))
    assert r.returncode == 0, r.stderr
    assoc = next(e for e in json_lines(r.stdout) if e["event"] == "association")
    assert "localhost" in assoc["tls"]["peer_subject"]  # type: ignore[index]
    # -der names the format of every file; a PEM CA among them is still read
    r = run_dcmcli("echoscu", "-der", "+tls", str(d.client_key), str(d.client_cert), "+cf", str(pki.ca),
                   "localhost", str(port))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("case", ["untrusted", "expired", "wronghost"])
def test_bad_server_certificates(pki: Pki, dcmcli_storescp, case: str) -> None:
    key, cert, words = {
        "untrusted": (pki.rogue_key, pki.rogue_cert, "is not trusted"),
        "expired": (pki.expired_key, pki.expired_cert, "expired"),
        "wronghost": (pki.wronghost_key, pki.wronghost_cert, "is not for 'localhost'"),
    }[case]
    server = dcmcli_storescp(*tls_server(pki, key, cert))
    r = run_dcmcli("echoscu", "--json", "+tla", "+cf", str(pki.ca), "localhost", str(server.port))
    assert r.returncode == 71, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assoc = next(e for e in json_lines(r.stdout) if e["event"] == "association")
    assert assoc["outcome"] == "tls failed" and words in str(assoc["connect_error"])
    # named: which certificate, issued by whom
    assert "CN=" in r.stderr or "commonName=" in r.stderr
    # -ic skips the check, with a warning
    r = run_dcmcli("echoscu", "+tla", "-ic", "localhost", str(server.port))
    assert r.returncode == 0 and "not verified" in r.stderr, r.stderr


def test_tls_on_one_side_only_is_named(pki: Pki, dcmcli_storescp, dcmtk_tls_storescp) -> None:
    plain = dcmcli_storescp()
    r = run_dcmcli("echoscu", "+tla", "+cf", str(pki.ca), "localhost", str(plain.port))
    assert r.returncode == 71 and "does not speak TLS" in r.stderr, r.stderr
    tls = dcmcli_storescp(*tls_server(pki))
    t0 = time.monotonic()
    r = run_dcmcli("echoscu", "localhost", str(tls.port))
    assert time.monotonic() - t0 < 10  # named at once, not after a timeout
    assert r.returncode in (62, 71) and "+tls" in r.stderr, r.stderr
    dport, _ = dcmtk_tls_storescp(*tls_server(pki))
    r = run_dcmcli("echoscu", "localhost", str(dport))
    assert r.returncode in (62, 71) and "+tls" in r.stderr, r.stderr
    stop(tls.proc)
    err = tls.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "does not speak TLS" in err


def test_no_common_tls_version(pki: Pki, dcmcli_storescp) -> None:
    """OpenSSL's own server limited to TLS 1.2 against a client of the
    extended profile (TLS 1.3 only), and the reverse against dcmcli's server."""
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-quiet", "-accept", f"127.0.0.1:{port}", "-tls1_2",
                             "-cert", str(pki.server_cert), "-key", str(pki.server_key)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        r = run_dcmcli("echoscu", "+tla", "+cf", str(pki.ca), "+pz", "localhost", str(port))
        assert r.returncode == 71 and "no TLS version in common" in r.stderr, r.stderr
    finally:
        proc.kill()
        proc.wait(10)
    server = dcmcli_storescp(*tls_server(pki), "+pz")
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_2"],
                       input="", capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    stop(server.proc)
    err = server.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "no TLS version in common" in err, err


def hostile_tls_clients(pki: Pki, port: int, certificate_required: bool = False) -> dict[int, str]:
    """tests/hostile_peer.py's hostile TLS clients at a listener started with -ta 2."""
    return tls_hostile_clients(port, acse_timeout=2.0, ca=pki.ca, rogue_key=pki.rogue_key, rogue_cert=pki.rogue_cert,
                               certificate_required=certificate_required)


def test_hostile_tls_clients_do_not_stop_the_server(pki: Pki, dcmcli_storescp) -> None:
    """storescp with -rc: a stalled handshake dropped after -ta, garbage
    instead of a ClientHello, a cleartext association, an untrusted and a
    missing client certificate, each refused and logged; then a real store."""
    server = dcmcli_storescp(*tls_server(pki), "-ta", "2", "-rc")
    refused = hostile_tls_clients(pki, server.port, certificate_required=True)
    r = run_dcmcli("storescu", *client(pki), "localhost", str(server.port), str(sample("CT_small.dcm")))
    assert r.returncode == 0, r.stderr
    assert len(received_events(server, 1)) == 1
    stop(server.proc)
    assert_tls_refusals_logged(server.proc.stderr.read().decode(), refused)  # type: ignore[union-attr]


def orthanc_tls(pki: Pki, **more: object) -> dict[str, object]:
    """Orthanc's configuration for DICOM TLS with the test CA's server certificate, a client certificate
    required; ``more``: other settings (DicomModalities)."""
    return {"DicomTlsEnabled": True, "DicomTlsCertificate": str(pki.server_cert),
            "DicomTlsPrivateKey": str(pki.server_key), "DicomTlsTrustedCertificates": str(pki.ca),
            "DicomTlsRemoteCertificateRequired": True, **more}


def test_orthanc_over_tls(pki: Pki, orthanc, tmp_path: Path) -> None:
    peer = orthanc(dicomweb=False, overrides=orthanc_tls(pki))
    args = [*client(pki), "-aec", peer.aet, "localhost", str(peer.port)]
    r = run_dcmcli("echoscu", *args)
    assert r.returncode == 0, r.stderr
    r = run_dcmcli("storescu", *args, str(sample("CT_small.dcm")))
    assert r.returncode == 0, r.stderr
    r = run_dcmcli("findscu", "--json", *args, "-k", "PatientID")
    assert r.returncode == 0 and json_lines(r.stdout)[-1]["matches"] == 1, r.stderr
    pid = next(e for e in json_lines(r.stdout) if e["event"] == "match")["dataset"]["00100020"]["Value"][0]  # type: ignore[index]
    r = run_dcmcli("getscu", "--json", *args, "-od", str(tmp_path / "got"), "-k", f"PatientID={pid}")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "got").rglob("*.dcm"))) == 1  # C-GET's C-STORE on the same TLS association


def test_user_identity_required_by_storescp(tmp_path: Path, dcmcli_storescp) -> None:
    import base64
    import hashlib
    import hmac

    users = tmp_path / "users"
    users.write_text("# who may store\nalice:wonderland\nbob\njwt-hs256:topsecret\n")
    server = dcmcli_storescp("--require-user", str(users))
    ok = run_dcmcli("echoscu", "--json", "-usr", "alice", "-pwd", "wonderland", "-rsp", "127.0.0.1",
                    str(server.port))
    assert ok.returncode == 0, ok.stderr
    assoc = next(e for e in json_lines(ok.stdout) if e["event"] == "association")
    assert assoc["user_identity"]["server_response"] is True  # type: ignore[index]
    assert run_dcmcli("echoscu", "-usr", "bob", "127.0.0.1", str(server.port)).returncode == 0

    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    head, body = b64(b'{"alg":"HS256","typ":"JWT"}'), b64(json.dumps({"sub": "ct01", "exp": time.time() + 60}).encode())
    sig = b64(hmac.new(b"topsecret", f"{head}.{body}".encode(), hashlib.sha256).digest())
    assert run_dcmcli("echoscu", "--jwt", f"{head}.{body}.{sig}", "127.0.0.1", str(server.port)).returncode == 0
    for bad in (["-usr", "alice", "-pwd", "nope"], ["-usr", "mallory"], [], ["--jwt", f"{head}.{body}.{b64(b'x')}"]):
        r = run_dcmcli("echoscu", *bad, "127.0.0.1", str(server.port))
        assert r.returncode == 61, (bad, r.stderr)
        if bad:
            assert "user identity" in r.stderr
    stop(server.proc)
    err = server.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "wrong passcode for user 'alice'" in err and "unknown user 'mallory'" in err
    assert "no user identity sent" in err and "signature does not verify" in err


def test_user_identity_seen_by_pynetdicom(tmp_path: Path) -> None:
    """pynetdicom's AE, an independent implementation, checks what dcmcli sends."""
    script = tmp_path / "uid_peer.py"
    log = tmp_path / "seen.json"
    script.write_text(f'''
import json, sys
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification
def identity(event):
    json.dump({{"type": event.user_id_type, "primary": event.primary_field.decode(),
               "secondary": event.secondary_field.decode() if event.secondary_field else None}},
              open({str(log)!r}, "w"))
    return event.primary_field == b"alice" and event.secondary_field == b"wonderland", b""
ae = AE(ae_title="PYNET")
ae.add_supported_context(Verification)
ae.require_calling_aet = []
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_USER_ID, identity)])
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
''')
    import sys

    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        r = run_dcmcli("echoscu", "-usr", "alice", "-pwd", "wonderland", "-rsp", "127.0.0.1", port)
        assert r.returncode == 0, r.stderr
        assert json.loads(log.read_text()) == {"type": 2, "primary": "alice", "secondary": "wonderland"}
        r = run_dcmcli("echoscu", "-usr", "alice", "-pwd", "nope", "-rsp", "127.0.0.1", port)
        assert r.returncode == 61 and "user identity" in r.stderr, r.stderr
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(15)


@pytest.mark.parametrize("args, words", [
    (["+cf", "/nonexistent.pem", "+tla"], "no such file"),
    (["+cf", "x.pem"], "without TLS"),
    (["+tla", "+px", "+pz"], "more than one TLS profile"),
    (["+tla", "-rc", "-ic"], "more than one of -rc, -vc, -ic"),
    (["-pwd", "x"], "-pwd without -usr"),
    (["--tls-key", "k.pem"], "go together"),
])
def test_tls_usage_errors(args: list[str], words: str) -> None:
    r = run_dcmcli("echoscu", *args, "127.0.0.1", "1")
    assert r.returncode in (1, 20) and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_list_profiles_and_ciphers() -> None:
    r = run_dcmcli("storescu", "+ph")
    assert r.returncode == 0 and "bcp195-nd" in r.stdout and "+pz" in r.stdout
    r = run_dcmcli("echoscu", "+cc")
    assert r.returncode == 0 and "ECDHE-RSA-AES128-GCM-SHA256" in r.stdout


def test_hostile_tls_clients_against_mwlscp(pki: Pki, dcmcli_mwlscp, tmp_path: Path) -> None:
    """The worklist server sits on the same acceptor (client certificates
    verified if presented, the default): the same hostile clients refused
    and logged, and a real query over TLS is still answered."""
    (tmp_path / "wl.csv").write_text("PatientName,PatientID\nDoe^Jane,P1\n")
    server = dcmcli_mwlscp("-ta", "2", *tls_server(pki), "--source", str(tmp_path / "wl.csv"))
    refused = hostile_tls_clients(pki, server.port)
    r = run_dcmcli("findscu", "-W", "--json", *client(pki), "localhost", str(server.port), "-k", "PatientID")
    assert r.returncode == 0 and json_lines(r.stdout)[-1]["matches"] == 1, r.stderr
    stop(server.proc)
    assert_tls_refusals_logged(server.proc.stderr.read().decode(), refused)  # type: ignore[union-attr]


def test_revocation_list(pki: Pki, dcmcli_storescp) -> None:
    """+crl: a server certificate its CA revoked is refused; the others pass."""
    revoked = dcmcli_storescp(*tls_server(pki, pki.revoked_key, pki.revoked_cert))
    r = run_dcmcli("echoscu", "+tla", "+cf", str(pki.ca), "+crl", str(pki.crl), "localhost", str(revoked.port))
    assert r.returncode == 71 and "revoked" in r.stderr, r.stderr
    assert run_dcmcli("echoscu", "+tla", "+cf", str(pki.ca), "localhost", str(revoked.port)).returncode == 0
    good = dcmcli_storescp(*tls_server(pki))
    r = run_dcmcli("echoscu", "+tla", "+cf", str(pki.ca), "+crl", str(pki.crl), "localhost", str(good.port))
    assert r.returncode == 0, r.stderr


def test_movescu_receiver_over_tls_with_orthanc(pki: Pki, orthanc, tmp_path: Path) -> None:
    """C-MOVE over TLS, Orthanc's sub-association back to movescu's own
    receiver (+P, the shared acceptor) over TLS too."""
    port = free_port()
    peer = orthanc(dicomweb=False, overrides=orthanc_tls(
        pki, DicomModalities={"me": {"AET": "MOVESCU", "Host": "127.0.0.1", "Port": port, "UseDicomTls": True}}))
    # our side: the server certificate (serverAuth and clientAuth), so the receiver can present it too
    args = ["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca), "-aec", peer.aet]
    assert run_dcmcli("storescu", *args, "localhost", str(peer.port), str(sample("CT_small.dcm"))).returncode == 0
    r = run_dcmcli("movescu", "--json", *args, "-aet", "MOVESCU", "+P", str(port), "-od", str(tmp_path / "got"),
                   "-k", "PatientID=" + str(dcmread_pid(sample("CT_small.dcm"))), "localhost", str(peer.port))
    assert r.returncode == 0, r.stderr
    received = [e for e in json_lines(r.stdout) if e["event"] == "received"]
    assert len(received) == 1
    assocs = [e for e in json_lines(r.stdout) if e["event"] == "association" and e["side"] == "acceptor"]
    assert assocs and assocs[0]["tls"] is not None  # the sub-association came in over TLS


def dcmread_pid(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).PatientID)


def test_der_trusted_certificates(pki: Pki, dcmcli_storescp, tmp_path: Path) -> None:
    """-der: trusted certificates given as DER."""
    der = tmp_path / "ca.der"
    subprocess.run(["openssl", "x509", "-in", str(pki.ca), "-outform", "DER", "-out", str(der)], check=True,
                   capture_output=True, timeout=30)
    server = dcmcli_storescp(*tls_server(pki))
    r = run_dcmcli("echoscu", "+tla", "-der", "+cf", str(der), "localhost", str(server.port))
    assert r.returncode == 0, r.stderr
    r = run_dcmcli("echoscu", "+tla", "+cf", str(der), "localhost", str(server.port))  # DER read as PEM: refused
    assert r.returncode != 0 and "Traceback" not in r.stderr


def test_storage_commitment_listener_over_tls_with_orthanc(pki: Pki, orthanc) -> None:
    """nactionscu --commit over TLS; Orthanc's report comes on a new TLS
    association into nactionscu's listener (the shared acceptor)."""
    listen = free_port()
    peer = orthanc(dicomweb=False, overrides=orthanc_tls(
        pki, DicomModalities={"stgcmt": {"AET": "STGCMTSCU", "Host": "127.0.0.1", "Port": listen,
                                         "UseDicomTls": True}}))
    args = ["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca)]
    ct = str(sample("CT_small.dcm"))
    assert run_dcmcli("storescu", *args, "-aec", peer.aet, "localhost", str(peer.port), ct).returncode == 0
    r = run_dcmcli("nactionscu", "--json", *args, "-aet", "STGCMTSCU", "-aec", peer.aet, "--commit", "--port",
                   str(listen), "--wait", "30", "localhost", str(peer.port), ct)
    assert r.returncode == 0, r.stderr
    (result,) = [e for e in json_lines(r.stdout) if e["event"] == "commitment"]
    assert result["via"] == "new-association" and result["outcome"] == "committed"
    incoming = [e for e in json_lines(r.stdout) if e["event"] == "association" and e["side"] == "acceptor"]
    assert incoming and incoming[0]["tls"] is not None


# -- hostile TLS clients at the listeners a command starts for itself -------------------

@pytest.fixture
def move_peer(tmp_path: Path) -> Iterator:
    """Factory: pynetdicom's AE as a C-MOVE SCP (tests/move_peer.py); stopped at teardown."""
    yield from recording_peers(MOVE_PEER, tmp_path, "C-MOVE SCP")


def hostile_while_paused(cmd: list[str], peer, pause: str, pki: Pki, port: int) -> tuple[subprocess.Popen[str], str, str, dict[int, str]]:  # type: ignore[no-untyped-def]
    """Run dcmcli ``cmd``; when the pynetdicom ``peer`` stops at ``pause``
    (the command's listener on ``port`` is up and waiting for the peer), run
    the hostile TLS clients at the listener, then let the peer go on. The
    finished process, its stdout and stderr, and the refusals to look for."""
    proc = subprocess.Popen(dcmcli_cmd(*cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        try:
            peer.wait_paused(pause)
        except AssertionError as exc:
            stop(proc)  # type: ignore[arg-type]
            raise AssertionError(f"{exc}; dcmcli: {proc.communicate()[1]}") from None
        refused = hostile_tls_clients(pki, port, certificate_required=True)
        peer.resume()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            stop(proc)  # type: ignore[arg-type]
            proc.communicate()
    json_lines(out)  # every event checked against the schema
    return proc, out, err, refused


def test_hostile_tls_clients_against_movescus_receiver(pki: Pki, move_peer, tmp_path: Path) -> None:
    """movescu +P over TLS with -rc: while pynetdicom's C-MOVE SCP holds the
    move before its sub-association, the hostile TLS clients at movescu's
    receiver are refused, each logged in plain words; then the SCP's
    sub-association over TLS (presenting its certificate) delivers the object."""
    ct = sample("CT_small.dcm")
    study = str(dcmread_study(ct))
    port = free_port()
    peer = move_peer("--destination", f"MOVESCU={port}", "--tls", str(pki.server_key), str(pki.server_cert),
                     str(pki.ca), str(ct))
    proc, out, err, refused = hostile_while_paused(
        ["movescu", "--json", "-ta", "2", "-rc", *tls_server(pki), "-aet", "MOVESCU", "+P", str(port),
         "-od", str(tmp_path / "got"), "-k", f"StudyInstanceUID={study}", "localhost", str(peer.port)],
        peer, "move", pki, port)
    assert proc.returncode == 0, err
    events = json_lines(out)
    (got,) = [e for e in events if e["event"] == "received"]
    assert got["status"]["code"] == 0 and got["calling_aet"] == "MOVESCP", got  # type: ignore[index]
    assert len(list((tmp_path / "got").rglob("*.dcm"))) == 1
    # only the real sub-association was negotiated, over TLS with the peer's certificate
    (incoming,) = [e for e in events if e["event"] == "association" and e["side"] == "acceptor"]
    assert "localhost" in incoming["tls"]["peer_subject"] and "dcmcli test ca" in incoming["tls"]["peer_issuer"]  # type: ignore[index]
    summary = events[-1]
    assert (summary["event"], summary["completed"], summary["failed"], summary["received"]) == ("summary", 1, 0, 1)
    assert_tls_refusals_logged(err, refused)
    assert [r["destination"] for r in peer.received()] == ["MOVESCU"]


def test_hostile_tls_clients_against_the_commitment_listener(pki: Pki, npeer, tmp_path: Path) -> None:  # noqa: F811
    """nactionscu --commit --port over TLS with -rc: the N-ACTION answered,
    pynetdicom's storage-commitment SCP holds its report while the hostile
    TLS clients at nactionscu's listener are refused and logged, then sends
    the N-EVENT-REPORT on a new TLS association, answered 0000."""
    ct = sample("CT_small.dcm")
    listen = free_port()
    peer = npeer("--tls", str(pki.server_key), str(pki.server_cert), str(pki.ca), "--report-to", str(listen))
    proc, out, err, refused = hostile_while_paused(
        ["nactionscu", "--json", "-ta", "2", "-rc", *tls_server(pki), "-aet", "STGCMTSCU", "--commit",
         "--port", str(listen), "--wait", "30", "localhost", str(peer.port), str(ct)],
        peer, "report", pki, listen)
    assert proc.returncode == 0, err
    events = json_lines(out)
    (result,) = [e for e in events if e["event"] == "commitment"]
    assert (result["via"], result["outcome"], result["calling_aet"]) == ("new-association", "committed", "NSCP")
    assert [c["path"] for c in result["committed"]] == [str(ct)]  # type: ignore[union-attr, index]
    (incoming,) = [e for e in events if e["event"] == "association" and e["side"] == "acceptor"]
    assert "localhost" in incoming["tls"]["peer_subject"]  # type: ignore[index]
    assert_tls_refusals_logged(err, refused)
    assert [(r["op"], r.get("status")) for r in peer.received()] == [("N-ACTION", None), ("N-EVENT-REPORT", 0)]


def dcmread_study(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)
