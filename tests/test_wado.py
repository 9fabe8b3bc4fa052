"""dcmcli wado against a real Orthanc 1.10 with its DICOMweb plugin 1.7.

One Orthanc (no authentication) is loaded by ``wado store`` with the mixed
test archive (CT, MR, a JPEG-LS Secondary Capture, an SR, an implicit VR CT,
a JPEG 2000 US) and queried, retrieved and compared from there; a second one
demands HTTP basic authentication. The fault cases use a server that is
down (a free port), Orthanc's own REST API (not DICOMweb), an object Orthanc
refuses, and a relay in front of Orthanc that cuts its answer in the middle
of a part. The same relay, as an HTTPS front or as a reverse proxy that
checks a bearer token (what a deployment puts before an archive that, like
Orthanc, has no token authentication of its own), passes everything else on
unchanged.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import struct
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from dcmcli.dicomfile import read_file_info
from qr_cli import Run, dcmcli
from qr_peers import Orthanc, QRStudy, free_ports, start_orthanc, stop_group
from tls_certs import Pki

pytestmark = pytest.mark.interop

AUTH = ("alice", "s3cret-pw")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    peer = start_orthanc(tmp_path_factory.mktemp("wado-orthanc"))
    yield peer
    stop_group(peer.proc, graceful=False)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    peer = start_orthanc(tmp_path_factory.mktemp("wado-orthanc-auth"), auth=AUTH)
    yield peer
    stop_group(peer.proc, graceful=False)


def web(peer: Orthanc) -> str:
    return peer.url + "/dicom-web"


@pytest.fixture(scope="module")
def loaded(server: Orthanc, qr_study: QRStudy, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The archive stored with wado store (plus a text file among them), in batches of 4."""
    folder = tmp_path_factory.mktemp("wado-input")
    for p in qr_study.paths:
        shutil.copy(p, folder / p.name)
    (folder / "notes.txt").write_text("not DICOM\n")
    return dcmcli("wado", "store", "--json", "--batch", "4", "-j", "2", web(server), str(folder))


def dataset_bytes(path: Path) -> bytes:
    info = read_file_info(path)
    return path.read_bytes()[info.dataset_offset:]


def by_uid(folder: Path) -> dict[str, Path]:
    return {read_file_info(p).sop_instance_uid: p for p in folder.rglob("*.dcm")}


def parts_left(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


# ---------------------------------------------------------------------------
# store, then query at every level

def test_store_mixed_set_in_batches(loaded: Run, qr_study: QRStudy, server: Orthanc) -> None:
    assert loaded.code == 0, loaded
    s = loaded.summary
    assert (s["stored"], s["failed"], s["skipped"], s["batches"]) == (len(qr_study.instances), 0, 1, 3), loaded
    results = loaded.of("result")
    assert {r["sop_instance_uid"] for r in results} == {i.sop_instance_uid for i in qr_study.instances}
    assert all(r["outcome"] == "stored" and r["retrieve_url"] for r in results)
    assert [e["path"] for e in loaded.of("skipped")][0].endswith("notes.txt")
    assert len(server.get("/instances")) == len(qr_study.instances)  # type: ignore[arg-type]


def test_query_studies_with_keys_and_includefield(loaded: Run, server: Orthanc, qr_study: QRStudy) -> None:
    r = dcmcli("wado", "query", "--json", "-k", "PatientID=QRPAT-B", "-k", "StudyDate", "--includefield",
               "StudyDescription", web(server))
    assert r.code == 0, r
    (match,) = r.of("match")
    ds = match["dataset"]
    assert ds["0020000D"]["Value"] == [qr_study.study_uids("QRPAT-B")[0]]
    assert ds["00081030"]["Value"] == ["QR test study B"]  # includefield
    assert ds["00080020"]["Value"] == ["20240220"]  # a return key
    assert r.summary["matches"] == 1 and r.summary["level"] == "studies"
    # the same query as a table: the keys asked for are the columns (findscu's renderer)
    table = dcmcli("wado", "query", "-k", "PatientID=QRPAT-*", "-k", "AccessionNumber", web(server))
    assert table.code == 0, table
    header = table.stdout.splitlines()[0].split()
    assert header == ["PatientID", "AccessionNumber", "StudyInstanceUID"], table
    assert "ACC-A1" in table.stdout and "ACC-B1" in table.stdout


def test_query_series_and_instances_within_a_study(loaded: Run, server: Orthanc, qr_study: QRStudy) -> None:
    study = qr_study.study_uids("QRPAT-A")[0]
    r = dcmcli("wado", "query", "--json", "-L", "series", "--study", study, web(server))
    assert r.code == 0, r
    assert {m["dataset"]["0020000E"]["Value"][0] for m in r.of("match")} == set(qr_study.series_uids(study))
    mr = dcmcli("wado", "query", "--json", "-L", "SERIES", "-k", "Modality=MR", "-k", "SeriesDescription",
                web(server))
    (m,) = mr.of("match")
    assert m["dataset"]["0008103E"]["Value"] == ["MR T1"]
    ct_series = qr_study.select(patient_id="QRPAT-A", modality="CT")[0].series_uid
    inst = dcmcli("wado", "query", "--csv", "-", "-L", "instances", "--study", study, "--series", ct_series,
                  "-k", "InstanceNumber", web(server))
    assert inst.code == 0, inst
    lines = inst.stdout.splitlines()
    assert lines[0] == "InstanceNumber,SOPInstanceUID"
    assert sorted(lines[1:]) == sorted(f"{i.instance_number},{i.sop_instance_uid}"
                                       for i in qr_study.select(series_uid=ct_series))


def test_query_limit_offset_and_all_pages(loaded: Run, server: Orthanc, qr_study: QRStudy) -> None:
    every = dcmcli("wado", "query", "--ndjson", "-", "-L", "instances", web(server))
    uids = [json.loads(line)["00080018"]["Value"][0] for line in every.stdout.splitlines()]
    assert sorted(uids) == sorted(i.sop_instance_uid for i in qr_study.instances), every
    page = dcmcli("wado", "query", "--json", "-L", "instances", "--limit", "3", "--offset", "2", web(server))
    assert [m["dataset"]["00080018"]["Value"][0] for m in page.of("match")] == uids[2:5], page
    paged = dcmcli("wado", "query", "--json", "-L", "instances", "--limit", "4", "--all-pages", web(server))
    assert [m["dataset"]["00080018"]["Value"][0] for m in paged.of("match")] == uids
    assert paged.summary["pages"] == 4  # 4 + 4 + 1, then an empty page


# ---------------------------------------------------------------------------
# retrieve

def test_retrieve_study_byte_for_byte(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    for patient in ("QRPAT-A", "QRPAT-B"):
        study = qr_study.study_uids(patient)[0]
        r = dcmcli("wado", "retrieve", "--json", "--study", study, "--layout", "study", "-od", str(tmp_path),
                   web(server))
        assert r.code == 0, r
        expected = qr_study.select(patient_id=patient)
        assert r.summary["stored"] == r.summary["expected"] == len(expected), r
    got = by_uid(tmp_path)
    assert set(got) == {i.sop_instance_uid for i in qr_study.instances}
    for inst in qr_study.instances:  # compressed ones (JPEG-LS, JPEG 2000) came as stored
        path = got[inst.sop_instance_uid]
        assert path.relative_to(tmp_path).parts[:2] == (inst.study_uid, inst.series_uid)  # storescp's layout
        assert read_file_info(path).transfer_syntax == inst.transfer_syntax
        assert dataset_bytes(path) == dataset_bytes(inst.path), inst.path.name
    assert not parts_left(tmp_path)


def test_retrieve_series_instance_and_parallel(loaded: Run, server: Orthanc, qr_study: QRStudy,
                                               tmp_path: Path) -> None:
    mr = qr_study.select(patient_id="QRPAT-A", modality="MR")
    r = dcmcli("wado", "retrieve", "--study", mr[0].study_uid, "--series", mr[0].series_uid,
               "--template", "{SeriesNumber}/{SOPInstanceUID}.dcm",
               "-od", str(tmp_path / "series"), web(server))
    assert r.code == 0, r
    assert sorted(p.relative_to(tmp_path / "series").as_posix() for p in (tmp_path / "series").rglob("*.dcm")) == \
        sorted(f"2/{i.sop_instance_uid}.dcm" for i in mr)
    one = qr_study.select(modality="SR")[0]
    r = dcmcli("wado", "retrieve", "--json", "--study", one.study_uid, "--series", one.series_uid, "--instance",
               one.sop_instance_uid, "-od", str(tmp_path / "one"), web(server))
    assert r.code == 0 and r.summary["stored"] == 1, r
    assert dataset_bytes(Path(r.one("retrieved")["path"])) == dataset_bytes(one.path)
    study = qr_study.study_uids("QRPAT-A")[0]
    par = dcmcli("wado", "retrieve", "--json", "--study", study, "-j", "3", "-od", str(tmp_path / "par"),
                 web(server))
    assert par.code == 0, par
    assert par.summary["requests"] == 4 and par.summary["stored"] == 7, par  # one request per series
    assert set(by_uid(tmp_path / "par")) == set(qr_study.sop_instance_uids(patient_id="QRPAT-A"))


def test_retrieve_in_a_syntax_the_server_cannot_make(loaded: Run, server: Orthanc, qr_study: QRStudy,
                                                     tmp_path: Path) -> None:
    """Orthanc cannot transcode the JPEG 2000 US to explicit VR: the answer fails, with the hint to ask for '*'."""
    study = qr_study.study_uids("QRPAT-B")[0]
    r = dcmcli("wado", "retrieve", "--study", study, "--transfer-syntax", "1.2.840.10008.1.2.1", "-od",
               str(tmp_path), web(server))
    assert r.code == 66, r
    assert "--transfer-syntax '*'" in r.stderr, r
    assert not list(tmp_path.rglob("*.dcm")) or not parts_left(tmp_path)


def test_metadata_matches_the_objects(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    ct = qr_study.select(patient_id="QRPAT-A", modality="CT")
    out = tmp_path / "meta.json"
    r = dcmcli("wado", "retrieve", "--metadata", "--study", ct[0].study_uid, "--series", ct[0].series_uid,
               "-o", str(out), web(server))
    assert r.code == 0, r
    records = json.loads(out.read_text())
    assert len(records) == len(ct)
    for record in records:
        inst = next(i for i in ct if i.sop_instance_uid == record["00080018"]["Value"][0])
        ds = dcmread(inst.path)
        assert record["00100020"]["Value"] == [ds.PatientID]
        assert record["00200013"]["Value"] == [int(ds.InstanceNumber)]
        assert record["00280010"]["Value"] == [ds.Rows] and record["00280011"]["Value"] == [ds.Columns]
        assert "BulkDataURI" in record["7FE00010"]
    # bulk data by URI: the pixel data of one instance
    uri = records[0]["7FE00010"]["BulkDataURI"]
    bulk = tmp_path / "pixels.raw"
    b = dcmcli("wado", "retrieve", "--bulkdata", uri, "-o", str(bulk), web(server))
    assert b.code == 0, b
    inst = next(i for i in ct if i.sop_instance_uid == records[0]["00080018"]["Value"][0])
    assert bulk.read_bytes() == dcmread(inst.path).PixelData
    # without -o: below -od, named after the instance and the element (Orthanc's .../instances/UID/bulk/7fe00010)
    b = dcmcli("wado", "retrieve", "--bulkdata", uri, "-od", str(tmp_path / "bulk"), web(server))
    assert b.code == 0, b
    (named,) = (tmp_path / "bulk").iterdir()
    assert named.name == f"{inst.sop_instance_uid}.bulk.7fe00010.raw", named
    assert named.read_bytes() == bulk.read_bytes()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data: bytes) -> tuple[int, int]:
    assert data[:2] == b"\xff\xd8"
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise AssertionError("no SOF marker")


def test_frames_and_rendered_images(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[0]
    ds = dcmread(ct.path)
    ids = ["--study", ct.study_uid, "--series", ct.series_uid, "--instance", ct.sop_instance_uid]
    r = dcmcli("wado", "retrieve", "--json", *ids, "--frames", "1", "-od", str(tmp_path), web(server))
    assert r.code == 0, r
    (written,) = r.of("written")
    assert Path(written["path"]).read_bytes() == ds.PixelData  # uncompressed: the one frame's bytes
    png = tmp_path / "ct.png"
    r = dcmcli("wado", "retrieve", *ids, "--rendered", "--media-type", "image/png", "-o", str(png), web(server))
    assert r.code == 0, r
    assert _png_size(png.read_bytes()) == (ds.Columns, ds.Rows)
    r = dcmcli("wado", "retrieve", "--json", *ids, "--rendered", "-od", str(tmp_path), web(server))
    assert r.code == 0, r
    assert _jpeg_size(Path(r.one("written")["path"]).read_bytes()) == (ds.Columns, ds.Rows)
    # Orthanc 1.10 has no /thumbnail: a 404 in plain words
    t = dcmcli("wado", "retrieve", "--json", *ids, "--thumbnail", "-od", str(tmp_path), web(server))
    assert t.code == 66 and t.one("http-error")["http_status"] == 404, t
    assert "thumbnail" in t.stderr and "404" in t.stderr


def test_uri_dicom_and_jpeg(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[1]
    ids = ["--study", ct.study_uid, "--series", ct.series_uid, "--object", ct.sop_instance_uid]
    out = tmp_path / "obj.dcm"
    r = dcmcli("wado", "uri", "--json", *ids, "-o", str(out), server.url + "/wado")
    assert r.code == 0, r
    assert r.summary["content_type"].startswith("application/dicom")
    assert dataset_bytes(out) == dataset_bytes(ct.path)
    jpg = tmp_path / "obj.jpg"
    r = dcmcli("wado", "uri", *ids, "--content-type", "image/jpeg", "-o", str(jpg), server.url + "/wado")
    assert r.code == 0, r
    ds = dcmread(ct.path)
    assert _jpeg_size(jpg.read_bytes()) == (ds.Columns, ds.Rows)  # (Orthanc 1.10 ignores rows/columns)
    assert "labelled the answer image/png" in r.stderr  # Orthanc's label for its JPEG: said, not hidden


# ---------------------------------------------------------------------------
# DIMSE and DICOMweb see the same archive

def test_storescu_then_wado_retrieve(tmp_path_factory: pytest.TempPathFactory, qr_study: QRStudy,
                                     tmp_path: Path) -> None:
    peer = start_orthanc(tmp_path_factory.mktemp("wado-dimse"))
    try:
        paths = [str(i.path) for i in qr_study.select(patient_id="QRPAT-A")]
        s = dcmcli("storescu", "-aec", peer.aet, "127.0.0.1", str(peer.port), *paths)
        assert s.code == 0, s
        study = qr_study.study_uids("QRPAT-A")[0]
        r = dcmcli("wado", "retrieve", "--json", "--study", study, "-od", str(tmp_path), web(peer))
        assert r.code == 0 and r.summary["stored"] == len(paths), r
        for inst in qr_study.select(patient_id="QRPAT-A"):
            assert dataset_bytes(by_uid(tmp_path)[inst.sop_instance_uid]) == dataset_bytes(inst.path)
    finally:
        stop_group(peer.proc, graceful=False)


def test_wado_store_then_findscu_sees_the_same(loaded: Run, server: Orthanc, qr_study: QRStudy) -> None:
    r = dcmcli("findscu", "--json", "-aec", server.aet, "-L", "IMAGE", "-k", "StudyInstanceUID", "-k",
               "SeriesInstanceUID", "-k", "SOPInstanceUID", "127.0.0.1", str(server.port))
    assert r.code == 0, r
    found = {m["dataset"]["00080018"]["Value"][0] for m in r.of("match")}
    assert found == {x["sop_instance_uid"] for x in loaded.of("result")}


# ---------------------------------------------------------------------------
# bad input

def test_basic_auth_right_wrong_and_missing(auth_server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    base = web(auth_server)
    ok = dcmcli("wado", "store", "--json", "-u", f"{AUTH[0]}:{AUTH[1]}", base, str(qr_study.paths[0]))
    assert ok.code == 0 and ok.summary["stored"] == 1, ok
    q = run_with_env({"DCMCLI_PASSWORD": AUTH[1]}, "wado", "query", "--json", "-u", AUTH[0], base)
    assert q.code == 0 and q.summary["matches"] == 1, q
    wrong = dcmcli("wado", "query", "--json", "-u", f"{AUTH[0]}:nope", base)
    assert wrong.code == 69, wrong
    assert wrong.one("http-error")["http_status"] == 401
    assert "refused the credentials" in wrong.stderr and "check the user and password" in wrong.stderr
    assert "nope" not in wrong.stderr + wrong.stdout
    none = dcmcli("wado", "retrieve", "--study", qr_study.instances[0].study_uid, "-od", str(tmp_path), base)
    assert none.code == 69, none  # Orthanc's challenge is Basic: the hint is -u, not a token
    assert "the server wants a user and password (basic)" in none.stderr and "give -u USER[:PASSWORD]" in none.stderr
    bearer = dcmcli("wado", "query", "--token", "not-a-password", base)
    assert bearer.code == 69 and "asks for a user and password (basic), not a token" in bearer.stderr, bearer
    stow = dcmcli("wado", "store", "-u", f"{AUTH[0]}:nope", "--batch", "1", base, *map(str, qr_study.paths[:3]))
    assert stow.code == 69, stow
    assert stow.stderr.count("401") <= 2, stow  # the first refusal stops the rest
    no_pw = dcmcli("wado", "query", "-u", AUTH[0], base)  # no terminal, no variable: a usage error, not a hang
    assert no_pw.code == 1 and "DCMCLI_PASSWORD" in no_pw.stderr, no_pw


def run_with_env(env: dict[str, str], *args: str) -> Run:
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "dcmcli", *args], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, env={**os.environ, **env})
    run = Run(r.returncode, r.stdout, r.stderr, args)
    _ = run.events  # validated against the schema
    return run


def test_unknown_study_is_a_404_with_the_uid(loaded: Run, server: Orthanc, tmp_path: Path) -> None:
    r = dcmcli("wado", "retrieve", "--json", "--study", "1.2.3.999", "-od", str(tmp_path), web(server))
    assert r.code == 66, r
    assert r.one("http-error")["http_status"] == 404
    assert "1.2.3.999" in r.stderr and "404" in r.stderr and "wado query lists them" in r.stderr
    assert not list(tmp_path.rglob("*.dcm"))


def test_server_down_is_cannot_connect(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    for args in (["query"], ["retrieve", "--study", "1.2.3", "-od", str(tmp_path)]):
        r = dcmcli("wado", *args, "--json", f"http://127.0.0.1:{port}/dicom-web")
        assert r.code == 60, r
        assert "cannot connect to 127.0.0.1" in r.stderr and "server is running" in r.stderr
        assert r.one("http-error")["http_status"] is None


def test_stow_skips_non_dicom_and_reports_refused_objects(loaded: Run, server: Orthanc, qr_study: QRStudy,
                                                          tmp_path: Path) -> None:
    good = qr_study.select(modality="SR")[0].path
    ds = dcmread(good)
    del ds.StudyInstanceUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.999.1"
    bad = tmp_path / "no-study.dcm"
    ds.save_as(bad)
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    r = dcmcli("wado", "store", "--json", web(server), str(good), str(bad), str(text))
    assert r.code == 66, r  # the refusal outranks the non-DICOM input (22)
    results = {Path(x["path"]).name: x for x in r.of("result")}
    assert results[good.name]["outcome"] == "stored"
    assert results["no-study.dcm"]["outcome"] == "failed"
    assert results["no-study.dcm"]["status"]["hex"] == "0xC000"
    assert results["no-study.dcm"]["http_status"] == 400  # Orthanc's answer to a partly refused batch
    assert r.summary["skipped"] == 1 and r.summary["stored"] == 1 and r.summary["failed"] == 1
    assert "no-study.dcm" in r.stderr and "readme.txt" in r.stderr
    only_text = dcmcli("wado", "store", web(server), str(text), str(good))
    assert only_text.code == 22, only_text  # named on the command line and not DICOM
    nothing = dcmcli("wado", "store", web(server), str(text))
    assert nothing.code == 23 and "nothing stored" in nothing.stderr, nothing


def test_a_url_that_is_not_dicomweb(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    q = dcmcli("wado", "query", server.url)  # Orthanc's REST API: /studies is a JSON list of its own ids
    assert q.code == 66 and "not DICOM JSON, so not a DICOMweb service" in q.stderr, q
    s = dcmcli("wado", "store", server.url, str(qr_study.paths[0]))
    assert s.code == 66 and "DICOMweb root" in s.stderr, s
    u = dcmcli("wado", "query", "ftp://127.0.0.1/dicom-web")
    assert u.code == 1 and "not an HTTP URL" in u.stderr, u
    k = dcmcli("wado", "query", "-k", "PatientNam=X", web(server))
    assert k.code == 1 and "did you mean PatientName" in k.stderr, k


#: Hop-by-hop headers (RFC 9110 7.6.1): a proxy's own, never passed on.
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade"}


class _Relay(http.server.ThreadingHTTPServer):
    """A reverse proxy in front of Orthanc: every request (any method, its headers, Host among them, so
    that Orthanc's URLs name the relay) is passed on, and its answer back, both bodies streamed in
    pieces. ``token``: it first checks ``Authorization: Bearer TOKEN`` as a token-checking proxy
    would, answering 401 with a ``WWW-Authenticate: Bearer`` challenge (RFC 6750 3: with
    ``error="invalid_token"`` for a token that is not the one) to a request without it, which goes
    no further. ``cut``: a multipart answer is cut in the middle of its second part and the
    connection closed; ``drop``: its second part is left out of a well-formed answer (what Orthanc
    1.10 is reported to do with objects it cannot transcode). ``seen``: each request's method,
    path and Authorization header (None: none), and whether it went on to Orthanc."""

    daemon_threads = True

    def __init__(self, upstream: str, *, drop: bool = False, cut: bool = False, token: str | None = None) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.drop = drop
        self.cut = cut
        self.token = token
        self.seen: list[tuple[str, str, str | None, bool]] = []
        self.api_keys: list[str | None] = []  # each request's X-Api-Key (a -H header), in the order of seen
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RelayHandler)


class _RelayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _relay(self) -> None:
        import http.client

        server: _Relay = self.server  # type: ignore[assignment]
        self.close_connection = True  # one exchange per connection: its end is the answer's framing
        length = int(self.headers.get("Content-Length") or 0)
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        auth = self.headers.get("Authorization")
        allowed = server.token is None or auth == f"Bearer {server.token}"
        with server.lock:
            server.seen.append((self.command, self.path, auth, allowed))
            server.api_keys.append(self.headers.get("X-Api-Key"))
        if not allowed:
            for _ in self._body(length, chunked):  # read what was sent, so that the client reads the 401
                pass
            challenge = 'Bearer realm="dicom-web"' + (', error="invalid_token", error_description="the token '
                                                      'is not valid"' if auth else "")
            body = b'{"error": "not authorised"}'
            self.send_response(401)
            self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            return
        conn = http.client.HTTPConnection(server.upstream.hostname, server.upstream.port, timeout=30)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP:
                    conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for piece in self._body(length, chunked):
                conn.send(b"%X\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
            answer = conn.getresponse()
            ctype = answer.getheader("Content-Type", "")
            if ctype.startswith("multipart/") and (server.cut or server.drop):
                self._cut(answer.read(), ctype, server.drop)
                return
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            size = answer.getheader("Content-Length")
            if size is not None:
                self.send_header("Content-Length", size)
            else:  # Orthanc's own framing was chunked (or the connection's end): chunked on
                self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                while piece := answer.read1(65536):
                    self.wfile.write(piece if size is not None else b"%X\r\n%s\r\n" % (len(piece), piece))
                if size is None:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            conn.close()

    def _body(self, length: int, chunked: bool) -> Iterator[bytes]:
        """The request's body in pieces as they arrive (Content-Length or chunked)."""
        if chunked:
            while size := int(self.rfile.readline().split(b";")[0], 16):
                yield self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):  # trailers
                pass
            return
        while length > 0:
            piece = self.rfile.read(min(length, 65536))
            if not piece:
                return
            length -= len(piece)
            yield piece

    def _cut(self, body: bytes, ctype: str, drop: bool) -> None:
        boundary = ctype.split("boundary=")[1].split(";")[0].strip('"').encode()
        second = body.index(b"--" + boundary, body.index(b"--" + boundary) + 1)
        if drop:
            third = body.index(b"--" + boundary, second + 1)
            body = body[:second] + body[third:]
            cut = len(body)
        else:
            cut = second + 2000
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Connection", "close")
        if cut == len(body):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:cut])
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay  # noqa: N815


@contextlib.contextmanager
def serving(relay: _Relay, scheme: str = "http") -> Iterator[str]:
    """Run a relay in a thread; its DICOMweb base URL; shut down afterwards."""
    thread = threading.Thread(target=relay.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{relay.server_address[1]}/dicom-web"
    finally:
        relay.shutdown()
        relay.server_close()
        thread.join(5)


def test_an_answer_cut_inside_a_part_leaves_no_half_file(loaded: Run, server: Orthanc, qr_study: QRStudy,
                                                          tmp_path: Path) -> None:
    relay = _Relay(server.url, cut=True)
    with serving(relay) as base:
        ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[0]
        r = dcmcli("wado", "retrieve", "--json", "--study", ct.study_uid, "--series", ct.series_uid, "-od",
                   str(tmp_path), base)
    assert r.code == 62, r
    assert "cut after 1 complete part" in r.stderr and "discarded" in r.stderr, r
    stored = [e for e in r.of("retrieved") if e["outcome"] == "stored"]
    assert len(stored) == 1
    files = list(tmp_path.rglob("*.dcm"))
    assert [str(p) for p in files] == [stored[0]["path"]]  # only the complete one, under its final name
    assert dataset_bytes(files[0]) == dataset_bytes(by_uid(Path(qr_study.root))[stored[0]["sop_instance_uid"]])
    assert not parts_left(tmp_path)


def test_options_checked_before_any_request(tmp_path: Path) -> None:
    """Usage errors (exit 1) and an unwritable output (40) need no server: nothing listens on this port."""
    base = f"http://127.0.0.1:{free_ports(1)[0]}/dicom-web"
    cases = [
        (["query", "-H", "no colon here", base], 1, "malformed header"),
        (["query", "--token-env", "DCMCLI_TEST_UNSET_TOKEN", base], 1, "the variable is not set"),
        (["query", "-u", "a:b", "--token", "t", base], 1, "-u and a bearer token"),
        (["query", "-L", "patients", base], 1, "unknown level"),
        (["query", "-L", "studies", "--study", "1.2.3", base], 1, "studies are not found within a study"),
        (["retrieve", "--study", "1.2", "--frames", "1", base], 1, "--frames needs --instance"),
        (["retrieve", "--study", "1.2", "--series", "1.3", "--instance", "1.4", "--frames", "0,x", base], 1,
         "invalid --frames"),
        (["retrieve", "--metadata", "--rendered", "--study", "1.2", base], 1, "different retrievals"),
        (["uri", "--study", "1", "--series", "2", "--object", "3", "--window-center", "40", base], 1,
         "go together"),
    ]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases.append((["retrieve", "--study", "1.2", "-od", str(blocker), base], 40, "is a file, not a directory"))
    for args, code, text in cases:
        r = dcmcli("wado", *args)
        assert r.code == code and text in r.stderr, r
        assert r.stderr.startswith(f"wado {args[0]}: error:"), r


def test_retrieve_onto_a_full_disk(loaded: Run, server: Orthanc, qr_study: QRStudy, full_disk: Path) -> None:
    """The CT objects (38 KB each) cannot fit: each fails with the writer's reason, exit 40, no .part left."""
    ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[0]
    r = dcmcli("wado", "retrieve", "--json", "--study", ct.study_uid, "--series", ct.series_uid, "-od",
               str(full_disk), web(server))
    assert r.code == 40, r
    failed = [e for e in r.of("retrieved") if e["outcome"] == "failed"]
    assert len(failed) == 3 and all("no space left" in e["message"] for e in failed), r
    assert not list(full_disk.rglob("*.dcm")) and not parts_left(full_disk)


def test_fewer_instances_than_qido_counts(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    """A well-formed answer with one instance left out: a warning naming the counts, and exit 66."""
    relay = _Relay(server.url, drop=True)
    with serving(relay) as base:
        ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[0]
        r = dcmcli("wado", "retrieve", "--json", "--study", ct.study_uid, "--series", ct.series_uid, "-od",
                   str(tmp_path), base)
    assert r.code == 66, r
    assert (r.summary["expected"], r.summary["stored"], r.summary["missing"]) == (3, 2, 1), r
    assert "counts 3 instance(s)" in r.stderr and "1 missing" in r.stderr, r
    assert len(list(tmp_path.rglob("*.dcm"))) == 2


def test_https_with_cacert_insecure_and_untrusted(loaded: Run, server: Orthanc, pki: Pki) -> None:
    """A TLS relay in front of Orthanc with the test CA's certificate for 127.0.0.1 (tests/tls_certs.py)."""
    import ssl

    cert = pki.ca
    relay = _Relay(server.url)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    relay.socket = ctx.wrap_socket(relay.socket, server_side=True)
    with serving(relay, "https") as base:
        untrusted = dcmcli("wado", "query", base)
        trusted = dcmcli("wado", "query", "--json", "--cacert", str(cert), base)
        insecure = dcmcli("wado", "query", "--json", "--insecure", base)
        dicom_tls = dcmcli("wado", "query", "--json", "+cf", str(cert), base)  # DICOM TLS's own spelling
    assert untrusted.code == 60 and "not trusted" in untrusted.stderr and "--cacert" in untrusted.stderr, untrusted
    assert trusted.code == 0 and trusted.summary["matches"] == 2, trusted
    assert insecure.code == 0 and "--insecure: the server's TLS certificate is not checked" in insecure.stderr
    assert dicom_tls.code == 0 and dicom_tls.summary["matches"] == 2, dicom_tls


class _ToHttps(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a redirect to the same path on ``server.target`` (an https base)."""

    def do_GET(self) -> None:  # noqa: N802
        target: str = self.server.target  # type: ignore[attr-defined]
        self.send_response(302)
        self.send_header("Location", target + self.path.removeprefix("/dicom-web"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_redirect_from_http_to_https_checks_the_certificate(loaded: Run, server: Orthanc, pki: Pki) -> None:
    """BASE-URL on http, redirected to an https relay with the test CA's certificate: checked as an https
    BASE-URL would be (it was followed unchecked: an http BASE-URL's client did no TLS checks at all)."""
    import ssl

    relay = _Relay(server.url)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    relay.socket = ctx.wrap_socket(relay.socket, server_side=True)
    redirector = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ToHttps)
    redirector.daemon_threads = True
    thread = threading.Thread(target=redirector.serve_forever, daemon=True)
    thread.start()
    try:
        with serving(relay, "https") as https_base:
            redirector.target = https_base  # type: ignore[attr-defined]
            base = f"http://127.0.0.1:{redirector.server_address[1]}/dicom-web"
            untrusted = dcmcli("wado", "query", base)
            trusted = dcmcli("wado", "query", "--json", "--cacert", str(pki.ca), base)
            insecure = dcmcli("wado", "query", "--json", "--insecure", base)
    finally:
        redirector.shutdown()
        redirector.server_close()
        thread.join(5)
    assert untrusted.code == 60 and "not trusted" in untrusted.stderr and "--cacert" in untrusted.stderr, untrusted
    assert trusted.code == 0 and trusted.summary["matches"] == 2, trusted
    assert insecure.code == 0 and insecure.summary["matches"] == 2, insecure


def test_store_then_getscu_gets_the_same(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    study = qr_study.study_uids("QRPAT-B")[0]
    r = dcmcli("getscu", "--json", "-aec", server.aet, "-k", f"StudyInstanceUID={study}", "-od", str(tmp_path),
               "127.0.0.1", str(server.port))
    assert r.code == 0, r
    got = by_uid(tmp_path)
    assert set(got) == set(qr_study.sop_instance_uids(patient_id="QRPAT-B"))


# ---------------------------------------------------------------------------
# bearer tokens, through a token-checking reverse proxy in front of the same Orthanc

TOKEN = "eyJhbGciOiJIUzI1NiJ9.ZGNtY2xpLXRlc3Q.c2lnbmVkLWJ5LXRoZS10ZXN0LXN1aXRl"
WRONG = "wrong-4711-bearer-token"
TOKEN_VAR = "DCMCLI_TEST_BEARER"


@pytest.fixture(scope="module")
def token_proxy(server: Orthanc, loaded: Run) -> Iterator[tuple[_Relay, str]]:
    """The relay checking ``Authorization: Bearer TOKEN``; its DICOMweb base URL."""
    relay = _Relay(server.url, token=TOKEN)
    with serving(relay) as base:
        yield relay, base


def _seen_since(relay: _Relay, n: int) -> list[tuple[str, str, str | None, bool]]:
    with relay.lock:
        return relay.seen[n:]


def _no_token_in(run: Run, *tokens: str) -> None:
    for token in tokens:
        assert token not in run.stdout and token not in run.stderr, run


def test_bearer_token_query_equals_direct(token_proxy: tuple[_Relay, str], server: Orthanc) -> None:
    """--token and --token-env through the proxy: Orthanc's own answers (its URLs naming the proxy), every
    request carrying the token, which -d shows redacted and neither output nor events show."""
    relay, base = token_proxy
    args = ["wado", "query", "--json", "-L", "instances", "-k", "InstanceNumber", "-k", "SOPClassUID"]
    direct = dcmcli(*args, web(server))
    n = len(relay.seen)
    by_token = dcmcli(*args, "-d", "--token", TOKEN, base)
    by_env = run_with_env({TOKEN_VAR: TOKEN}, *args, "-d", "--token-env", TOKEN_VAR, base)
    for r in (direct, by_token, by_env):
        assert r.code == 0, r

    def answers(r: Run, at: str) -> list[str]:
        return sorted(json.dumps(m["dataset"], sort_keys=True).replace(at, "BASE") for m in r.of("match"))

    assert answers(by_token, base) == answers(by_env, base) == answers(direct, web(server))
    assert by_token.summary["matches"] == direct.summary["matches"] == 9, direct
    seen = _seen_since(relay, n)
    assert len(seen) == 2 and all(auth == f"Bearer {TOKEN}" and on for _, _, auth, on in seen), seen
    for r in (by_token, by_env):
        _no_token_in(r, TOKEN)
        assert "Authorization: Bearer [redacted]" in r.stderr, r


def test_bearer_token_retrieve_equals_direct(token_proxy: tuple[_Relay, str], server: Orthanc,
                                             qr_study: QRStudy, tmp_path: Path) -> None:
    """A study in parallel requests, its metadata and a bulk data URI relative to the proxy: the same bytes
    as from Orthanc directly; a bulk data URI on another server than BASE-URL gets no token."""
    relay, base = token_proxy
    study = qr_study.study_uids("QRPAT-A")[0]
    direct = dcmcli("wado", "retrieve", "--json", "--study", study, "-od", str(tmp_path / "direct"), web(server))
    n = len(relay.seen)
    via = run_with_env({TOKEN_VAR: TOKEN}, "wado", "retrieve", "--json", "-d", "--token-env", TOKEN_VAR,
                       "--study", study, "-j", "3", "-od", str(tmp_path / "via"), base)
    assert direct.code == 0 and via.code == 0, (direct, via)
    assert via.summary["stored"] == via.summary["expected"] == direct.summary["stored"] == 7, via
    got, want = by_uid(tmp_path / "via"), by_uid(tmp_path / "direct")
    assert set(got) == set(want) == set(qr_study.sop_instance_uids(patient_id="QRPAT-A"))
    assert all(dataset_bytes(got[uid]) == dataset_bytes(want[uid]) for uid in want)
    seen = _seen_since(relay, n)
    assert len(seen) == 5 and all(auth == f"Bearer {TOKEN}" and on for _, _, auth, on in seen), seen  # QIDO + 4
    _no_token_in(via, TOKEN)
    assert via.stderr.count("Authorization: Bearer [redacted]") == 5, via
    # the metadata through the proxy names it in its bulk data URIs; one relative to the proxy's base
    ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[0]
    ids = ["--study", ct.study_uid, "--series", ct.series_uid, "--instance", ct.sop_instance_uid]
    meta = tmp_path / "meta.json"
    m = dcmcli("wado", "retrieve", "--metadata", *ids, "--token", TOKEN, "-o", str(meta), base)
    assert m.code == 0, m
    uri = json.loads(meta.read_text())[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith(base + "/studies/"), uri
    pixels = tmp_path / "pixels.raw"
    n = len(relay.seen)
    b = dcmcli("wado", "retrieve", "--json", "--bulkdata", uri[len(base) + 1:], "--token", TOKEN, "-o",
               str(pixels), "-H", "X-Api-Key: k-4711", base)
    assert b.code == 0 and b.summary["resource"] == uri, b
    assert relay.api_keys[n:] == ["k-4711"]  # -H headers reach BASE-URL's server
    assert pixels.read_bytes() == dcmread(ct.path).PixelData
    _no_token_in(b, TOKEN)
    # that URI with Orthanc itself as BASE-URL: the proxy is another server, the token is not sent there
    n = len(relay.seen)
    elsewhere = dcmcli("wado", "retrieve", "--json", "--bulkdata", uri, "--token", TOKEN, "-o", str(pixels),
                       "-H", "X-Api-Key: k-4711", web(server))
    assert elsewhere.code == 69, elsewhere
    assert _seen_since(relay, n) == [("GET", uri[len(base) - len("/dicom-web"):], None, False)]
    assert relay.api_keys[n:] == [None]  # and only there, as the token
    assert "is not on BASE-URL's server: the credentials are not sent there" in elsewhere.stderr, elsewhere
    assert "go to BASE-URL's server only" in elsewhere.stderr, elsewhere
    _no_token_in(elsewhere, TOKEN)


def test_bearer_token_store_reaches_orthanc(token_proxy: tuple[_Relay, str], server: Orthanc,
                                            qr_study: QRStudy, tmp_path: Path) -> None:
    """A new object (a study of its own, removed afterwards) stored through the proxy is in Orthanc,
    as sent; the STOW-RS request carried the token."""
    relay, base = token_proxy
    ds = dcmread(qr_study.select(modality="SR")[0].path)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.4711.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.4711.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.4711.3"
    new = tmp_path / "new.dcm"
    ds.save_as(new)
    n = len(relay.seen)
    try:
        r = run_with_env({TOKEN_VAR: TOKEN}, "wado", "store", "--json", "-d", "--token-env", TOKEN_VAR, base,
                         str(new))
        assert r.code == 0 and r.summary["stored"] == 1, r
        (result,) = r.of("result")
        assert result["outcome"] == "stored" and str(result["retrieve_url"]).startswith(base + "/studies/"), r
        assert [(m, auth, on) for m, _, auth, on in _seen_since(relay, n)] == [("POST", f"Bearer {TOKEN}", True)]
        _no_token_in(r, TOKEN)
        assert "Authorization: Bearer [redacted]" in r.stderr, r
        q = dcmcli("wado", "query", "--json", "-L", "instances", "--study", ds.StudyInstanceUID, web(server))
        assert [m["dataset"]["00080018"]["Value"][0] for m in q.of("match")] == [ds.SOPInstanceUID], q
        got = dcmcli("wado", "retrieve", "--json", "--study", ds.StudyInstanceUID, "-od", str(tmp_path / "got"),
                     web(server))
        assert got.code == 0 and dataset_bytes(Path(got.one("retrieved")["path"])) == dataset_bytes(new), got
    finally:
        for hit in server.request("POST", "/tools/lookup", ds.StudyInstanceUID.encode(), "text/plain"):  # type: ignore[union-attr]
            server.request("DELETE", f"/studies/{hit['ID']}")


def test_bearer_token_wrong_or_missing_is_69(token_proxy: tuple[_Relay, str], qr_study: QRStudy,
                                             tmp_path: Path) -> None:
    """Each action with a wrong --token, a wrong --token-env and none: exit 69 in one line naming the token,
    the first refusal the only request (nothing reaches Orthanc), the wrong token shown nowhere."""
    relay, base = token_proxy
    ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[0]
    actions = {"query": ["-L", "series", "--study", ct.study_uid],
               "retrieve": ["--study", ct.study_uid, "-od", str(tmp_path)],
               "store": ["--batch", "1", base, *map(str, qr_study.paths[:3])]}
    for action, rest in actions.items():
        tail = rest if action == "store" else [*rest, base]
        for how in ("token", "env", "none"):
            n = len(relay.seen)
            if how == "token":
                r = dcmcli("wado", action, "--json", "--token", WRONG, *tail)
            elif how == "env":
                r = run_with_env({TOKEN_VAR: WRONG}, "wado", action, "--json", "--token-env", TOKEN_VAR, *tail)
            else:
                r = dcmcli("wado", action, "--json", *tail)
            assert r.code == 69, (how, r)
            assert [e["http_status"] for e in r.of("http-error")] in ([401], [401, 401]), r
            line = r.stderr.strip()
            assert "\n" not in line and line.startswith(f"wado {action}: error:"), (how, r)
            if how == "none":
                assert "the server wants a bearer token" in line and "give --token TOKEN or --token-env VAR" in line
            else:
                assert "the server refused the bearer token (invalid_token; the token is not valid)" in line, r
                assert "check the token given by --token or --token-env: it may be wrong, expired" in line, r
            seen = _seen_since(relay, n)
            assert len(seen) == 1 and not seen[0][3], (how, seen)  # refused at the proxy, and not tried again
            assert seen[0][2] == (None if how == "none" else f"Bearer {WRONG}"), seen
            _no_token_in(r, WRONG)
    debug = dcmcli("wado", "retrieve", "-d", "--json", "--token", WRONG, "--study", ct.study_uid, "-od",
                   str(tmp_path), base)
    assert debug.code == 69 and "Authorization: Bearer [redacted]" in debug.stderr, debug
    assert 'WWW-Authenticate: Bearer realm="dicom-web", error="invalid_token"' in debug.stderr, debug
    _no_token_in(debug, WRONG)


def test_token_checked_before_any_request(tmp_path: Path) -> None:
    """An empty token, or one with a blank or control character inside (a token file read whole): usage
    errors that do not show it; the newline at the end of a token file is not part of the token."""
    base = f"http://127.0.0.1:{free_ports(1)[0]}/dicom-web"
    secret = "abc.DEF-secret"
    for env, text in (("", "the token is empty"), (f"{secret}\nsecond line", "control or non-ASCII character"),
                      (f"{secret} {secret}", "a space")):
        r = run_with_env({TOKEN_VAR: env}, "wado", "query", "--token-env", TOKEN_VAR, base)
        assert r.code == 1 and text in r.stderr and f"--token-env {TOKEN_VAR}" in r.stderr, r
        _no_token_in(r, secret)
    empty = dcmcli("wado", "query", "--token", "", base)
    assert empty.code == 1 and "--token: the token is empty" in empty.stderr, empty
    trailing = run_with_env({TOKEN_VAR: f"{secret}\n"}, "wado", "query", "--token-env", TOKEN_VAR, base)
    assert trailing.code == 60, trailing  # taken, and sent: nothing listens there


# ---------------------------------------------------------------------------
# bulk data by a URI relative to BASE-URL (PS3.18: a BulkDataURI may be relative)

def test_bulkdata_uri_relative_to_base_url(loaded: Run, server: Orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    """The pixel data and a private OB element (GE's 0043,1029, 2 KB) of a CT, by the absolute BulkDataURI
    of its metadata and by the same made relative to BASE-URL (studies/...; for the pixel data also against
    BASE-URL with its last '/', and as ./studies/..., /dicom-web/studies/... and /studies/...): the same
    bytes, the element's value as pydicom reads it from the stored file."""
    ct = qr_study.select(patient_id="QRPAT-A", modality="CT")[0]
    ds = dcmread(ct.path)
    meta = tmp_path / "meta.json"
    r = dcmcli("wado", "retrieve", "--metadata", "--study", ct.study_uid, "--series", ct.series_uid, "--instance",
               ct.sop_instance_uid, "-o", str(meta), web(server))
    assert r.code == 0, r
    (record,) = json.loads(meta.read_text())
    for tag, value in (("7FE00010", ds.PixelData), ("00431029", ds[0x00431029].value)):
        absolute = record[tag]["BulkDataURI"]
        assert absolute.startswith(web(server) + "/studies/"), absolute
        relative = absolute[len(web(server)) + 1:]
        forms = [(absolute, web(server)), (relative, web(server))]
        if tag == "7FE00010":  # the other ways of writing it, once
            forms += [(relative, web(server) + "/"), ("./" + relative, web(server)),
                      ("/dicom-web/" + relative, web(server)), ("/" + relative, web(server))]
        got = []
        for i, (uri, base) in enumerate(forms):
            out = tmp_path / f"{tag}.{i}.raw"
            b = dcmcli("wado", "retrieve", "--json", "--bulkdata", uri, "-o", str(out), base)
            assert b.code == 0, (uri, b)
            assert b.summary["resource"] == absolute and b.one("written")["bytes"] == len(value), b
            got.append(out.read_bytes())
        assert got == [value] * len(forms), tag
    bad = dcmcli("wado", "retrieve", "--bulkdata", "file:///etc/passwd", web(server))
    assert bad.code == 1 and "not an HTTP URI" in bad.stderr, bad
