"""Images for the transcoding tests (test_transcode.py, test_interop_codecs.py):
pydicom's bundled samples plus one made here, and pixel comparisons.

pydicom bundles no multi-frame greyscale image of 8 to 16 bits (emri_small
is in the separately downloaded pydicom-data), so ``multiframe_grey`` makes
one from MR_small: three different frames, 12 bits stored in 16, unsigned,
with garbage above High Bit in part of one frame (as overlays in unused bits
left it in old files), which every lossless path has to ignore.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

MULTIFRAME_GREY = "multiframe_grey_12bit"
#: Multi-frame Grayscale Word Secondary Capture Image Storage
MF_GREY_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"


def multiframe_grey_bytes() -> bytes:
    ds = dcmread(get_testdata_file("MR_small.dcm"))
    a = ds.pixel_array.astype(np.uint16)  # 127..2145: fits in 12 bits
    frames = np.stack([a, a.T.copy(), a[::-1] ^ 0x0A5]) & 0x0FFF
    frames[1, :8, :] |= 0xF000  # not part of the pixel values (above High Bit)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MF_GREY_WORD_SC
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.NumberOfFrames = 3
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            del ds[keyword]
    ds.PixelData = frames.tobytes()
    ds["PixelData"].VR = "OW"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def sample_path(name: str, folder: Path) -> Path:
    """A pydicom sample by file name, or the multi-frame grey image written into ``folder``."""
    if name == MULTIFRAME_GREY:
        path = folder / f"{MULTIFRAME_GREY}.dcm"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(multiframe_grey_bytes())
        return path
    found = get_testdata_file(name)
    assert found, f"pydicom sample {name} is not bundled"
    return Path(found)


def load(name: str, folder: Path) -> Dataset:
    return dcmread(sample_path(name, folder))


def masked(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """The sample values without the bits above Bits Stored, as unsigned (so
    signed data compares by its two's complement pattern)."""
    if arr.dtype.kind not in "ui" or bits_stored >= arr.dtype.itemsize * 8:
        return arr
    unsigned = arr.view(arr.dtype.str.replace("i", "u"))
    return np.bitwise_and(unsigned, np.array((1 << bits_stored) - 1, dtype=unsigned.dtype))


def pixels(ds_or_path: Dataset | Path | bytes) -> np.ndarray:
    """Decoded pixels (pydicom's defaults: YCbCr becomes RGB), masked to Bits Stored."""
    if isinstance(ds_or_path, bytes):
        ds = dcmread(io.BytesIO(ds_or_path))
    elif isinstance(ds_or_path, Path):
        ds = dcmread(ds_or_path)
    else:
        ds = ds_or_path
    return masked(ds.pixel_array, int(ds.BitsStored))


def psnr(reference: np.ndarray, other: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, the peak being the reference's range."""
    a = reference.astype(np.float64)
    b = other.astype(np.float64)
    rmse = float(np.sqrt(np.mean((a - b) ** 2)))
    peak = float(a.max() - a.min()) or 1.0
    return float("inf") if rmse == 0 else 20 * np.log10(peak / rmse)


def jpeg_lossless_predictor(codestream: bytes) -> int:
    """The selection value (Ss: the predictor of a lossless JPEG) of the first scan."""
    sos = codestream.index(b"\xff\xda")
    components = codestream[sos + 4]
    return codestream[sos + 5 + 2 * components]
