"""Unit tests of the cores (no peers)."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcmcli.dicomfile import InvalidFile, encode_file_meta, read_file_info, read_top_level
from dcmcli.errors import ExitCode, UsageError, worst
from dcmcli.net.contexts import plan_batches
from dcmcli.net.peer import parse_peer, validate_ae_title
from dcmcli.net.services.writer import check_template, expand_template, safe_component
from dcmcli.uids import all_transfer_syntaxes, parse_transfer_syntax, storage_sop_classes
from dcmcli.status import Category, describe


@pytest.mark.parametrize("peer,rest,expect", [
    ("pacs", ["104", "a.dcm"], ("pacs", 104, None, ["a.dcm"])),
    ("ARCHIVE@pacs:11112", ["a.dcm"], ("pacs", 11112, "ARCHIVE", ["a.dcm"])),
    ("[::1]:104", [], ("::1", 104, None, [])),
    ("::1", ["104"], ("::1", 104, None, [])),
])
def test_parse_peer(peer: str, rest: list[str], expect: tuple) -> None:
    p, remaining = parse_peer(peer, rest)
    assert (p.host, p.port, p.ae_title, remaining) == expect


@pytest.mark.parametrize("bad", ["", "   ", "A" * 17, "A\\B", "A\x01"])
def test_invalid_ae_titles(bad: str) -> None:
    with pytest.raises(UsageError):
        validate_ae_title(bad)


def test_ae_title_padding_is_not_significant() -> None:
    assert validate_ae_title("  STORESCP ") == "STORESCP"


def test_bad_ports() -> None:
    for bad in (["x"], ["70000"], ["0"], []):
        with pytest.raises(UsageError):
            parse_peer("host", bad)


def test_status_table() -> None:
    assert describe(0x0000).category == Category.SUCCESS
    assert describe(0xB000, "C-STORE").meaning == "coercion of data elements"
    assert describe(0xB000, "C-MOVE").meaning.startswith("sub-operations complete")
    assert describe(0xA7FE, "C-STORE").category == Category.FAILURE
    assert describe(0xA9FF, "C-STORE").meaning == "data set does not match SOP class"
    assert describe(0xFF00, "C-FIND").category == Category.PENDING
    assert describe(0x0122).meaning == "SOP class not supported"
    assert describe(0xBEEF).category == Category.WARNING
    assert describe(0x1234).category == Category.FAILURE


def test_worst_exit_code() -> None:
    assert worst() == ExitCode.OK
    assert worst(ExitCode.OPERATION_WARNING, ExitCode.OPERATION_FAILED) == ExitCode.OPERATION_FAILED
    assert worst(ExitCode.OPERATION_FAILED, ExitCode.CANNOT_CONNECT) == ExitCode.CANNOT_CONNECT
    assert worst(ExitCode.INVALID_INPUT, ExitCode.OK) == ExitCode.INVALID_INPUT


def test_context_plan_spreads_over_associations() -> None:
    sops = storage_sop_classes()
    assert len(sops) > 128
    items = [(sop, ts) for sop in sops for ts in ("1.2.840.10008.1.2.1",)]
    batches = plan_batches(items, key=lambda i: i)
    assert len(batches) >= 2
    assert all(len(b.contexts) <= 128 for b in batches)
    assert sum(len(b.items) for b in batches) == len(items)
    # Each SOP class keeps all of its contexts on one association.
    for b in batches:
        classes = {str(c.abstract_syntax) for c in b.contexts}
        assert {i[0] for i in b.items} == classes


def test_context_plan_adds_uncompressed_fallback() -> None:
    batch, = plan_batches([("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.90")], key=lambda i: i)
    proposed = [[str(t) for t in c.transfer_syntax] for c in batch.contexts]
    assert proposed == [["1.2.840.10008.1.2.4.90"], ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]]


def test_context_plan_with_groups_per_sop_class() -> None:
    """``extra_for`` gives each SOP class its own compressed groups."""
    items = [("1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.1.2"), ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")]
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def extra_for(sop: str, members: list[tuple[str, str]]) -> list[list[str]]:
        seen.append((sop, list(members)))
        return [] if sop.endswith(".481.5") else [["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.5"]]

    batch, = plan_batches(items, key=lambda i: i, extra_for=extra_for)
    proposed = [(str(c.abstract_syntax).rsplit(".", 1)[-1], [str(t) for t in c.transfer_syntax]) for c in batch.contexts]
    assert proposed == [("5", ["1.2.840.10008.1.2"]), ("5", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]),
                        ("2", ["1.2.840.10008.1.2.1"]), ("2", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]),
                        ("2", ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.5"])]
    assert seen == [(items[0][0], [items[0]]), (items[1][0], [items[1]])]


@pytest.mark.parametrize(("name", "check", "expected"), [
    ("rtplan.dcm", True, False), ("CT_small.dcm", True, True), ("JPEG2000.dcm", True, True),
    ("rtplan.dcm", False, True),  # not walked: not known, so assumed
    ("image_dfl.dcm", True, True)])
def test_read_file_info_notes_pixel_data(name: str, check: bool, expected: bool) -> None:
    assert read_file_info(Path(get_testdata_file(name)), check_complete=check).has_pixels is expected


def test_read_file_info_and_truncation(tmp_path: Path) -> None:
    src = Path(get_testdata_file("CT_small.dcm"))
    info = read_file_info(src)
    assert info.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    data = src.read_bytes()
    # (a cut that falls exactly between two elements is structurally complete
    # and cannot be detected; 400 happens to be such a boundary in CT_small)
    for cut in (len(data) - 1, len(data) - 5000, 401):
        p = tmp_path / f"cut{cut}.dcm"
        p.write_bytes(data[:cut])
        with pytest.raises(InvalidFile, match="truncated"):
            read_file_info(p)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 2000)
    with pytest.raises(InvalidFile, match="not a DICOM file"):
        read_file_info(junk)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(InvalidFile, match="empty"):
        read_file_info(empty)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                                  "JPEG2000.dcm", "SC_rgb_rle.dcm", "image_dfl.dcm"])
def test_walker_accepts_good_files(name: str) -> None:
    info = read_file_info(Path(get_testdata_file(name)))
    values = read_top_level(info.path, info.dataset_offset, info.transfer_syntax, [0x0020000D])
    ds = dcmread(info.path, stop_before_pixels=True)
    assert values[0x0020000D].decode().strip("\x00 ") == ds.StudyInstanceUID


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "CT_small.dcm", "MR_small_bigendian.dcm",
                                  "image_dfl.dcm"])
@pytest.mark.parametrize("check", [True, False])
def test_read_file_info_takes_the_data_set_uids(name: str, check: bool, tmp_path: Path) -> None:
    """A C-STORE names the data set's SOP Class/Instance UIDs; the file meta's
    are kept beside them, and a mismatch is worded as a warning."""
    ds = dcmread(get_testdata_file(name))
    sop_class = str(ds.SOPClassUID)
    ds.SOPInstanceUID = "1.2.3.4"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.5"
    path = tmp_path / name
    ds.save_as(path)
    info = read_file_info(path, check_complete=check)
    assert info.transfer_syntax == str(ds.file_meta.TransferSyntaxUID)
    assert (info.sop_class_uid, info.sop_instance_uid) == (sop_class, "1.2.3.4")
    assert (info.media_sop_class_uid, info.media_sop_instance_uid) == (sop_class, "1.2.3.5")
    assert info.warning == ("SOP Instance UID 1.2.3.4 in the data set but 1.2.3.5 in the file meta; "
                            "the data set's value is used")
    assert read_file_info(Path(get_testdata_file(name)), check_complete=check).warning is None


def test_encode_file_meta_reads_back() -> None:
    raw = encode_file_meta("1.2.840.10008.5.1.4.1.1.2", "1.2.3.44", "1.2.840.10008.1.2.4.90", "SENDER")
    ds = dcmread(io.BytesIO(raw), force=True)
    meta = ds.file_meta
    assert meta.FileMetaInformationGroupLength == len(raw) - 144
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.44"
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert meta.SourceApplicationEntityTitle == "SENDER"
    assert meta.ImplementationVersionName.startswith("DCMCLI_")


@pytest.mark.parametrize("value", ["../..", "/etc/passwd", "", ".", "a/b", "x" * 300, "\x00\x01", "..\\..\\x"])
def test_safe_component(value: str) -> None:
    out = safe_component(value)
    assert out and "/" not in out and "\\" not in out and not out.startswith(".")
    assert len(out) <= 64


def test_templates() -> None:
    assert check_template("{PatientID}/{SOPInstanceUID}.dcm") == ["PatientID", "SOPInstanceUID"]
    for bad in ("/abs/{SOPInstanceUID}", "../{SOPInstanceUID}", "{PatientID}.dcm", "a//{SOPInstanceUID}"):
        with pytest.raises(UsageError):
            check_template(bad)
    rel = expand_template("{PatientID}/{SOPInstanceUID}.dcm", {"PatientID": "../../x", "SOPInstanceUID": "1.2"})
    assert rel == "_.._x/1.2.dcm"  # inside, whatever the sender wrote


def test_transfer_syntax_names_and_order() -> None:
    assert parse_transfer_syntax("jpeg-ls-lossless") == "1.2.840.10008.1.2.4.80"
    assert parse_transfer_syntax("ExplicitVRLittleEndian") == "1.2.840.10008.1.2.1"
    assert parse_transfer_syntax("1.2.3") == "1.2.3"
    with pytest.raises(UsageError):
        parse_transfer_syntax("nope")
    order = all_transfer_syntaxes()
    assert order.index("1.2.840.10008.1.2.4.80") < order.index("1.2.840.10008.1.2.1")


def test_tcp_nodelay_on_both_ends(tmp_path: Path) -> None:
    """Every socket dcmcli opens or accepts has TCP_NODELAY; the peer sees our identity."""
    from dcmcli.net.acceptor import AcceptorOptions
    from dcmcli.net.association import AssociationSettings, open_association
    from dcmcli.net.dimse import c_echo_rq
    from dcmcli.net.peer import Peer
    from dcmcli.net.services.storage import StoreServer
    from dcmcli.net.services.writer import WriterOptions
    from dcmcli.net.ul import Context

    server = StoreServer(AssociationSettings(calling_aet="SCP"), AcceptorOptions(port=0, bind="127.0.0.1"),
                         WriterOptions(output_dir=tmp_path))
    port = server.start()
    try:
        settings = AssociationSettings()
        with open_association(settings, Peer("127.0.0.1", port), [Context(None, "1.2.840.10008.1.1",
                                                                          ["1.2.840.10008.1.2"])]) as assoc:
            assert assoc.conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            accepted = server.acceptor._conns[0].sock
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert assoc.report.peer_implementation_class_uid == "2.25.232300382606218194586959400769231542194"
            assoc.send(1, c_echo_rq(1))
            assert assoc.receive().command.status == 0
    finally:
        server.stop(5)


def test_association_pdus_read_back_with_pynetdicom() -> None:
    """dcmcli's own A-ASSOCIATE codec against pynetdicom's, both ways."""
    from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ

    from dcmcli.net.ul import Associate, Context, decode_associate, encode_associate_ac, encode_associate_rq, negotiate

    cx = [Context(1, "1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2"]),
          Context(3, "1.2.3.4", ["1.2.840.10008.1.2"])]
    raw = encode_associate_rq(Associate("SCU", "SCP", cx, 16384))
    pdu = A_ASSOCIATE_RQ()
    pdu.decode(raw)
    prim = pdu.to_primitive()
    assert (prim.calling_ae_title, prim.called_ae_title, prim.maximum_length_received) == ("SCU", "SCP", 16384)
    rq = decode_associate(1, raw[6:])
    results = negotiate(rq.contexts, lambda a: ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.90"]
                        if a.startswith("1.2.840") else None)
    assert [(r.result, r.transfer_syntax) for r in results] == [(0, ["1.2.840.10008.1.2"]), (3, ["1.2.840.10008.1.2"])]
    ac = A_ASSOCIATE_AC()
    ac.decode(encode_associate_ac(Associate(rq.calling_ae_title, rq.called_ae_title, results, 0)))
    got = [(c.context_id, c.result) for c in ac.to_primitive().presentation_context_definition_results_list]
    assert got == [(1, 0), (3, 3)]


def test_command_sets_round_trip() -> None:
    from dcmcli.net.dimse import c_store_rq, c_store_rsp, decode_command

    rq = decode_command(c_store_rq(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5", 2))
    assert (rq[0x0100], rq[0x0110], rq[0x0700], rq[0x0800]) == (0x0001, 7, 2, 0)
    assert (rq[0x0002], rq[0x1000]) == ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5")
    rsp = decode_command(c_store_rsp(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5", 0xA700, "disk full"))
    assert (rsp[0x0100], rsp[0x0120], rsp[0x0900], rsp[0x0902]) == (0x8001, 7, 0xA700, "disk full")
    # pydicom reads our command set as the same data set
    from pydicom.filereader import read_dataset
    from pydicom.filebase import DicomBytesIO

    ds = read_dataset(DicomBytesIO(c_store_rq(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5")), True, True)
    assert ds.CommandGroupLength == len(c_store_rq(7, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5")) - 12
    assert ds.AffectedSOPInstanceUID == "1.2.3.4.5"


def test_is_lossy() -> None:
    from dcmcli.uids import is_lossy

    assert is_lossy("1.2.840.10008.1.2.4.50") and is_lossy("1.2.840.10008.1.2.4.102.1")
    assert not is_lossy("1.2.840.10008.1.2.4.70") and not is_lossy("1.2.840.10008.1.2.4.201")


def test_find_inputs(tmp_path: Path) -> None:
    from dcmcli.dicomfile import find_inputs

    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/1.dcm", "a/b/2.dcm", "a/b/notes.txt", "top.dcm"):
        (tmp_path / rel).write_bytes(b"x")
    found, problems = find_inputs([str(tmp_path / "a"), str(tmp_path / "*.dcm"), str(tmp_path / "missing")])
    names = [c.path.relative_to(tmp_path).as_posix() for c in found]
    assert names == ["a/1.dcm", "a/b/2.dcm", "a/b/notes.txt", "top.dcm"]
    assert [c.explicit for c in found] == [False, False, False, False]
    assert problems == [(str(tmp_path / "missing"), "no such file or directory")]
    found, problems = find_inputs([str(tmp_path / "top.dcm"), str(tmp_path / "nomatch*.dcm")])
    assert [c.explicit for c in found] == [True]
    assert problems[0][1] == "no file matches this pattern"


def test_findscu_failure_line_names_the_offending_elements() -> None:
    """A C-FIND failure with Offending Element (0000,0901): one line naming them."""
    import io

    from dcmcli.cli.findscu import _summary
    from dcmcli.net.services.query import FindOutcome
    from dcmcli.output import Output

    err = io.StringIO()
    out = Output("findscu", stdout=io.StringIO(), stderr=err)
    outcome = FindOutcome(1, 0, describe(0xA900, "C-FIND"), "bad key", [0x00100010, 0x00080020])
    assert _summary(out, [outcome], 0.1, False) == 66
    assert err.getvalue() == ("findscu: error: C-FIND failed after 0 matches: identifier does not match SOP class "
                              "(0xA900): bad key (offending: (0010,0010), (0008,0020)); the peer says the identifier "
                              "does not fit the information model: check the keys and -L (-d shows what was sent)\n")


def test_der_key_reaches_ssl_encrypted_and_not_on_disk(pki) -> None:
    """A DER key (-der) is handed to ssl as PEM encrypted with a one-time
    password, through an in-memory file that is gone once loaded."""
    import os

    from cryptography.hazmat.primitives import serialization

    from dcmcli.net.tls import TlsOptions, _der_key_to_pem, _private_file

    options = TlsOptions(key=pki.der.encrypted_key, cert=pki.der.server_cert, key_password=pki.password, der=True)
    pem = _der_key_to_pem(pki.der.encrypted_key.read_bytes(), options, "one-time")
    assert pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # not readable without that password
        serialization.load_pem_private_key(pem.encode(), None)
    key = serialization.load_pem_private_key(pem.encode(), b"one-time")
    original = serialization.load_der_private_key(pki.der.server_key.read_bytes(), None)
    assert key.private_numbers() == original.private_numbers()  # type: ignore[union-attr]
    with _private_file(pem) as path:
        assert Path(path).read_text() == pem
        if path.startswith("/proc/self/fd/"):
            assert os.readlink(path).startswith("/memfd:dcmcli-tls")  # no name in any file system
    assert not Path(path).exists()


