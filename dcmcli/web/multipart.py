"""multipart/related bodies (RFC 2387), both ways, never whole in memory.

Reading: ``read_parts`` feeds a response's chunks, as they arrive, to
python-multipart's streaming parser and hands each part's headers, data and
end to a ``PartHandler``; a body that ends before its closing boundary
raises ``Truncated`` after the handler was told to discard the part in
progress (so no half file is ever named).

Writing (STOW-RS): ``MultipartBody`` lists files and yields their bytes
from disk in chunks between the boundaries, with the Content-Length known
in advance (no chunked encoding, which not every server takes).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from dcmcli.records import dataclass


class MultipartError(Exception):
    """The body is not the multipart/related answer asked for."""


class Truncated(MultipartError):
    """The body ended inside a part or before the closing boundary."""


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """``multipart/related; type="application/dicom"; boundary=x`` -> media type, parameters
    (lower-case names), by python-multipart's header parser (email's costs 8 ms to import)."""
    from python_multipart.multipart import parse_options_header

    media, params = parse_options_header(value or "")
    return (media.decode("latin-1").lower() or "text/plain",
            {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()})


class PartHandler(Protocol):
    def begin(self, headers: dict[str, str]) -> None: ...

    def data(self, chunk: bytes | memoryview) -> None: ...

    def end(self) -> None: ...

    def abort(self) -> None: ...


def read_parts(chunks: Iterable[bytes], content_type: str, handler: PartHandler) -> int:
    """Parse a multipart body as it streams; return the number of complete parts."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser

    media, params = parse_content_type(content_type)
    if not media.startswith("multipart/"):
        raise MultipartError(f"the answer is {media or 'untyped'}, not multipart/related")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("the multipart answer names no boundary")
    state = {"parts": 0, "open": False, "ended": False}
    headers: dict[str, str] = {}
    field: list[bytes] = []
    value: list[bytes] = []

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.append(data[start:end])

    def on_header_end() -> None:
        headers[b"".join(field).decode("latin-1").strip().lower()] = b"".join(value).decode("latin-1").strip()
        field.clear()
        value.clear()

    def on_headers_finished() -> None:
        handler.begin(dict(headers))
        state["open"] = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        handler.data(memoryview(data)[start:end])

    def on_part_end() -> None:
        state["open"] = False
        handler.end()
        state["parts"] += 1

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, callbacks={  # type: ignore[arg-type]
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_end": on_end})
    try:
        for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        if state["open"]:
            handler.abort()
        raise MultipartError(f"malformed multipart answer: {exc}") from None
    except BaseException:
        if state["open"]:
            handler.abort()
        raise
    if not state["ended"]:
        if state["open"]:
            handler.abort()
        raise Truncated(f"the answer was cut after {state['parts']} complete part(s)")
    return int(state["parts"])


@dataclass(frozen=True)
class BodyPart:
    path: Path
    size: int
    content_type: str = "application/dicom"


class MultipartBody:
    """A multipart/related body of files, streamed from disk."""

    CHUNK = 1024 * 1024

    def __init__(self, parts: Sequence[BodyPart], media_type: str = "application/dicom") -> None:
        self.parts = list(parts)
        self.boundary = f"dcmcli-{uuid.uuid4().hex}"
        self.media_type = media_type
        self._heads = [f"--{self.boundary}\r\nContent-Type: {p.content_type}\r\n\r\n".encode("ascii")
                       for p in self.parts]
        self._tail = f"--{self.boundary}--\r\n".encode("ascii")
        self.length = sum(len(h) + p.size + 2 for h, p in zip(self._heads, self.parts)) + len(self._tail)

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="{self.media_type}"; boundary={self.boundary}'

    def __iter__(self) -> Iterator[bytes]:
        for head, part in zip(self._heads, self.parts):
            yield head
            sent = 0
            with open(part.path, "rb", buffering=0) as fp:
                while sent < part.size:
                    chunk = fp.read(min(self.CHUNK, part.size - sent))
                    if not chunk:
                        break
                    sent += len(chunk)
                    yield chunk
            if sent != part.size:  # changed since it was listed: the Content-Length would lie
                raise OSError(f"{part.path} changed size while being sent ({part.size} bytes listed, {sent} read)")
            yield b"\r\n"
        yield self._tail


def file_size(path: Path) -> int:
    return os.stat(path).st_size
