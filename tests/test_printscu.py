"""printscu against real print SCPs: DCMTK's dcmprscp (grayscale, with its
Stored Print and Hardcopy Grayscale objects read back), pynetdicom's AE as a
colour print SCP (tests/print_peer.py, which records what it received), the
--preview PNG, and bad input.

Expected P-values are computed here from the files with pydicom and the
formulas of PS3.3 C.11 (rescale, linear window), not with dcmcli's code."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import dcmtk, free_port, json_lines, recording_peers, run_dcmcli, sample, wait_listening
from tls_certs import Pki

PEER_SCRIPT = Path(__file__).with_name("print_peer.py")
GRAY_BOX, COLOR_BOX = "1.2.840.10008.5.1.1.4", "1.2.840.10008.5.1.1.4.1"

FULL = r"""DisplayFormat = 1,1\1,2\2,1\2,2\2,3\3,3\3,4\3,5\4,4\4,5
FilmSizeID = 8INX10IN\10INX12IN\14INX17IN\24CMX30CM
MediumType = PAPER\CLEAR FILM\BLUE FILM
FilmDestination = MAGAZINE\PROCESSOR
MagnificationType = REPLICATE\BILINEAR\CUBIC\NONE
BorderDensity = 150\20\BLACK\WHITE
EmptyImageDensity = 20\BLACK\WHITE
MaxDensity = 320
MinDensity = 20
Supports12Bit = true
SupportsPresentationLUT = true
SupportsImageSize = true
SupportsTrim = true
"""
RESTRICTED = r"""DisplayFormat = 1,1
FilmSizeID = 14INX17IN
MediumType = PAPER
FilmDestination = MAGAZINE
MagnificationType = REPLICATE
MaxDensity = 320
Supports12Bit = false
SupportsPresentationLUT = false
"""


@dataclass
class PrintSCP:
    port: int
    db: Path
    proc: subprocess.Popen[bytes]

    def stored(self) -> tuple[list[Dataset], dict[str, Dataset]]:
        """The Stored Print objects (oldest first) and the Hardcopy Grayscale images by SOP Instance UID."""
        sp = sorted((dcmread(p) for p in self.db.glob("SP_*.dcm")), key=lambda d: (d.InstanceCreationTime,
                                                                                     d.SOPInstanceUID))
        hg = {str(d.SOPInstanceUID): d for d in (dcmread(p) for p in self.db.glob("HG_*.dcm"))}
        return sp, hg

    def images_of(self, sp: Dataset, hg: dict[str, Dataset]) -> list[Dataset]:
        """The film's images in image box position order."""
        boxes = sorted(sp.ImageBoxContentSequence, key=lambda b: int(b.ImageBoxPosition))
        return [hg[str(b.ReferencedImageSequence[0].ReferencedSOPInstanceUID)] for b in boxes]


@pytest.fixture
def dcmprscp(tmp_path: Path) -> Iterator:
    """Factory: DCMTK's dcmprscp with one printer entry (full or restricted) on a free port."""
    binary = dcmtk("dcmprscp")
    started: list[subprocess.Popen[bytes]] = []

    def start(entry: str = FULL, tls: Pki | None = None) -> PrintSCP:
        """``tls``: the printer entry's UseTLS, with the test CA's server
        certificate, a client certificate required (PeerAuthentication)."""
        root = tmp_path / f"prscp-{len(started)}"
        for sub in ("log", "spool", "db", "lut", "tls", "cacerts"):
            (root / sub).mkdir(parents=True)
        port = free_port()
        general_tls = printer_tls = ""
        if tls is not None:
            # DCMTK reads CACertificateDirectory by OpenSSL's hashed names (openssl x509 -hash)
            digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(tls.ca)], capture_output=True,
                                    text=True, check=True, timeout=30).stdout.strip()
            shutil.copy(tls.ca, root / "cacerts" / f"{digest}.0")
            shutil.copy(tls.server_key, root / "tls" / "server.key")
            shutil.copy(tls.server_cert, root / "tls" / "server.pem")
            general_tls = (f"[TLS]\nTLSDirectory = {root / 'tls'}\nCACertificateDirectory = {root / 'cacerts'}\n"
                           "UsePEMFormat = true\n")
            printer_tls = ("UseTLS = true\nCertificate = server.pem\nPrivateKey = server.key\n"
                           "TLSProfile = BCP195-ND\nPeerAuthentication = REQUIRE\n")
        (root / "dcmpstat.cfg").write_text(
            "[[GENERAL]]\n" + general_tls + "[APPLICATION]\n"
            f"LogDirectory = {root / 'log'}\nLogFile = general.log\nLogLevel = ERROR\n"
            f"[PRINT]\nSpooler = {dcmtk('dcmprscu')}\nServer = {binary}\nDirectory = {root / 'spool'}\n"
            "MinPrintResolution = 256\\256\nMaxPrintResolution = 8192\\8192\nDefaultIllumination = 2000\n"
            "DefaultReflection = 10\n"
            f"[DATABASE]\nDirectory = {root / 'db'}\n[LUT]\nDirectory = {root / 'lut'}\n[NETWORK]\naetitle = DCMPSTATE\n"
            "[[COMMUNICATION]]\n[PRINTER]\nAetitle = PRINTSCP\nDescription = test printer\n"
            f"Hostname = 127.0.0.1\nPort = {port}\nType = LOCALPRINTER\nMaxPDU = 32768\nImplicitOnly = false\n"
            + printer_tls + entry, encoding="utf-8")
        proc = subprocess.Popen([binary, "-c", str(root / "dcmpstat.cfg"), "-p", "PRINTER"], cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        wait_listening(port, proc)
        return PrintSCP(port, root / "db", proc)

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def color_peer(tmp_path: Path) -> Iterator:
    """Factory: pynetdicom's AE as a colour print SCP (tests/print_peer.py); stopped at teardown."""
    yield from recording_peers(PEER_SCRIPT, tmp_path, "print peer")


# -- what the P-values must be (PS3.3 C.11, independently of dcmcli) -----------------------

def modality(ds: Dataset, frame: int | None = None) -> np.ndarray:
    a = ds.pixel_array if frame is None else ds.pixel_array[frame]
    return a.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


def p_values(values: np.ndarray, bits: int, window: tuple[float, float] | None = None) -> np.ndarray:
    if window is None:
        lo, hi = values.min(), values.max()
        unit = (values - lo) / (hi - lo)
    else:
        c, w = window
        unit = np.clip((values - (c - 0.5)) / (w - 1) + 0.5, 0, 1)
    return np.rint(unit * (2 ** bits - 1)).astype(np.int64)


def file_window(ds: Dataset) -> tuple[float, float]:
    c, w = ds.WindowCenter, ds.WindowWidth
    return float(c[0] if isinstance(c, (list, tuple)) or hasattr(c, "__len__") else c), \
        float(w[0] if isinstance(w, (list, tuple)) or hasattr(w, "__len__") else w)


def events_of(stdout: str, name: str) -> list[dict]:
    return [e for e in json_lines(stdout) if e.get("event") == name]


def multiframe(path: Path, frames: int) -> Path:
    """A 13-frame (or any) 16-bit MONOCHROME2 image, each frame a different ramp, rescaled."""
    rows, cols = 32, 48
    ramp = np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols)
    data = np.stack([(ramp * (i + 1)) % 4000 for i in range(frames)]).astype(np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Print^Test", "PRT1", "OT"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
    ds.WindowCenter, ds.WindowWidth = 1000, 4000
    ds.PixelData = data.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def copies_of(src: Path, folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        out.append(folder / f"img{i:02d}.dcm")
        shutil.copy(src, out[-1])
    return out


# -- DCMTK dcmprscp -------------------------------------------------------------------

def test_status_of_dcmprscp(dcmprscp) -> None:
    scp = dcmprscp()
    r = run_dcmcli("printscu", "--status", "--json", "-aec", "PRINTSCP", "127.0.0.1", str(scp.port))
    assert r.returncode == 0, r.stderr
    printer, = events_of(r.stdout, "printer")
    assert printer["status"] == "NORMAL" and printer["response"]["code"] == 0
    summary, = events_of(r.stdout, "summary")
    assert summary["mode"] == "status" and summary["printer_status"] == "NORMAL"
    human = run_dcmcli("printscu", "--status", "-aec", "PRINTSCP", "127.0.0.1", str(scp.port))
    assert human.returncode == 0 and "printer status: NORMAL" in human.stdout
    assert not list(scp.db.glob("*.dcm"))  # nothing printed


def test_one_ct_1x1_with_film_options(dcmprscp, tmp_path: Path) -> None:
    scp = dcmprscp()
    ct = sample("explicit-le")
    preview = tmp_path / "film.png"
    r = run_dcmcli("printscu", "--json", "-aec", "PRINTSCP", "--copies", "2", "--medium", "BLUE FILM",
                   "--destination", "PROCESSOR", "--priority", "HIGH", "--label", "night shift",
                   "--film-size", "14INX17IN", "--orientation", "LANDSCAPE", "--magnification", "BILINEAR",
                   "--border-density", "WHITE", "--empty-density", "BLACK", "--trim", "--window", "40,400",
                   "--preview", str(preview), "127.0.0.1", str(scp.port), str(ct))
    assert r.returncode == 0, r.stderr
    session, = events_of(r.stdout, "film-session")
    assert session["copies"] == 2 and session["medium"] == "BLUE FILM" and session["status"]["code"] == 0
    printed, = events_of(r.stdout, "print")
    assert printed["target"] == "film-box" and printed["status"]["code"] == 0
    sp, hg = scp.stored()
    assert len(sp) == 1 and len(hg) == 1
    box = sp[0].FilmBoxContentSequence[0]
    assert (box.ImageDisplayFormat, box.FilmOrientation, box.FilmSizeID, box.MagnificationType, box.BorderDensity,
            box.EmptyImageDensity, box.Trim) == ("STANDARD\\1,1", "LANDSCAPE", "14INX17IN", "BILINEAR", "WHITE",
                                                 "BLACK", "YES")
    image, = scp.images_of(sp[0], hg)
    assert (image.BitsStored, image.PhotometricInterpretation) == (8, "MONOCHROME2")
    expected = p_values(modality(dcmread(ct)), 8, (40, 400))
    assert np.array_equal(image.pixel_array.astype(np.int64), expected)
    # the preview holds exactly what dcmprscp stored
    import imagecodecs

    png = imagecodecs.png_decode(preview.read_bytes())
    shown, = events_of(r.stdout, "preview")
    film = shown["files"][0]
    assert png.shape == (film["height"], film["width"]) and film["width"] > film["height"]  # landscape
    b = film["boxes"][0]
    assert np.array_equal(png[b["y"]:b["y"] + b["height"], b["x"]:b["x"] + b["width"]], image.pixel_array)
    assert png[0, 0] == 255  # WHITE border


def test_four_images_2x2_12_bit_reverse_with_a_presentation_lut(dcmprscp, tmp_path: Path) -> None:
    """CT, MR, RLE MR and a JPEG 2000 image: compressed inputs are decoded; 12-bit P-values."""
    scp = dcmprscp()
    files = [sample("explicit-le"), sample("implicit-le"), sample("rle"), sample("j2k")]
    r = run_dcmcli("printscu", "--json", "-aec", "PRINTSCP", "--layout", "2x2", "--bits", "12", "--polarity",
                   "REVERSE", "--presentation-lut", "IDENTITY", "--illumination", "2500",
                   "--reflected-ambient-light", "12", "127.0.0.1", str(scp.port), *map(str, files))
    assert r.returncode == 0, r.stderr
    lut, = events_of(r.stdout, "presentation-lut")
    assert lut["shape"] == "IDENTITY" and lut["status"]["code"] == 0
    assert len(events_of(r.stdout, "image-box")) == 4
    sp, hg = scp.stored()
    assert len(sp) == 1 and len(hg) == 4
    box = sp[0].FilmBoxContentSequence[0]
    assert box.ImageDisplayFormat == "STANDARD\\2,2" and (box.Illumination, box.ReflectedAmbientLight) == (2500, 12)
    assert str(box.ReferencedPresentationLUTSequence[0].ReferencedSOPInstanceUID) == lut["sop_instance_uid"]
    assert {str(b.Polarity) for b in sp[0].ImageBoxContentSequence} == {"REVERSE"}
    images = scp.images_of(sp[0], hg)
    assert [(i.Rows, i.Columns, i.BitsStored) for i in images] == [(128, 128, 12), (64, 64, 12), (64, 64, 12),
                                                                   (1024, 256, 12)]
    mr = dcmread(files[1])
    assert np.array_equal(images[1].pixel_array.astype(np.int64), p_values(modality(mr), 12, file_window(mr)))
    rle = dcmread(files[2])
    assert np.array_equal(images[2].pixel_array.astype(np.int64), p_values(modality(rle), 12, file_window(rle)))
    j2k = dcmread(files[3])
    assert np.array_equal(images[3].pixel_array.astype(np.int64), p_values(modality(j2k), 12))


def test_thirteen_frames_3x5(dcmprscp, tmp_path: Path) -> None:
    """A 13-frame object, frame by frame, in one 3x5 film (two boxes left empty)."""
    scp = dcmprscp()
    mf = multiframe(tmp_path / "mf.dcm", 13)
    r = run_dcmcli("printscu", "--json", "-aec", "PRINTSCP", "--layout", "3x5", "--film-size", "10INX12IN",
                   "--auto-window", "--requested-size", "50", "127.0.0.1", str(scp.port), str(mf))
    assert r.returncode == 0, r.stderr
    box, = events_of(r.stdout, "film-box")
    assert (box["image_boxes"], box["images"], box["display_format"]) == (15, 13, "STANDARD\\3,5")
    sp, hg = scp.stored()
    assert len(sp) == 1 and len(hg) == 13 and len(sp[0].ImageBoxContentSequence) == 13
    assert sp[0].FilmBoxContentSequence[0].FilmSizeID == "10INX12IN"
    assert {float(b.RequestedImageSize) for b in sp[0].ImageBoxContentSequence} == {50.0}
    ds = dcmread(mf)
    for i, image in enumerate(scp.images_of(sp[0], hg)):  # --auto-window: each frame's own range
        assert np.array_equal(image.pixel_array.astype(np.int64), p_values(modality(ds, i), 8)), i


def test_more_images_than_boxes_make_more_films(dcmprscp, tmp_path: Path) -> None:
    scp = dcmprscp()
    files = copies_of(sample("implicit-le"), tmp_path / "mr", 5)
    r = run_dcmcli("printscu", "-aec", "PRINTSCP", "--layout", "2x2", "127.0.0.1", str(scp.port), str(tmp_path / "mr"))
    assert r.returncode == 0, r.stderr
    assert "5 images on 2 films" in r.stdout
    sp, hg = scp.stored()
    assert sorted(len(s.ImageBoxContentSequence) for s in sp) == [1, 4] and len(hg) == 5
    assert len(files) == 5


def test_restricted_printer_refuses_medium_and_layout(dcmprscp) -> None:
    scp = dcmprscp(RESTRICTED)
    ct = str(sample("explicit-le"))
    r = run_dcmcli("printscu", "--json", "-aec", "PRINTSCP", "--medium", "BLUE FILM", "127.0.0.1", str(scp.port), ct)
    assert r.returncode == 66
    session, = events_of(r.stdout, "film-session")
    assert session["status"]["code"] == 0x0106
    assert "N-CREATE of the film session failed: invalid attribute value (0x0106)" in r.stderr
    assert "--medium" in r.stderr
    r = run_dcmcli("printscu", "-aec", "PRINTSCP", "--layout", "2x2", "127.0.0.1", str(scp.port), ct)
    assert r.returncode == 66
    assert "N-CREATE of the film box failed" in r.stderr and "--layout" in r.stderr
    r = run_dcmcli("printscu", "-aec", "PRINTSCP", "--bits", "12", "127.0.0.1", str(scp.port), ct)
    assert r.returncode == 66 and "N-SET of the image box failed: invalid attribute value (0x0106)" in r.stderr
    assert not list(scp.db.glob("SP_*.dcm"))


def test_colour_to_a_grayscale_printer(dcmprscp) -> None:
    scp = dcmprscp()
    rgb = sample("rle-rgb")
    r = run_dcmcli("printscu", "--color", "-aec", "PRINTSCP", "127.0.0.1", str(scp.port), str(rgb))
    assert r.returncode == 65
    assert "does not accept Basic Color Print Management" in r.stderr and "leave out --color" in r.stderr
    # without --color: printed as its luminance, with a warning
    r = run_dcmcli("printscu", "-aec", "PRINTSCP", "127.0.0.1", str(scp.port), str(rgb))
    assert r.returncode == 0, r.stderr
    assert "does not accept colour printing" in r.stderr
    sp, hg = scp.stored()
    image, = scp.images_of(sp[0], hg)
    src = dcmread(rgb).pixel_array.astype(np.float64) / 255
    lum = src[..., 0] * 0.299 + src[..., 1] * 0.587 + src[..., 2] * 0.114
    assert np.abs(image.pixel_array.astype(np.int64) - np.rint(lum * 255)).max() <= 1


def test_printer_that_is_down() -> None:
    port = free_port()
    r = run_dcmcli("printscu", "127.0.0.1", str(port), str(sample("explicit-le")))
    assert r.returncode == 60, r.stderr
    assert "printscu: error:" in r.stderr and r.stderr.count("\n") <= 2
    r = run_dcmcli("printscu", "--status", "127.0.0.1", str(port))
    assert r.returncode == 60


# -- pynetdicom's AE as a colour print SCP ---------------------------------------------

def test_colour_print_to_pynetdicom(color_peer) -> None:
    peer = color_peer()
    rgb, ct = sample("rle-rgb"), sample("explicit-le")
    r = run_dcmcli("printscu", "--json", "--layout", "2x1", "--wait", "20", "127.0.0.1", str(peer.port), str(rgb),
                   str(ct))
    assert r.returncode == 0, r.stderr
    got = peer.received()
    assert [g["op"] for g in got] == ["N-GET", "N-CREATE", "N-CREATE", "N-SET", "N-SET", "N-ACTION", "N-DELETE",
                                      "N-DELETE"]
    assert {g["meta"] for g in got} == {"1.2.840.10008.5.1.1.18"}
    sets = [g for g in got if g["op"] == "N-SET"]
    assert {g["sop_class"] for g in sets} == {COLOR_BOX}
    from pydicom.dataset import Dataset as DS

    first = DS.from_json(sets[0]["dataset"]).BasicColorImageSequence[0]
    assert (first.SamplesPerPixel, first.PhotometricInterpretation, first.PlanarConfiguration, first.BitsStored) == \
        (3, "RGB", 1, 8)
    sent = np.frombuffer(first.PixelData, np.uint8)[:3 * 100 * 100].reshape(3, 100, 100).transpose(1, 2, 0)
    assert np.array_equal(sent, dcmread(rgb).pixel_array)
    second = DS.from_json(sets[1]["dataset"]).BasicColorImageSequence[0]
    planes = np.frombuffer(second.PixelData, np.uint8).reshape(3, 128, 128)
    assert np.array_equal(planes[0], planes[1]) and np.array_equal(planes[1], planes[2])  # grayscale: R = G = B
    assert np.array_equal(planes[0].astype(np.int64), p_values(modality(dcmread(ct)), 8))
    job, = events_of(r.stdout, "print-job")
    assert (job["execution_status"], job["via"]) == ("DONE", "event-report")
    summary, = events_of(r.stdout, "summary")
    assert summary["films"] == 1 and summary["print_jobs"][0]["execution_status"] == "DONE"


def test_session_print_of_two_films_and_a_job_polled_to_failure(color_peer, tmp_path: Path) -> None:
    peer = color_peer("--job", "FAILURE", "--job-via-get")
    files = copies_of(sample("implicit-le"), tmp_path / "mr", 5)
    r = run_dcmcli("printscu", "--json", "--layout", "2x2", "--session-print", "--wait", "20", "127.0.0.1",
                   str(peer.port), *map(str, files))
    assert r.returncode == 66
    got = peer.received()
    assert [g["op"] for g in got].count("N-CREATE") == 3  # session and two film boxes
    action, = [g for g in got if g["op"] == "N-ACTION"]
    assert action["sop_class"] == "1.2.840.10008.5.1.1.1"  # on the film session
    assert {g["sop_class"] for g in got if g["op"] == "N-SET"} == {GRAY_BOX}
    job = events_of(r.stdout, "print-job")[-1]
    assert (job["execution_status"], job["via"], job["execution_status_info"]) == ("FAILURE", "n-get", "PROC OVERFLOW")
    assert "ended FAILURE: PROC OVERFLOW" in r.stderr


def test_printer_in_failure(color_peer) -> None:
    peer = color_peer("--printer-status", "FAILURE")
    r = run_dcmcli("printscu", "--status", "--json", "127.0.0.1", str(peer.port))
    assert r.returncode == 66
    printer, = events_of(r.stdout, "printer")
    assert (printer["status"], printer["status_info"], printer["name"]) == ("FAILURE", "ELEC DOWN", "COLOR-PEER")
    config, = printer["configuration"]  # Printer Configuration Retrieval, as the peer supports it
    assert config["21100030"]["Value"] == ["COLOR-PEER"]
    r = run_dcmcli("printscu", "127.0.0.1", str(peer.port), str(sample("explicit-le")))
    assert r.returncode == 66
    assert "the printer reports FAILURE (ELEC DOWN); nothing was printed" in r.stderr
    assert [g["op"] for g in peer.received()] == ["N-GET", "N-GET", "N-GET"]  # no film session was created


def test_status_verbose_keep_and_max_size(color_peer) -> None:
    peer = color_peer()
    r = run_dcmcli("printscu", "--status", "127.0.0.1", str(peer.port))
    assert r.returncode == 0
    assert "printer status: NORMAL, name: COLOR-PEER, manufacturer: pynetdicom, model: test print SCP" in r.stdout
    assert "printer configuration: 1 item" in r.stdout
    r = run_dcmcli("printscu", "-v", "--keep", "--max-size", "32", "127.0.0.1", str(peer.port),
                   str(sample("implicit-le")))
    assert r.returncode == 0, r.stderr
    assert "printer status: NORMAL" in r.stdout and "image box 1:" in r.stdout and "(32x32, 8-bit)" in r.stdout
    assert "resampled from 64x64 to 32x32" in r.stderr
    ops = [g["op"] for g in peer.received()]
    assert "N-DELETE" not in ops and ops.count("N-SET") == 1
    from pydicom.dataset import Dataset as DS

    item = DS.from_json([g for g in peer.received() if g["op"] == "N-SET"][0]["dataset"]).BasicGrayscaleImageSequence[0]
    assert (item.Rows, item.Columns) == (32, 32)


# -- the preview and bad input (nothing sent) ------------------------------------------

def test_preview_only(tmp_path: Path) -> None:
    import imagecodecs

    mr, ct = sample("implicit-le"), sample("explicit-le")
    mr2 = tmp_path / "mr2.dcm"
    shutil.copy(mr, mr2)
    out = tmp_path / "film.png"
    r = run_dcmcli("printscu", "--json", "--preview-only", "--preview", str(out), "--layout", "2x2", "--polarity",
                   "REVERSE", "--film-size", "8INX10IN", str(mr), str(ct), str(mr2))
    assert r.returncode == 0, r.stderr
    film, = events_of(r.stdout, "preview")[0]["files"]
    png = imagecodecs.png_decode(out.read_bytes())
    assert png.shape == (film["height"], film["width"]) and png.dtype == np.uint8
    assert abs(film["width"] / film["height"] - 8 / 10) < 0.02
    boxes = film["boxes"]
    assert [b["source"] for b in boxes] == [str(mr), str(ct), str(mr2), None]
    mr_ds = dcmread(mr)
    assert [b["zoom"] for b in boxes[:3]] == [2, 1, 2]  # pixels repeated to fill the box, as REPLICATE does
    for b, ds, window in ((boxes[0], mr_ds, file_window(mr_ds)), (boxes[1], dcmread(ct), None)):
        region = png[b["y"]:b["y"] + b["height"], b["x"]:b["x"] + b["width"]].astype(np.int64)
        k = b["zoom"]
        expected = 255 - p_values(modality(ds), 8, window)  # REVERSE polarity
        assert np.array_equal(region, expected.repeat(k, axis=0).repeat(k, axis=1))
    empty = boxes[3]
    assert (png[empty["y"]:empty["y"] + empty["height"], empty["x"]:empty["x"] + empty["width"]] == 255).all()
    assert png[0, 0] == 0  # BLACK border (the default)


def test_bad_inputs(tmp_path: Path) -> None:
    sr = tmp_path / "report.dcm"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.Modality, ds.PatientID = "SR", "1"
    ds.save_as(sr, enforce_file_format=True)
    png = tmp_path / "p.png"
    r = run_dcmcli("printscu", "--preview-only", "--preview", str(png), str(sr))
    assert r.returncode == 22, r.stderr
    assert "not an image (no Pixel Data)" in r.stderr and "nothing to print" in r.stderr
    assert not png.exists()
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM\n")
    r = run_dcmcli("printscu", "--preview-only", "--preview", str(png), str(text))
    assert r.returncode in (22, 23) and "notes.txt" in r.stderr
    # a JPEG 2000 file whose codestream is damaged: 24 (cannot convert)
    broken = tmp_path / "broken.dcm"
    src = dcmread(sample("j2k"))
    from pydicom.encaps import encapsulate, generate_frames

    frame = next(generate_frames(src.PixelData, number_of_frames=1))
    src.PixelData = encapsulate([frame[:40] + b"\xff" * 200])
    src.save_as(broken)
    r = run_dcmcli("printscu", "--preview-only", "--preview", str(png), str(broken))
    assert r.returncode == 24, r.stderr
    assert "broken.dcm" in r.stderr and "cannot print it" in r.stderr
    # one good image among bad ones: printed (previewed), the exit code tells of the bad one
    r = run_dcmcli("printscu", "--preview-only", "--preview", str(png), str(sr), str(sample("explicit-le")))
    assert r.returncode == 22 and png.exists()
    r = run_dcmcli("printscu", "--layout", "0x2", "--preview-only", "--preview", str(png), str(sr))
    assert r.returncode == 1 and "invalid --layout" in r.stderr


def test_print_warning_in_plain_words_and_warnings_as_errors(color_peer) -> None:
    peer = color_peer("--image-box-status", "B604")
    mr = str(sample("implicit-le"))
    r = run_dcmcli("printscu", "127.0.0.1", str(peer.port), mr)
    assert r.returncode == 0, r.stderr
    assert "image box 1:" in r.stdout
    assert "the image is larger than its image box and was demagnified (0xB604)" in r.stdout
    r = run_dcmcli("printscu", "--json", "--warnings-as-errors", "127.0.0.1", str(peer.port), mr)
    assert r.returncode == 67
    box, = events_of(r.stdout, "image-box")
    assert box["status"]["category"] == "warning"
    assert events_of(r.stdout, "print")[0]["status"]["code"] == 0  # the film was printed all the same


def test_a_peer_that_refuses_the_meta_sop_class(dcmtk_storescp) -> None:
    """DCMTK's storescp is no printer: it refuses Basic Grayscale Print Management Meta."""
    peer = dcmtk_storescp()
    r = run_dcmcli("printscu", "127.0.0.1", str(peer.port), str(sample("explicit-le")))
    assert r.returncode == 65
    assert "Basic Grayscale Print Management Meta SOP Class" in r.stderr and r.stderr.count("\n") == 1


def test_colour_inputs_previewed_as_rgb(tmp_path: Path) -> None:
    """A JPEG baseline YBR_FULL_422 image and a PALETTE COLOR one become RGB (what a colour image box carries)."""
    import imagecodecs
    from pydicom.pixels import apply_color_lut

    ybr, palette = sample("jpeg-baseline"), sample("examples_palette.dcm")
    out = tmp_path / "colour.png"
    r = run_dcmcli("printscu", "--json", "--preview-only", "--preview", str(out), "--layout", "1x2", str(ybr),
                   str(palette))
    assert r.returncode == 0, r.stderr
    film, = events_of(r.stdout, "preview")[0]["files"]
    png = imagecodecs.png_decode(out.read_bytes())
    assert png.shape == (film["height"], film["width"], 3)

    def shown(box: dict) -> np.ndarray:
        k = box["zoom"]
        return png[box["y"]:box["y"] + box["height"]:k, box["x"]:box["x"] + box["width"]:k].astype(np.int64)

    first, second = film["boxes"]
    assert np.abs(shown(first) - dcmread(ybr).pixel_array.astype(np.int64)).max() <= 1  # pydicom's YBR to RGB
    pal = dcmread(palette)
    rgb = apply_color_lut(pal.pixel_array, pal).astype(np.float64)
    expected = np.rint(rgb / (65535.0 if rgb.max() > 255 else 255.0) * 255).astype(np.int64)
    assert np.array_equal(shown(second), expected)
    r = run_dcmcli("printscu", "--json", "--preview-only", "--preview", str(out), "--max-size", "400", str(palette))
    assert r.returncode == 0, r.stderr
    box, = events_of(r.stdout, "preview")[0]["files"][0]["boxes"]
    assert (box["width"] // box["zoom"], box["height"] // box["zoom"]) == (400, 175)


def synthetic(path: Path, photometric: str, voi_lut: np.ndarray | None = None) -> Path:
    """A small 12-bit image: MONOCHROME1 with a window, or MONOCHROME2 with a VOI LUT Sequence."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.PatientID, ds.Modality = "1", "DX"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, photometric, 16, 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 16).tobytes()
    if voi_lut is None:
        ds.WindowCenter, ds.WindowWidth = 2048, 2048
    else:
        item = Dataset()
        item.LUTDescriptor = [len(voi_lut), 0, 16]
        item.add_new(0x00283006, "US", voi_lut.astype(np.uint16).tolist())  # LUT Data
        ds.VOILUTSequence = [item]
    ds.save_as(path, enforce_file_format=True)
    return path


def test_monochrome1_and_a_voi_lut(tmp_path: Path) -> None:
    import imagecodecs

    m1 = synthetic(tmp_path / "m1.dcm", "MONOCHROME1")
    lut = (np.sqrt(np.arange(4096) / 4095) * 65535).round()
    voi = synthetic(tmp_path / "voi.dcm", "MONOCHROME2", lut)
    out = tmp_path / "p.png"
    r = run_dcmcli("printscu", "--json", "--preview-only", "--preview", str(out), "--layout", "2x1", str(m1), str(voi))
    assert r.returncode == 0, r.stderr
    png = imagecodecs.png_decode(out.read_bytes())
    boxes = events_of(r.stdout, "preview")[0]["files"][0]["boxes"]
    stored = np.arange(256).reshape(16, 16) * 16.0

    def shown(b: dict) -> np.ndarray:
        k = b["zoom"]
        return png[b["y"]:b["y"] + b["height"]:k, b["x"]:b["x"] + b["width"]:k].astype(np.int64)

    assert np.array_equal(shown(boxes[0]), 255 - p_values(stored, 8, (2048, 2048)))  # MONOCHROME1: turned over
    expected = np.rint(lut[stored.astype(int)] / 65535 * 255).astype(np.int64)
    assert np.array_equal(shown(boxes[1]), expected)  # the file's VOI LUT, its 16-bit output to 8 bits


def test_annotations(color_peer, dcmprscp) -> None:
    peer = color_peer()
    mr = str(sample("implicit-le"))
    r = run_dcmcli("printscu", "--json", "--annotation-format", "LABELS", "--annotation", "Dr. Who",
                   "--annotation", "ward 5", "--annotation", "third", "127.0.0.1", str(peer.port), mr)
    assert r.returncode == 0, r.stderr
    assert "film 1 has 2 annotation boxes for 3 annotations: the rest are left out" in r.stderr
    assert [e["text"] for e in events_of(r.stdout, "annotation-box")] == ["Dr. Who", "ward 5"]
    sets = [g for g in peer.received() if g["op"] == "N-SET" and g["sop_class"] == "1.2.840.10008.5.1.1.15"]
    assert [(s["dataset"]["20300010"]["Value"], s["dataset"]["20300020"]["Value"]) for s in sets] == \
        [([1], ["Dr. Who"]), ([2], ["ward 5"])]
    create = [g for g in peer.received() if g["op"] == "N-CREATE" and g["sop_class"] == "1.2.840.10008.5.1.1.2"][0]
    assert create["dataset"]["20100030"]["Value"] == ["LABELS"]
    scp = dcmprscp()  # no Basic Annotation Box: printed without, with a warning
    r = run_dcmcli("printscu", "-aec", "PRINTSCP", "--annotation", "x", "127.0.0.1", str(scp.port), mr)
    assert r.returncode == 0, r.stderr
    assert "does not offer Basic Annotation Box" in r.stderr and len(list(scp.db.glob("HG_*.dcm"))) == 1


# -- over TLS -------------------------------------------------------------------------

def test_print_over_tls_to_dcmprscp(dcmprscp, pki: Pki) -> None:
    """DCMTK's dcmprscp with UseTLS (its dcmpstat.cfg printer entry, a client
    certificate required): the film printed over mutual TLS; without a
    client certificate, and in the clear, refused with exit 71."""
    scp = dcmprscp(tls=pki)
    tls = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)]
    r = run_dcmcli("printscu", "--json", *tls, "-aec", "PRINTSCP", "localhost", str(scp.port), str(sample("explicit-le")))
    assert r.returncode == 0, r.stderr
    assoc, = events_of(r.stdout, "association")
    assert assoc["tls"]["version"] in ("TLSv1.2", "TLSv1.3") and "localhost" in assoc["tls"]["peer_subject"]
    sp, hg = scp.stored()
    assert len(sp) == 1 and len(hg) == 1
    r = run_dcmcli("printscu", "--status", "+tla", "+cf", str(pki.ca), "-aec", "PRINTSCP", "localhost", str(scp.port))
    assert r.returncode == 71 and "requires a client certificate" in r.stderr, r.stderr
    r = run_dcmcli("printscu", "--status", "-aec", "PRINTSCP", "localhost", str(scp.port))
    assert r.returncode in (62, 71) and "+tls" in r.stderr, r.stderr
    assert len(scp.stored()[0]) == 1  # nothing more printed


def test_colour_print_over_tls_to_pynetdicom(color_peer, pki: Pki) -> None:
    """pynetdicom's print SCP over TLS (tests/print_peer.py --tls): the
    colour film printed, the job's report on the same TLS association."""
    peer = color_peer("--tls", str(pki.server_key), str(pki.server_cert), str(pki.ca))
    tls = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)]
    r = run_dcmcli("printscu", "--json", *tls, "--wait", "20", "localhost", str(peer.port), str(sample("rle-rgb")))
    assert r.returncode == 0, r.stderr
    assoc, = events_of(r.stdout, "association")
    assert "localhost" in assoc["tls"]["peer_subject"] and "dcmcli test ca" in assoc["tls"]["peer_issuer"]
    assert [g["op"] for g in peer.received()] == ["N-GET", "N-CREATE", "N-CREATE", "N-SET", "N-ACTION", "N-DELETE",
                                                  "N-DELETE"]
    job, = events_of(r.stdout, "print-job")
    assert (job["execution_status"], job["via"]) == ("DONE", "event-report")
    # the peer's certificate is checked: a CA that did not issue it is refused
    r = run_dcmcli("printscu", "--status", "+tls", str(pki.client_key), str(pki.client_cert), "+cf",
                   str(pki.rogue_ca), "localhost", str(peer.port))
    assert r.returncode == 71 and "is not trusted" in r.stderr, r.stderr
