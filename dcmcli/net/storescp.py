"""The Storage SCP core (storescp).

Objects are received with pynetdicom's chunked mode: the data set is
streamed to a temporary file inside the output directory as it arrives, then
written once more behind dcmcli's own file meta (implementation UID, source
AE title) to a hidden ``.part`` file that is renamed into place. Memory stays
flat for large objects, the data set is never decoded and re-encoded, and a
final name never holds half an object.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import shlex
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pynetdicom import _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from dcmcli.dicomfile import encode_file_meta, read_top_level
from dcmcli.errors import ListenError, OutputError, UsageError
from dcmcli.net.association import AssociationSettings, DcmcliAE
from dcmcli.net.uids import all_transfer_syntaxes, storage_sop_classes, uid_name

LAYOUTS = {
    "flat": "{Modality}.{SOPInstanceUID}.dcm",
    "study": "{StudyInstanceUID}/{SeriesInstanceUID}/{Modality}.{SOPInstanceUID}.dcm",
    "patient": "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{Modality}.{SOPInstanceUID}.dcm",
}
DUPLICATE_POLICIES = ("overwrite", "keep", "rename", "reject")

_FIELD = re.compile(r"\{([A-Za-z][A-Za-z0-9]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_OUT_OF_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}

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
        digest = hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:10]
        safe = safe[: max_len - 11] + "_" + digest
    return safe


def check_template(template: str) -> list[str]:
    """Validate a naming template; return the attribute keywords it uses."""
    if template.startswith("/") or template.startswith("\\"):
        raise UsageError(f"invalid naming template {template!r}: it must be relative",
                         "remove the leading '/'; files go below -od")
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
class ServerOptions:
    port: int
    output_dir: Path
    bind: str = ""
    template: str = LAYOUTS["flat"]
    duplicates: str = "overwrite"
    promiscuous: bool = False
    transfer_syntaxes: list[str] = field(default_factory=all_transfer_syntaxes)
    allowed_calling: list[str] = field(default_factory=list)
    require_called: bool = False
    max_associations: int = 10
    exec_on_reception: str | None = None
    exec_on_eostudy: str | None = None
    eostudy_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    ignore: bool = False  # receive but do not store (DCMTK --ignore)


@dataclass
class Received:
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

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path) if self.path else None, "sop_class_uid": self.sop_class_uid,
                "sop_class": uid_name(self.sop_class_uid), "sop_instance_uid": self.sop_instance_uid,
                "transfer_syntax": self.transfer_syntax, "calling_aet": self.calling_aet,
                "called_aet": self.called_aet, "peer": self.peer_address, "bytes": self.size,
                "status": self.status, "status_hex": f"0x{self.status:04X}", "message": self.message}


def _meta_end(path: Path) -> int:
    """Offset where the data set starts in a file pynetdicom wrote."""
    with path.open("rb") as fp:
        head = fp.read(144)
    if head[128:132] == b"DICM" and head[132:136] == b"\x02\x00\x00\x00" and head[136:138] == b"UL":
        (glen,) = struct.unpack("<L", head[140:144])
        return 144 + glen
    from pynetdicom.dsutils import split_dataset

    return split_dataset(path)[1]


def _copy_range(src: io.BufferedReader, dst: io.BufferedWriter, offset: int, count: int) -> None:
    dst.flush()
    out_fd, in_fd = dst.fileno(), src.fileno()
    sent = 0
    try:
        while sent < count:
            n = os.sendfile(out_fd, in_fd, offset + sent, count - sent)
            if n == 0:
                break
            sent += n
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
        src.seek(offset + sent)
        dst.seek(0, os.SEEK_END)
        remaining = count - sent
        while remaining > 0:
            chunk = src.read(min(1 << 20, remaining))
            if not chunk:
                break
            dst.write(chunk)
            remaining -= len(chunk)


class _EndOfStudy:
    """Runs --exec-on-eostudy once no object of a study arrived for a while."""

    def __init__(self, run: Callable[[dict[str, str]], None], timeout: float) -> None:
        self.run = run
        self.timeout = timeout
        self.timers: dict[str, tuple[threading.Timer, dict[str, str]]] = {}
        self.lock = threading.Lock()

    def seen(self, study_uid: str, values: dict[str, str]) -> None:
        with self.lock:
            old = self.timers.pop(study_uid, None)
            if old:
                old[0].cancel()
            timer = threading.Timer(self.timeout, self._fire, args=(study_uid,))
            timer.daemon = True
            self.timers[study_uid] = (timer, values)
            timer.start()

    def _fire(self, study_uid: str) -> None:
        with self.lock:
            entry = self.timers.pop(study_uid, None)
        if entry:
            self.run(entry[1])

    def flush(self) -> None:
        with self.lock:
            entries = list(self.timers.values())
            self.timers.clear()
        for timer, values in entries:
            timer.cancel()
            self.run(values)


class StoreServer:
    """A storage SCP writing what it receives below ``output_dir``."""

    def __init__(self, settings: AssociationSettings, options: ServerOptions, *,
                 on_received: Callable[[Received], None] | None = None,
                 on_log: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.options = options
        self.on_received = on_received or (lambda r: None)
        self.on_log = on_log or (lambda level, msg: None)
        self.fields = check_template(options.template)
        needed = set(self.fields) | ({"StudyInstanceUID"} if options.exec_on_eostudy else set())
        self._tags: dict[str, int] = {}
        for kw in sorted(needed - {"SOPInstanceUID", "SOPClassUID"}):
            tag = tag_for_keyword(kw)
            if tag is None:
                raise UsageError(f"unknown attribute {{{kw}}} in the naming template",
                                 "use DICOM keywords such as PatientID or StudyInstanceUID")
            self._tags[kw] = int(tag)
        self.server: ThreadedAssociationServer | None = None
        self.port: int | None = None
        self._name_lock = threading.Lock()
        self._procs: list[threading.Thread] = []
        self.count = 0
        self.failures = 0
        self.eostudy = (_EndOfStudy(lambda v: self._exec(self.options.exec_on_eostudy, v), options.eostudy_timeout)
                        if options.exec_on_eostudy else None)
        if options.duplicates not in DUPLICATE_POLICIES:
            raise UsageError(f"unknown duplicate policy {options.duplicates!r}",
                             f"use one of {', '.join(DUPLICATE_POLICIES)}")

    # -- lifecycle -------------------------------------------------------
    def _prepare_output(self) -> None:
        out = self.options.output_dir
        try:
            out.mkdir(parents=True, exist_ok=True)
            probe = out / f".dcmcli-probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"output directory {str(out)!r} is not writable: {exc.strerror or exc}",
                              "check -od and its permissions") from None

    def start(self) -> int:
        """Bind and start serving in the background; return the port.

        pynetdicom streams each incoming data set to a temporary file (in
        TMPDIR); the handler copies it behind dcmcli's file meta into the
        output directory. A full or read-only output directory therefore
        fails in dcmcli's own write and is answered with A700, instead of
        failing inside pynetdicom's reader, which can only abort.
        """
        self._prepare_output()
        _config.STORE_RECV_CHUNKED_DATASET = True
        _config.UNRESTRICTED_STORAGE_SERVICE = self.options.promiscuous

        ae = DcmcliAE(self.settings)
        ae.maximum_associations = self.options.max_associations
        ae.require_called_aet = self.options.require_called
        ae.require_calling_aet = list(self.options.allowed_calling)
        ts = list(self.options.transfer_syntaxes)
        ae.add_supported_context(Verification, ts)
        for sop in storage_sop_classes():
            ae.add_supported_context(sop, ts)
        handlers = ae.server_handlers() + [(evt.EVT_C_STORE, self._on_c_store)]
        bind = self.options.bind
        try:
            self.server = ae.start_server((bind, self.options.port), block=False, evt_handlers=handlers)
        except OSError as exc:
            where = f"{bind or '0.0.0.0'}:{self.options.port}"
            if exc.errno == errno.EADDRINUSE:
                raise ListenError(f"cannot listen on {where}: the port is already in use",
                                  "stop the other server or choose another port") from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise ListenError(f"cannot listen on {where}: permission denied",
                                  "ports below 1024 need privileges; choose a port above 1024") from None
            raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}", "check the bind address") from None
        self.port = int(self.server.server_address[1])
        return self.port

    def stop(self, timeout: float | None = None) -> int:
        """Stop accepting, let associations in flight finish (up to ``timeout``),
        abort the rest. Returns how many had to be aborted."""
        if self.server is None:
            return 0
        server = self.server
        server.shutdown()
        deadline = time.monotonic() + (self.options.shutdown_timeout if timeout is None else timeout)
        for assoc in list(server.active_associations):
            assoc.join(max(0.0, deadline - time.monotonic()))
        aborted = 0
        for assoc in list(server.active_associations):
            if assoc.is_alive():
                assoc.abort()
                aborted += 1
        if self.eostudy:
            self.eostudy.flush()
        for t in list(self._procs):
            t.join(5)
        self.server = None
        return aborted

    # -- receiving -------------------------------------------------------
    def _on_c_store(self, event: evt.Event) -> int | Dataset:
        assoc = event.assoc
        req = event.request
        sop_class = str(req.AffectedSOPClassUID)
        sop_instance = str(req.AffectedSOPInstanceUID)
        ts = str(event.context.transfer_syntax)
        calling = assoc.requestor.ae_title
        called = assoc.acceptor.ae_title
        peer = f"{assoc.requestor.address}:{assoc.requestor.port}"
        src = Path(event.dataset_path)
        size = src.stat().st_size

        def done(status: int, path: Path | None, message: str = "") -> int | Dataset:
            rec = Received(path, sop_class, sop_instance, ts, calling, called, peer, size, status, message)
            self.count += 1
            if status != STATUS_SUCCESS:
                self.failures += 1
            self.on_received(rec)
            if status == STATUS_SUCCESS:
                return status
            rsp = Dataset()  # a failure says why, in Error Comment (0000,0902)
            rsp.Status = status
            rsp.ErrorComment = message.replace("refused: out of resources: ", "")[:64]
            return rsp

        try:
            offset = _meta_end(src)
            size = src.stat().st_size - offset
            values = self._values(src, offset, ts, sop_class, sop_instance)
        except Exception as exc:
            self.on_log("error", f"cannot parse {sop_instance} from {calling}: {exc}")
            return done(STATUS_CANNOT_UNDERSTAND, None, f"cannot parse the data set: {exc}")
        if self.options.ignore:
            return done(STATUS_SUCCESS, None, "ignored (--ignore)")
        rel = expand_template(self.options.template, values)
        out_root = self.options.output_dir
        final = out_root / rel
        try:
            if not final.resolve().is_relative_to(out_root.resolve()):
                return done(STATUS_CANNOT_UNDERSTAND, None, "refused: the name would leave the output directory")
            final.parent.mkdir(parents=True, exist_ok=True)
            with self._name_lock:
                target = self._apply_duplicate_policy(final)
                if target is None:
                    if self.options.duplicates == "reject":
                        self.on_log("warning", f"duplicate SOP instance {sop_instance} from {calling} rejected")
                        return done(STATUS_DUPLICATE, final, "duplicate SOP instance (rejected)")
                    return done(STATUS_SUCCESS, final, "duplicate SOP instance (kept the first copy)")
                part = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.part"
                part.touch()  # reserve the name while the lock is held (rename policy)
            self._write(src, offset, part, sop_class, sop_instance, ts, calling)
            os.replace(part, target)
        except OSError as exc:
            try:
                part.unlink()  # type: ignore[possibly-undefined]
            except (OSError, NameError):
                pass
            if exc.errno in _OUT_OF_SPACE:
                why = "no space left on the output device"
            elif exc.errno in _NOT_WRITABLE:
                why = "the output directory is not writable"
            else:
                why = exc.strerror or str(exc)
            self.on_log("error", f"cannot store {sop_instance} from {calling}: {why} ({final.parent}); "
                                 f"answered 0xA700")
            return done(STATUS_OUT_OF_RESOURCES, None, f"refused: out of resources: {why}")
        if self.options.exec_on_reception:
            self._exec(self.options.exec_on_reception, self._placeholders(target, calling, called, peer))
        if self.eostudy:
            study = str(values.get("StudyInstanceUID") or "")
            self.eostudy.seen(study, self._placeholders(target, calling, called, peer))
        return done(STATUS_SUCCESS, target)

    def _values(self, src: Path, offset: int, ts: str, sop_class: str, sop_instance: str) -> dict[str, object]:
        values: dict[str, object] = {"SOPInstanceUID": sop_instance, "SOPClassUID": sop_class}
        if self._tags:
            raw = read_top_level(src, offset, ts, self._tags.values())
            for kw, tag in self._tags.items():
                text = raw.get(tag, b"").decode("latin-1").strip(" \x00")
                values[kw] = text or ("OT" if kw == "Modality" else "")
        return values

    def _apply_duplicate_policy(self, final: Path) -> Path | None:
        if not final.exists():
            return final
        policy = self.options.duplicates
        if policy == "overwrite":
            return final
        if policy in ("keep", "reject"):
            return None
        n = 1
        while True:
            candidate = final.with_name(f"{final.stem}.{n}{final.suffix}")
            if not candidate.exists():
                return candidate
            n += 1

    def _write(self, src: Path, offset: int, part: Path, sop_class: str, sop_instance: str, ts: str,
               calling: str) -> None:
        total = src.stat().st_size
        meta = encode_file_meta(sop_class, sop_instance, ts, calling)
        with part.open("wb") as out, src.open("rb") as inp:
            out.write(meta)
            _copy_range(inp, out, offset, total - offset)  # type: ignore[arg-type]
        if os.stat(part).st_size != len(meta) + total - offset:
            raise OSError(errno.EIO, "short write")

    # -- external commands -----------------------------------------------
    def _placeholders(self, path: Path, calling: str, called: str, peer: str) -> dict[str, str]:
        return {"#p": str(path.parent), "#f": path.name, "#a": calling, "#c": called,
                "#r": peer.rsplit(":", 1)[0]}

    def _exec(self, command: str | None, values: dict[str, str]) -> None:
        if not command:
            return
        argv = []
        for token in shlex.split(command):
            for key, val in values.items():
                token = token.replace(key, val)
            argv.append(token)

        def run() -> None:
            try:
                rc = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode
                if rc != 0:
                    self.on_log("warning", f"command {argv[0]!r} exited with {rc}")
            except OSError as exc:
                self.on_log("error", f"cannot run {argv[0]!r}: {exc.strerror or exc}")

        t = threading.Thread(target=run, daemon=True, name="dcmcli-exec")
        self._procs = [p for p in self._procs if p.is_alive()] + [t]
        t.start()


def listening_info(server: StoreServer) -> dict[str, Any]:
    return {"port": server.port, "bind": server.options.bind or "0.0.0.0",
            "output_dir": str(server.options.output_dir), "ae_title": server.settings.calling_aet}
