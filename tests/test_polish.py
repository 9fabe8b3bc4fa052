"""Issue 7's defects of the first commands as a field engineer meets them,
each checked against a real peer or the real command line."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import copy_samples, dcmcli_cmd, dcmtk, json_lines, received_events, run_dcmcli


def test_verification_is_accepted_whatever_accept_ts_says(dcmcli_storescp) -> None:
    peer = dcmcli_storescp("--accept-ts", "jpeg-ls-lossless")
    r = run_dcmcli("echoscu", "--json", "127.0.0.1", str(peer.port))
    assert r.returncode == 0, r.stderr
    ctx = json_lines(r.stdout)[0]["contexts"][0]
    assert ctx["result"] == 0 and ctx["accepted_transfer_syntax"] == "1.2.840.10008.1.2.1"


@pytest.fixture
def http_server():  # type: ignore[no-untyped-def]
    """Where a DICOM peer was expected, a web server answering what it got as a
    bad request at once (as nginx does with binary input)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stopping.set()
    listener.close()
    thread.join(5)


def test_a_peer_that_is_not_dicom_is_a_network_error(http_server: int, workdir: Path) -> None:
    r = run_dcmcli("echoscu", "-ta", "5", "127.0.0.1", str(http_server))
    assert r.returncode == 62, r.stderr
    line, = r.stderr.splitlines()
    assert "is not DICOM" in line and "does not speak the DICOM upper layer" in line and "internal" not in line
    f = copy_samples(workdir, ["explicit-le"])[0]
    r = run_dcmcli("storescu", "-ta", "5", "127.0.0.1", str(http_server), str(f))
    assert r.returncode == 62 and "is this a DICOM port?" in r.stderr


def test_storescp_reports_each_association(dcmcli_storescp, tmp_path: Path) -> None:
    """The negotiation report on the acceptor side: an association event, and -v lines as DCMTK's."""
    peer = dcmcli_storescp("-v", "--allow-calling", "FRIEND")
    assert run_dcmcli("echoscu", "-aet", "FRIEND", "127.0.0.1", str(peer.port)).returncode == 0
    assert run_dcmcli("echoscu", "-aet", "STRANGER", "127.0.0.1", str(peer.port)).returncode == 61
    assert peer.events is not None
    events = [peer.events.get(timeout=30) for _ in range(2)]
    ok, refused = events
    assert ok["event"] == "association" and ok["side"] == "acceptor" and ok["outcome"] == "accepted"
    assert ok["calling_aet"] == "FRIEND" and ok["peer"]["host"] == "127.0.0.1"
    assert ok["peer_implementation_class_uid"] == "2.25.232300382606218194586959400769231542194"
    assert ok["contexts"][0]["result_text"] == "accepted"
    assert refused["outcome"] == "rejected" and refused["rejection"]["reason_text"] == "calling AE title not recognised"
    peer.proc.send_signal(signal.SIGTERM)
    peer.proc.wait(30)
    err = peer.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "association from FRIEND@127.0.0.1:" in err and " released" in err
    assert "association from FRIEND at 127.0.0.1:" in err and "context 1: Verification SOP Class" in err
    assert "STRANGER@127.0.0.1" in err and "rejected: calling AE title not allowed" in err


def test_storescu_interrupted_prints_what_was_done(dcmtk_storescp, workdir: Path) -> None:
    """Ctrl-C: the summary of the files sent so far, and exit 68."""
    files = [copy_samples(workdir / f"d{n}", ["explicit-le"])[0] for n in range(40)]
    peer = dcmtk_storescp("--sleep-after", "1")  # one second after each object
    proc = subprocess.Popen(dcmcli_cmd("storescu", "--json", "127.0.0.1", str(peer.port), *map(str, files)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if json.loads(line)["event"] == "result":  # one file is through: interrupt now
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 68, err
    summary = [e for e in json_lines(rest) if e["event"] == "summary"][-1]
    assert summary["interrupted"] is True and summary["exit_code"] == 68
    assert 1 <= summary["sent"] < len(files)
    assert summary["sent"] + summary["failed"] + summary["not_attempted"] == len(files)
    assert err.splitlines()[-1].startswith("storescu: error: interrupted after ")


@pytest.mark.parametrize("args,message", [
    (["-aet", "", "echoscu"], "invalid AE title (-aet) '': it is empty"),
    (["-aet", "ümlaut", "echoscu"], "only ASCII characters are allowed"),
    (["-aec", "ARCHIVE", "echoscu", "OTHER@127.0.0.1:104"], "two called AE titles: -aec ARCHIVE and OTHER@"),
])
def test_ae_titles_are_checked(args: list[str], message: str) -> None:
    *opts, command = [a for a in args if not a.endswith(":104")]
    peer = [a for a in args if a.endswith(":104")] or ["127.0.0.1", "104"]
    r = run_dcmcli(command, *opts, *peer)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{command}: error: ") and message in r.stderr


@pytest.mark.parametrize("args,message", [
    (["echoscu"], "echoscu: error: missing argument PEER; see 'dcmcli echoscu --help'"),
    (["echoscu", "-to", "abc", "x", "1"], "echoscu: error: invalid value for -to/--timeout: 'abc' is not a number"),
    (["storescu", "-j", "0", "x", "1", "f"], "storescu: error: invalid value for -j/--jobs: 0 is not between 1 and 64"),
    (["storescp", "--layout", "bad", "0"], "storescp: error: invalid value for --layout: 'bad' is not one of flat, "
                                           "study, patient"),
])
def test_usage_errors_speak_plainly(args: list[str], message: str) -> None:
    r = run_dcmcli(*args)
    assert r.returncode == 1
    assert r.stderr.startswith(message), r.stderr


def test_usage_line_has_no_braces() -> None:
    r = run_dcmcli("storescu", "--help", env={"COLUMNS": "200", "TERM": "dumb", "PATH": "/usr/bin:/bin"})
    assert "Usage: dcmcli storescu [OPTIONS] PEER [PORT] FILE-OR-DIR..." in r.stdout
    assert "{" not in r.stdout.split("\n\n")[0]


def test_dcmtk_spellings_are_accepted(dcmcli_storescp, workdir: Path, tmp_path: Path) -> None:
    (workdir / "sub").mkdir()
    top = copy_samples(workdir, ["explicit-le"])[0]
    deep = copy_samples(workdir / "sub", ["implicit-le"])[0]
    (workdir / "notes.txt").write_text("x")
    peer = dcmcli_storescp("+xa", "-su", "ST", "+uf")
    r = run_dcmcli("storescu", "+sd", "+r", "-nh", "-xs", "-r", "+sp", "*.dcm", "127.0.0.1", str(peer.port),
                   str(workdir))
    assert r.returncode == 0, r.stderr
    got = received_events(peer, 1)
    assert Path(str(got[0]["path"])).parent.name.startswith("ST_")  # -su PREFIX: a folder per study
    assert r.stdout.startswith("1 sent")  # -r: not into sub/; +sp: not notes.txt
    assert str(deep) not in r.stdout and top.exists()


def test_storescp_output_and_template_mistakes(tmp_path: Path) -> None:
    f = tmp_path / "somefile.dcm"
    f.write_bytes(b"x")
    r = run_dcmcli("storescp", "-od", str(f), "0")
    assert r.returncode == 40 and "is a file, not a directory" in r.stderr
    r = run_dcmcli("storescp", "--template", "{PatientID}/{StudyDate", "0")
    assert r.returncode == 1 and "unbalanced braces" in r.stderr
    r = run_dcmcli("storescp", "--layout", "study", "--template", "{SOPInstanceUID}.dcm", "0")
    assert r.returncode == 1 and "--layout and --template both name the output layout" in r.stderr


def test_probe_says_which_classes_were_refused(dcmtk_storescp) -> None:
    peer = dcmtk_storescp()  # DCMTK accepts the common storage classes, not every one
    r = run_dcmcli("echoscu", "--propose", "CTImageStorage", "--propose", "1.2.3.4.5.6", "127.0.0.1", str(peer.port))
    assert r.returncode == 0, r.stderr
    assert "1 of 2 SOP classes accepted" in r.stdout and "refused: 1.2.3.4.5.6" in r.stdout


def test_debug_shows_association_and_command_sets(dcmcli_storescp) -> None:
    peer = dcmcli_storescp()
    r = run_dcmcli("echoscu", "-d", "127.0.0.1", str(peer.port))
    assert r.returncode == 0
    assert "A-ASSOCIATE-RQ sent" in r.stderr and "A-ASSOCIATE-AC received" in r.stderr
    assert "sent on context 1: C-ECHO-RQ" in r.stderr and "(0000,0120) MessageIDBeingRespondedTo" in r.stderr


def test_dcmtk_storescu_to_dcmcli_with_dcmtk_storescp_flags(dcmcli_storescp, workdir: Path) -> None:
    """+te on storescp stores as Explicit VR Little Endian (as DCMTK's storescp +te)."""
    f = copy_samples(workdir, ["implicit-le"])[0]
    peer = dcmcli_storescp("+te")
    r = subprocess.run([dcmtk("storescu"), "127.0.0.1", str(peer.port), str(f)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    ev = received_events(peer, 1)[0]
    assert ev["transfer_syntax"] == "1.2.840.10008.1.2" and ev["stored_transfer_syntax"] == "1.2.840.10008.1.2.1"


def _encapsulated_under_explicit_le(path: Path) -> Path:
    """What a broken sender produces: JPEG 2000 fragments (undefined length
    Pixel Data) in a file that says Explicit VR Little Endian."""
    import struct

    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    ds = dcmread(get_testdata_file("JPEG2000.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    head = struct.pack("<HH", 0x7FE0, 0x0010) + b"OB\x00\x00"
    at = raw.rindex(head)
    fixed = raw[:at + 8] + b"\xff\xff\xff\xff" + raw[at + 12:] + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    path.write_bytes(fixed)
    return path


def test_storescp_refuses_broken_data_sets_unless_asked(dcmcli_storescp, workdir: Path, tmp_path: Path) -> None:
    broken = _encapsulated_under_explicit_le(workdir / "broken.dcm")
    good = copy_samples(workdir / "good", ["explicit-le"])[0]
    cut = workdir / "cut.dcm"
    cut.write_bytes(good.read_bytes()[:-100])  # the last element ends past the end
    strict = dcmcli_storescp(outdir=tmp_path / "strict")
    r = run_dcmcli("storescu", "--no-check", "127.0.0.1", str(strict.port), str(broken), str(cut), str(good))
    assert r.returncode == 66, r.stderr
    events = received_events(strict, 3)
    assert [e["status"]["code"] for e in events] == [0xC000, 0xC000, 0]
    assert "encapsulated (compressed) Pixel Data in an uncompressed transfer syntax" in str(events[0]["message"])
    assert "truncated" in str(events[1]["message"])
    assert "broken data set" in r.stdout + r.stderr
    assert len(list((tmp_path / "strict").glob("*.dcm"))) == 1
    lenient = dcmcli_storescp("--accept-invalid", outdir=tmp_path / "lenient")
    r = run_dcmcli("storescu", "--no-check", "127.0.0.1", str(lenient.port), str(broken))
    assert r.returncode == 0, r.stderr
    assert received_events(lenient, 1)[0]["status"]["code"] == 0
