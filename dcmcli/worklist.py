"""Worklist sources: the items a Modality Worklist SCP answers from.

* DCMTK ``wlmscpfs``'s layout (``-dfp DIR``): one folder per called AE title,
  ``DIR/<AE>/*.wl`` DICOM data sets (made with ``dump2dcm``), so the same
  folder serves dcmcli, wlmscpfs and Orthanc's worklist plugin unchanged.
  The same folders may also hold ``*.json`` (DICOM JSON, PS3.18 F: one
  object or an array) and ``*.csv`` files (a header row of keywords or
  sequence paths such as ``ScheduledProcedureStepSequence[0].Modality``, one
  item per row), which the other servers ignore.
* Extra files or folders (``--source``) served whatever the called AE title.

Every query sees the files as they are now: folders are listed per query,
and each file's items are cached by (modification time, size), so a large
worklist is parsed once, not per query. A file that cannot be parsed is
skipped with one warning (again only when it changes).

No network and no typer here: ``dcmcli.net.services.worklist`` serves it.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dcmcli.errors import DcmcliError
from dcmcli.records import dataclass

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SUFFIXES = (".wl", ".json", ".csv")

#: Type 1 return keys of the Modality Worklist information model (PS3.4
#: Table K.6-1) an item needs to be complete: top level, then inside each
#: Scheduled Procedure Step item. 1C pairs: one of them.
REQUIRED_TOP = (("PatientName",), ("PatientID",), ("StudyInstanceUID",), ("RequestedProcedureID",),
                ("RequestedProcedureDescription", "RequestedProcedureCodeSequence"),
                ("ScheduledProcedureStepSequence",))
REQUIRED_SPS = (("ScheduledStationAETitle",), ("ScheduledProcedureStepStartDate",),
                ("ScheduledProcedureStepStartTime",), ("Modality",), ("ScheduledProcedureStepID",),
                ("ScheduledProcedureStepDescription", "ScheduledProtocolCodeSequence"))


def missing_required(ds: Dataset) -> list[str]:
    """The type 1 attributes an item lacks (or has empty), by keyword."""

    def has(d: Dataset, names: tuple[str, ...]) -> bool:
        for name in names:
            elem = d.data_element(name) if name in d else None
            if elem is not None and elem.value not in (None, "", b"") and (elem.VR != "SQ" or len(elem.value)):
                return True
        return False

    missing = [" or ".join(n) for n in REQUIRED_TOP if not has(ds, n)]
    sps = ds.get("ScheduledProcedureStepSequence")
    for n, item in enumerate(sps.value if sps is not None and sps.VR == "SQ" else []):
        missing += [f"ScheduledProcedureStepSequence[{n}].{' or '.join(k)}" for k in REQUIRED_SPS if not has(item, k)]
    return missing


def read_csv_items(path: Path) -> list[Dataset]:
    """One item per row; the header names each column's attribute (a keyword,
    a tag or a sequence path, as findscu's -k). Empty cells are left out."""
    from dcmcli.keys import build_identifier, parse_key

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DcmcliError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", "save the CSV as UTF-8")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    columns = []
    for n, name in enumerate(header):
        if not name:
            raise DcmcliError(f"{path}: column {n + 1} has no name in the header row",
                              "name every column with a DICOM keyword or a sequence path")
        try:
            columns.append(parse_key(name))
        except DcmcliError as exc:
            raise DcmcliError(f"{path}: column {n + 1}: {exc.message}", exc.hint) from None
    items = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise DcmcliError(f"{path}: line {line} has {len(row)} cells, the header {len(header)}",
                              "quote values that contain commas")
        keys = []
        for col, cell in zip(columns, row):
            if cell.strip():
                keys.append(parse_key(f"{col.text.partition('=')[0]}={cell.strip()}"))
        try:
            items.append(build_identifier(keys))
        except DcmcliError as exc:
            raise DcmcliError(f"{path}: line {line}: {exc.message}", exc.hint) from None
    return items


def read_items(path: Path) -> list[Dataset]:
    """The worklist items of one file (.wl DICOM, .json DICOM JSON, .csv)."""
    from dcmcli.dataset import read_dataset_file

    if path.suffix.lower() == ".csv":
        return read_csv_items(path)
    items = read_dataset_file(path, "worklist file")
    if path.suffix.lower() == ".wl":
        ds = items[0]
        if not any(int(t) >> 16 in (0x0008, 0x0010, 0x0020, 0x0032, 0x0038, 0x0040) for t in ds.keys()):
            raise DcmcliError(f"worklist file {str(path)!r} holds no worklist attributes", "make it with dump2dcm")
    return items


@dataclass
class _Cached:
    stamp: tuple[int, int]
    items: list[Dataset]


@dataclass
class WorklistOptions:
    #: wlmscpfs's -dfp: DIR/<called AE title>/*.wl
    folder: Path | None = None
    #: files or folders served to every called AE title
    sources: tuple[Path, ...] = ()
    #: the AE folder for called AE titles that have none
    default_ae: str | None = None
    #: refuse items that lack type 1 attributes (warned once per file version)
    reject_incomplete: bool = False


def safe_ae_folder(ae: str) -> bool:
    """Whether a called AE title can name a folder below -dfp: no path
    separators, no dot names, no leading dot, no control characters."""
    ae = ae.strip()
    return bool(ae) and "/" not in ae and "\\" not in ae and not ae.startswith(".") and ae.isprintable()


class Worklist:
    """The items each called AE title is served, read through a cache."""

    def __init__(self, options: WorklistOptions, on_log: Callable[[str, str], None] | None = None) -> None:
        self.options = options
        self.on_log = on_log or (lambda level, msg: None)
        self._cache: dict[str, _Cached] = {}
        self._warned: dict[str, tuple[int, int]] = {}
        self._listed: dict[Path, set[str]] = {}
        self._lock = threading.Lock()

    # -- which folder --------------------------------------------------
    def folder_for(self, called_aet: str) -> Path | None:
        """The AE's folder below -dfp (or the default AE's), None when there is none."""
        root = self.options.folder
        if root is None:
            return None
        ae = called_aet.strip()
        if safe_ae_folder(ae) and (root / ae).is_dir():
            return root / ae
        if self.options.default_ae and (root / self.options.default_ae).is_dir():
            return root / self.options.default_ae
        return None

    def refusal(self, called_aet: str) -> str | None:
        """Why an association to ``called_aet`` is refused (no worklist for it), or None."""
        if self.options.folder is None:
            return None
        if not safe_ae_folder(called_aet):
            return f"called AE title {called_aet.strip()!r} cannot name a worklist folder"
        if self.folder_for(called_aet) is None and not self.options.sources:
            return (f"no worklist for called AE title {called_aet.strip()!r} "
                    f"(no folder {self.options.folder / called_aet.strip()})")
        return None

    # -- the items -----------------------------------------------------
    def files(self, called_aet: str) -> list[str]:
        found: list[str] = []
        folder = self.folder_for(called_aet)
        roots = ([folder] if folder is not None else []) + list(self.options.sources)
        for root in roots:
            found += self._list(root)
        return found

    def _list(self, root: Path) -> list[str]:
        if root.is_file():
            return [str(root)]
        try:
            with os.scandir(root) as it:
                names = sorted(e.name for e in it if e.name.lower().endswith(SUFFIXES) and not e.name.startswith("."))
        except OSError as exc:
            self._warn_once(root, (0, 0), f"cannot read worklist folder {root}: {exc.strerror or exc}")
            return []
        base = str(root)
        paths = [os.path.join(base, n) for n in names]
        with self._lock:  # forget the items of files that went away
            gone = self._listed.get(root, set()) - set(paths)
            for p in gone:
                self._cache.pop(p, None)
                self._warned.pop(p, None)
            self._listed[root] = set(paths)
        return paths

    def items(self, called_aet: str) -> Iterable[tuple[str, Dataset]]:
        """(file, item) pairs for one query, in file-name order."""
        for path in self.files(called_aet):
            for ds in self._items_of(path):
                yield path, ds

    def _items_of(self, path: str) -> list[Dataset]:
        try:
            st = os.stat(path)
        except OSError as exc:
            self._warn_once(path, (0, 0), f"cannot read worklist file {path}: {exc.strerror or exc}; skipped")
            return []
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(path)
        if hit is not None and hit.stamp == stamp:
            return hit.items
        try:
            items = read_items(Path(path))
        except DcmcliError as exc:
            self._warn_once(path, stamp, f"{exc.message}; skipped" + (f" ({exc.hint})" if exc.hint else ""))
            items = []
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the server
            self._warn_once(path, stamp, f"worklist file {path}: {type(exc).__name__}: {exc}; skipped")
            items = []
        if items and self.options.reject_incomplete:
            kept = []
            for n, ds in enumerate(items):
                missing = missing_required(ds)
                if missing:
                    where = f"{path}" + (f" item {n + 1}" if len(items) > 1 else "")
                    self._warn_once(path, stamp, f"{where} lacks type 1 attributes ({', '.join(missing)}); "
                                                 f"not served (--reject-incomplete)", every=True)
                else:
                    kept.append(ds)
            items = kept
        with self._lock:
            self._cache[path] = _Cached(stamp, items)
        return items

    def load(self) -> tuple[int, int]:
        """Read everything once (start-up): (files, items)."""
        roots = []
        if self.options.folder is not None:
            try:
                roots = [p for p in sorted(self.options.folder.iterdir()) if p.is_dir() and safe_ae_folder(p.name)]
            except OSError as exc:
                raise DcmcliError(f"cannot read the worklist folder {self.options.folder}: {exc.strerror or exc}",
                                  "check -dfp and its permissions") from None
        roots += list(self.options.sources)
        files = items = 0
        for root in roots:
            for path in self._list(root):
                files += 1
                items += len(self._items_of(path))
        return files, items

    def _warn_once(self, path: str | Path, stamp: tuple[int, int], message: str, every: bool = False) -> None:
        with self._lock:
            if not every and self._warned.get(str(path)) == stamp:
                return
            self._warned[str(path)] = stamp
        self.on_log("warning", message)


__all__ = ["Worklist", "WorklistOptions", "missing_required", "read_items", "safe_ae_folder", "SUFFIXES"]
