"""The transcoding core: every transfer syntax in and out.

* ``catalog``: what each syntax is and what this installation can do with it;
* ``plugins``: imagecodecs as a pydicom encoder and decoder plugin (JPEG,
  HTJ2K, JPEG XL);
* ``core``: ``transcode(dataset, target, options)``;
* ``files``: reading and writing files, and converting many in parallel.

Nothing here imports pydicom until it is used, so commands that only stream
files (storescu, storescp) start fast.
"""

from __future__ import annotations

from dcmcli.transcode.core import TranscodeError, TranscodeOptions, TranscodeResult, transcode
from dcmcli.transcode.files import encode_dataset, load_uncompressed

__all__ = ["TranscodeError", "TranscodeOptions", "TranscodeResult", "transcode", "encode_dataset",
           "load_uncompressed"]
