"""dcmcli's codecs against real peers, and dcmconv on the command line.

* What ``dcmcli dcmconv`` compresses, DCMTK (dcmdjpeg, dcmdjpls, dcmdrle)
  and GDCM (gdcmconv --raw) decode to the original pixels.
* What DCMTK's encoders (dcmcjpeg, dcmcjpls, dcmcrle) write, ``dcmcli
  dcmconv +te`` decodes to the pixels DCMTK's own decoders give.
* Big endian output is byte for byte DCMTK's.
* dcmconv's command-line behaviour: trees, bad input, refusals, --no-meta,
  unwritable output, exit codes.

DCMTK is always run by absolute path (pynetdicom installs Python scripts with
the same names), GDCM likewise. Every dcmcli run converts all images of a
case in one process, so the module runs in seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from dcmcli import uids
from dcmcli.transcode.core import transcode
from dcmcli.transcode.files import write_file
from codec_samples import MULTIFRAME_GREY, jpeg_lossless_predictor, pixels, psnr, sample_path
from conftest import dcmtk, json_lines, peer_tool, run_dcmcli

pytestmark = [pytest.mark.interop, pytest.mark.filterwarnings("ignore:Invalid value for VR UI")]

GDCM_BIN = Path(os.environ.get("GDCM_BIN", "/usr/bin"))

#: 16-bit signed grey, 8-bit RGB, 3x3 RGB, 2-frame RGB, 3-frame 12-bit grey.
IMAGES = ["CT_small.dcm", "SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_rle_2frame.dcm", MULTIFRAME_GREY]
EIGHT_BIT = ["SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_rle_2frame.dcm", "JPEGLSNearLossless_08.dcm"]

#: dcmconv arguments -> DCMTK's decoder for the result
DCMTK_DECODES = {
    ("jpeg-lossless",): "dcmdjpeg",
    ("jpeg-lossless-p14", "--predictor", "6"): "dcmdjpeg",
    ("jpeg-ls-lossless",): "dcmdjpls",
    ("rle",): "dcmdrle",
}
GDCM_DECODES = [*DCMTK_DECODES, ("j2k-lossless",), ("htj2k-lossless",), ("htj2k-lossless-rpcl",)]


def gdcm(tool: str) -> str:
    return peer_tool(GDCM_BIN, tool, "GDCM", "libgdcm-tools")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          check=False)


def _ids(args: tuple[str, ...]) -> str:
    return "-".join(a.lstrip("-") for a in args)


# -- inputs and dcmcli's encodings, made once per module ---------------------------------

@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("codecs")


@pytest.fixture(scope="module")
def uncompressed(work: Path) -> dict[str, Path]:
    """Explicit VR Little Endian copies of the images (DCMTK's encoders want
    uncompressed input), written by the core in-process."""
    out = {}
    for name in dict.fromkeys(IMAGES + EIGHT_BIT):
        ds = dcmread(sample_path(name, work / "made"))
        transcode(ds, uids.ELE)
        path = work / "uncompressed" / name
        write_file(ds, path)
        out[name] = path
    return out


@pytest.fixture(scope="module")
def reference(uncompressed: dict[str, Path]) -> dict[str, np.ndarray]:
    return {name: pixels(path) for name, path in uncompressed.items()}


@pytest.fixture(scope="module")
def dcmcli_encoded(work: Path, uncompressed: dict[str, Path]) -> Callable[..., dict[str, Path]]:
    """``encoded(*args, names=IMAGES)``: the images converted by one ``dcmcli
    dcmconv -t ARGS...`` run, by name (cached)."""
    cache: dict[tuple[str, ...], dict[str, Path]] = {}

    def encoded(*args: str, names: tuple[str, ...] = tuple(IMAGES)) -> dict[str, Path]:
        key = (*args, *names)
        if key not in cache:
            outdir = work / f"dcmcli-{_ids(args)}-{len(cache)}"
            r = run_dcmcli("dcmconv", "--json", "-t", *args, *(str(uncompressed[n]) for n in names), str(outdir))
            assert r.returncode == 0, r.stderr
            results = [e for e in json_lines(r.stdout) if e["event"] == "result"]
            assert sorted(Path(str(e["path"])).name for e in results) == sorted(names)
            assert all(e["outcome"] == "converted" for e in results), results
            cache[key] = {n: outdir / n for n in names}
        return cache[key]

    return encoded


# -- dcmcli encodes, the peers decode ------------------------------------------------------

@pytest.mark.parametrize("args", list(DCMTK_DECODES), ids=_ids)
def test_dcmtk_decodes_dcmcli_lossless_output(args: tuple[str, ...], dcmcli_encoded, reference, work: Path) -> None:
    decoder = dcmtk(DCMTK_DECODES[args])
    target = uids.SHORT_NAMES[args[0]]
    for name, path in dcmcli_encoded(*args).items():
        encoded = dcmread(path)
        assert encoded.file_meta.TransferSyntaxUID == target
        if "--predictor" in args:
            frame = next(generate_frames(encoded.PixelData, number_of_frames=1))
            assert jpeg_lossless_predictor(frame) == int(args[args.index("--predictor") + 1])
        out = work / f"dcmtk-{_ids(args)}-{name}"
        r = _run(decoder, str(path), str(out))
        assert r.returncode == 0, f"{decoder} {name}: {r.stderr}"
        decoded = dcmread(out)
        assert decoded.file_meta.TransferSyntaxUID == uids.ELE
        assert np.array_equal(pixels(decoded), reference[name]), f"{name}: DCMTK decodes other pixels"
        if int(decoded.SamplesPerPixel) == 3:
            assert decoded.PhotometricInterpretation == "RGB"


def _gdcm_knows(uid: str, work: Path) -> bool:
    """Whether GDCM reads files in ``uid`` at all: a known-good JPEG 2000
    file relabelled (gdcminfo parses, it does not decode)."""
    probe = work / f"probe-{uid}.dcm"
    ds = dcmread(sample_path("MR_small_jp2klossless.dcm", work))
    ds.file_meta.TransferSyntaxUID = uid
    ds.save_as(probe, enforce_file_format=True)
    return _run(gdcm("gdcminfo"), str(probe)).returncode == 0


@pytest.mark.parametrize("args", GDCM_DECODES, ids=_ids)
def test_gdcm_decodes_dcmcli_lossless_output(args: tuple[str, ...], dcmcli_encoded, reference, work: Path) -> None:
    gdcmconv = gdcm("gdcmconv")
    target = uids.SHORT_NAMES[args[0]]
    if target in (uids.HTJ2K_LOSSLESS, uids.HTJ2K_LOSSLESS_RPCL) and not _gdcm_knows(target, work):
        found = re.search(r"gdcm \S+", _run(gdcmconv, "--version").stdout)
        version = found.group(0) if found else "this GDCM"
        pytest.skip(f"{version} does not know the HTJ2K transfer syntaxes (GDCM gained HTJ2K decoding "
                    "after 3.0.21, malaterre/GDCM#187)")
    for name, path in dcmcli_encoded(*args).items():
        out = work / f"gdcm-{_ids(args)}-{name}"
        r = _run(gdcmconv, "--raw", str(path), str(out))
        assert r.returncode == 0, f"gdcmconv --raw {name}: {r.stdout}{r.stderr}"
        decoded = dcmread(out)
        assert decoded.file_meta.TransferSyntaxUID in (uids.ELE, uids.ILE)
        assert np.array_equal(pixels(decoded), reference[name]), f"{name}: GDCM decodes other pixels"


def test_dcmtk_decodes_dcmcli_jpeg_baseline(dcmcli_encoded, reference, work: Path) -> None:
    """Lossy JPEG baseline (8-bit grey and colour, 3x3, two frames): DCMTK
    decodes it, close to the original and to pydicom's decoding of the same
    file, and it is on record as lossy in the file and after decoding."""
    dcmdjpeg, dcmdump = dcmtk("dcmdjpeg"), dcmtk("dcmdump")
    for name, path in dcmcli_encoded("jpeg-baseline", names=tuple(EIGHT_BIT)).items():
        dump = _run(dcmdump, str(path)).stdout
        assert re.search(r"\(0002,0010\) UI =JPEGBaseline", dump), name
        assert re.search(r"\(0028,2110\) CS \[01\]", dump), name
        assert re.search(r"\(0028,2114\) CS \[ISO_10918_1\]", dump), name
        colour = int(dcmread(path, stop_before_pixels=True).SamplesPerPixel) == 3
        if colour:
            assert re.search(r"\(0028,0004\) CS \[YBR_FULL_422\]", dump), name
        out = work / f"dcmtk-baseline-{name}"
        r = _run(dcmdjpeg, str(path), str(out))
        assert r.returncode == 0, f"dcmdjpeg {name}: {r.stderr}"
        decoded = dcmread(out)
        assert decoded.LossyImageCompression == "01"
        assert decoded.PhotometricInterpretation == ("RGB" if colour else "MONOCHROME2")
        theirs = pixels(decoded)
        assert psnr(reference[name], theirs) > 30, name
        ours = pixels(path)  # pydicom (libjpeg-turbo) on the same JPEG: IDCT rounding only
        assert int(np.abs(theirs.astype(int) - ours.astype(int)).max()) <= 3, name


# -- DCMTK encodes, dcmcli decodes ---------------------------------------------------------

#: DCMTK encoder arguments -> (its decoder, lossless, images it takes)
DCMTK_ENCODES: dict[tuple[str, ...], tuple[str, bool, list[str]]] = {
    ("dcmcjpeg",): ("dcmdjpeg", True, IMAGES),  # lossless SV1
    ("dcmcjpeg", "+el"): ("dcmdjpeg", True, IMAGES),  # lossless process 14, selection value 6
    ("dcmcjpeg", "+eb"): ("dcmdjpeg", False, IMAGES),  # baseline (16-bit: DCMTK rescales to 8 bits)
    ("dcmcjpeg", "+ee"): ("dcmdjpeg", False, ["CT_small.dcm", MULTIFRAME_GREY]),  # extended, 12 bits
    ("dcmcjpls",): ("dcmdjpls", True, IMAGES),  # lossless, line-interleaved colour
    ("dcmcjpls", "+is"): ("dcmdjpls", True, ["SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm"]),  # sample-interleaved
    ("dcmcjpls", "+in"): ("dcmdjpls", True, ["SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm"]),  # not interleaved
    # near-lossless: DCMTK refuses signed data, and cannot read back its own 3x3 colour image
    ("dcmcjpls", "+en"): ("dcmdjpls", False, ["SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm", MULTIFRAME_GREY]),
    ("dcmcrle",): ("dcmdrle", True, IMAGES),
}


@pytest.fixture(scope="module")
def dcmtk_encoded(work: Path, uncompressed: dict[str, Path]) -> dict[tuple[str, ...], dict[str, tuple[Path, Path]]]:
    """For each encoder and image: (DCMTK's decoding, dcmcli's decoding) of
    DCMTK's file; dcmcli decodes all of them in one run."""
    encoded_dir = work / "dcmtk-encoded"
    pairs: dict[tuple[str, ...], dict[str, tuple[Path, Path]]] = {}
    for args, (decoder, _, names) in DCMTK_ENCODES.items():
        for name in names:
            enc = encoded_dir / _ids(args) / name
            enc.parent.mkdir(parents=True, exist_ok=True)
            r = _run(dcmtk(args[0]), *args[1:], str(uncompressed[name]), str(enc))
            assert r.returncode == 0, f"{' '.join(args)} {name}: {r.stderr}"
            theirs = work / "dcmtk-decoded" / _ids(args) / name
            theirs.parent.mkdir(parents=True, exist_ok=True)
            r = _run(dcmtk(decoder), str(enc), str(theirs))
            assert r.returncode == 0, f"{decoder} {name}: {r.stderr}"
            pairs.setdefault(args, {})[name] = (theirs, work / "dcmcli-decoded" / _ids(args) / name)
    r = run_dcmcli("dcmconv", "--json", "+te", str(encoded_dir), str(work / "dcmcli-decoded"))
    assert r.returncode == 0, r.stderr
    summary = [e for e in json_lines(r.stdout) if e["event"] == "summary"][0]
    assert summary["converted"] == sum(len(v) for v in pairs.values()) and summary["failed"] == 0
    return pairs


@pytest.mark.parametrize("args", list(DCMTK_ENCODES), ids=_ids)
def test_dcmcli_decodes_dcmtk_output(args: tuple[str, ...], dcmtk_encoded, reference) -> None:
    _, lossless, _ = DCMTK_ENCODES[args]
    for name, (theirs_path, ours_path) in dcmtk_encoded[args].items():
        theirs, ours = dcmread(theirs_path), dcmread(ours_path)
        assert ours.file_meta.TransferSyntaxUID == uids.ELE
        for keyword in ("PhotometricInterpretation", "BitsStored", "PixelRepresentation", "SamplesPerPixel"):
            assert ours[keyword].value == theirs[keyword].value, f"{name}: {keyword}"
        a, b = pixels(theirs), pixels(ours)
        assert a.shape == b.shape, name
        if lossless:
            assert np.array_equal(a, b), f"{name}: dcmcli and DCMTK decode {args} differently"
            assert np.array_equal(b, reference[name]), f"{name}: not the original pixels"
        else:  # the same JPEG through two IDCTs (libjpeg-turbo, IJG 6b) and upsamplers
            assert int(np.abs(a.astype(int) - b.astype(int)).max()) <= 3, name
            assert ours.LossyImageCompression == "01"


def test_big_endian_output_is_dcmtks(work: Path, uncompressed: dict[str, Path]) -> None:
    """+tb writes the bytes DCMTK's dcmconv +tb writes: 16-bit samples, 8-bit
    samples in OW (swapped in words), 32-bit samples and palette LUTs."""
    names = ["CT_small.dcm", "SC_rgb_small_odd.dcm", "rtdose.dcm", "examples_palette.dcm"]
    sources = {n: sample_path(n, work) for n in names}
    outdir = work / "big-endian"
    r = run_dcmcli("dcmconv", "+tb", *(str(p) for p in sources.values()), str(outdir))
    assert r.returncode == 0, r.stderr
    for name, source in sources.items():
        theirs = work / f"dcmtk-be-{name}"
        assert _run(dcmtk("dcmconv"), "+tb", str(source), str(theirs)).returncode == 0
        ours, dk = dcmread(outdir / name), dcmread(theirs)
        assert ours.file_meta.TransferSyntaxUID == dk.file_meta.TransferSyntaxUID == uids.EBE
        for elem in dk:
            if elem.VR in ("OW", "OB"):
                assert ours[elem.tag].value == elem.value, f"{name}: {elem.keyword}"


# -- dcmconv on the command line -----------------------------------------------------------

def _copy(src: Path, dest: Path) -> Path:
    """A copy with an instance UID of its own."""
    ds = dcmread(src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dest.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dest, enforce_file_format=True)
    return dest


def test_tree_is_mirrored_with_json_results(tmp_path: Path, work: Path) -> None:
    src = tmp_path / "in"
    files = {
        "ct.dcm": _copy(sample_path("CT_small.dcm", work), src / "ct.dcm"),
        "a/rgb.dcm": _copy(sample_path("SC_rgb_rle.dcm", work), src / "a" / "rgb.dcm"),
        "a/b/mf.dcm": _copy(sample_path(MULTIFRAME_GREY, work / "made"), src / "a" / "b" / "mf.dcm"),
    }
    (src / "a" / "README.txt").write_text("not DICOM\n")
    out = tmp_path / "out"
    r = run_dcmcli("dcmconv", "--json", "-j", "2", "-t", "jpeg-ls-lossless", str(src), str(out))
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    assert all(e["command"] == "dcmconv" for e in events)
    results = {Path(str(e["path"])).relative_to(src).as_posix(): e for e in events if e["event"] == "result"}
    assert sorted(results) == sorted(files)
    for rel, source in files.items():
        e = results[rel]
        assert e["outcome"] == "converted" and e["exit_code"] == 0
        assert e["output"] == str(out / rel)
        assert e["transfer_syntax"] == uids.JPEG_LS_LOSSLESS and e["verified"] is True and e["lossy"] is False
        assert float(e["ratio"]) > 1 and int(e["bytes"]) == (out / rel).stat().st_size
        converted = dcmread(out / rel)
        assert converted.file_meta.TransferSyntaxUID == uids.JPEG_LS_LOSSLESS
        assert converted.SOPInstanceUID == dcmread(source, stop_before_pixels=True).SOPInstanceUID
        assert np.array_equal(pixels(converted), pixels(source))
    skipped = [e for e in events if e["event"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["path"].endswith("README.txt")
    assert "not a DICOM file" in skipped[0]["reason"]
    summary = [e for e in events if e["event"] == "summary"]
    assert len(summary) == 1
    assert (summary[0]["converted"], summary[0]["failed"], summary[0]["skipped"], summary[0]["exit_code"]) == \
        (3, 0, 1, 0)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(files)


def test_bad_files_among_good_ones_exit_22(tmp_path: Path, work: Path) -> None:
    good1 = _copy(sample_path("CT_small.dcm", work), tmp_path / "in" / "good1.dcm")
    good2 = _copy(sample_path("SC_rgb_small_odd.dcm", work), tmp_path / "in" / "good2.dcm")
    junk = tmp_path / "in" / "junk.dcm"
    junk.write_text("hello\n" * 100)
    cut = tmp_path / "in" / "cut.dcm"
    cut.write_bytes(good1.read_bytes()[:-5000])  # ends inside Pixel Data
    out = tmp_path / "out"
    r = run_dcmcli("dcmconv", "--json", "-t", "rle", str(good1), str(junk), str(cut), str(good2), str(out))
    assert r.returncode == 22, r.stderr
    assert "Traceback" not in r.stderr
    events = json_lines(r.stdout)
    assert sorted(Path(str(e["path"])).name for e in events
                  if e["event"] == "result" and e["outcome"] == "converted") == ["good1.dcm", "good2.dcm"]
    reasons = {Path(str(e["path"])).name: str(e["reason"]) for e in events if e["event"] == "skipped"}
    assert "not a DICOM file" in reasons["junk.dcm"]
    assert "truncated" in reasons["cut.dcm"]
    for bad in ("junk.dcm", "cut.dcm"):  # one clear line each for people
        assert len([line for line in r.stderr.splitlines() if bad in line]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["good1.dcm", "good2.dcm"]
    assert dcmread(out / "good1.dcm").file_meta.TransferSyntaxUID == uids.RLE


def test_unsupported_target_exits_24(tmp_path: Path, work: Path) -> None:
    out = tmp_path / "ct.dcm"
    r = run_dcmcli("dcmconv", "-t", "jpeg-baseline", str(sample_path("CT_small.dcm", work)), str(out))
    assert r.returncode == 24
    assert "Traceback" not in r.stderr
    assert re.search(r"16-bit image cannot be encoded as JPEG Baseline .*8 bits only", r.stdout + r.stderr)
    assert not out.exists() and not list(tmp_path.iterdir())
    r = run_dcmcli("dcmconv", "--json", "-t", "jpeg-baseline", str(sample_path("CT_small.dcm", work)), str(out))
    result = [e for e in json_lines(r.stdout) if e["event"] == "result"][0]
    assert (result["outcome"], result["exit_code"]) == ("failed", 24)
    assert "16-bit" in result["message"] and "8 bits" in result["message"]


@pytest.mark.parametrize("target", ["htj2k", "j2k", "jpeg-ls-near-lossless", "jpeg-baseline", "jpegxl"])
def test_palette_colour_refuses_lossy_targets_with_exit_24(target: str, tmp_path: Path, work: Path) -> None:
    """PALETTE COLOR pixels are indices: every lossy target refuses them with
    the same one-line reason (HTJ2K lossy used to encode them, wrongly)."""
    source = sample_path("examples_palette.dcm", work)
    out = tmp_path / "palette.dcm"
    r = run_dcmcli("dcmconv", "-t", target, str(source), str(out))
    assert r.returncode == 24, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    name = uids.uid_name(uids.SHORT_NAMES[target])
    assert f"dcmconv: ERROR: {source}: PALETTE COLOR pixel data (indices into a colour table) cannot be " \
           f"compressed lossily as {name}; use a lossless syntax (jpeg-ls-lossless, j2k-lossless, rle) or an " \
           "uncompressed one" in r.stderr.splitlines()
    assert r.stderr.splitlines()[-1] == "dcmconv: error: 1 of 1 files could not be converted"
    assert not out.exists() and not list(tmp_path.iterdir())


def test_12_bit_jpeg_pylibjpeg_refuses_decodes_as_dcmtk_does(tmp_path: Path, work: Path) -> None:
    """pydicom's JPEG-lossy.dcm (12-bit JPEG Extended) makes pylibjpeg's
    libjpeg fail ("scan start must be zero"); DCMTK and GDCM decode it, and
    so does the next installed decoder (libjpeg-turbo in imagecodecs)."""
    source = sample_path("JPEG-lossy.dcm", work)
    out = tmp_path / "out.dcm"
    r = run_dcmcli("dcmconv", "-t", "ele", str(source), str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    by_dcmtk = tmp_path / "dcmdjpeg.dcm"
    d = _run(dcmtk("dcmdjpeg"), str(source), str(by_dcmtk))
    assert d.returncode == 0, d.stderr
    ours, theirs = dcmread(out), dcmread(by_dcmtk)
    assert (ours.file_meta.TransferSyntaxUID, ours.BitsStored, ours.LossyImageCompression) == (uids.ELE, 12, "01")
    diff = np.abs(ours.pixel_array.astype(np.int32) - theirs.pixel_array.astype(np.int32))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= diff.size // 100  # IDCTs may round differently


def test_undecodable_pixel_data_fails_in_one_plain_line(tmp_path: Path, work: Path) -> None:
    """When every installed decoder fails: exit 24, one line naming them, none
    of their own messages (those are for -d)."""
    ds = dcmread(sample_path("JPGExtended.dcm", work))
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc9" + bytes(range(256)) * 4 + b"\xff\xd9"])
    bad = tmp_path / "in" / "bad.dcm"
    bad.parent.mkdir()
    ds.save_as(bad)
    out = tmp_path / "out.dcm"
    r = run_dcmcli("dcmconv", "-t", "ele", str(bad), str(out))
    assert r.returncode == 24, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    # the decoders tried: pylibjpeg, imagecodecs, and Pillow where it is installed (a test extra pulls it in)
    lines[0] = lines[0].replace("imagecodecs and pillow failed", "imagecodecs failed")
    assert lines == [
        f"dcmconv: ERROR: {bad}: cannot decode the JPEG Extended (Process 2 and 4) pixel data: pylibjpeg and "
        "imagecodecs failed (damaged data, or a variant of the syntax they do not support); -d shows their "
        "messages",
        "dcmconv: error: 1 of 1 files could not be converted"]
    r = run_dcmcli("dcmconv", "-d", "-t", "ele", str(bad), str(out))
    assert r.returncode == 24 and "Traceback" not in r.stderr
    assert "DEBUG: decoding JPEG Extended (Process 2 and 4) with pylibjpeg failed: " in r.stderr
    assert not out.exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_output_files_follow_the_umask(umask: int, mode: int, tmp_path: Path, work: Path) -> None:
    """dcmconv writes through a temporary file, whose 0600 used to stay on the
    output; it gets 0666 less the umask, like any other writer's."""
    out = tmp_path / "out"
    sources = [str(sample_path(n, work)) for n in ("CT_small.dcm", "SC_rgb_small_odd.dcm")]
    r = run_dcmcli("dcmconv", "-t", "rle", *sources, str(out), preexec_fn=lambda: os.umask(umask))
    assert r.returncode == 0, r.stderr
    written = sorted(out.iterdir())
    assert [p.name for p in written] == ["CT_small.dcm", "SC_rgb_small_odd.dcm"]
    assert [oct(p.stat().st_mode & 0o777) for p in written] == [oct(mode)] * 2


@pytest.mark.parametrize("syntax", ["ele", "rle"])
def test_dcmconv_drops_the_source_ae_title(syntax: str, tmp_path: Path, work: Path) -> None:
    """(0002,0016) names the AE that wrote the file (PS3.10); CT_small.dcm's
    says CLUNIE1. dcmconv, which writes its own implementation UID and is no
    AE, leaves it out, as dcmdump shows."""
    source = sample_path("CT_small.dcm", work)
    assert "(0002,0016) AE [CLUNIE1]" in _run(dcmtk("dcmdump"), "-M", str(source)).stdout
    out = tmp_path / "out.dcm"
    r = run_dcmcli("dcmconv", "-t", syntax, str(source), str(out))
    assert r.returncode == 0, r.stderr
    dump = _run(dcmtk("dcmdump"), "-M", str(out))
    assert dump.returncode == 0, dump.stderr
    meta = [line for line in dump.stdout.splitlines() if line.startswith("(0002,")]
    assert not [line for line in meta if line.startswith("(0002,0016)")], meta
    assert any(line.startswith("(0002,0012) UI [2.25.232300382606218194586959400769231542194]") for line in meta)


def test_output_replacing_input_needs_overwrite_input(tmp_path: Path, work: Path) -> None:
    path = _copy(sample_path("CT_small.dcm", work), tmp_path / "ct.dcm")
    original = path.read_bytes()
    r = run_dcmcli("dcmconv", "-t", "rle", str(path), str(path))
    assert r.returncode == 1
    assert "--overwrite-input" in r.stderr.strip().splitlines()[-1]
    assert path.read_bytes() == original
    r = run_dcmcli("dcmconv", "-t", "rle", "--overwrite-input", str(path), str(path))
    assert r.returncode == 0, r.stderr
    converted = dcmread(path)
    assert converted.file_meta.TransferSyntaxUID == uids.RLE
    assert np.array_equal(converted.pixel_array, dcmread(sample_path("CT_small.dcm", work)).pixel_array)
    assert not [p for p in tmp_path.iterdir() if p.name != "ct.dcm"]  # no temporary left behind


@pytest.mark.parametrize(("syntax", "dcmdump_args"), [("ele", ("-f",)), ("ile", ("-f", "-ti"))])
def test_no_meta_writes_a_bare_data_set(syntax: str, dcmdump_args: tuple[str, ...], tmp_path: Path,
                                        work: Path) -> None:
    dcmdump = dcmtk("dcmdump")
    source = sample_path("CT_small.dcm", work)
    out = tmp_path / "bare.dcm"
    r = run_dcmcli("dcmconv", "--no-meta", "-t", syntax, str(source), str(out))
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[128:132] != b"DICM" and data[:2] == b"\x08\x00"  # starts with the first group 0008 element
    dump = _run(dcmdump, *dcmdump_args, str(out))
    assert dump.returncode == 0, dump.stderr
    assert "# Dicom-Data-Set" in dump.stdout and "(0002," not in dump.stdout
    uid = str(dcmread(source, stop_before_pixels=True).SOPInstanceUID)
    assert f"(0008,0018) UI [{uid}]" in dump.stdout
    assert _run(dcmdump, "+fo", str(out)).returncode != 0  # not a Part 10 file
    bare = dcmread(out, force=True)
    bare.file_meta = FileMetaDataset()
    bare.file_meta.TransferSyntaxUID = uids.SHORT_NAMES[syntax]
    assert np.array_equal(bare.pixel_array, dcmread(source).pixel_array)


def test_unwritable_output_exits_40(tmp_path: Path, work: Path) -> None:
    """The output directory lies under a regular file, which fails for root too."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    sources = [str(sample_path(n, work)) for n in ("CT_small.dcm", "SC_rgb_small_odd.dcm")]
    r = run_dcmcli("dcmconv", "--json", "-t", "rle", *sources, str(blocker / "sub"))
    assert r.returncode == 40
    results = [e for e in json_lines(r.stdout) if e["event"] == "result"]
    assert [e["exit_code"] for e in results] == [40, 40]
    assert all("cannot write" in str(e["message"]) for e in results)
    r = run_dcmcli("dcmconv", "-t", "rle", sources[0], str(blocker / "sub" / "ct.dcm"))
    assert r.returncode == 40 and "Traceback" not in r.stderr
    assert blocker.read_text() == ""
