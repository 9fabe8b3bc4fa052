"""Transcoding used by the network core.

For now this is decompression (pydicom with the pylibjpeg plugins), which is
what a sender needs when a peer refuses a file's compressed syntax. The full
transcoding core (every syntax in and out, dcmconv) grows here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dcmcli.net.uids import is_lossy

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


class TranscodeError(Exception):
    """The object cannot be transcoded as asked; the message says why."""


def load_uncompressed(path: Path) -> Dataset:
    """Read ``path`` and return it as an uncompressed (Explicit VR Little Endian) data set.

    Decompression never adds loss: a lossy-compressed file stays marked as
    lossy (Lossy Image Compression is kept). Colour data decoded from YCbCr
    is converted to RGB and Photometric Interpretation updated.
    """
    from pydicom import dcmread
    from pydicom.uid import UID, ExplicitVRLittleEndian

    ds = dcmread(path)
    ts = UID(ds.file_meta.TransferSyntaxUID)
    if ts.is_compressed:
        if "PixelData" not in ds:
            raise TranscodeError(f"{ts.name} file without Pixel Data cannot be decompressed")
        try:
            ds.decompress(generate_instance_uid=False)  # same image, same instance
        except Exception as exc:  # the plugins raise a variety of types
            raise TranscodeError(f"cannot decompress {ts.name}: {exc}") from None
        if is_lossy(ts) or str(ds.get("LossyImageCompression", "")) == "01":
            ds.LossyImageCompression = "01"
    else:
        # The data set is already uncompressed; it is re-encoded on sending.
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if ts.is_deflated else ts
    return ds


def encode_dataset(ds: Dataset, *, implicit: bool) -> bytes | None:
    """The data set (no file meta) encoded little endian, implicit or explicit VR."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = implicit
    try:
        write_dataset(buf, ds)
    except Exception:  # pydicom cannot encode this data set this way
        return None
    return buf.getvalue()
