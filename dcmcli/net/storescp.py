"""The Storage SCP core (storescp).

Associations are accepted on dcmcli's lean upper layer (``dcmcli.net.ul``):
the presentation contexts are negotiated in ``dcmcli.net.ul``; the data fragments of each C-STORE are written, as they arrive,
behind dcmcli's own file meta (implementation UID, source AE title) into a
hidden ``.part`` file in the output directory, which is renamed into place
when the object is complete. Memory stays flat for large objects, the data
set is never decoded and re-encoded, and a final name never holds half an
object.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import shlex
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO


from dcmcli.dicomfile import InvalidFile, encode_file_meta, read_top_level, scan_top_level
from dcmcli.errors import ListenError, OutputError, UsageError
from dcmcli.net.association import AssociationSettings, set_nodelay
from dcmcli.uids import DEFLATED, VERIFICATION, all_transfer_syntaxes, storage_sop_classes, uid_name
from dcmcli.net.ul import (C_ECHO_RQ, C_STORE_RQ, NO_DATA_SET, PDU_ASSOCIATE_RQ, Connection, ConnectionClosed,
                           PeerAborted, ProtocolError, c_echo_rsp, c_store_rsp, decode_associate, decode_command,
                           encode_associate_ac, encode_associate_rj, negotiate, receive_limit)

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
    store_as: str | None = None  # transcode received objects to this syntax before storing


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
    stored_transfer_syntax: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path) if self.path else None, "sop_class_uid": self.sop_class_uid,
                "sop_class": uid_name(self.sop_class_uid), "sop_instance_uid": self.sop_instance_uid,
                "transfer_syntax": self.transfer_syntax, "calling_aet": self.calling_aet,
                "called_aet": self.called_aet, "peer": self.peer_address, "bytes": self.size,
                "status": self.status, "status_hex": f"0x{self.status:04X}", "message": self.message,
                "stored_transfer_syntax": self.stored_transfer_syntax or self.transfer_syntax}


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


def _why(exc: OSError) -> str:
    if exc.errno in _OUT_OF_SPACE:
        return "no space left on the output device"
    if exc.errno in _NOT_WRITABLE:
        return "the output directory is not writable"
    return exc.strerror or str(exc)


@dataclass
class _Incoming:
    """One object being received: streamed into a hidden .part file."""

    message_id: int
    sop_class: str
    sop_instance: str
    ts: str
    part: Path | None = None
    fp: BinaryIO | None = None
    meta_len: int = 0
    size: int = 0
    error: OSError | None = None
    head: bytearray = field(default_factory=bytearray)  # the first bytes, for naming

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

    def close(self) -> None:
        if self.fp is not None:
            fp, self.fp = self.fp, None
            try:
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
        from pydicom.datadict import tag_for_keyword

        self._tags: dict[str, int] = {}
        for kw in sorted(needed - {"SOPInstanceUID", "SOPClassUID"}):
            tag = tag_for_keyword(kw)
            if tag is None:
                raise UsageError(f"unknown attribute {{{kw}}} in the naming template",
                                 "use DICOM keywords such as PatientID or StudyInstanceUID")
            self._tags[kw] = int(tag)
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._active_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[Connection] = []
        self._storage = set(storage_sop_classes())
        self._root = os.path.abspath(options.output_dir)
        self._dirs: set[str] = set()
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
        """Bind and start accepting in the background; return the port."""
        self._prepare_output()
        bind = self.options.bind
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        where = f"[{bind}]:{self.options.port}" if ":" in bind else f"{bind or '0.0.0.0'}:{self.options.port}"
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, self.options.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ListenError(f"cannot listen on {where}: the port is already in use",
                                  "stop the other server or choose another port") from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise ListenError(f"cannot listen on {where}: permission denied",
                                  "ports below 1024 need privileges; choose a port above 1024") from None
            raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}", "check the bind address") from None
        self._listener = sock
        self.port = int(sock.getsockname()[1])
        self._accepting = threading.Thread(target=self._accept_loop, name="storescp-accept", daemon=True)
        self._accepting.start()
        return self.port

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                client, addr = listener.accept()
            except OSError:
                return  # the listening socket was closed by stop()
            if self._stopping.is_set():
                client.close()
                return
            t = threading.Thread(target=self._serve, args=(client, addr), name=f"storescp-{addr[1]}", daemon=True)
            with self._active_lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def stop(self, timeout: float | None = None) -> int:
        """Stop accepting, let associations in flight finish (up to ``timeout``),
        abort the rest. Returns how many had to be aborted."""
        if self._listener is None:
            return 0
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._listener = None
        if self._accepting is not None:
            self._accepting.join(5)
        deadline = time.monotonic() + (self.options.shutdown_timeout if timeout is None else timeout)
        with self._active_lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._active_lock:
            conns = list(self._conns)
        for conn in conns:
            conn.abort(2, 0)
        for t in threads:
            t.join(5)
        if self.eostudy:
            self.eostudy.flush()
        for t in list(self._procs):
            t.join(5)
        return len(conns)

    @property
    def server(self) -> socket.socket | None:
        """The listening socket while the server runs, else None."""
        return self._listener

    def _supported(self, abstract_syntax: str) -> bool:
        """Verification, every storage SOP class, and with --promiscuous anything else."""
        return abstract_syntax == VERIFICATION or abstract_syntax in self._storage or self.options.promiscuous

    # -- one association -----------------------------------------------------
    def _negotiate(self, conn: Connection, peer: str) -> tuple[str, str] | None:
        """Answer the A-ASSOCIATE-RQ; return (calling, called) AE titles, or None if refused."""
        pdu_type, body = conn.read_pdu()
        if pdu_type != PDU_ASSOCIATE_RQ:
            conn.abort(2, 2)
            return None
        rq = decode_associate(pdu_type, body)
        calling = rq.calling_ae_title
        called = rq.called_ae_title
        reject: tuple[int, int, int] | None = None
        if self.options.allowed_calling and calling not in self.options.allowed_calling:
            reject = (1, 1, 3)  # calling AE title not recognised
        elif self.options.require_called and called != self.settings.calling_aet:
            reject = (1, 1, 7)  # called AE title not recognised
        else:
            with self._active_lock:
                if len(self._conns) >= self.options.max_associations:
                    reject = (2, 3, 2)  # local limit exceeded
                else:
                    self._conns.append(conn)
        if reject:
            why = {3: "calling AE title not allowed", 7: "called AE title is not ours",
                   2: "too many associations"}[reject[2]]
            self.on_log("warning", f"association from {calling}@{peer} to {called} rejected: {why}")
            conn.send(encode_associate_rj(*reject))
            conn.close()
            return None
        results = negotiate(rq.contexts, self._supported, self.options.transfer_syntaxes)
        conn.send(encode_associate_ac(rq, results, self.settings.max_pdu))
        conn.accepted = {int(cx.context_id or 0): (cx.abstract_syntax, cx.transfer_syntax[0])
                         for cx in results if cx.result == 0}
        conn.peer_max_pdu = rq.max_pdu
        return calling, called

    def _serve(self, client: socket.socket, addr: tuple[Any, ...]) -> None:
        set_nodelay(client, self.settings.tcp_nodelay)
        client.settimeout(self.settings.acse_timeout)
        conn = Connection(client, max_receive=receive_limit(self.settings.max_pdu))
        peer = f"{addr[0]}:{addr[1]}"
        agreed = None
        try:
            agreed = self._negotiate(conn, peer)
            if agreed is None:
                return
            calling, called = agreed
            client.settimeout(self.settings.network_timeout)
            self._data_phase(conn, calling, called, peer)
        except (PeerAborted, ConnectionClosed, ProtocolError, OSError) as exc:
            if isinstance(exc, ProtocolError):
                conn.abort(2, 0)
            if agreed is None and isinstance(exc, ConnectionClosed):
                # a port check or scanner: connected and left without a word
                self.on_log("debug", f"connection from {peer} closed before an association request")
            else:
                self.on_log("warning" if isinstance(exc, PeerAborted) else "error",
                            f"association from {peer} ended: {exc}")
        finally:
            with self._active_lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            if not conn.closed:
                conn.close()

    def _data_phase(self, conn: Connection, calling: str, called: str, peer: str) -> None:
        command = bytearray()
        incoming: _Incoming | None = None
        try:
            for ctx, is_command, last, value in conn.pdvs():
                if is_command:
                    command += value
                    if not last:
                        continue
                    cmd = decode_command(bytes(command))
                    command.clear()
                    field_ = cmd.get(0x0100)
                    if ctx not in conn.accepted:
                        raise ProtocolError(f"message on presentation context {ctx}, which was not accepted")
                    if field_ == C_ECHO_RQ:
                        conn.send_command(ctx, c_echo_rsp(int(cmd.get(0x0110, 0)), str(cmd.get(0x0002, ""))))
                    elif field_ == C_STORE_RQ and cmd.get(0x0800) != NO_DATA_SET:
                        incoming = self._begin(conn.accepted[ctx][1], cmd, calling)
                    else:
                        raise ProtocolError(f"unsupported DIMSE command 0x{int(field_ or 0):04X}")
                else:
                    if incoming is None:
                        raise ProtocolError("a data set arrived without a C-STORE request")
                    incoming.write(value)
                    if last:
                        status, comment = self._finish(incoming, calling, called, peer)
                        conn.send_command(ctx, c_store_rsp(incoming.message_id, incoming.sop_class,
                                                           incoming.sop_instance, status, comment))
                        incoming = None
        finally:
            if incoming is not None:  # ended mid-object: no half-written file stays
                incoming.discard()

    def _begin(self, ts: str, cmd: dict[int, int | str], calling: str) -> _Incoming:
        sop_class = str(cmd.get(0x0002, ""))
        sop_instance = str(cmd.get(0x1000, ""))
        inc = _Incoming(int(cmd.get(0x0110, 0)), sop_class, sop_instance, ts)
        if self.options.ignore:
            return inc
        inc.part = self.options.output_dir / f".{uuid.uuid4().hex}.part"
        try:
            inc.fp = inc.part.open("wb")
            inc.meta_len = inc.fp.write(encode_file_meta(sop_class, sop_instance, ts, calling))
        except OSError as exc:
            inc.fail(exc)
        return inc

    def _finish(self, inc: _Incoming, calling: str, called: str, peer: str) -> tuple[int, str | None]:
        """Close, name and place one received object; return its status and comment."""

        def done(status: int, path: Path | None, message: str = "",
                 stored_ts: str | None = None) -> tuple[int, str | None]:
            rec = Received(path, inc.sop_class, inc.sop_instance, inc.ts, calling, called, peer, inc.size,
                           status, message, stored_ts or inc.ts)
            with self._active_lock:
                self.count += 1
                if status != STATUS_SUCCESS:
                    self.failures += 1
            self.on_received(rec)
            return status, (message.replace("refused: out of resources: ", "") if status else None)

        if self.options.ignore:
            return done(STATUS_SUCCESS, None, "ignored (--ignore)")
        inc.close()
        if inc.error is not None:
            why = _why(inc.error)
            inc.discard()
            self.on_log("error", f"cannot store {inc.sop_instance} from {calling}: {why}; answered 0xA700")
            return done(STATUS_OUT_OF_RESOURCES, None, f"refused: out of resources: {why}")
        assert inc.part is not None
        try:
            values = self._values(inc, inc.sop_class, inc.sop_instance)
        except Exception as exc:  # a data set we cannot walk
            inc.discard()
            self.on_log("error", f"cannot parse {inc.sop_instance} from {calling}: {exc}")
            return done(STATUS_CANNOT_UNDERSTAND, None, f"cannot parse the data set: {exc}")
        stored_ts, note = self._store_as(inc)
        root = self._root
        final = Path(os.path.normpath(os.path.join(root, expand_template(self.options.template, values))))
        try:
            # Every component is sanitised already; this is the last line of defence.
            if os.path.commonpath([root, final]) != root:
                inc.discard()
                return done(STATUS_CANNOT_UNDERSTAND, None, "refused: the name would leave the output directory")
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
                        return done(STATUS_DUPLICATE, final, "duplicate SOP instance (rejected)")
                    return done(STATUS_SUCCESS, final, "duplicate SOP instance (kept the first copy)")
                try:
                    os.replace(inc.part, target)
                except FileNotFoundError:  # the folder was removed under us: make it again
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(inc.part, target)
        except OSError as exc:
            inc.discard()
            why = _why(exc)
            self.on_log("error", f"cannot store {inc.sop_instance} from {calling}: {why} ({final.parent}); "
                                 f"answered 0xA700")
            return done(STATUS_OUT_OF_RESOURCES, None, f"refused: out of resources: {why}")
        if self.options.exec_on_reception:
            self._exec(self.options.exec_on_reception, self._placeholders(target, calling, called, peer))
        if self.eostudy:
            study = str(values.get("StudyInstanceUID") or "")
            self.eostudy.seen(study, self._placeholders(target, calling, called, peer))
        return done(STATUS_SUCCESS, target, note, stored_ts)

    def _store_as(self, inc: _Incoming) -> tuple[str, str]:
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

    def _values(self, inc: _Incoming, sop_class: str, sop_instance: str) -> dict[str, object]:
        values: dict[str, object] = {"SOPInstanceUID": sop_instance, "SOPClassUID": sop_class}
        if self._tags:
            wanted = set(self._tags.values())
            try:  # from the start of the data kept in memory
                if inc.ts == DEFLATED:
                    raise InvalidFile("deflated: read with pydicom")
                raw = scan_top_level(io.BytesIO(inc.head), len(inc.head), inc.ts, wanted)
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
