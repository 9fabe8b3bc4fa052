"""dcmcli storescp under what senders throw at it."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from conftest import copy_samples, dcmtk, json_lines, received_events, remaining_events, run_dcmcli, stop, stored_in

HOSTILE = ["../../../escape", "/etc/passwd", "a\\b\\..\\c", ".", "..", "x" * 300, "", "1.2.3\x01\x7f",
           "CON", "..\\..\\win"]


def _hostile_files(workdir: Path) -> list[Path]:
    base = copy_samples(workdir / "base", ["explicit-le"])[0]
    out = []
    for n, value in enumerate(HOSTILE):
        ds = dcmread(base)
        ds.PatientID = value
        ds.StudyInstanceUID = value
        p = workdir / f"hostile{n}.dcm"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.{n}"
        ds.save_as(p, enforce_file_format=True)
        out.append(p)
    return out


def test_hostile_values_never_escape_output_dir(dcmcli_storescp, tmp_path: Path, workdir: Path) -> None:
    files = _hostile_files(workdir)
    outdir = tmp_path / "rx"
    peer = dcmcli_storescp("--template", "{PatientID}/{StudyInstanceUID}/{SOPInstanceUID}.dcm", outdir=outdir)
    r = run_dcmcli("storescu", "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 0, r.stderr
    events = received_events(peer, len(files))
    assert all(e["status"]["code"] == 0 for e in events)
    stored = [p for p in outdir.rglob("*.dcm")]
    assert len(stored) == len(files)
    root = outdir.resolve()
    for p in stored:
        assert p.resolve().is_relative_to(root)
        assert all(len(part) <= 200 for part in p.relative_to(outdir).parts)
        assert not any(part.startswith(".") for part in p.relative_to(outdir).parts)
    # Nothing appeared next to the output directory.
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(["rx", "work"])


def test_hostile_sop_instance_uid(dcmcli_storescp, tmp_path: Path, workdir: Path) -> None:
    """An invalid UID is refused (0xC000), never stored under a sanitised name
    where another invalid UID would overwrite it."""
    base = copy_samples(workdir / "base", ["explicit-le"])[0]
    bad = []
    for n, uid in enumerate(["../../../../tmp/evil", "1.2.3/4", "1.2.3_4", ".", ".."]):
        ds = dcmread(base)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        p = workdir / f"evil{n}.dcm"
        ds.save_as(p, enforce_file_format=True)
        bad.append(p)
    outdir = tmp_path / "rx"
    peer = dcmcli_storescp(outdir=outdir)
    # DCMTK's senders refuse such UIDs; dcmcli's sends files as they are.
    r = run_dcmcli("storescu", "127.0.0.1", str(peer.port), *map(str, bad + [base]))
    assert r.returncode == 66, r.stderr
    assert "invalid Affected SOP Instance UID" in r.stdout + r.stderr
    events = received_events(peer, len(bad) + 1)
    assert [e["status"]["code"] for e in events] == [0xC000] * len(bad) + [0]
    assert len(list(outdir.glob("*.dcm"))) == 1 and not list(outdir.glob(".*.part"))


def test_disk_full_answers_a700_and_keeps_running(dcmcli_storescp, full_disk: Path, workdir: Path) -> None:
    files = copy_samples(workdir, ["explicit-le"])  # 39 KB: does not fit in 16 KiB
    peer = dcmcli_storescp(outdir=full_disk)
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 66, r.stderr
    res = [e for e in json_lines(r.stdout) if e["event"] == "result"][0]
    assert res["status"]["code"] == 0xA700
    assert "no space left" in res["message"]
    ev = received_events(peer, 1)[0]
    assert ev["status"]["code"] == 0xA700
    assert stored_in(full_disk) == []  # no half-written object left behind
    # The server is still up and answering.
    assert run_dcmcli("echoscu", "127.0.0.1", str(peer.port)).returncode == 0


def test_output_dir_not_writable_exits_40(tmp_path: Path) -> None:
    r = run_dcmcli("storescp", "-od", "/proc/dcmcli-test", "0")
    assert r.returncode == 40
    assert "not writable" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("policy,expect_status,expect_files", [
    ("overwrite", 0, 1), ("keep", 0, 1), ("rename", 0, 2), ("reject", 0x0111, 1)])
def test_duplicate_policies(policy: str, expect_status: int, expect_files: int, dcmcli_storescp,
                            tmp_path: Path, workdir: Path) -> None:
    f = copy_samples(workdir, ["explicit-le"])[0]
    outdir = tmp_path / "rx"
    peer = dcmcli_storescp("--on-duplicate", policy, outdir=outdir)
    assert run_dcmcli("storescu", "127.0.0.1", str(peer.port), str(f)).returncode == 0
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(f))
    res = [e for e in json_lines(r.stdout) if e["event"] == "result"][0]
    assert res["status"]["code"] == expect_status
    assert r.returncode == (66 if expect_status else 0)
    assert len(list(outdir.glob("*.dcm"))) == expect_files


def test_allow_list_rejects_unknown_calling_ae(dcmcli_storescp, workdir: Path) -> None:
    f = copy_samples(workdir, ["explicit-le"])[0]
    peer = dcmcli_storescp("--allow-calling", "GOODSCU")
    r = run_dcmcli("storescu", "-aet", "BADSCU", "127.0.0.1", str(peer.port), str(f))
    assert r.returncode == 61
    assert "calling AE title not recognised" in r.stderr and "-aet" in r.stderr
    assert run_dcmcli("storescu", "-aet", "GOODSCU", "127.0.0.1", str(peer.port), str(f)).returncode == 0


def test_called_ae_check(dcmcli_storescp, workdir: Path) -> None:
    f = copy_samples(workdir, ["explicit-le"])[0]
    peer = dcmcli_storescp("-aet", "ARCHIVE", "--require-called")
    r = run_dcmcli("storescu", "-aec", "WRONG", "127.0.0.1", str(peer.port), str(f))
    assert r.returncode == 61
    assert "called AE title not recognised; check -aec" in r.stderr
    r = run_dcmcli("storescu", f"ARCHIVE@127.0.0.1:{peer.port}", str(f))
    assert r.returncode == 0, r.stderr


def test_sigterm_lets_transfer_in_flight_finish(dcmcli_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, ["explicit-le"] * 1) + copy_samples(workdir / "more", ["explicit-le"])
    many = []
    for n in range(30):
        many += copy_samples(workdir / f"m{n}", ["implicit-le"])
    peer = dcmcli_storescp()
    sender = subprocess.Popen([dcmtk("storescu"), "127.0.0.1", str(peer.port), *map(str, files + many)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        first = received_events(peer, 1)
        assert first, "nothing received"
        peer.proc.send_signal(signal.SIGTERM)  # mid-association
        assert sender.wait(60) == 0
        rest = remaining_events(peer)
        assert peer.proc.wait(30) == 0
    finally:
        stop(sender)
    received = 1 + sum(1 for e in rest if e["event"] == "received")
    assert received == len(files) + len(many)
    assert rest[-1]["event"] == "stopped"
    assert list(peer.outdir.glob(".*.part")) == []


def test_port_in_use_exits_64(dcmcli_storescp) -> None:
    peer = dcmcli_storescp()
    r = run_dcmcli("storescp", "--bind", "127.0.0.1", str(peer.port))
    assert r.returncode == 64
    assert "already in use" in r.stderr


def test_exec_on_reception_runs_without_shell(dcmcli_storescp, tmp_path: Path, workdir: Path) -> None:
    f = copy_samples(workdir, ["explicit-le"])[0]
    marker = tmp_path / "seen;touch pwned"
    peer = dcmcli_storescp("-xcr", f"cp #p/#f '{marker}'")
    assert run_dcmcli("storescu", "127.0.0.1", str(peer.port), str(f)).returncode == 0
    received_events(peer, 1)
    stop(peer.proc)
    assert marker.exists()  # the literal name, not a shell command
    assert not (Path.cwd() / "pwned").exists()


def test_max_associations_rejects_the_next_one(dcmcli_storescp) -> None:
    from dcmcli.net.association import AssociationSettings, open_association
    from dcmcli.net.peer import Peer
    from dcmcli.net.ul import Context

    peer = dcmcli_storescp("--max-associations", "1")
    verification = [Context(None, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"])]
    with open_association(AssociationSettings(), Peer("127.0.0.1", peer.port), verification):
        r = run_dcmcli("echoscu", "127.0.0.1", str(peer.port))
        assert r.returncode == 61
        assert "local limit exceeded" in r.stderr
    assert run_dcmcli("echoscu", "127.0.0.1", str(peer.port)).returncode == 0


def test_promiscuous_accepts_private_sop_class(dcmcli_storescp, workdir: Path) -> None:
    base = copy_samples(workdir / "base", ["explicit-le"])[0]
    ds = dcmread(base)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.9.9999.1"
    private = workdir / "private.dcm"
    ds.save_as(private, enforce_file_format=True)
    strict = dcmcli_storescp()
    r = run_dcmcli("storescu", "127.0.0.1", str(strict.port), str(private))
    assert r.returncode == 65, r.stderr
    open_minded = dcmcli_storescp("-pm")
    r = run_dcmcli("storescu", "127.0.0.1", str(open_minded.port), str(private))
    assert r.returncode == 0, r.stderr
    assert received_events(open_minded, 1)[0]["sop_class_uid"] == "1.2.826.0.1.3680043.9.9999.1"


def test_ipv6_loopback(dcmcli_storescp, tmp_path: Path, workdir: Path) -> None:
    import socket as _socket

    try:
        with _socket.socket(_socket.AF_INET6, _socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    f = copy_samples(workdir, ["explicit-le"])[0]
    peer = dcmcli_storescp(outdir=tmp_path / "rx", bind="::1")
    r = run_dcmcli("storescu", f"[::1]:{peer.port}", str(f))
    assert r.returncode == 0, r.stderr
    assert len(received_events(peer, 1)) == 1
    assert len(list((tmp_path / "rx").glob("*.dcm"))) == 1


def test_exec_on_end_of_study(dcmcli_storescp, tmp_path: Path, workdir: Path) -> None:
    import time

    files = copy_samples(workdir, ["explicit-le", "implicit-le"])
    marker = tmp_path / "study-done"
    peer = dcmcli_storescp("-xcs", f"touch '{marker}'", "-tos", "0.5", "--layout", "study")
    assert run_dcmcli("storescu", "127.0.0.1", str(peer.port), *map(str, files)).returncode == 0
    received_events(peer, 2)
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the command's effect, bounded
    assert marker.exists()


def test_hostile_pdu_lengths_and_garbage(dcmcli_storescp) -> None:
    """A client that claims a 4 GiB PDU, or speaks no DICOM, is dropped; the server carries on."""
    import socket as _socket
    import struct

    peer = dcmcli_storescp()
    for payload in (struct.pack(">BBL", 0x01, 0, 0xFFFFFFF0), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    struct.pack(">BBL", 0x04, 0, 0x7FFFFFFF) + b"\x00" * 64):
        with _socket.create_connection(("127.0.0.1", peer.port), timeout=10) as s:
            try:
                s.sendall(payload)
                s.shutdown(_socket.SHUT_WR)
                reply = s.recv(64)  # an A-ABORT, or nothing: never a hang
            except (ConnectionResetError, BrokenPipeError, OSError) as exc:
                assert not isinstance(exc, TimeoutError)
                reply = b""  # the server dropped us first
            assert reply == b"" or reply[0] == 0x07
    assert run_dcmcli("echoscu", "127.0.0.1", str(peer.port)).returncode == 0
