"""What this installation is: package versions (``dcmcli --version``) and the
checks of ``dcmcli doctor`` (packages, codecs, the syntaxes they decode and
encode, the optional peers on the PATH).

Versions come from the installed distributions' metadata, without importing
the packages (``--version`` stays a fast start)."""

from __future__ import annotations

import shutil

from dcmcli import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, __version__
from dcmcli.records import dataclass

#: (distribution, what dcmcli uses it for, required): pyproject.toml's dependencies and pynetdicom.
PACKAGES: tuple[tuple[str, str, bool], ...] = (
    ("pydicom", "data sets, the pixel codec framework, UID and attribute dictionaries", True),
    ("pynetdicom", "tests only (an independent DICOM implementation)", False),
    ("pylibjpeg", "codec plugin: JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE decoding", True),
    ("pylibjpeg-libjpeg", "codec plugin: JPEG and JPEG-LS decoding", True),
    ("pylibjpeg-openjpeg", "codec plugin: JPEG 2000 and HTJ2K", True),
    ("pylibjpeg-rle", "codec plugin: RLE", True),
    ("pyjpegls", "codec plugin: JPEG-LS (CharLS)", True),
    ("imagecodecs", "codec plugin: JPEG, JPEG-LS, JPEG 2000, HTJ2K, JPEG XL encoders", True),
    ("numpy", "pixel arrays", True),
    ("typer", "the command line", True),
    ("rich", "human output", True),
    ("httpx", "wado's HTTP", True),
    ("python-multipart", "wado's multipart parser", True),
)

#: Peers the interop tests and the benchmarks use, by the name on the PATH (DCMTK's are called by
#: /usr/bin/ path: pynetdicom installs scripts of the same names).
PEERS: tuple[tuple[str, str], ...] = (
    ("/usr/bin/storescp", "DCMTK (dcmtk)"), ("/usr/bin/storescu", "DCMTK (dcmtk)"),
    ("/usr/bin/findscu", "DCMTK (dcmtk)"), ("/usr/bin/dcmqrscp", "DCMTK (dcmtk)"),
    ("/usr/bin/wlmscpfs", "DCMTK (dcmtk)"), ("/usr/bin/dcmdump", "DCMTK (dcmtk)"),
    ("gdcmconv", "GDCM (libgdcm-tools)"), ("Orthanc", "Orthanc (orthanc)"), ("openssl", "OpenSSL"),
)


def version_of(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def versions(names: list[str]) -> dict[str, str | None]:
    """The installed versions of ``names``: from the ``*.dist-info`` folder names on sys.path (under a
    millisecond), the metadata API for the rest (13 lookups through it cost 35-50 ms of a start)."""
    import os
    import re
    import sys

    want = {_norm(n): n for n in names}
    found: dict[str, str | None] = {}
    pattern = re.compile(r"^(.+)-([^-]+)\.dist-info$")
    for folder in sys.path:
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            continue
        for entry in entries:
            m = pattern.match(entry)
            if m and _norm(m.group(1)) in want and want[_norm(m.group(1))] not in found:
                found[want[_norm(m.group(1))]] = m.group(2)
    return {n: found[n] if n in found else version_of(n) for n in names}


def version_lines() -> list[str]:
    """``dcmcli --version``: dcmcli, its implementation identity, Python and every package."""
    import platform

    lines = [f"dcmcli {__version__}",
             f"Implementation Class UID {IMPLEMENTATION_CLASS_UID}, Implementation Version Name "
             f"{IMPLEMENTATION_VERSION_NAME}",
             f"Python {platform.python_version()}"]
    found = versions([name for name, _w, _r in PACKAGES])
    for name, _what, required in PACKAGES:
        v = found[name]
        lines.append(f"{name} {v or 'not installed'}" + ("" if required else " (tests only)"))
    return lines


@dataclass(frozen=True)
class Check:
    area: str  # package, codec, peer
    name: str
    ok: bool
    detail: str
    required: bool

    def as_dict(self) -> dict[str, object]:
        return {"area": self.area, "name": self.name, "ok": self.ok, "detail": self.detail,
                "required": self.required}


def checks() -> list[Check]:
    """Every check of ``dcmcli doctor``, in order: packages, then each transfer syntax's codecs, then peers."""
    out: list[Check] = []
    for name, what, required in PACKAGES:
        v = version_of(name)
        out.append(Check("package", name, v is not None, f"{v}: {what}" if v else f"not installed: {what}", required))
    from dcmcli.transcode.catalog import catalog

    for info in catalog():
        ok = info.can_decode and info.can_encode
        parts = [f"decode: {', '.join(info.decode) or 'no (' + (', '.join(info.decode_missing) or 'no plugin') + ')'}",
                 f"encode: {', '.join(info.encode) or 'no (' + (', '.join(info.encode_missing) or 'no plugin') + ')'}"]
        out.append(Check("codec", f"{info.name} ({info.uid})", bool(ok), "; ".join(parts), True))
    for exe, owner in PEERS:
        path = shutil.which(exe)
        out.append(Check("peer", exe, path is not None, f"{path} ({owner})" if path else f"not found ({owner}; "
                         f"optional: for the interop tests and bench/)", False))
    return out


__all__ = ["PACKAGES", "PEERS", "version_lines", "versions", "checks", "Check", "version_of"]
