"""The transcoding core (dcmcli.transcode.core.transcode) without peers.

Every bundled sample chosen below goes to every transfer syntax the catalog
says this installation can encode. Lossless output must decode to the
source's pixels (masked to Bits Stored); lossy output must decode close to
them and carry the lossy-compression attributes; what a codec cannot carry
must be refused with a TranscodeError that says why. The files are written
and read back, so what is checked is what a reader of the file would see.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments, generate_frames, parse_basic_offsets

from dcmcli import uids
from dcmcli.transcode import core
from dcmcli.transcode.catalog import SYNTAXES, catalog
from dcmcli.transcode.core import TranscodeError, TranscodeOptions, transcode
from dcmcli.transcode.files import write_file
from codec_samples import MULTIFRAME_GREY, jpeg_lossless_predictor, load, masked, pixels, psnr

#: name -> what it covers
SAMPLES: dict[str, str] = {
    "CT_small.dcm": "16-bit signed grey",
    MULTIFRAME_GREY: "3 frames, 12 of 16 bits unsigned grey, garbage above High Bit",
    "JPEGLSNearLossless_16.dcm": "16-bit unsigned grey from lossy JPEG-LS, 50x10",
    "JPEGLSNearLossless_08.dcm": "8-bit grey from lossy JPEG-LS, 45x10 (odd width)",
    "SC_rgb_rle.dcm": "8-bit RGB from RLE",
    "SC_rgb_small_odd.dcm": "8-bit RGB 3x3",
    "SC_rgb_rle_2frame.dcm": "8-bit RGB, 2 frames",
    "SC_rgb_rle_16bit_2frame.dcm": "16-bit RGB, 2 frames",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm": "YBR_FULL JPEG baseline (decodes to RGB)",
    "rtdose.dcm": "32-bit grey, 15 frames",
}

UNCOMPRESSED = (uids.ILE, uids.ELE, uids.DEFLATED, uids.EBE)
#: Every encapsulated syntax this installation encodes (JPEG XL recompression,
#: which repacks a JPEG instead of encoding pixels, is tested on its own).
ENCODABLE = [i for i in catalog()
             if i.can_encode and i.encapsulated and i.uid != uids.JPEGXL_JPEG_RECOMPRESSION]
METHOD = {
    uids.JPEG_BASELINE: "ISO_10918_1", uids.JPEG_EXTENDED: "ISO_10918_1",
    uids.JPEG_LS_NEAR_LOSSLESS: "ISO_14495_1", uids.J2K: "ISO_15444_1",
    uids.HTJ2K: "ISO_15444_15", uids.JPEGXL: "ISO_18181_1",
}
LOSSLESS_COLOUR_RCT = (uids.J2K_LOSSLESS, uids.HTJ2K_LOSSLESS, uids.HTJ2K_LOSSLESS_RPCL)

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # rtdose.dcm's own UIDs


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where samples made by the tests live."""
    return tmp_path_factory.mktemp("samples")


def _as_list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [str(value)]
    return [str(v) for v in value]  # type: ignore[union-attr]


def _written(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _expected_refusal(ds: Dataset, target: str) -> str | None:
    """What the core must refuse, as a pattern of its message (PS3.5 8.2 and
    the codecs' limits): JPEG baseline 8 bits, extended 12 bits and
    greyscale, no signed JPEG lossy or JPEG XL, at most 16 bits but for
    JPEG 2000."""
    bits = int(ds.BitsStored)
    signed = int(ds.PixelRepresentation) == 1
    colour = int(ds.SamplesPerPixel) == 3
    if target == uids.JPEG_BASELINE and (bits > 8 or int(ds.BitsAllocated) != 8):
        return rf"a {bits}-bit image cannot be encoded as JPEG Baseline .*\(8 bits only\)"
    if target == uids.JPEG_EXTENDED and bits > 12:
        return rf"a {bits}-bit image cannot be encoded as JPEG Extended .*\(12 bits at most\)"
    if target in (uids.JPEG_BASELINE, uids.JPEG_EXTENDED) and signed:
        return "signed pixel data cannot be encoded"
    if target == uids.JPEG_EXTENDED and colour:
        return r"colour images cannot be encoded as JPEG Extended .*\(greyscale only\)"
    if target in (uids.JPEGXL_LOSSLESS, uids.JPEGXL) and signed:
        return "signed pixel data cannot be encoded as JPEG XL"
    if bits > 16 and target not in (uids.J2K_LOSSLESS, uids.J2K):
        return rf"{bits}-bit pixel data cannot be encoded as .*\(16 bits at most\)"
    return None


def _expected_pi(source_pi: str, spp: int, target: str) -> str:
    if spp == 1:
        return source_pi
    if target in (uids.JPEG_BASELINE, uids.JPEG_EXTENDED):
        return "YBR_FULL_422"
    if target in LOSSLESS_COLOUR_RCT:
        return "YBR_RCT"
    if target in (uids.J2K, uids.HTJ2K):
        return "YBR_ICT"
    return "RGB"


def _check_encapsulation(ds: Dataset, frames: int) -> None:
    """One fragment per frame, even lengths, and a Basic Offset Table with
    one offset per frame pointing at each frame's item."""
    assert ds["PixelData"].is_undefined_length
    buf = io.BytesIO(ds.PixelData)
    offsets = parse_basic_offsets(buf)
    fragments = list(generate_fragments(buf))
    assert len(fragments) == frames
    assert all(len(f) % 2 == 0 and len(f) > 0 for f in fragments)
    assert len(offsets) == frames
    expected = [0]
    for f in fragments[:-1]:
        expected.append(expected[-1] + 8 + len(f))
    assert offsets == expected


# -- the matrix: every sample to every encodable syntax ---------------------------------

@pytest.mark.parametrize("target", [i.uid for i in ENCODABLE], ids=[i.short or i.keyword for i in ENCODABLE])
@pytest.mark.parametrize("name", list(SAMPLES))
def test_encode_every_sample_to_every_syntax(name: str, target: str, made: Path) -> None:
    before = load(name, made)
    reference = pixels(before)
    source = str(before.file_meta.TransferSyntaxUID)
    frames = int(before.get("NumberOfFrames", 1) or 1)
    ds = load(name, made)

    refusal = _expected_refusal(before, target)
    if refusal is not None:
        with pytest.raises(TranscodeError, match=refusal):
            transcode(ds, target)
        return

    result = transcode(ds, target)
    assert ds.file_meta.TransferSyntaxUID == target
    back = dcmread(io.BytesIO(_written(ds)))
    decoded = pixels(back)
    assert decoded.shape == reference.shape

    if source == target:  # nothing to do: the codestream is kept as it is
        assert result.pixels == "unchanged"
        assert back.PixelData == before.PixelData
        assert back.SOPInstanceUID == before.SOPInstanceUID
        return

    info = next(i for i in ENCODABLE if i.uid == target)
    assert result.pixels == "re-encoded" and result.frames == frames
    assert result.ratio is not None and result.ratio > 0
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit",
                    "PixelRepresentation"):
        assert back[keyword].value == before[keyword].value, keyword
    assert int(back.get("NumberOfFrames", 1) or 1) == frames
    spp = int(before.SamplesPerPixel)
    # the source's PI after decoding: YCbCr JPEG decodes to RGB
    source_pi = "RGB" if spp == 3 else str(before.PhotometricInterpretation)
    assert back.PhotometricInterpretation == _expected_pi(source_pi, spp, target)
    if spp == 3:
        assert back.PlanarConfiguration == 0
    else:
        assert "PlanarConfiguration" not in back
    _check_encapsulation(back, frames)

    if info.lossless:
        assert np.array_equal(decoded, reference), f"{name} changed in {info.name}"
        assert result.verified is True and result.lossy is False
        assert back.SOPInstanceUID == before.SOPInstanceUID and result.new_sop_instance_uid is None
        expected_flag = "01" if uids.is_lossy(source) else before.get("LossyImageCompression")
        assert back.get("LossyImageCompression") == expected_flag
        return

    # lossy: close to the source, and on record as lossy, with a new identity
    if target == uids.JPEG_LS_NEAR_LOSSLESS:
        diff = np.abs(decoded.astype(np.int64) - reference.astype(np.int64))
        assert int(diff.max()) <= TranscodeOptions().near
    else:
        assert psnr(reference, decoded) > 25.0
    assert result.lossy is True
    assert back.LossyImageCompression == "01"
    old_methods = _as_list(before.get("LossyImageCompressionMethod"))
    methods = _as_list(back.LossyImageCompressionMethod)
    assert methods == [*old_methods, METHOD[target]]
    ratios = _as_list(back.LossyImageCompressionRatio)
    assert len(ratios) == len(_as_list(before.get("LossyImageCompressionRatio"))) + 1
    assert float(ratios[-1]) == pytest.approx(result.ratio, abs=0.006)
    assert back.SOPInstanceUID != before.SOPInstanceUID
    assert result.new_sop_instance_uid == back.SOPInstanceUID == back.file_meta.MediaStorageSOPInstanceUID
    ref = back.SourceImageSequence[-1]
    assert ref.ReferencedSOPInstanceUID == before.SOPInstanceUID
    assert ref.ReferencedSOPClassUID == before.SOPClassUID
    assert len(back.SourceImageSequence) == len(before.get("SourceImageSequence", [])) + 1
    if "ImageType" in before:
        assert back.ImageType[0] == "DERIVED"
    assert info.name in back.DerivationDescription


@pytest.mark.parametrize("name", list(SAMPLES))
def test_uncompressed_round_trips(name: str, made: Path, tmp_path: Path) -> None:
    """To each uncompressed syntax and back from the written file: same pixels,
    native (not encapsulated) Pixel Data of the right length."""
    before = load(name, made)
    reference = pixels(before)
    source = str(before.file_meta.TransferSyntaxUID)
    for target in UNCOMPRESSED:
        ds = load(name, made)
        result = transcode(ds, target)
        out = tmp_path / f"{uids.uid_name(target)}.dcm"
        write_file(ds, out)  # what dcmconv writes, big endian included
        back = dcmread(out)
        assert back.file_meta.TransferSyntaxUID == target
        if target == uids.EBE and int(before.BitsAllocated) > 16:
            # 32-bit OW samples big endian: dcmcli swaps 16-bit words as DCMTK
            # does, pydicom reads whole 32-bit samples; compare after coming back
            transcode(back, uids.ELE)
            write_file(back, tmp_path / "again.dcm")
            assert np.array_equal(pixels(dcmread(tmp_path / "again.dcm")), reference)
        else:
            assert np.array_equal(pixels(back), reference), f"{name} -> {uids.uid_name(target)}"
        assert not back["PixelData"].is_undefined_length
        frames = int(before.get("NumberOfFrames", 1) or 1)
        nbytes = int(before.Rows) * int(before.Columns) * int(before.SamplesPerPixel) * frames \
            * int(before.BitsAllocated) // 8
        assert len(back.PixelData) == nbytes + nbytes % 2
        assert back.SOPInstanceUID == before.SOPInstanceUID and not result.lossy
        if source not in UNCOMPRESSED:
            assert result.pixels == "re-encoded"
            assert back.get("LossyImageCompression") == ("01" if uids.is_lossy(source)
                                                         else before.get("LossyImageCompression"))
        if int(before.SamplesPerPixel) == 3:
            assert back.PhotometricInterpretation == "RGB" and back.PlanarConfiguration == 0


def test_catalog_lists_every_syntax_once_with_a_short_name() -> None:
    infos = catalog()
    assert [i.uid for i in infos] == list(SYNTAXES)
    for info in infos:
        assert info.short and uids.SHORT_NAMES[info.short] == info.uid
        assert uids.parse_transfer_syntax(info.short) == info.uid
        assert info.encapsulated == (info.uid not in UNCOMPRESSED)
    lossless = {i.short for i in infos if i.lossless}
    assert {"jpeg-lossless", "jpeg-lossless-p14", "jpeg-ls-lossless", "j2k-lossless", "htj2k-lossless",
            "rle", "jpegxl-lossless"} <= lossless
    assert not lossless & {"jpeg-baseline", "jpeg-extended", "jpeg-ls-near-lossless", "j2k", "htj2k", "jpegxl",
                           "jpegxl-recompression"}


# -- colour ------------------------------------------------------------------------------

def test_ycbcr_jpeg_decompresses_to_rgb_and_stays_marked_lossy() -> None:
    ds = load("SC_rgb_dcmtk_+eb+cy+np.dcm", Path())
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    reference = ds.pixel_array.copy()  # pydicom converts to RGB
    transcode(ds, uids.ELE)
    back = dcmread(io.BytesIO(_written(ds)))
    assert back.PhotometricInterpretation == "RGB" and back.PlanarConfiguration == 0
    assert back.LossyImageCompression == "01"
    assert np.array_equal(back.pixel_array, reference)


def test_planar_configuration_1_source_becomes_colour_by_pixel(made: Path) -> None:
    """A colour-by-plane source (PlanarConfiguration 1) is written colour-by-pixel."""
    ds = load("SC_rgb_small_odd.dcm", made)
    reference = ds.pixel_array.copy()
    ds.PixelData = np.ascontiguousarray(reference.transpose(2, 0, 1)).tobytes() + b"\0"
    ds.PlanarConfiguration = 1
    assert np.array_equal(dcmread(io.BytesIO(_written(ds))).pixel_array, reference)
    transcode(ds, uids.JPEG_LS_LOSSLESS)
    back = dcmread(io.BytesIO(_written(ds)))
    assert back.PlanarConfiguration == 0
    assert np.array_equal(back.pixel_array, reference)


# -- lossy identity ------------------------------------------------------------------------

def test_keep_uid_keeps_the_instance_and_adds_no_source_reference(made: Path) -> None:
    ds = load("SC_rgb_rle.dcm", made)
    old = str(ds.SOPInstanceUID)
    result = transcode(ds, uids.JPEG_BASELINE, TranscodeOptions(keep_uid=True))
    back = dcmread(io.BytesIO(_written(ds)))
    assert back.SOPInstanceUID == old == back.file_meta.MediaStorageSOPInstanceUID
    assert "SourceImageSequence" not in back
    assert back.LossyImageCompression == "01" and _as_list(back.LossyImageCompressionMethod) == ["ISO_10918_1"]
    assert result.lossy and result.new_sop_instance_uid is None
    assert any("kept" in n for n in result.notes)


def test_quality_option_changes_the_jpeg(made: Path) -> None:
    sizes = {}
    for q in (30, 95):
        ds = load("SC_rgb_rle.dcm", made)
        sizes[q] = transcode(ds, uids.JPEG_BASELINE, TranscodeOptions(quality=q)).ratio
    assert sizes[30] > sizes[95]


@pytest.mark.parametrize(("target", "predictor", "expected"), [
    (uids.JPEG_LOSSLESS_P14, 1, 1), (uids.JPEG_LOSSLESS_P14, 6, 6), (uids.JPEG_LOSSLESS_P14, 7, 7),
    (uids.JPEG_LOSSLESS_SV1, 6, 1),  # SV1 is predictor 1 by definition
])
def test_jpeg_lossless_predictor_is_the_one_asked_for(target: str, predictor: int, expected: int,
                                                      made: Path) -> None:
    for name in ("CT_small.dcm", "SC_rgb_small_odd.dcm"):
        ds = load(name, made)
        transcode(ds, target, TranscodeOptions(predictor=predictor))
        back = dcmread(io.BytesIO(_written(ds)))
        frame = next(generate_frames(back.PixelData, number_of_frames=1))
        assert jpeg_lossless_predictor(frame) == expected
        assert np.array_equal(pixels(back), pixels(load(name, made)))


def test_near_option_bounds_the_error(made: Path) -> None:
    before = load("CT_small.dcm", made)
    for near in (1, 5):
        ds = load("CT_small.dcm", made)
        transcode(ds, uids.JPEG_LS_NEAR_LOSSLESS, TranscodeOptions(near=near))
        diff = np.abs(pixels(_written(ds)).astype(np.int64) - before.pixel_array.astype(np.int64))
        assert 0 < int(diff.max()) <= near


@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_rle_2frame.dcm"])
def test_ratio_option_sets_the_lossy_htj2k_and_j2k_size(name: str, made: Path) -> None:
    """--ratio means the same for JPEG 2000 and HTJ2K (whose quantisation step
    is searched): the pixel data compresses at least that much (more when the
    image compresses better than that even losslessly)."""
    for target in (uids.HTJ2K, uids.J2K):
        sizes = {}
        for ratio in (5.0, 20.0):
            ds = load(name, made)
            result = transcode(ds, target, TranscodeOptions(ratio=ratio))
            assert result.ratio is not None and result.ratio >= ratio * 0.95, (target, result.ratio)
            sizes[ratio] = result.ratio
        assert sizes[20.0] >= sizes[5.0]


def test_qstep_fixes_the_htj2k_step_instead(made: Path) -> None:
    fine, coarse = load("CT_small.dcm", made), load("CT_small.dcm", made)
    r_fine = transcode(fine, uids.HTJ2K, TranscodeOptions(qstep=1e-4))
    r_coarse = transcode(coarse, uids.HTJ2K, TranscodeOptions(qstep=1e-2))
    assert r_coarse.ratio is not None and r_fine.ratio is not None and r_coarse.ratio > r_fine.ratio * 2


# -- verification and refusals ---------------------------------------------------------------

def test_lossless_verification_catches_a_codec_that_changes_pixels(monkeypatch: pytest.MonkeyPatch,
                                                                   made: Path) -> None:
    real = core._encode_frames

    def one_sample_off(arr, meta, target, pi, options):  # type: ignore[no-untyped-def]
        changed = arr.copy()
        changed.flat[0] ^= 1
        return real(changed, meta, target, pi, options)

    monkeypatch.setattr(core, "_encode_frames", one_sample_off)
    ds = load("CT_small.dcm", made)
    with pytest.raises(TranscodeError, match=r"lossless verification failed .* 1 samples differ"):
        transcode(ds, uids.JPEG_LS_LOSSLESS)
    ds = load("CT_small.dcm", made)
    assert transcode(ds, uids.JPEG_LS_LOSSLESS, TranscodeOptions(verify=False)).verified is None


def test_missing_codec_names_the_package(monkeypatch: pytest.MonkeyPatch, made: Path) -> None:
    from dataclasses import replace

    real = core.syntax_info

    def without_encoder(uid: str):  # type: ignore[no-untyped-def]
        info = real(uid)
        return replace(info, encode=(), encode_missing=("imagecodecs",)) if uid == uids.JPEGXL_LOSSLESS else info

    monkeypatch.setattr(core, "syntax_info", without_encoder)
    ds = load("SC_rgb_rle.dcm", made)
    with pytest.raises(TranscodeError,
                       match="cannot encode JPEG XL Lossless on this installation; install imagecodecs"):
        transcode(ds, uids.JPEGXL_LOSSLESS)


def test_float_pixel_data_is_only_carried_uncompressed() -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uids.ELE
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.30", "1.2.3.4"
    ds.Rows = ds.Columns = 2
    ds.FloatPixelData = np.arange(4, dtype="<f4").tobytes()
    with pytest.raises(TranscodeError, match="float pixel data cannot be encoded as RLE Lossless"):
        transcode(ds, uids.RLE)
    assert transcode(ds, uids.ILE).pixels == "none"


def test_a_data_set_without_pixels_only_changes_syntax() -> None:
    ds = load("rtplan.dcm", Path())
    result = transcode(ds, uids.J2K_LOSSLESS)
    assert result.pixels == "none" and ds.file_meta.TransferSyntaxUID == uids.J2K_LOSSLESS


def test_jpeg_xl_recompression_needs_a_jpeg_baseline_source(made: Path) -> None:
    ds = load("SC_rgb_rle.dcm", made)
    with pytest.raises(TranscodeError, match="repacks JPEG Baseline data; this object is RLE Lossless"):
        transcode(ds, uids.JPEGXL_JPEG_RECOMPRESSION)


# -- JPEG XL recompression -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_jpeg_no_color_transform.dcm",
                                  "SC_rgb_small_odd_jpeg.dcm", "examples_ybr_color.dcm"])
def test_jpeg_xl_recompression_gives_back_the_same_jpeg(name: str) -> None:
    """Baseline JPEG -> JPEG XL JPEG Recompression -> baseline JPEG: the same
    codestream bytes, frame by frame, and the same identity."""
    info = next(i for i in catalog() if i.uid == uids.JPEGXL_JPEG_RECOMPRESSION)
    if not info.can_encode:
        pytest.skip(f"no JPEG XL encoder here: {info.encode_missing}")
    original = load(name, Path())
    n = int(original.get("NumberOfFrames", 1) or 1)
    jpeg_frames = list(generate_frames(original.PixelData, number_of_frames=n))
    ds = load(name, Path())
    result = transcode(ds, uids.JPEGXL_JPEG_RECOMPRESSION)
    assert result.verified is True and not result.lossy and result.frames == n
    jxl = dcmread(io.BytesIO(_written(ds)))
    assert jxl.file_meta.TransferSyntaxUID == uids.JPEGXL_JPEG_RECOMPRESSION
    assert jxl.SOPInstanceUID == original.SOPInstanceUID
    assert jxl.PhotometricInterpretation == original.PhotometricInterpretation
    _check_encapsulation(jxl, n)

    # The JPEG XL pixels are the JPEG's (libjxl and libjpeg-turbo round and
    # upsample chroma differently: 30 dB on a 3x3 image), except for a JPEG
    # whose colour space only the DICOM header tells (RGB components without
    # an Adobe marker), which libjxl decodes as YCbCr.
    if name != "SC_jpeg_no_color_transform.dcm":
        assert psnr(original.pixel_array, jxl.pixel_array) > 30

    transcode(jxl, uids.JPEG_BASELINE)
    back = dcmread(io.BytesIO(_written(jxl)))
    assert back.file_meta.TransferSyntaxUID == uids.JPEG_BASELINE
    assert list(generate_frames(back.PixelData, number_of_frames=n)) == jpeg_frames


# -- byte order -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_small_odd.dcm", "examples_palette.dcm", "rtdose.dcm",
                                  MULTIFRAME_GREY])
def test_big_endian_round_trip(name: str, made: Path, tmp_path: Path) -> None:
    """ele -> ebe (written, read back) -> ele gives the same bytes; OW values
    other than Pixel Data (palette LUTs) are swapped too."""
    original = load(name, made)
    ds = load(name, made)
    transcode(ds, uids.EBE)
    write_file(ds, tmp_path / "be.dcm")
    be = dcmread(tmp_path / "be.dcm")
    assert be.file_meta.TransferSyntaxUID == uids.EBE
    if int(original.BitsAllocated) <= 16:  # (32-bit OW: see test_interop_codecs)
        assert np.array_equal(pixels(be), pixels(original))
    if "RedPaletteColorLookupTableData" in original:
        assert np.array_equal(np.frombuffer(be.RedPaletteColorLookupTableData, ">u2"),
                              np.frombuffer(original.RedPaletteColorLookupTableData, "<u2"))
    transcode(be, uids.ELE)
    write_file(be, tmp_path / "le.dcm")
    le = dcmread(tmp_path / "le.dcm")
    assert le.PixelData == original.PixelData
    for elem in original:
        if elem.VR in ("OW", "OB", "OF", "OD", "OL"):
            assert le[elem.tag].value == elem.value, elem.keyword


@pytest.mark.parametrize(("big", "little"), [("MR_small_bigendian.dcm", "MR_small.dcm"),
                                             ("SC_rgb_small_odd_big_endian.dcm", "SC_rgb_small_odd.dcm")])
def test_pydicom_big_endian_samples(big: str, little: str, tmp_path: Path) -> None:
    be = load(big, Path())
    assert be.file_meta.TransferSyntaxUID == uids.EBE
    transcode(be, uids.ELE)
    write_file(be, tmp_path / "le.dcm")
    le = dcmread(tmp_path / "le.dcm")
    assert np.array_equal(le.pixel_array, load(little, Path()).pixel_array)
    transcode(le, uids.EBE)
    write_file(le, tmp_path / "be.dcm")
    again = dcmread(tmp_path / "be.dcm")
    assert again.PixelData == load(big, Path()).PixelData


# -- character sets -------------------------------------------------------------------------

def _texts(ds: Dataset) -> dict[str, str]:
    ds.decode()
    return {f"{elem.tag}@{i}": str(elem.value) for i, elem in enumerate(ds.iterall())
            if elem.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "UC")}


@pytest.mark.parametrize(("name", "sample_text"), [
    ("chrH31.dcm", "山田^太郎"),  # ISO 2022 IR 87 (JIS X 0208)
    ("chrH32.dcm", "ﾔﾏﾀﾞ^ﾀﾛｳ"),  # ISO 2022 IR 13 + IR 87
    ("chrI2.dcm", "홍^길동"),  # ISO 2022 IR 149 (Korean)
    ("chrX2.dcm", "王^小东"),  # GB18030
    ("chrRuss.dcm", "Люкceмбypг"),  # ISO_IR 144 (Cyrillic)
    ("chrGerm.dcm", "Äneas^Rüdiger"),  # ISO_IR 100 (Latin-1)
    ("chrSQEncoding1.dcm", "山田^太郎"),  # character sets inside a sequence item
])
def test_utf8_conversion(name: str, sample_text: str) -> None:
    path = Path(get_charset_files(name)[0])
    before = _texts(dcmread(path))
    assert any(sample_text in v for v in before.values())
    ds = dcmread(path)
    result = transcode(ds, uids.ELE, TranscodeOptions(utf8=True))
    assert "text converted to UTF-8" in result.notes
    raw = _written(ds)
    assert sample_text.encode("utf-8") in raw
    back = dcmread(io.BytesIO(raw))
    assert back.SpecificCharacterSet == "ISO_IR 192"
    assert not [item for elem in back.iterall() if elem.VR == "SQ" for item in elem.value
                if "SpecificCharacterSet" in item]
    assert _texts(back) == before


def test_utf8_file_is_left_alone() -> None:
    ds = dcmread(get_charset_files("chrX1.dcm")[0])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert transcode(ds, uids.ELE, TranscodeOptions(utf8=True)).notes == []


def test_masked_compares_by_stored_bits() -> None:
    """The helper the tests above compare with: signed values by their bit
    pattern in Bits Stored, garbage above High Bit ignored."""
    a = np.array([-1, 5, 0x7FF], dtype=np.int16)
    assert masked(a, 12).tolist() == [0xFFF, 5, 0x7FF]
    assert masked(np.array([0xF123], dtype=np.uint16), 12).tolist() == [0x123]
    assert masked(a, 16) is a


LOSSY_ENCODABLE = [i.uid for i in ENCODABLE if not i.lossless]


def _label_image(kind: str) -> Dataset:
    """Pixels that are indices or labels: pydicom's PALETTE COLOR sample, its
    1-bit Segmentation sample, and the palette image's indices relabelled
    as an 8-bit Segmentation."""
    if kind == "1-bit":
        return dcmread(get_testdata_file("liver_1frame.dcm"))
    ds = dcmread(get_testdata_file("examples_palette.dcm"))
    if kind == "segmentation":
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
        ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


@pytest.mark.parametrize("target", LOSSY_ENCODABLE, ids=uids.uid_name)
@pytest.mark.parametrize(("kind", "what"), [
    ("palette", r"PALETTE COLOR pixel data \(indices into a colour table\)"),
    ("segmentation", r"Segmentation pixel data \(segment labels\)"),
    ("1-bit", r"1-bit pixel data \(a bitmap\)")])
def test_indices_and_labels_refuse_every_lossy_target(kind: str, what: str, target: str) -> None:
    """A lossy codec moves values; for indices or labels that means other
    colours or other segments (PS3.5 Table 8.2.4-1: PALETTE COLOR with
    lossless syntaxes only). HTJ2K lossy used to encode the palette image."""
    ds = _label_image(kind)
    with pytest.raises(TranscodeError, match=rf"^{what} cannot be compressed lossily as "
                                             rf"{re.escape(uids.uid_name(target))}; use "):
        transcode(ds, target)


@pytest.mark.parametrize("target", [uids.JPEG_LS_LOSSLESS, uids.HTJ2K_LOSSLESS, uids.RLE])
def test_palette_colour_still_goes_losslessly(target: str) -> None:
    ds = _label_image("palette")
    before = ds.pixel_array.copy()
    result = transcode(ds, target)
    assert result.verified and not result.lossy
    assert ds.PhotometricInterpretation == "PALETTE COLOR"
    assert np.array_equal(dcmread(io.BytesIO(_written(ds))).pixel_array, before)
