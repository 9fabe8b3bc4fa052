"""storescu and storescp against real DCMTK peers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from dcmcli.uids import is_lossy
from conftest import (SAMPLES, copy_samples, dcmtk, json_lines, received_events, run_dcmcli, sample)

pytestmark = pytest.mark.interop

ALL = list(SAMPLES)
COMPRESSED = ["rle", "rle-rgb", "jpeg-baseline", "jpeg-extended", "jpeg-lossless-sv1", "jpeg-ls-lossless",
              "jpeg-ls-near", "j2k-lossless", "j2k"]


def _by_instance(folder: Path) -> dict[str, Path]:
    out = {}
    for p in folder.rglob("*"):
        if p.is_file() and not p.name.startswith("."):
            out[str(dcmread(p, stop_before_pixels=True).SOPInstanceUID)] = p
    return out


def _without_meta(path: Path) -> dict[int, object]:
    """The data set's values by tag, without file meta, group lengths and
    trailing padding, which DICOM lets any sender drop or add (VRs are left
    out: DCMTK corrects OW to OB for encapsulated Pixel Data)."""
    ds = dcmread(path)
    return {int(e.tag): e.value for e in ds if e.tag.element != 0 and e.tag != 0xFFFCFFFC}


def test_dcmcli_storescu_to_dcmtk_storescp_every_syntax(dcmtk_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, ALL)
    peer = dcmtk_storescp("+xa", "+B")  # accept all syntaxes, write bit-preserving
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(workdir))
    assert r.returncode == 0, r.stderr
    results = [e for e in json_lines(r.stdout) if e["event"] == "result"]
    assert len(results) == len(files)
    assert all(e["outcome"] == "sent" for e in results), results
    # Each went in its own syntax: nothing was transcoded.
    assert all(e["sent_transfer_syntax"] == e["transfer_syntax"] for e in results)
    got = _by_instance(peer.outdir)
    for f in files:
        uid = str(dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        assert uid in got, f"{f.name} not received"
        assert _without_meta(got[uid]) == _without_meta(f), f"{f.name} differs after the transfer"
        assert str(dcmread(got[uid]).file_meta.TransferSyntaxUID) == str(dcmread(f).file_meta.TransferSyntaxUID)


# DCMTK's storescu proposes a compressed syntax only when told which one.
DCMTK_PROPOSE = {"rle": "-xr", "rle-rgb": "-xr", "jpeg-baseline": "-xy", "jpeg-extended": "-xx",
                 "jpeg-lossless-sv1": "-xs", "jpeg-ls-lossless": "-xt", "jpeg-ls-near": "-xu",
                 "j2k-lossless": "-xv", "j2k": "-xw"}


@pytest.mark.parametrize("sender", ["storescu", "dcmsend"])
def test_dcmtk_senders_to_dcmcli_storescp(sender: str, dcmcli_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, ALL)
    peer = dcmcli_storescp()
    if sender == "storescu":
        groups: dict[str, list[str]] = {}
        for name, f in zip(ALL, files):
            groups.setdefault(DCMTK_PROPOSE.get(name, ""), []).append(str(f))
        for flag, paths in groups.items():
            cmd = [dcmtk("storescu"), *([flag] if flag else []), "-aet", "DCMTKSCU", "127.0.0.1", str(peer.port), *paths]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
    else:
        cmd = [dcmtk("dcmsend"), "-aet", "DCMTKSCU", "+sd", "127.0.0.1", str(peer.port), str(workdir)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    events = received_events(peer, len(files))
    assert len(events) == len(files)
    assert all(e["status"]["code"] == 0 and e["calling_aet"] == "DCMTKSCU" for e in events)
    got = _by_instance(peer.outdir)
    for f in files:
        orig = dcmread(f)
        rx = dcmread(got[str(orig.SOPInstanceUID)])
        # File meta is dcmcli's own, with the sender's AE title.
        assert rx.file_meta.ImplementationClassUID == "2.25.232300382606218194586959400769231542194"
        assert rx.file_meta.ImplementationVersionName.startswith("DCMCLI_")
        assert rx.file_meta.SourceApplicationEntityTitle == "DCMTKSCU"
        if orig.file_meta.TransferSyntaxUID == rx.file_meta.TransferSyntaxUID:
            assert _without_meta(got[str(orig.SOPInstanceUID)]) == _without_meta(f), f.name
        else:  # the DCMTK sender chose to convert (uncompressed encodings only)
            assert not orig.file_meta.TransferSyntaxUID.is_compressed
            assert np.array_equal(orig.pixel_array, rx.pixel_array), f.name


def test_compressed_files_arrive_decompressed_at_implicit_only_peer(dcmtk_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, COMPRESSED)
    peer = dcmtk_storescp("+xi")  # DCMTK: accept Implicit VR Little Endian only
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(workdir))
    assert r.returncode == 0, r.stderr
    results = {Path(str(e["path"])).name: e for e in json_lines(r.stdout) if e["event"] == "result"}
    assert all(e["outcome"] == "sent" for e in results.values()), results
    assert {e["sent_transfer_syntax"] for e in results.values()} == {"1.2.840.10008.1.2"}
    got = _by_instance(peer.outdir)
    for f in files:
        orig = dcmread(f)
        rx = dcmread(got[str(orig.SOPInstanceUID)])
        assert str(rx.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2"
        # Equal pixels: the same decode pydicom gives (colour as RGB).
        assert np.array_equal(orig.pixel_array, rx.pixel_array), f.name
        if is_lossy(str(orig.file_meta.TransferSyntaxUID)):
            assert rx.LossyImageCompression == "01"


def test_refused_port_exits_60(workdir: Path) -> None:
    from conftest import free_port

    port = free_port()  # nothing listens there
    r = run_dcmcli("echoscu", "127.0.0.1", str(port))
    assert r.returncode == 60
    assert "connection refused" in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_peer_that_rejects_exits_61(dcmtk_storescp, workdir: Path) -> None:
    peer = dcmtk_storescp("--refuse")
    files = copy_samples(workdir, ["explicit-le"])
    r = run_dcmcli("storescu", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 61, r.stderr
    assert "association rejected" in r.stderr


def test_peer_that_aborts_exits_62(dcmtk_storescp, workdir: Path) -> None:
    peer = dcmtk_storescp("--abort-after")  # DCMTK aborts after receiving the C-STORE request
    files = copy_samples(workdir, ["explicit-le"])
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 62, r.stderr
    assert "lost while sending" in r.stderr or "aborted" in r.stderr


def test_retries_reopen_after_abort(dcmtk_storescp, workdir: Path) -> None:
    peer = dcmtk_storescp("--abort-after")
    files = copy_samples(workdir, ["explicit-le"])
    r = run_dcmcli("storescu", "--json", "--retries", "2", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 62
    retries = [e for e in json_lines(r.stdout) if e["event"] == "retry"]
    assert [e["attempt"] for e in retries] == [1, 2]


def test_dimse_timeout_exits_62(dcmtk_storescp, workdir: Path) -> None:
    peer = dcmtk_storescp("--sleep-during", "10")
    files = copy_samples(workdir, ["explicit-le"])
    r = run_dcmcli("storescu", "-td", "1", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 62, r.stderr


def test_no_acceptable_context_exits_65(dcmcli_storescp, workdir: Path) -> None:
    """A peer that accepts the association but none of the contexts: an
    uncompressed file is not compressed lossily without --allow-lossy, so the
    near-lossless JPEG-LS the peer wants is never proposed."""
    peer = dcmcli_storescp("--accept-ts", "jpeg-ls-near-lossless")
    files = copy_samples(workdir, ["explicit-le"])
    r = run_dcmcli("storescu", "-v", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 65, r.stderr
    # the file's own syntax, the uncompressed fallback, the lossless compressed one
    assert "none of the 3 presentation contexts" in r.stderr
    assert "none of the transfer syntaxes supported" in r.stderr  # -v negotiation report


def test_echoscu_against_dcmtk(dcmtk_storescp) -> None:
    peer = dcmtk_storescp()
    r = run_dcmcli("echoscu", "--json", "-r", "3", "127.0.0.1", str(peer.port))
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    echoes = [e for e in events if e["event"] == "echo"]
    assert [e["n"] for e in echoes] == [1, 2, 3]
    assert all(e["status"]["code"] == 0 for e in echoes)
    assoc = [e for e in events if e["event"] == "association"][0]
    assert assoc["peer_implementation_version_name"].startswith("OFFIS_DCMTK")
    assert assoc["contexts"][0]["result"] == 0


def test_echoscu_probe_lists_what_peer_accepts(dcmtk_storescp) -> None:
    peer = dcmtk_storescp()  # DCMTK's default: uncompressed syntaxes only
    r = run_dcmcli("echoscu", "--json", "--propose", "CTImageStorage", "--propose", "1.2.840.10008.5.1.4.1.1.4",
                   "--probe-ts", "ile", "--probe-ts", "j2k", "127.0.0.1", str(peer.port))
    assert r.returncode == 0, r.stderr
    probes = {(e["sop_class"], e["transfer_syntax"]): e["accepted"]
              for e in json_lines(r.stdout) if e["event"] == "probe"}
    assert probes[("CT Image Storage", "1.2.840.10008.1.2")] is True
    assert probes[("CT Image Storage", "1.2.840.10008.1.2.4.91")] is False
    assert probes[("MR Image Storage", "1.2.840.10008.1.2")] is True


def test_echoscu_probe_all_storage_classes_in_batches(dcmtk_storescp) -> None:
    peer = dcmtk_storescp()
    r = run_dcmcli("echoscu", "--json", "--propose-storage", "--probe-ts", "ele", "127.0.0.1", str(peer.port))
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    assocs = [e for e in events if e["event"] == "association"]
    assert len(assocs) >= 2  # 170 classes do not fit in 128 contexts
    assert all(len(a["contexts"]) <= 128 for a in assocs)
    summary = [e for e in events if e["event"] == "summary"][0]
    assert summary["accepted_sop_classes"] > 50


def test_dcmcli_to_dcmcli_with_jobs(dcmcli_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, ALL)
    peer = dcmcli_storescp()
    r = run_dcmcli("storescu", "--json", "-j", "3", f"RX@127.0.0.1:{peer.port}", str(workdir))
    assert r.returncode == 0, r.stderr
    assoc = [e for e in json_lines(r.stdout) if e["event"] == "association"]
    assert len(assoc) == 3
    assert len(received_events(peer, len(files))) == len(files)
    assert len(_by_instance(peer.outdir)) == len(files)


def test_received_file_reads_in_dcmtk(dcmcli_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, ["explicit-le", "j2k"])
    peer = dcmcli_storescp()
    r = run_dcmcli("storescu", "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 0
    received_events(peer, 2)
    for p in _by_instance(peer.outdir).values():
        d = subprocess.run([dcmtk("dcmdump"), "-q", str(p)], capture_output=True, text=True)
        assert d.returncode == 0, d.stderr
        assert "DCMCLI_" in d.stdout


def test_sample_helper() -> None:
    assert sample("explicit-le").exists()


def test_small_pdu_both_directions(dcmtk_storescp, dcmcli_storescp, workdir: Path) -> None:
    """Fragmentation honours the peer's maximum PDU (4 KiB here) both ways."""
    files = copy_samples(workdir, ["explicit-le", "j2k", "deflated"])
    dcmtk_peer = dcmtk_storescp("+xa", "+B", "-pdu", "4096")
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(dcmtk_peer.port), str(workdir))
    assert r.returncode == 0, r.stderr + dcmtk_peer.proc.stdout.read1(10000).decode()  # type: ignore[union-attr]
    assoc = [e for e in json_lines(r.stdout) if e["event"] == "association"][0]
    assert assoc["peer_max_pdu"] == 4096
    assert len(_by_instance(dcmtk_peer.outdir)) == len(files)

    ours = dcmcli_storescp("-pdu", "4096")
    r = subprocess.run([dcmtk("storescu"), "-xw", "127.0.0.1", str(ours.port), str(files[1])],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_dcmcli("storescu", "127.0.0.1", str(ours.port), str(files[0]), str(files[2]))
    assert r.returncode == 0, r.stderr
    events = received_events(ours, 3)
    assert [e["status"]["code"] for e in events] == [0, 0, 0]
    for f in files:
        uid = str(dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        assert _without_meta(_by_instance(ours.outdir)[uid]) == _without_meta(f)


def test_halt_on_error_stops_at_first_failure(dcmcli_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, ["explicit-le", "implicit-le", "rle"])
    peer = dcmcli_storescp("--on-duplicate", "reject")
    assert run_dcmcli("storescu", "127.0.0.1", str(peer.port), str(files[0])).returncode == 0
    r = run_dcmcli("storescu", "--json", "--halt-on-error", "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 66
    summary = [e for e in json_lines(r.stdout) if e["event"] == "summary"][0]
    assert (summary["failed"], summary["sent"], summary["not_attempted"]) == (1, 0, 2)


def test_pynetdicom_storescp_as_a_third_peer(tmp_path: Path, workdir: Path) -> None:
    """dcmcli's upper layer against a second independent implementation (pynetdicom's app)."""
    import sys

    from conftest import free_port, stop, wait_listening

    files = copy_samples(workdir, ["explicit-le", "implicit-le", "rle", "j2k"])
    out = tmp_path / "pnd"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pynetdicom", "storescp", "-od", str(out), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        assert run_dcmcli("echoscu", "-r", "2", "127.0.0.1", str(port)).returncode == 0
        r = run_dcmcli("storescu", "--json", "127.0.0.1", str(port), str(workdir))
        assert r.returncode == 0, r.stderr
        assoc = [e for e in json_lines(r.stdout) if e["event"] == "association"][0]
        assert assoc["peer_implementation_version_name"].startswith("PYNETDICOM")
    finally:
        stop(proc)
    got = _by_instance(out)
    for f in files:
        assert _without_meta(got[str(dcmread(f, stop_before_pixels=True).SOPInstanceUID)]) == _without_meta(f)


def test_pynetdicom_storescu_to_dcmcli_storescp(dcmcli_storescp, workdir: Path) -> None:
    import sys

    # pynetdicom's app proposes uncompressed syntaxes only and converts none
    # (it hangs on a file it cannot send), so it gets the files it can send.
    files = copy_samples(workdir, ["explicit-le", "implicit-le", "deflated"])
    peer = dcmcli_storescp()
    r = subprocess.run([sys.executable, "-m", "pynetdicom", "storescu", "-aet", "PNDSCU", "127.0.0.1",
                        str(peer.port), *map(str, files)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    events = received_events(peer, len(files))
    assert [e["status"]["code"] for e in events] == [0] * len(files)
    assert {e["calling_aet"] for e in events} == {"PNDSCU"}
    got = _by_instance(peer.outdir)
    for f in files:
        orig = dcmread(f)
        rx = dcmread(got[str(orig.SOPInstanceUID)])
        if orig.file_meta.TransferSyntaxUID == rx.file_meta.TransferSyntaxUID:
            assert _without_meta(got[str(orig.SOPInstanceUID)]) == _without_meta(f)
        else:
            assert np.array_equal(orig.pixel_array, rx.pixel_array)


_COMPRESSED_ONLY_CFG = """\
[[TransferSyntaxes]]
[CompressedOnly]
{syntaxes}

[[PresentationContexts]]
[StorageCompressedOnly]
{contexts}

[[Profiles]]
[CompressedOnly]
PresentationContexts = StorageCompressedOnly
"""


def _compressed_only_config(folder: Path, syntaxes: list[str]) -> Path:
    """A DCMTK association profile accepting the storage classes of our
    samples in the given syntaxes only (no uncompressed fallback)."""
    classes = ["CTImageStorage", "MRImageStorage", "SecondaryCaptureImageStorage", "UltrasoundImageStorage"]
    cfg = folder / "compressed-only.cfg"
    cfg.write_text(_COMPRESSED_ONLY_CFG.format(
        syntaxes="\n".join(f"TransferSyntax{i} = {ts}" for i, ts in enumerate(syntaxes, 1)),
        contexts="\n".join(f"PresentationContext{i} = {c}\\CompressedOnly" for i, c in enumerate(classes, 1))))
    return cfg


JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"


@pytest.mark.parametrize("accepted", [[JPEG_LS, J2K_LOSSLESS], [J2K_LOSSLESS]], ids=["jpeg-ls+j2k", "j2k-only"])
def test_uncompressed_files_arrive_compressed_at_compressed_only_peer(
        accepted: list[str], dcmtk_storescp, workdir: Path, tmp_path: Path) -> None:
    """DCMTK storescp configured to accept JPEG-LS lossless and/or JPEG 2000
    lossless only: uncompressed 16-bit signed grey, 8-bit RGB (odd size) and
    a JPEG baseline file arrive compressed losslessly with identical pixels."""
    files = copy_samples(workdir, ["explicit-le", "implicit-le", "rle-rgb", "jpeg-baseline"])
    odd = copy_samples(workdir / "odd", ["SC_rgb_small_odd.dcm"])
    cfg = _compressed_only_config(tmp_path, accepted)
    peer = dcmtk_storescp("-xf", str(cfg), "CompressedOnly")
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(workdir))
    assert r.returncode == 0, r.stderr
    results = [e for e in json_lines(r.stdout) if e["event"] == "result"]
    assert len(results) == len(files) + len(odd)
    assert {e["sent_transfer_syntax"] for e in results} == {accepted[0]}
    got = _by_instance(peer.outdir)
    for f in files + odd:
        orig = dcmread(f)
        rx = dcmread(got[str(orig.SOPInstanceUID)])  # lossless: the same instance
        assert str(rx.file_meta.TransferSyntaxUID) == accepted[0]
        assert np.array_equal(orig.pixel_array, rx.pixel_array), f.name
        if is_lossy(str(orig.file_meta.TransferSyntaxUID)):
            assert rx.LossyImageCompression == "01"  # still on record as lossy


def test_lossy_only_peer_needs_allow_lossy(dcmtk_storescp, workdir: Path, tmp_path: Path) -> None:
    """A peer that takes only JPEG 2000 (lossy): without --allow-lossy an
    uncompressed file is not sent (65, and the message says why); with it,
    it is sent as a new instance marked lossy."""
    files = copy_samples(workdir, ["explicit-le"])
    cfg = _compressed_only_config(tmp_path, ["1.2.840.10008.1.2.4.91"])
    peer = dcmtk_storescp("-xf", str(cfg), "CompressedOnly")
    r = run_dcmcli("storescu", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 65, r.stderr
    assert "--allow-lossy" in r.stderr
    assert not _by_instance(peer.outdir)

    r = run_dcmcli("storescu", "--json", "--allow-lossy", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 0, r.stderr
    (result,) = [e for e in json_lines(r.stdout) if e["event"] == "result"]
    orig = dcmread(files[0])
    assert result["sent_transfer_syntax"] == "1.2.840.10008.1.2.4.91"
    assert result["sop_instance_uid"] != str(orig.SOPInstanceUID)
    (rx_path,) = _by_instance(peer.outdir).values()
    rx = dcmread(rx_path)
    assert rx.LossyImageCompression == "01"
    assert rx.LossyImageCompressionMethod == "ISO_15444_1" or "ISO_15444_1" in rx.LossyImageCompressionMethod
    assert rx.SourceImageSequence[0].ReferencedSOPInstanceUID == orig.SOPInstanceUID


def test_storescp_store_as_jpeg_ls(dcmcli_storescp, workdir: Path) -> None:
    """dcmcli storescp --store-as jpeg-ls-lossless: DCMTK's storescu sends
    uncompressed; the files on disk are JPEG-LS, DCMTK's dcmdjpls decodes
    them to the original pixels. A 16-bit image asked to be stored as JPEG
    baseline is kept as received, with a warning, and still acknowledged."""
    files = copy_samples(workdir, ["explicit-le", "SC_rgb_small_odd.dcm"])
    peer = dcmcli_storescp("--store-as", "jpeg-ls-lossless")
    r = subprocess.run([dcmtk("storescu"), "127.0.0.1", str(peer.port), *map(str, files)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    events = received_events(peer, len(files))
    assert {e["stored_transfer_syntax"] for e in events} == {JPEG_LS}
    for e in events:
        stored = Path(str(e["path"]))
        assert str(dcmread(stored).file_meta.TransferSyntaxUID) == JPEG_LS
        plain = stored.with_suffix(".raw.dcm")
        subprocess.run([dcmtk("dcmdjpls"), str(stored), str(plain)], check=True, capture_output=True)
        orig = next(dcmread(f) for f in files if dcmread(f).SOPInstanceUID == e["sop_instance_uid"])
        assert np.array_equal(dcmread(plain).pixel_array, orig.pixel_array)

    peer2 = dcmcli_storescp("--store-as", "jpeg-baseline")
    r = subprocess.run([dcmtk("storescu"), "127.0.0.1", str(peer2.port), str(files[0])],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    (event,) = received_events(peer2, 1)
    assert event["status"]["code"] == 0
    assert event["stored_transfer_syntax"] == event["transfer_syntax"] == "1.2.840.10008.1.2.1"
    assert "stored as received" in str(event["message"]) and "8 bits" in str(event["message"])


def test_storescp_lossy_store_as_keeps_the_uid(dcmcli_storescp, workdir: Path) -> None:
    """A lossy --store-as keeps the SOP Instance UID the sender knows and marks the object lossy."""
    (f,) = copy_samples(workdir, ["explicit-le"])
    peer = dcmcli_storescp("--store-as", "j2k")
    r = subprocess.run([dcmtk("storescu"), "127.0.0.1", str(peer.port), str(f)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    (event,) = received_events(peer, 1)
    stored = dcmread(Path(str(event["path"])))
    assert str(stored.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.91"
    assert stored.SOPInstanceUID == dcmread(f).SOPInstanceUID == stored.file_meta.MediaStorageSOPInstanceUID
    assert stored.LossyImageCompression == "01"


def test_data_set_uids_are_sent_when_the_file_meta_disagrees(dcmtk_storescp) -> None:
    """pydicom's rtplan.dcm has a Media Storage SOP Instance UID that is not its
    SOP Instance UID. The C-STORE names the data set's (as DCMTK's storescu
    does; DCMTK's storescp answers A900 otherwise), with one warning."""
    path = sample("rtplan.dcm")
    in_data_set = "1.2.777.777.77.7.7777.7777.20030903150023"
    in_meta = "1.2.999.999.99.9.9999.9999.20030903150023"
    peer = dcmtk_storescp()
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    result, = [e for e in json_lines(r.stdout) if e["event"] == "result"]
    assert (result["outcome"], result["sop_instance_uid"]) == ("sent", in_data_set)
    warnings = [line for line in r.stderr.splitlines() if "file meta" in line]
    assert len(warnings) == 1, r.stderr
    assert warnings[0] == (f"storescu: WARNING: {path}: SOP Instance UID {in_data_set} in the data set but "
                           f"{in_meta} in the file meta; the data set's value is used")
    assert [p.name for p in peer.outdir.iterdir()] == [f"RP.{in_data_set}"]


def test_12_bit_jpeg_goes_decompressed_to_an_uncompressed_only_peer(dcmtk_storescp, workdir: Path) -> None:
    """JPEG-lossy.dcm, which pylibjpeg cannot decode, reaches a peer that takes
    only Implicit VR Little Endian, decoded as DCMTK decodes it."""
    files = copy_samples(workdir, ["JPEG-lossy.dcm"])
    peer = dcmtk_storescp("+xi")
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(files[0]))
    assert r.returncode == 0, r.stdout + r.stderr
    result, = [e for e in json_lines(r.stdout) if e["event"] == "result"]
    assert (result["outcome"], result["sent_transfer_syntax"]) == ("sent", "1.2.840.10008.1.2")
    received, = peer.outdir.iterdir()
    by_dcmtk = workdir / "dcmdjpeg.dcm"
    subprocess.run([dcmtk("dcmdjpeg"), str(files[0]), str(by_dcmtk)], check=True, capture_output=True)
    diff = dcmread(received).pixel_array.astype(np.int32) - dcmread(by_dcmtk).pixel_array.astype(np.int32)
    assert np.abs(diff).max() <= 1


def test_storescp_store_as_files_follow_the_umask(dcmcli_storescp, workdir: Path) -> None:
    """--store-as writes through the transcoding core's write_file, whose
    temporary file was 0600; the stored file gets the mode plain storescp
    gives (0666 less the umask)."""
    (f,) = copy_samples(workdir, ["explicit-le"])
    modes = {}
    for args in ((), ("--store-as", "jpeg-ls-lossless")):
        peer = dcmcli_storescp(*args, preexec_fn=lambda: os.umask(0o022))
        r = run_dcmcli("storescu", "127.0.0.1", str(peer.port), str(f))
        assert r.returncode == 0, r.stderr
        (event,) = received_events(peer, 1)
        assert event["stored_transfer_syntax"] == (JPEG_LS if args else "1.2.840.10008.1.2.1")
        modes[args] = Path(str(event["path"])).stat().st_mode & 0o777
    assert modes == {(): 0o644, ("--store-as", "jpeg-ls-lossless"): 0o644}


def _events(stdout: str) -> list[tuple[str, object]]:
    """(event, outcome) in order, for the association and result events."""
    return [(str(e["event"]), e.get("outcome")) for e in json_lines(stdout) if e["event"] in ("association", "result")]


def test_files_behind_a_refused_connection_are_not_attempted(workdir: Path) -> None:
    """Nothing was tried: 'not attempted', not 'failed', in the results and the
    summary; the association event comes first."""
    from conftest import free_port

    files = copy_samples(workdir, ["explicit-le", "implicit-le", "rle"])
    port = str(free_port())
    r = run_dcmcli("storescu", "--json", "127.0.0.1", port, str(workdir))
    assert r.returncode == 60, r.stderr
    assert _events(r.stdout) == [("association", "cannot connect")] + [("result", "not-attempted")] * len(files)
    summary, = [e for e in json_lines(r.stdout) if e["event"] == "summary"]
    assert (summary["sent"], summary["failed"], summary["not_attempted"], summary["exit_code"]) == (0, 0, 3, 60)
    r = run_dcmcli("storescu", "127.0.0.1", port, str(workdir))
    assert r.returncode == 60
    assert r.stdout.startswith("0 sent (0 with warnings), 0 failed, 0 skipped, 3 not attempted; ")
    assert r.stderr.splitlines() == [f"storescu: error: cannot connect to 127.0.0.1:{port}: connection refused; is "
                                     "the peer running and listening on that port? check the host and port"]


def test_transient_rejection_suggests_retries(dcmcli_storescp, workdir: Path) -> None:
    """A-ASSOCIATE-RJ result 2 (transient, here 'local limit exceeded'): the
    files are not attempted and the error line suggests --retries."""
    from dcmcli.net.association import AssociationSettings, open_association
    from dcmcli.net.peer import Peer
    from dcmcli.net.ul import Context

    files = copy_samples(workdir, ["explicit-le", "implicit-le"])
    peer = dcmcli_storescp("--max-associations", "1")
    verification = [Context(None, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"])]
    with open_association(AssociationSettings(), Peer("127.0.0.1", peer.port), verification):
        r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 61, r.stderr
    assert _events(r.stdout) == [("association", "rejected")] + [("result", "not-attempted")] * 2
    association = json_lines(r.stdout)[0]
    assert association["rejection"]["result_text"] == "transient"
    assert r.stderr.splitlines()[-1] == (
        f"storescu: error: association rejected by 127.0.0.1:{peer.port} (transient): local limit exceeded; "
        "the peer has too many associations open; try again later or raise its limit; the rejection is "
        "transient: --retries N tries again with backoff")


def test_file_in_flight_when_the_peer_aborts_failed_the_rest_not_attempted(dcmtk_storescp, workdir: Path) -> None:
    files = copy_samples(workdir, ["explicit-le", "implicit-le"])
    peer = dcmtk_storescp("--abort-after")  # DCMTK aborts after receiving the first C-STORE request
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 62, r.stderr
    assert _events(r.stdout) == [("association", "accepted"), ("result", "failed"), ("result", "not-attempted")]
    summary, = [e for e in json_lines(r.stdout) if e["event"] == "summary"]
    assert (summary["sent"], summary["failed"], summary["not_attempted"]) == (0, 1, 1)


def test_compressed_fallbacks_only_for_classes_with_pixels(dcmcli_storescp, workdir: Path) -> None:
    """A lossy file in the batch used to bring the lossless and lossy fallback
    contexts to every SOP class, RT Plan included. Now: RT Plan (no Pixel
    Data) gets its own syntax and the uncompressed fallback; CT (lossless)
    adds the lossless group; the lossy Secondary Capture adds both groups."""
    from dcmcli.transcode.catalog import LOSSLESS_PREFERENCE, LOSSY_PREFERENCE

    files = copy_samples(workdir, ["rtplan.dcm", "explicit-le", "jpeg-baseline"])
    peer = dcmcli_storescp()
    r = run_dcmcli("storescu", "--json", "-v", "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 0, r.stderr
    association, = [e for e in json_lines(r.stdout) if e["event"] == "association"]
    proposed: dict[str, list[list[str]]] = {}
    for c in association["contexts"]:
        proposed.setdefault(str(c["abstract_syntax_name"]), []).append(list(c["proposed_transfer_syntaxes"]))
    uncompressed = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
    assert proposed == {
        "RT Plan Storage": [["1.2.840.10008.1.2"], uncompressed],
        "CT Image Storage": [["1.2.840.10008.1.2.1"], uncompressed, list(LOSSLESS_PREFERENCE)],
        "Secondary Capture Image Storage": [["1.2.840.10008.1.2.4.50"], uncompressed, list(LOSSLESS_PREFERENCE),
                                            list(LOSSY_PREFERENCE)],
    }
    assert all(e["outcome"] == "sent" for e in json_lines(r.stdout) if e["event"] == "result")
    # -v words the same report: two contexts for RT Plan
    assert len([line for line in r.stderr.splitlines() if ": RT Plan Storage [" in line]) == 2
