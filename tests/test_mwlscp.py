"""mwlscp against real peers: DCMTK findscu -W with DCMTK's own sample worklist
and query files, against dcmcli mwlscp and DCMTK wlmscpfs serving the same
folder; dcmcli findscu and pynetdicom's findscu app as clients; Orthanc's
worklist plugin on the same files; CSV and DICOM JSON sources; bad input."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from conftest import Peer, dcmtk, free_port, json_lines, remaining_events, run_dcmcli, stop, wait_listening
from qr_peers import orthanc  # noqa: F401 - the fixture

pytestmark = pytest.mark.interop

EXAMPLES = Path("/usr/share/doc/dcmtk/examples")


def _examples() -> Path:
    if not (EXAMPLES / "wlistdb" / "OFFIS").is_dir():
        if os.environ.get("CI"):
            pytest.fail("DCMTK's worklist examples are missing (dpkg -L dcmtk | grep wlist)")
        pytest.skip("DCMTK's worklist examples are not installed")
    return EXAMPLES


def dump2dcm(dump: Path, out: Path) -> Path:
    subprocess.run([dcmtk("dump2dcm"), "+te", str(dump), str(out)], check=True, capture_output=True, timeout=30)
    return out


@pytest.fixture
def offis(tmp_path: Path) -> Path:
    """wlmscpfs's layout, DIR/OFFIS/*.wl, made from DCMTK's sample dumps."""
    ex = _examples()
    root = tmp_path / "wl"
    (root / "OFFIS").mkdir(parents=True)
    for dump in sorted((ex / "wlistdb" / "OFFIS").glob("*.dump")):
        dump2dcm(dump, root / "OFFIS" / (dump.stem + ".wl"))
    (root / "OFFIS" / "lockfile").touch()
    return root


@pytest.fixture(scope="module")
def query_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    ex = _examples()
    out = tmp_path_factory.mktemp("wlq")
    return [dump2dcm(d, out / (d.stem + ".dcm")) for d in sorted((ex / "wlistqry").glob("*.dump"))]


@pytest.fixture
def mwlscp(dcmcli_mwlscp):  # type: ignore[no-untyped-def]
    return dcmcli_mwlscp


@pytest.fixture
def wlmscpfs(tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen[bytes]] = []

    def start(folder: Path) -> int:
        port = free_port()
        proc = subprocess.Popen([dcmtk("wlmscpfs"), "-dfp", str(folder), str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        procs.append(proc)
        wait_listening(port, proc)
        return port

    yield start
    for p in procs:
        stop(p)


def stop_events(peer: Peer) -> list[dict[str, object]]:
    stop(peer.proc)
    return remaining_events(peer)


def canonical(ds: Dataset) -> str:
    """A response as sorted DICOM JSON with zero-length elements and empty
    sequences left out: wlmscpfs leaves out requested keys the item lacks
    (PS3.4 K.6.1.2.2 asks for them, zero-length; dcmcli returns them), and adds
    its own zero-length keys for an empty sequence item."""

    def clean(obj: dict[str, dict[str, object]]) -> dict[str, object]:
        out = {}
        for tag, elem in obj.items():
            if tag == "00080005":
                continue
            values = elem.get("Value")
            if not values:
                continue
            if elem.get("vr") == "SQ":
                values = [clean(v) for v in values]  # type: ignore[union-attr, arg-type]
            out[tag] = {"vr": elem["vr"], "Value": values}
        return out

    return json.dumps(clean(ds.to_json_dict()), sort_keys=True, ensure_ascii=False)


def dcmtk_find_w(port: int, query: Path | None, outdir: Path, aec: str = "OFFIS",
                 keys: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], list[Dataset]]:
    outdir.mkdir(parents=True, exist_ok=True)
    args = [dcmtk("findscu"), "-W", "-aec", aec, "-X", "-od", str(outdir)]
    for k in keys:
        args += ["-k", k]
    args += ["127.0.0.1", str(port)] + ([str(query)] if query else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    answers = [dcmread(f) for f in sorted(outdir.glob("rsp*.dcm"))]
    return r, answers


def test_dcmtk_queries_get_the_same_answers_from_mwlscp_and_wlmscpfs(offis: Path, query_files: list[Path],
                                                                      mwlscp, wlmscpfs, tmp_path: Path) -> None:
    ours = mwlscp("-dfp", str(offis))
    theirs = wlmscpfs(offis)
    total = 0
    for q in query_files:
        r1, a = dcmtk_find_w(theirs, q, tmp_path / "wl" / q.stem)
        r2, b = dcmtk_find_w(ours.port, q, tmp_path / "me" / q.stem)
        assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
        assert sorted(map(canonical, a)) == sorted(map(canonical, b)), q.name
        # every requested key is returned by dcmcli (zero length where the item has none)
        asked = {int(e.tag) for e in dcmread(q, force=True) if int(e.tag) >> 16 != 0x0002}
        for answer in b:
            assert asked <= {int(e.tag) for e in answer}, q.name
        total += len(b)
    assert total >= 40  # the sample queries do match: this compares answers, not silence
    events = [e for e in stop_events(ours) if e["event"] == "query"]
    assert len(events) == len(query_files)
    assert all(e["called_aet"] == "OFFIS" and e["calling_aet"] == "FINDSCU" for e in events)


def test_dcmcli_findscu_and_pynetdicom_findscu_against_both(offis: Path, mwlscp, wlmscpfs, tmp_path: Path) -> None:
    ours = mwlscp("-dfp", str(offis))
    theirs = wlmscpfs(offis)
    keys = ["PatientName", "PatientID", "ScheduledProcedureStepSequence[0].Modality=CT",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle"]
    results = []
    for port in (theirs, ours.port):
        r = run_dcmcli("findscu", "-W", "--json", "-aec", "OFFIS", "127.0.0.1", str(port),
                       *[a for k in keys for a in ("-k", k)])
        assert r.returncode == 0, r.stderr
        matches = [e["dataset"] for e in json_lines(r.stdout) if e["event"] == "match"]
        results.append(sorted(canonical(Dataset.from_json(m)) for m in matches))  # type: ignore[arg-type]
    assert results[0] == results[1] and len(results[0]) >= 3
    assert all('"CT"' in m for m in results[1])
    # pynetdicom's findscu app, an independent implementation, against dcmcli
    q = Dataset()
    q.PatientName = ""
    q.ScheduledProcedureStepSequence = [Dataset()]
    q.ScheduledProcedureStepSequence[0].Modality = "CT"
    q.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID = ""
    qfile = tmp_path / "pyq.dcm"
    q.save_as(qfile, implicit_vr=False, little_endian=True)
    out = tmp_path / "pyout"
    out.mkdir()
    r = subprocess.run([sys.executable, "-m", "pynetdicom", "findscu", "-W", "-aec", "OFFIS", "-w", "-f", str(qfile),
                        "127.0.0.1", str(ours.port)], capture_output=True, text=True, timeout=60, cwd=out)
    assert r.returncode == 0, r.stderr
    got = sorted(str(dcmread(f).PatientName) for f in out.glob("rsp*"))
    assert len(got) == len(results[1]) and all(got)


def test_orthanc_worklist_plugin_serves_the_same_folder(offis: Path, query_files: list[Path], mwlscp, orthanc,
                                                        tmp_path: Path) -> None:
    ours = mwlscp("-dfp", str(offis))
    peer = orthanc(worklist_dir=offis / "OFFIS", dicomweb=False)
    compared = 0
    for q in query_files:
        _, a = dcmtk_find_w(peer.port, q, tmp_path / "or" / q.stem, aec=peer.aet)
        _, b = dcmtk_find_w(ours.port, q, tmp_path / "me" / q.stem)
        # Orthanc's plugin returns only the keys it knows (and matches person
        # names case-insensitively): compare what both return
        if not a:
            continue
        ca, cb = sorted(map(canonical, a)), sorted(map(canonical, b))
        assert len(ca) == len(cb), q.name
        for x, y in zip(ca, cb):
            xo, yo = json.loads(x), json.loads(y)
            for tag, elem in xo.items():
                if elem["vr"] != "SQ":
                    assert yo.get(tag) == elem, (q.name, tag)
        compared += len(ca)
    assert compared >= 20


def test_csv_and_json_sources_and_changes_seen_without_restart(tmp_path: Path, mwlscp) -> None:
    csvf = tmp_path / "today.csv"
    csvf.write_text(
        "PatientName,PatientID,StudyInstanceUID,ScheduledProcedureStepSequence[0].Modality,"
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate,"
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle\n"
        "Doe^Jane,P1,1.2.826.0.1.1,CT,20261201,CT1\n"
        "Müller^Jürgen,P2,1.2.826.0.1.2,MR,20261202,MR1\n"
        "Roe^Richard,P3,1.2.826.0.1.3,CT,20261203,CT1\n", encoding="utf-8")
    jsonf = tmp_path / "more.json"
    jsonf.write_text(json.dumps([{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Json^Item"}]},
                                  "00100020": {"vr": "LO", "Value": ["J1"]},
                                  "00400100": {"vr": "SQ", "Value": [{"00080060": {"vr": "CS", "Value": ["CT"]},
                                                                       "00400002": {"vr": "DA", "Value": ["20261202"]}}]}}]))
    peer = mwlscp("--source", str(csvf), "--source", str(jsonf))

    def ask(*keys: str) -> list[dict[str, object]]:
        r = run_dcmcli("findscu", "-W", "--json", "127.0.0.1", str(peer.port), "-k", "PatientName", "-k", "PatientID",
                       *[a for k in keys for a in ("-k", k)])
        assert r.returncode == 0, r.stderr
        return [e["dataset"] for e in json_lines(r.stdout) if e["event"] == "match"]  # type: ignore[misc]

    ct = ask("ScheduledProcedureStepSequence[0].Modality=CT",
             "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261201-20261202")
    assert sorted(m["00100020"]["Value"][0] for m in ct) == ["J1", "P1"]  # type: ignore[index]
    names = ask("PatientName=M?ller*")
    assert [m["00100010"]["Value"][0]["Alphabetic"] for m in names] == ["Müller^Jürgen"]  # type: ignore[index]
    # an edit is seen by the next query (a new size: the cache key is mtime and size)
    with csvf.open("a", encoding="utf-8") as f:
        f.write("Later^Added,P4,1.2.826.0.1.4,CT,20261201,CT1\n")
    ct = ask("ScheduledProcedureStepSequence[0].Modality=CT",
             "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261201")
    assert sorted(m["00100020"]["Value"][0] for m in ct) == ["P1", "P4"]  # type: ignore[index]
    jsonf.unlink()
    assert "J1" not in {m["00100020"]["Value"][0] for m in ask()}  # type: ignore[index]


def test_character_sets_both_ways(tmp_path: Path, mwlscp) -> None:
    folder = tmp_path / "wl" / "CHARS"
    folder.mkdir(parents=True)
    latin = Dataset()
    latin.SpecificCharacterSet = "ISO_IR 100"
    latin.PatientName = "Müller^Jürgen"
    latin.PatientID = "L1"
    latin.save_as(folder / "latin.wl", implicit_vr=False, little_endian=True)
    jp = Dataset()
    jp.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    jp.add_new(0x00100010, "PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B")
    jp.PatientID = "J1"
    jp.save_as(folder / "jp.wl", implicit_vr=False, little_endian=True)
    peer = mwlscp("-dfp", str(tmp_path / "wl"))
    # no character set asked: each answer in its item's own
    _, answers = dcmtk_find_w(peer.port, None, tmp_path / "a", aec="CHARS", keys=("PatientName", "PatientID"))
    by_id = {a.PatientID: a for a in answers}
    assert by_id["L1"].SpecificCharacterSet == "ISO_IR 100" and str(by_id["L1"].PatientName) == "Müller^Jürgen"
    assert list(by_id["J1"].SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    assert str(by_id["J1"].PatientName) == "Yamada^Tarou=山田^太郎"
    # a request in UTF-8 matching the ideographic group: the answer converted to UTF-8
    r = run_dcmcli("findscu", "-W", "--json", "-aec", "CHARS", "127.0.0.1", str(peer.port), "-k", "PatientName=山田*",
                   "-k", "SpecificCharacterSet=ISO_IR 192")
    assert r.returncode == 0, r.stderr
    matches = [e["dataset"] for e in json_lines(r.stdout) if e["event"] == "match"]
    assert len(matches) == 1 and matches[0]["00080005"]["Value"] == ["ISO_IR 192"]  # type: ignore[index]
    assert matches[0]["00100010"]["Value"][0]["Ideographic"] == "山田^太郎"  # type: ignore[index]


def test_cancel_and_max_matches(tmp_path: Path, mwlscp) -> None:
    rows = "".join(f"P{n:03d}^Name,P{n:03d},CT\n" for n in range(60))
    csvf = tmp_path / "many.csv"
    csvf.write_text("PatientName,PatientID,ScheduledProcedureStepSequence[0].Modality\n" + rows)
    peer = mwlscp("--source", str(csvf))
    # A C-CANCEL written together with its C-FIND-RQ (one TCP write) is seen
    # before the first answer, whatever the timing: FE00 and no match.
    from dcmcli.dataset import encode
    from dcmcli.net.association import AssociationSettings, open_association
    from dcmcli.net.dimse import C_FIND_RQ, cancel, request
    from dcmcli.net.peer import Peer as NetPeer
    from dcmcli.net.ul import Context
    from dcmcli.uids import ELE

    ident = Dataset()
    ident.PatientID = ""
    with open_association(AssociationSettings(calling_aet="CANCELLER"), NetPeer("127.0.0.1", peer.port, "MWLSCP"),
                          [Context(None, "1.2.840.10008.5.1.4.31", [ELE])]) as assoc:
        cid = assoc.context_for("1.2.840.10008.5.1.4.31")
        rq = request(C_FIND_RQ, 7, dataset=True, affected_sop_class="1.2.840.10008.5.1.4.31", priority=0)
        find_pdu = assoc.conn.message_pdu(cid, rq, encode(ident, ELE))
        cmd = cancel(7)
        cancel_pdu = struct.pack(">BBLLBB", 4, 0, len(cmd) + 6, len(cmd) + 2, cid, 0x03) + cmd  # P-DATA-TF
        assert find_pdu is not None
        assoc.conn.send(find_pdu + cancel_pdu)
        statuses = []
        while True:
            msg = assoc.channel.receive()
            assert msg is not None
            assoc.channel.discard_data()
            statuses.append(msg.command.status)
            if msg.command.status != 0xFF00:
                break
    assert statuses == [0xFE00]
    capped = mwlscp("--source", str(csvf), "--max-matches", "10")
    r = run_dcmcli("findscu", "-W", "--json", "127.0.0.1", str(capped.port), "-k", "PatientID")
    summary = json_lines(r.stdout)[-1]
    assert summary["matches"] == 10 and summary["status"]["code"] == 0xA700, summary  # type: ignore[index]
    assert r.returncode == 66 and "narrow the query" in (summary["error_comment"] or "")  # type: ignore[operator]
    events = [e for e in stop_events(peer) if e["event"] == "query"]
    assert events[-1]["cancelled"] is True


def test_called_ae_titles_decide_the_folder(offis: Path, mwlscp, tmp_path: Path) -> None:
    peer = mwlscp("-dfp", str(offis))
    r, answers = dcmtk_find_w(peer.port, None, tmp_path / "x", aec="NOSUCH", keys=("PatientName",))
    assert r.returncode != 0 and not answers
    r = run_dcmcli("findscu", "-W", "-aec", "NOSUCH", "127.0.0.1", str(peer.port), "-k", "PatientName")
    assert r.returncode == 61, r.stderr
    r, answers = dcmtk_find_w(peer.port, None, tmp_path / "y", aec="../OFFIS", keys=("PatientName",))
    assert not answers  # not a way out of -dfp
    events = stop_events(peer)
    rejected = [e for e in events if e["event"] == "association" and e["outcome"] == "rejected"]
    assert len(rejected) == 3
    fallback = mwlscp("-dfp", str(offis), "--default-ae", "OFFIS")
    _, answers = dcmtk_find_w(fallback.port, None, tmp_path / "z", aec="ANYTHING", keys=("PatientName",))
    assert len(answers) == 10
    r = subprocess.run([dcmtk("echoscu"), "-aec", "OFFIS", "127.0.0.1", str(fallback.port)], capture_output=True,
                       timeout=30)
    assert r.returncode == 0  # Verification is served too


def test_bad_worklist_files_are_skipped_with_a_warning(offis: Path, tmp_path: Path, mwlscp) -> None:
    folder = offis / "OFFIS"
    good = sorted(folder.glob("*.wl"))
    (folder / "corrupt.wl").write_bytes(good[0].read_bytes()[:200])  # truncated
    (folder / "text.wl").write_text("this is not DICOM\n")
    (folder / "bad.json").write_text('{"not": "dicom json"}')
    (folder / "bad.csv").write_text("PatientNmae,PatientID\nX,1\n")
    peer = mwlscp("-dfp", str(offis))
    _, answers = dcmtk_find_w(peer.port, None, tmp_path / "a", keys=("PatientName",))
    assert len(answers) == 10
    stop(peer.proc)
    err = peer.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "corrupt.wl" in err and "text.wl" in err and "bad.json" in err
    assert "bad.csv" in err and "PatientNmae" in err and "did you mean PatientName" in err
    assert err.count("corrupt.wl") == 1  # warned once, not per query


def test_reject_incomplete_items(tmp_path: Path, mwlscp) -> None:
    csvf = tmp_path / "x.csv"
    csvf.write_text("PatientName,PatientID\nIncomplete^Item,P1\n")
    peer = mwlscp("--source", str(csvf), "--reject-incomplete")
    r = run_dcmcli("findscu", "-W", "--json", "127.0.0.1", str(peer.port), "-k", "PatientID")
    assert json_lines(r.stdout)[-1]["matches"] == 0
    stop(peer.proc)
    err = peer.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "lacks type 1 attributes" in err and "StudyInstanceUID" in err


def test_bad_requests_get_failure_statuses(offis: Path, mwlscp, tmp_path: Path) -> None:
    peer = mwlscp("-dfp", str(offis))
    _, answers = dcmtk_find_w(peer.port, None, tmp_path / "a", keys=("QueryRetrieveLevel=STUDY", "PatientName"))
    assert not answers
    _, answers = dcmtk_find_w(peer.port, None, tmp_path / "b", keys=("(0010,0030)=1970*", "PatientName"))
    assert not answers
    queries = [e for e in stop_events(peer) if e["event"] == "query"]
    assert [q["status"]["code"] for q in queries] == [0xA900, 0xA900]  # type: ignore[index]
    assert "Query/Retrieve Level" in str(queries[0]["message"])


@pytest.mark.parametrize("args, code, words", [
    (["-dfp", "/nonexistent/worklist"], 20, "does not exist"),
    ([], 1, "no worklist given"),
    (["--source", "/nonexistent.csv"], 20, "does not exist"),
])
def test_startup_errors(args: list[str], code: int, words: str) -> None:
    r = run_dcmcli("mwlscp", *args, "0")
    assert r.returncode == code and words in r.stderr and "Traceback" not in r.stderr


def test_port_in_use(offis: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        r = run_dcmcli("mwlscp", "-dfp", str(offis), "--bind", "127.0.0.1", str(s.getsockname()[1]))
    finally:
        s.close()
    assert r.returncode == 64 and "already in use" in r.stderr


def test_unreadable_ae_folder_is_warned_not_fatal(offis: Path, tmp_path: Path, mwlscp) -> None:
    from conftest import without_read_access

    other = offis / "OTHER"
    other.mkdir()
    shutil.copy(next((offis / "OFFIS").glob("*.wl")), other / "a.wl")
    prefix = without_read_access(other)
    try:
        peer = mwlscp("-dfp", str(offis), prefix=prefix)
        _, answers = dcmtk_find_w(peer.port, None, tmp_path / "a", keys=("PatientName",))
        assert len(answers) == 10
        _, answers = dcmtk_find_w(peer.port, None, tmp_path / "b", aec="OTHER", keys=("PatientName",))
        assert not answers
        stop(peer.proc)
        err = peer.proc.stderr.read().decode()  # type: ignore[union-attr]
        assert "cannot read worklist folder" in err and "OTHER" in err
    finally:
        other.chmod(0o755)


def test_findscu_xml_is_dcmtk_findscu_xs_format(offis: Path, query_files: list[Path], mwlscp, tmp_path: Path) -> None:
    """dcmcli findscu --xml writes what DCMTK's findscu -Xs writes, byte for byte."""
    peer = mwlscp("-dfp", str(offis))
    for q in query_files[:4]:
        theirs, mine = tmp_path / f"{q.stem}-dcmtk.xml", tmp_path / f"{q.stem}-dcmcli.xml"
        r = subprocess.run([dcmtk("findscu"), "-W", "-aec", "OFFIS", "-Xs", str(theirs), "127.0.0.1", str(peer.port),
                            str(q)], capture_output=True, timeout=60)
        assert r.returncode == 0
        r2 = run_dcmcli("findscu", "-q", "-W", "-aec", "OFFIS", "--xml", str(mine), "127.0.0.1", str(peer.port),
                        str(q))
        assert r2.returncode == 0, r2.stderr
        assert mine.read_text() == theirs.read_text(), q.name
        assert mine.read_text().count("<data-set") == 10
