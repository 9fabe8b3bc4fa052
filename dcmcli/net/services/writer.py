"""The storage writer: where received objects go, for every receiver
(storescp, movescu's built-in receiver, getscu).

Each object's data fragments are written, as they arrive, behind dcmcli's
own file meta (implementation UID, source AE title) into a hidden ``.part``
file in the output directory (made ahead, see ``_Spares``), which is
renamed into place when the object is complete: memory stays flat for large
objects, the data set is never decoded and re-encoded (unless ``store_as``
asks for another syntax), and a final name never holds half an object. The
name comes from a template of attribute values, each sanitised; duplicates
follow a policy; hooks run commands on reception and at the end of a study.
"""

from __future__ import annotations

import errno
import heapq
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import BinaryIO

from dcmcli.dicomfile import InvalidFile, check_received, encode_file_meta, read_top_level, scan_buffer
from dcmcli.errors import OutputError, UsageError
from dcmcli.identifier import KEYS
from dcmcli.records import dataclass
from dcmcli.uids import DEFLATED, uid_name

LAYOUTS = {
    "flat": "{Modality}.{SOPInstanceUID}.dcm",
    "study": "{StudyInstanceUID}/{SeriesInstanceUID}/{Modality}.{SOPInstanceUID}.dcm",
    "patient": "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{Modality}.{SOPInstanceUID}.dcm",
}
DUPLICATE_POLICIES = ("overwrite", "keep", "rename", "reject")

_FIELD = re.compile(r"\{([A-Za-z][A-Za-z0-9]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_PART = re.compile(r"^\.(?:(\d+)-)?[0-9a-f]{32}\.(?:part|spare)$")
_OUT_OF_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}

#: How much of each data set is kept in memory to read the naming attributes.
HEAD_BYTES = 64 * 1024

STATUS_SUCCESS = 0x0000
STATUS_DUPLICATE = 0x0111
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000


def safe_component(value: object, fallback: str = "unknown", max_len: int = 64) -> str:
    """One path component from a sender-chosen value: never empty, never a dot
    name, no separators or control characters, at most ``max_len`` characters."""
    text = str(value if value is not None else "").strip().strip("\x00")
    safe = _UNSAFE.sub("_", text)
    safe = safe.lstrip(".")  # no hidden files, no '.' or '..'
    if not safe:
        safe = fallback
    if len(safe) > max_len:
        import hashlib  # rare (a name over max_len): not at every receiver's start (4 ms)

        digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:10]
        safe = safe[: max_len - 11] + "_" + digest
    return safe


def check_template(template: str) -> list[str]:
    """Validate a naming template; return the attribute keywords it uses."""
    if template.startswith("/") or template.startswith("\\"):
        raise UsageError(f"invalid naming template {template!r}: it must be relative",
                         "remove the leading '/'; files go below -od")
    depth = 0
    for ch in template:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth not in (0, 1):
            break
    if depth != 0:
        raise UsageError(f"invalid naming template {template!r}: unbalanced braces",
                         "write each attribute as {Keyword}, e.g. {StudyDate}")
    parts = template.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UsageError(f"invalid naming template {template!r}: empty, '.' or '..' path component",
                         "use attribute fields such as {StudyInstanceUID}/{SOPInstanceUID}.dcm")
    fields = _FIELD.findall(template)
    if "{SOPInstanceUID}" not in template:
        raise UsageError(f"invalid naming template {template!r}: it must contain {{SOPInstanceUID}}",
                         "every object needs a name of its own")
    return fields


def expand_template(template: str, values: dict[str, object]) -> str:
    def sub(m: re.Match[str]) -> str:
        return safe_component(values.get(m.group(1)), fallback="unknown")

    parts = [_FIELD.sub(sub, part) for part in template.split("/")]
    return "/".join(safe_component(p, fallback="unknown", max_len=200) if "{" not in p and p != "" else p
                    for p in parts)


@dataclass
class WriterOptions:
    """How received objects are stored (the options storescp, movescu and getscu share)."""

    output_dir: Path = Path(".")
    template: str = LAYOUTS["flat"]
    duplicates: str = "overwrite"
    ignore: bool = False  # receive but do not store (DCMTK --ignore)
    store_as: str | None = None  # transcode received objects to this syntax before storing
    fsync: bool = False  # file and directory reach the disk before the object is acknowledged
    accept_invalid: bool = False  # store data sets whose element structure is broken
    exec_on_reception: str | None = None
    exec_on_eostudy: str | None = None
    eostudy_timeout: float = 30.0


@dataclass
class Received:
    """What happened to one received object (the ``received`` JSON event)."""

    path: Path | None
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    calling_aet: str
    called_aet: str
    peer_address: str
    size: int
    status: int
    message: str = ""
    stored_transfer_syntax: str = ""

    def as_dict(self) -> dict[str, object]:
        from dcmcli.status import describe

        host, _, port = self.peer_address.rpartition(":")
        return {"path": str(self.path) if self.path else None, "sop_class_uid": self.sop_class_uid,
                "sop_class": uid_name(self.sop_class_uid), "sop_instance_uid": self.sop_instance_uid,
                "transfer_syntax": self.transfer_syntax, "calling_aet": self.calling_aet,
                "called_aet": self.called_aet,
                "peer": {"host": host.strip("[]"), "port": int(port) if port.isdigit() else None,
                         "ae_title": self.calling_aet},
                "bytes": self.size, "status": describe(self.status, "C-STORE").as_dict(),
                "message": self.message, "stored_transfer_syntax": self.stored_transfer_syntax or self.transfer_syntax}


class _EndOfStudy:
    """Runs --exec-on-eostudy once no object of a study arrived for a while:
    one scheduler thread for all studies (a heap of deadlines)."""

    def __init__(self, run: Callable[[dict[str, str]], None], timeout: float) -> None:
        self.run = run
        self.timeout = timeout
        self.pending: dict[str, tuple[float, dict[str, str]]] = {}
        self.heap: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread: threading.Thread | None = None

    def seen(self, study_uid: str, values: dict[str, str]) -> None:
        with self.cond:
            due = time.monotonic() + self.timeout
            self.pending[study_uid] = (due, values)
            heapq.heappush(self.heap, (due, study_uid))
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="dcmcli-eostudy", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.closed:
                    if not self.heap:
                        self.cond.wait()
                        continue
                    due, study = self.heap[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        self.cond.wait(wait)
                        continue
                    heapq.heappop(self.heap)
                    entry = self.pending.get(study)
                    if entry and entry[0] == due:  # not seen again since
                        del self.pending[study]
                        break
                else:
                    return
            self.run(entry[1])

    def flush(self) -> None:
        with self.cond:
            entries = list(self.pending.values())
            self.pending.clear()
            self.heap.clear()
            self.closed = True
            self.cond.notify()
        for _due, values in entries:
            self.run(values)
        if self.thread is not None:
            self.thread.join(5)

    def threads(self) -> int:
        return 1 if self.thread is not None else 0


class _Spares:
    """The next object's file, made ahead.

    Creating a file is the dearest step of storing a small object: 0.5-0.8 ms
    of kernel time on the machine of the benchmarks (inode allocation), more
    than receiving, writing and renaming 40 KB together. So it is made before
    the object comes, at a moment the receiver would otherwise spend waiting:

    * ``make``: by the receiving thread itself, right after it answered a
      C-STORE (the peer sends nothing before it has read the answer, so the
      thread would only wait for its next request; storescp, movescu's
      receiver and getscu). No other thread is woken per object: a thread
      that made the files cost the GIL's hand-over twice per object (some
      20 futex calls), measured 0.7 s of CPU and 0.3 s of wall on 2000 small
      objects.
    * ``placed``: by a thread of its own, woken when an object is placed,
      for a receiver that has no such moment (a WADO-RS multipart stream,
      whose next part is already arriving).

    One at a time, and never while a receiver renames there: a creation
    holds its folder's lock, and a rename waited for it (0.2 ms each,
    measured, when spares were made as soon as one was taken). A spare is
    ``.<pid>-<hex>.spare``, renamed to its ``.part`` name when an object
    takes it, so that a ``.part`` file is always an object in flight. Spares
    exist only while objects come: a thread that wakes twice per ``idle``
    seconds while there is a spare (and sleeps while there is none) removes
    the one no object took for ``idle`` seconds, ``close`` the one left at
    the end, and the next receiver's ``prepare`` one a killed receiver left,
    as its ``.part`` files. An error (full disk, permissions) stops the
    making; ``begin`` then creates its files itself and reports what goes
    wrong.
    """

    def __init__(self, folder: Path, idle: float = 1.0) -> None:
        self.folder = folder
        self.idle = idle
        self.ready: tuple[Path, BinaryIO] | None = None
        lock = threading.Lock()
        self.cond = threading.Condition(lock)  # the thread waits here (placed, close)
        self.done = threading.Condition(lock)  # take waits here while a file is made
        self.wanted = False  # placed(): the thread is to make the next one
        self.making = False  # a file is being made now
        self.asleep = False  # the thread waits without a timeout (no spare to watch)
        self.last = time.monotonic()  # when a spare was last made or taken
        self.closed = False
        self.thread = threading.Thread(target=self._loop, name="dcmcli-spares", daemon=True)
        self.thread.start()

    def take(self) -> tuple[Path, BinaryIO] | None:
        """The file made ahead (waiting for it if it is being made), or None."""
        with self.cond:
            self.last = time.monotonic()
            while self.making and self.ready is None and not self.closed:
                self.done.wait()
            spare, self.ready = self.ready, None
            return spare

    def make(self) -> None:
        """Make the next object's file now, in the calling thread (unless one
        is ready or being made)."""
        with self.cond:
            if self.closed or self.ready is not None or self.making:
                return
            self.making = True
        path = self.folder / f".{os.getpid()}-{uuid.uuid4().hex}.spare"
        try:
            made: tuple[Path, BinaryIO] | None = (path, open(path, "wb"))
        except OSError:
            made = None
        with self.cond:
            self.making = False
            self.done.notify_all()  # not self.cond: waking the thread per object is what this avoids
            if made is None or self.closed:
                if made is not None:
                    self._remove(made)
                self.closed = True
                return
            self.ready = made
            self.last = time.monotonic()
            if self.asleep:  # the first spare after a quiet time: the thread is to watch it
                self.cond.notify_all()

    def placed(self) -> None:
        """An object is done: have the thread make the next one's file."""
        with self.cond:
            self.last = time.monotonic()
            if not self.closed and self.ready is None and not self.making:
                self.wanted = True
                self.cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self.cond:
                if not self.closed and not self.wanted:
                    # With no spare there is nothing to remove: sleep until make() has one.
                    self.asleep = self.ready is None
                    self.cond.wait(None if self.asleep else self.idle / 2)
                    self.asleep = False
                if self.closed:
                    return
                wanted, self.wanted = self.wanted, False
                if self.ready is not None and not wanted and time.monotonic() - self.last >= self.idle:
                    self._remove(self.ready)  # no object came for a while
                    self.ready = None
            if wanted:
                self.make()

    @staticmethod
    def _remove(spare: tuple[Path, BinaryIO]) -> None:
        spare[1].close()
        try:
            spare[0].unlink()
        except OSError:
            pass

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
            self.done.notify_all()
        self.thread.join(5)
        with self.cond:
            if self.ready is not None:
                self._remove(self.ready)
                self.ready = None


def _why(exc: OSError) -> str:
    if exc.errno in _OUT_OF_SPACE:
        return "no space left on the output device"
    if exc.errno in _NOT_WRITABLE:
        return "the output directory is not writable"
    return exc.strerror or str(exc)


@dataclass
class Incoming:
    """One object being received: streamed into a hidden .part file (a ``dimse.Sink``)."""

    sop_class: str
    sop_instance: str
    ts: str
    part: Path | None = None
    fp: BinaryIO | None = None
    meta_len: int = 0
    size: int = 0
    error: OSError | None = None
    head: bytearray = field(default_factory=bytearray)  # the first bytes, for naming
    scanned: dict[int, bytes] | None = None  # check_identity's scan, reused for naming

    def write(self, data: memoryview) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head += data[:HEAD_BYTES - len(self.head)]
        self.size += len(data)
        if self.fp is not None and self.error is None:
            try:
                self.fp.write(data)
            except OSError as exc:
                self.fail(exc)

    def fail(self, exc: OSError) -> None:
        """Remember the first write error; keep draining the data, answer A700 at the end."""
        self.error = exc
        self.close()

    def close(self, fsync: bool = False) -> None:
        if self.fp is not None:
            fp, self.fp = self.fp, None
            try:
                if fsync and self.error is None:
                    fp.flush()
                    os.fsync(fp.fileno())
                fp.close()
            except OSError as exc:
                self.error = self.error or exc

    def discard(self) -> None:
        self.close()
        if self.part is not None:
            try:
                self.part.unlink()
            except OSError:
                pass
            self.part = None


@dataclass
class Outcome:
    status: int
    path: Path | None
    message: str = ""
    stored_transfer_syntax: str = ""

    @property
    def comment(self) -> str | None:
        """The Error Comment for the response (failures only)."""
        return self.message.replace("refused: out of resources: ", "") if self.status else None


class StorageWriter:
    """Stores received objects below ``options.output_dir``; thread-safe."""

    def __init__(self, options: WriterOptions, *, on_log: Callable[[str, str], None] | None = None) -> None:
        self.options = options
        self.on_log = on_log or (lambda level, msg: None)
        self.fields = check_template(options.template)
        if options.duplicates not in DUPLICATE_POLICIES:
            raise UsageError(f"unknown duplicate policy {options.duplicates!r}",
                             f"use one of {', '.join(DUPLICATE_POLICIES)}")
        needed = set(self.fields) | ({"StudyInstanceUID"} if options.exec_on_eostudy else set())
        self._tags: dict[str, int] = {}
        for kw in sorted(needed - {"SOPInstanceUID", "SOPClassUID"}):
            tag = KEYS[kw][0] if kw in KEYS else None  # the usual fields: no pydicom import
            if tag is None:  # a rarer attribute: ask pydicom's dictionary (an import of 0.4 s)
                from pydicom.datadict import tag_for_keyword

                tag = tag_for_keyword(kw)
            if tag is None:
                raise UsageError(f"unknown attribute {{{kw}}} in the naming template",
                                 "use DICOM keywords such as PatientID or StudyInstanceUID")
            self._tags[kw] = int(tag)
        self._root = os.path.abspath(options.output_dir)
        self._dirs: set[str] = set()
        self._name_lock = threading.Lock()
        self._procs: list[threading.Thread] = []
        self._procs_lock = threading.Lock()
        self._spares: _Spares | None = None
        self.eostudy = (_EndOfStudy(lambda v: self._exec(self.options.exec_on_eostudy, v), options.eostudy_timeout)
                        if options.exec_on_eostudy else None)

    # -- lifecycle -------------------------------------------------------
    def prepare(self) -> None:
        """Create the output directory, check that it is writable, and remove
        ``.part`` files that a killed receiver left behind."""
        out = self.options.output_dir
        if out.exists() and not out.is_dir():
            raise OutputError(f"output directory {str(out)!r} is a file, not a directory",
                              "give -od a directory (it is created when missing)")
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / f".dcmcli-probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"output directory {str(out)!r} is not writable: {exc.strerror or exc}",
                              "check -od and its permissions") from None
        removed = spares = 0
        try:
            names = os.listdir(out)
        except OSError:
            names = []
        for name in names:
            m = _PART.match(name)
            if not m:
                continue
            if m.group(1) and int(m.group(1)) != os.getpid() and _alive(int(m.group(1))):
                continue  # another receiver's object in flight, or its spare
            try:
                os.unlink(out / name)
            except OSError:
                continue
            if name.endswith(".part"):
                removed += 1
            else:
                spares += 1
        if removed:
            self.on_log("info", f"removed {removed} incomplete .part file(s) left in {out} by an interrupted receiver")
        if spares:
            self.on_log("debug", f"removed {spares} empty .spare file(s) left in {out} by an interrupted receiver")
        if not self.options.ignore and self._spares is None:
            self._spares = _Spares(out)

    def close(self) -> None:
        """Remove the spare files, run the pending end-of-study commands and
        wait for hook commands."""
        if self._spares is not None:
            self._spares.close()
            self._spares = None
        if self.eostudy:
            self.eostudy.flush()
        with self._procs_lock:
            procs = list(self._procs)
        for t in procs:
            t.join(10)

    # -- one object ------------------------------------------------------
    def begin(self, sop_class: str, sop_instance: str, ts: str, source_aet: str) -> Incoming:
        inc = Incoming(sop_class, sop_instance, ts)
        if self.options.ignore:
            return inc
        spare = self._spares.take() if self._spares is not None else None
        if spare is not None:
            path, fp = spare
            part = path.with_suffix(".part")
            try:
                os.replace(path, part)
                inc.part, inc.fp = part, fp
            except OSError:  # the spare went away (removed by hand): make the file here
                fp.close()
        try:
            if inc.fp is None:
                inc.part = self.options.output_dir / f".{os.getpid()}-{uuid.uuid4().hex}.part"
                inc.fp = inc.part.open("wb")
            inc.meta_len = inc.fp.write(encode_file_meta(sop_class, sop_instance, ts, source_aet))
        except OSError as exc:
            inc.fail(exc)
        except UnicodeEncodeError:  # non-ASCII UIDs never reach here (the command decoder refuses them)
            inc.fail(OSError(errno.EINVAL, "UIDs are not ASCII"))
        return inc

    def check_identity(self, inc: Incoming) -> str | None:
        """Why the data set's SOP Class / Instance UID differ from the request's
        (DCMTK answers such an object 0xA900), or None."""
        if inc.ts == DEFLATED or not inc.head:
            return None
        try:
            try:
                raw = scan_buffer(inc.head, inc.ts,
                                     {0x00080016, 0x00080018, *self._tags.values()})
                inc.scanned = raw
            except InvalidFile:  # the naming attributes lie beyond the first 64 KB
                raw = scan_buffer(inc.head, inc.ts, {0x00080016, 0x00080018})
        except (InvalidFile, RecursionError):
            return None  # cut inside the first 64 KB, or nested too deep to walk: naming will tell
        for tag, what, expected in ((0x00080016, "SOP Class UID", inc.sop_class),
                                    (0x00080018, "SOP Instance UID", inc.sop_instance)):
            if tag in raw:
                found = raw[tag].decode("latin-1").strip(" \x00")
                if found != expected:
                    return f"data set does not match: its {what} {found[:64]!r} is not the request's {expected!r}"
        return None

    def make_next_file(self, *, background: bool = False) -> None:
        """Make the next object's file ahead (see ``_Spares``): now, in this
        thread (a receiver that has answered and waits for the next request),
        or by the writer's thread (``background``: a receiver whose next
        object is already arriving)."""
        if self._spares is not None:
            if background:
                self._spares.placed()
            else:
                self._spares.make()

    def finish(self, inc: Incoming, calling: str, called: str, peer: str) -> Outcome:
        """Close, name and place one received object; return its status."""
        if self.options.ignore:
            return Outcome(STATUS_SUCCESS, None, "ignored (--ignore)")
        inc.close(self.options.fsync)
        if inc.error is not None:
            why = _why(inc.error)
            inc.discard()
            self.on_log("error", f"cannot store {inc.sop_instance} from {calling}: {why}; answered 0xA700")
            return Outcome(STATUS_OUT_OF_RESOURCES, None, f"refused: out of resources: {why}")
        assert inc.part is not None
        if not self.options.accept_invalid:
            try:
                check_received(inc.part, inc.meta_len, inc.ts, inc.head, inc.meta_len + inc.size)
            except (InvalidFile, OSError, RecursionError) as exc:
                why = str(exc) if not isinstance(exc, RecursionError) else "nested too deep to walk"
                inc.discard()
                self.on_log("warning", f"{inc.sop_instance} from {calling} refused, its data set is broken: {why} "
                                       f"(0xC000; --accept-invalid stores it anyway)")
                return Outcome(STATUS_CANNOT_UNDERSTAND, None, f"cannot understand: broken data set: {why}")
        try:
            values = self._values(inc)
        except Exception as exc:  # a data set we cannot walk
            inc.discard()
            self.on_log("error", f"cannot parse {inc.sop_instance} from {calling}: {exc}")
            return Outcome(STATUS_CANNOT_UNDERSTAND, None, f"cannot parse the data set: {exc}")
        stored_ts, note = self._store_as(inc)
        root = self._root
        final = Path(os.path.normpath(os.path.join(root, expand_template(self.options.template, values))))
        try:
            if self.options.fsync and stored_ts != inc.ts:
                _fsync_path(inc.part)  # the converted file replaced the .part that close() flushed
            # Every component is sanitised already; this is the last line of defence.
            if os.path.commonpath([root, final]) != root:
                inc.discard()
                return Outcome(STATUS_CANNOT_UNDERSTAND, None, "refused: the name would leave the output directory")
            parent = str(final.parent)
            if parent not in self._dirs:
                final.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(parent)
            with self._name_lock:
                target = self._apply_duplicate_policy(final)
                if target is None:
                    inc.discard()
                    if self.options.duplicates == "reject":
                        self.on_log("warning", f"duplicate SOP instance {inc.sop_instance} from {calling} rejected")
                        return Outcome(STATUS_DUPLICATE, final, "duplicate SOP instance (rejected)")
                    return Outcome(STATUS_SUCCESS, final, "duplicate SOP instance (kept the first copy)")
                try:
                    os.replace(inc.part, target)
                except FileNotFoundError:  # the folder was removed under us: make it again
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._dirs.discard(parent)
                    os.replace(inc.part, target)
                inc.part = None
            if self.options.fsync:
                _fsync_path(target.parent)
        except OSError as exc:
            inc.discard()
            why = _why(exc)
            self.on_log("error", f"cannot store {inc.sop_instance} from {calling}: {why} ({final.parent}); "
                                 f"answered 0xA700")
            return Outcome(STATUS_OUT_OF_RESOURCES, None, f"refused: out of resources: {why}")
        if self.options.exec_on_reception:
            self._exec(self.options.exec_on_reception, self._placeholders(target, calling, called, peer))
        if self.eostudy:
            study = str(values.get("StudyInstanceUID") or "")
            self.eostudy.seen(study, self._placeholders(target, calling, called, peer))
        return Outcome(STATUS_SUCCESS, target, note, stored_ts)

    def _store_as(self, inc: Incoming) -> tuple[str, str]:
        """Transcode the received .part file to --store-as; on failure keep it
        as received (the object is never lost) and say why."""
        target = self.options.store_as
        if not target or target == inc.ts:
            return inc.ts, ""
        from dcmcli.transcode import TranscodeError, TranscodeOptions
        from dcmcli.transcode.files import OutputError as WriteError, load_as, write_file

        assert inc.part is not None
        try:
            # The sender's references must stay valid: the UID is kept even
            # for a lossy --store-as (marked by Lossy Image Compression).
            ds = load_as(inc.part, target, TranscodeOptions(keep_uid=True))
            write_file(ds, inc.part)  # atomic: the .part holds either object whole
        except (TranscodeError, WriteError, OSError) as exc:
            self.on_log("warning", f"{inc.sop_instance} stored as received ({uid_name(inc.ts)}): "
                                   f"cannot store as {uid_name(target)}: {exc}")
            return inc.ts, f"stored as received: {exc}"
        except Exception as exc:  # pydicom could not parse what the peer sent
            self.on_log("warning", f"{inc.sop_instance} stored as received ({uid_name(inc.ts)}): "
                                   f"cannot read it for conversion: {exc}")
            return inc.ts, f"stored as received: {exc}"
        return target, ""

    def _values(self, inc: Incoming) -> dict[str, object]:
        values: dict[str, object] = {"SOPInstanceUID": inc.sop_instance, "SOPClassUID": inc.sop_class}
        if self._tags:
            wanted = set(self._tags.values())
            try:  # from the start of the data kept in memory
                if inc.ts == DEFLATED:
                    raise InvalidFile("deflated: read with pydicom")
                if inc.scanned is not None and wanted <= inc.scanned.keys():
                    raw = inc.scanned
                else:
                    raw = scan_buffer(inc.head, inc.ts, wanted)
            except InvalidFile:  # the attributes lie further in (or deflated): read the file
                assert inc.part is not None
                raw = read_top_level(inc.part, inc.meta_len, inc.ts, wanted)
            for kw, tag in self._tags.items():
                text = raw.get(tag, b"").decode("latin-1").strip(" \x00")
                values[kw] = text or ("OT" if kw == "Modality" else "")
        return values

    def _apply_duplicate_policy(self, final: Path) -> Path | None:
        policy = self.options.duplicates
        if policy == "overwrite" or not final.exists():
            return final
        if policy in ("keep", "reject"):
            return None
        n = 1
        while True:
            candidate = final.with_name(f"{final.stem}.{n}{final.suffix}")
            if not candidate.exists():
                return candidate
            n += 1

    # -- external commands -----------------------------------------------
    @staticmethod
    def _placeholders(path: Path, calling: str, called: str, peer: str) -> dict[str, str]:
        return {"#p": str(path.parent), "#f": path.name, "#a": calling, "#c": called,
                "#r": peer.rsplit(":", 1)[0].strip("[]")}

    def _exec(self, command: str | None, values: dict[str, str]) -> None:
        """Run a hook as an argument vector (never through a shell); each
        placeholder is replaced once, and a value that would turn an argument
        into an option (a calling AE title ``-n``) stops the command."""
        if not command:
            return
        import shlex

        argv = []
        for token in shlex.split(command):
            new = re.sub(r"#[pfacr]", lambda m: values[m.group(0)], token)
            if new.startswith("-") and not token.startswith("-"):
                self.on_log("warning", f"not running {command!r}: a received value would make the argument "
                                       f"{new!r} an option")
                return
            argv.append(new)

        def run() -> None:
            try:
                # The hook's output goes to stderr: stdout carries --json events.
                rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
                                    check=False).returncode
                if rc != 0:
                    self.on_log("warning", f"command {argv[0]!r} exited with {rc}")
            except (OSError, ValueError) as exc:
                self.on_log("error", f"cannot run {argv[0]!r}: {getattr(exc, 'strerror', None) or exc}")

        t = threading.Thread(target=run, daemon=True, name="dcmcli-exec")
        with self._procs_lock:
            self._procs = [p for p in self._procs if p.is_alive()] + [t]
        t.start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_path(path: Path) -> None:
    """fsync a file or a directory by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
