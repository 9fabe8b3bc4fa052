"""One renderer for records (DICOM JSON objects, PS3.18 F.2): a table for
people, CSV and NDJSON for programs. findscu, the worklist and ``wado
query`` print their matches through it.

A column is a path to an element (``Sequence[0].Keyword`` steps); a cell is
the element's values as text, joined by ``\\`` as in DICOM.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from dcmcli.keys import Step, path_name
from dcmcli.records import dataclass

if TYPE_CHECKING:
    from dcmcli.output import Output


@dataclass(frozen=True)
class Column:
    path: tuple[Step, ...]
    title: str

    @classmethod
    def of(cls, path: tuple[Step, ...]) -> Column:
        return cls(path, path_name(path))


def _text(value: Any, vr: str) -> str:
    if isinstance(value, dict):
        if vr == "PN":
            return "=".join(value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")).rstrip("=")
        return f"<item of {len(value)} elements>"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell(record: dict[str, Any], path: Sequence[Step]) -> str:
    """The text of one element of a DICOM JSON record ("" when absent or empty)."""
    cur: dict[str, Any] | None = record
    for step in path[:-1]:
        elem = cur.get(f"{step.tag:08X}") if cur else None
        items = (elem or {}).get("Value") or []
        idx = step.index or 0
        if idx >= len(items) or not isinstance(items[idx], dict):
            return ""
        cur = items[idx]
    elem = (cur or {}).get(f"{path[-1].tag:08X}")
    if not elem:
        return ""
    vr = elem.get("vr", "")
    if "InlineBinary" in elem or "BulkDataURI" in elem:
        return "<binary>"
    values = elem.get("Value") or []
    if vr == "SQ":
        return f"<{len(values)} item{'s' if len(values) != 1 else ''}>" if values else ""
    return "\\".join(_text(v, vr) for v in values)


class Table:
    """Rows kept until ``print``: rich on a terminal, aligned plain text otherwise."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.rows: list[list[str]] = []

    def add(self, record: dict[str, Any]) -> None:
        self.rows.append([cell(record, c.path) for c in self.columns])

    def print(self, stream: IO[str], *, rich: bool, title: str | None = None) -> None:
        if not self.rows:
            return
        if rich:
            from rich.console import Console
            from rich.table import Table as RichTable

            table = RichTable(title=title, show_lines=False, header_style="bold")
            for c in self.columns:
                table.add_column(c.title, overflow="fold")
            for row in self.rows:
                table.add_row(*row)
            Console(file=stream, highlight=False).print(table)
            return
        widths = [max([len(c.title)] + [len(r[i]) for r in self.rows]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.title.ljust(w) for c, w in zip(self.columns, widths)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in self.rows]
        stream.write("\n".join(lines) + "\n")
        stream.flush()


class CsvWriter:
    """One row per record, a header of column titles (keyword paths)."""

    def __init__(self, stream: IO[str], columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self.stream = stream
        self.writer = csv.writer(stream, lineterminator="\n")
        self.writer.writerow([c.title for c in self.columns])

    def add(self, record: dict[str, Any]) -> None:
        self.writer.writerow([cell(record, c.path) for c in self.columns])
        self.stream.flush()


class NdjsonWriter:
    """One DICOM JSON object per line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def add(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.stream.flush()


def open_output(name: str | None, what: str) -> IO[str] | None:
    """A file to write, or stdout for "-"."""
    if name is None:
        return None
    if name == "-":
        return sys.stdout
    from dcmcli.errors import OutputError

    try:
        return open(name, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise OutputError(f"cannot write {what} {name!r}: {exc.strerror or exc}", "check the path") from None


@dataclass
class Writers:
    """The outputs of a query command (findscu, wado query)."""

    table: Table | None
    csv: CsvWriter | None
    ndjson: NdjsonWriter | None
    #: stdout is --csv - or --ndjson - (people's lines go to stderr then)
    stdout_taken: bool
    streams: tuple[IO[str] | None, ...] = ()

    def add(self, record: dict[str, Any]) -> None:
        """One match to every output asked for."""
        for w in (self.csv, self.ndjson, self.table):
            if w is not None:
                w.add(record)

    def summary(self, out: Output, data: dict[str, Any], human: str) -> None:
        """The summary event; its words for people on stdout, or on stderr
        (as info) when stdout carries the matches or with ``-q``."""
        if self.stdout_taken or out.verbosity < 0:
            out.emit("summary", data, None)
            if out.verbosity >= 0:
                out.info(human)
        else:
            out.emit("summary", data, human, plain=True)  # words, no markup: rich only on a terminal

    def close(self) -> None:
        for stream in self.streams:
            if stream is not None and stream is not sys.stdout:
                stream.close()


def open_writers(columns: Sequence[Column], csv_file: str | None, ndjson_file: str | None,
                 out: Output) -> Writers:
    """``--csv FILE``, ``--ndjson FILE`` ("-": stdout), and a table for
    people unless stdout is taken (``--json``, ``-``) or ``-q``."""
    from dcmcli.errors import UsageError

    csv_stream = open_output(csv_file, "the CSV file")
    ndjson_stream = open_output(ndjson_file, "the NDJSON file")
    stdout_taken = sys.stdout in (csv_stream, ndjson_stream)
    if stdout_taken and out.json_mode:
        raise UsageError("--json and --csv - / --ndjson - both write to stdout", "send one of them to a file")
    return Writers(Table(columns) if not out.json_mode and not stdout_taken and out.verbosity >= 0 else None,
                   CsvWriter(csv_stream, columns) if csv_stream else None,
                   NdjsonWriter(ndjson_stream) if ndjson_stream else None, stdout_taken, (csv_stream, ndjson_stream))


class XmlWriter:
    """All matches in one XML file, in DCMTK's format (``findscu -Xs``,
    ``dcm2xml``): ``<responses type="C-FIND">`` holding one ``<data-set>``
    per match, each element with its tag, VR, VM, length and DCMTK-style
    name, values as text (UTF-8), sequences as ``<sequence>``/``<item>``."""

    def __init__(self, stream: IO[str], kind: str = "C-FIND") -> None:
        self.stream = stream
        stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        stream.write(f'<responses type="{kind}">\n')

    def add(self, data: bytes, transfer_syntax: str) -> None:
        from dcmcli.dataset import decode
        from dcmcli.uids import uid_name

        ds = decode(data, transfer_syntax)
        name = {"1.2.840.10008.1.2.1": "Little Endian Explicit", "1.2.840.10008.1.2": "Little Endian Implicit",
                "1.2.840.10008.1.2.2": "Big Endian Explicit"}.get(transfer_syntax, uid_name(transfer_syntax))
        self.stream.write(f'<data-set xfer="{transfer_syntax}" name="{name}">\n')
        self._elements(ds)
        self.stream.write("</data-set>\n")
        self.stream.flush()

    def _elements(self, ds: Any) -> None:
        from xml.sax.saxutils import escape

        for tag in ds.keys():
            raw = ds.get_item(tag)
            elem = ds[tag]
            t = f"{int(tag) >> 16:04x},{int(tag) & 0xFFFF:04x}"
            vr = str(elem.VR)
            keyword = elem.keyword or "Unknown Tag & Data"
            if vr == "SQ":
                items = list(elem.value or [])
                self.stream.write(f'<sequence tag="{t}" vr="SQ" card="{len(items)}" name="{keyword}">\n')
                for item in items:
                    self.stream.write(f'<item card="{len(item)}">\n')
                    self._elements(item)
                    self.stream.write("</item>\n")
                self.stream.write("</sequence>\n")
                continue
            length = getattr(raw, "length", None)
            if length is None or length == 0xFFFFFFFF:
                length = len(raw.value) if isinstance(getattr(raw, "value", None), (bytes, bytearray)) else 0
            value = elem.value
            if value is None or value == "" or value == b"":
                text, vm = "", 0
            elif isinstance(value, (bytes, bytearray)):
                text, vm = "\\".join(f"{b:02x}" for b in bytes(value)), 1
            elif isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
                text, vm = "\\".join(str(v) for v in value), len(value)
            else:
                text, vm = str(value), 1
            self.stream.write(f'<element tag="{t}" vr="{vr}" vm="{vm}" len="{length}" name="{keyword}">'
                              f"{escape(text)}</element>\n")

    def close(self) -> None:
        self.stream.write("</responses>\n")
        self.stream.flush()
