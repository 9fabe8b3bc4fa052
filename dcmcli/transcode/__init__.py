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

import importlib
from typing import Any

_EXPORTS = {
    "TranscodeError": "core", "TranscodeOptions": "core", "TranscodeResult": "core", "transcode": "core",
    "encode_dataset": "files", "load_as": "files",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodules on first use: storescu only needs the catalog's
    constants unless a file has to be transcoded."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"dcmcli.transcode.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
