"""C-MOVE and C-GET SCU (movescu, getscu).

Both send one request and follow its pending responses (remaining,
completed, failed, warning sub-operations), cancel after N sub-operations
when asked, and end with an outcome whose exit code follows one rule for
both (see ``RetrieveOutcome.exit_code``).

C-MOVE: the peer opens its own associations to the move destination;
movescu can run that destination itself (``move_receiver``: storescp's server, the shared
acceptor and storage writer, accepting only the peer's address while the
move runs). C-GET: the objects come back on the same association, as
C-STORE requests that ``Association.exchange`` hands to the shared storage
handler; the storage SOP classes are proposed with the SCP role (role
selection), planned by ``plan_storage`` from a C-FIND at IMAGE level (asked
on the first association) so that a study fits the 128 contexts of an
association (or several).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import TYPE_CHECKING

from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.errors import ExitCode, NetworkError
from dcmcli.net.acceptor import AcceptorOptions
from dcmcli.net.association import Association, AssociationSettings, NegotiationReport, open_association
from dcmcli.net.contexts import CEN_PROPOSED, storage_common_extended
from dcmcli.net.dimse import C_GET_RQ, C_GET_RSP, C_MOVE_RQ, C_MOVE_RSP, C_STORE_RQ, FAILED_SOP_INSTANCES, Command, request
from dcmcli.net.peer import Peer
from dcmcli.records import dataclass
from dcmcli.uids import storage_sop_classes
from dcmcli.net.services.query import FIND_STATUSES, QUERY_SYNTAXES, lost_during, unknown_ae_hint
from dcmcli.net.services.storage import (STORAGE_SCP_CONTEXTS, STORAGE_SCP_STATUSES, StorageOptions, StorageService,
                                        StoreServer, store_handler)
from dcmcli.net.services.writer import Received, StorageWriter, WriterOptions
from dcmcli.net.ul import ConnectionClosed, Context, PeerAborted, ProtocolError, RoleSelection
from dcmcli.status import Category, Status, describe
from dcmcli.uids import (EBE, ELE, HTJ2K, HTJ2K_LOSSLESS, ILE, J2K, J2K_LOSSLESS, JPEG_BASELINE, JPEG_EXTENDED,
                         JPEG_LOSSLESS_P14, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, JPEG_LS_NEAR_LOSSLESS, RLE,
                         all_transfer_syntaxes, uid_name)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

MAX_CONTEXTS = 128


@dataclass
class Progress:
    """Sub-operation counts of one C-MOVE/C-GET response (None: not in the response)."""

    status: Status
    remaining: int | None
    completed: int | None
    failed: int | None
    warning: int | None

    @classmethod
    def of(cls, cmd: Command, service: str) -> Progress:
        return cls(describe(cmd.status, service), cmd.number(0x1020), cmd.number(0x1021), cmd.number(0x1022),
                   cmd.number(0x1023))

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status.as_dict(), "remaining": self.remaining, "completed": self.completed,
                "failed": self.failed, "warning": self.warning}


@dataclass
class RetrieveOptions:
    priority: int = 0
    cancel_after: int | None = None  # sub-operations
    warnings_as_errors: bool = False
    #: C-GET: a SOP Class Common Extended Negotiation item per storage class proposed (see StoreOptions).
    common_extended: bool = False
    related_general: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class RetrieveOutcome:
    """How one C-MOVE or C-GET ended, with what we received ourselves."""

    service: str
    status: Status
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int | None = None
    failed_uids: list[str] = field(default_factory=list)
    error_comment: str = ""
    cancelled: bool = False
    seconds: float = 0.0
    received: int = 0  # objects our receiver (movescu +P, getscu) stored
    refused: int = 0  # objects our receiver answered with a failure status
    hint: str = ""

    @property
    def missing(self) -> int:
        """Sub-operations the peer counts as completed that never reached our receiver."""
        return max(0, self.completed + self.warning - self.received - self.refused)

    def exit_code(self, warnings_as_errors: bool = False, *, receiving: bool = False) -> ExitCode:
        """One rule for movescu and getscu:

        * a failure status (A7xx, A801, A9xx, Cxxx) -> operation-failed;
        * any sub-operation failed, or (with our own receiver) an object the
          peer counts as sent never arrived -> operation-failed;
        * only warnings (B000 with warning sub-operations, or stored with
          warnings) -> operation-warning with --warnings-as-errors, else ok;
        * cancelled as asked (FE00) -> ok; nothing matched -> ok.
        """
        if self.status.category == Category.FAILURE:
            return ExitCode.OPERATION_FAILED
        if self.failed or self.refused or (receiving and self.missing):
            return ExitCode.OPERATION_FAILED
        if self.warning or self.status.category == Category.WARNING:
            return ExitCode.OPERATION_WARNING if warnings_as_errors else ExitCode.OK
        return ExitCode.OK

    def as_dict(self) -> dict[str, object]:
        return {"service": self.service, "status": self.status.as_dict(), "completed": self.completed,
                "failed": self.failed, "warning": self.warning, "remaining": self.remaining,
                "failed_sop_instance_uids": self.failed_uids, "error_comment": self.error_comment or None,
                "cancelled": self.cancelled, "seconds": round(self.seconds, 3), "received": self.received,
                "refused": self.refused, "missing": self.missing, "hint": self.hint or None}


def _failed_list(cmd: Command, payload: bytes | None, ts: str) -> list[str]:
    """Failed SOP Instance UID List (0008,0058): in the response's data set
    (PS3.4 C.4.2.1.4), or in its command set (Orthanc)."""
    text = cmd.get(FAILED_SOP_INSTANCES)
    if isinstance(text, str) and text:
        return [u for u in text.split("\\") if u]
    if payload:
        from dcmcli.dataset import InvalidDataset, decode

        try:
            ds = decode(payload, ts)
        except InvalidDataset:
            return []
        value = ds.get("FailedSOPInstanceUIDList")
        if value:
            return [str(value)] if isinstance(value, str) else [str(u) for u in value]
    return []


def status_hint(status: Status, service: str, settings: AssociationSettings, destination: str | None,
                refused: int = 0) -> str:
    """What to try after a failure status. ``refused``: sub-operations our
    own receiver answered with a failure (then the peer is not to blame)."""
    code = status.code
    if refused and (code == 0xA702 or 0xA700 <= code <= 0xA7FF or code == 0xB000 or 0xC000 <= code <= 0xCFFF):
        return (f"we refused {refused} object{'s' if refused != 1 else ''} ourselves (see the errors above: "
                f"no space left, --on-duplicate reject, an output directory that cannot be written)")
    if code == 0xA801:
        return (f"the peer does not know the move destination AE title {destination!r}: add {destination} with this "
                f"host and the receiver's port to the peer's configuration (for Orthanc: DicomModalities; for "
                f"dcmqrscp: its HostTable)")
    if service == "C-MOVE" and 0xC000 <= code <= 0xCFFF:
        return (f"the peer could not process the move; if it does not know the destination {destination!r} "
                f"(Orthanc answers C000 then), add {destination} with this host and the receiver's port to its "
                f"configuration (for Orthanc: DicomModalities); else see the peer's log")
    if code == 0xA702 and service == "C-MOVE":
        return (f"the peer could not send the objects to {destination!r}: is that receiver running, and does the "
                f"peer's configuration give its right host and port? (see the peer's log)")
    if code == 0xA702:
        return ("the peer could not perform the sub-operations: for C-GET it may need other storage contexts "
                "(see -v; --store-tc chooses them)")
    if code == 0xA701:
        return "the peer is out of resources; retrieve less at a time"
    if code == 0xA900:
        return "the identifier does not fit the information model: check the keys and -L"
    if 0xC000 <= code <= 0xCFFF:
        return "the peer could not process the request; see its log (-d shows what was sent)"
    return ""


def _follow(assoc: Association, context_id: int, field_: int, rsp_field: int, service: str, sop_class: str,
            identifier: bytes, options: RetrieveOptions, extra: dict[str, object],
            on_progress: Callable[[Progress], None] | None,
            handlers: dict[int, Callable[..., None]] | None = None) -> RetrieveOutcome:
    message_id = assoc.next_message_id()
    ts = assoc.accepted[context_id][1]
    t0 = time.perf_counter()
    last: list[Progress] = []
    failed_uids: list[str] = []
    answered = 0

    def on_response(cmd: Command, payload: bytes | None) -> None:
        nonlocal answered
        if cmd.field != rsp_field:
            raise ProtocolError(f"a {cmd.name} answered a {service}-RQ")
        answered += 1
        p = Progress.of(cmd, service)
        last.append(p)
        if p.status.category != Category.PENDING:
            failed_uids.extend(_failed_list(cmd, payload, ts))
        if on_progress:
            on_progress(p)

    def should_cancel() -> bool:
        if options.cancel_after is None or not last:
            return False
        p = last[-1]
        done = (p.completed or 0) + (p.failed or 0) + (p.warning or 0)
        return done >= options.cancel_after

    command = request(field_, message_id, dataset=True, affected_sop_class=sop_class, priority=options.priority,
                      **extra)  # type: ignore[arg-type]
    try:
        final = assoc.exchange(context_id, command, identifier, message_id, on_response=on_response,
                               should_cancel=should_cancel, handlers=handlers)
    except (ConnectionClosed, PeerAborted, ProtocolError) as exc:
        raise lost_during(assoc, exc, service, answered) from None
    p = Progress.of(final, service)
    prev = last[-2] if len(last) > 1 else None

    def count(value: int | None, before: int | None) -> int:
        return value if value is not None else (before or 0)

    outcome = RetrieveOutcome(
        service, p.status,
        completed=count(p.completed, prev.completed if prev else None),
        failed=count(p.failed, prev.failed if prev else None),
        warning=count(p.warning, prev.warning if prev else None),
        remaining=p.remaining, failed_uids=failed_uids, error_comment=final.text(0x0902),
        cancelled=p.status.category == Category.CANCEL, seconds=time.perf_counter() - t0)
    return outcome


# -- C-MOVE ----------------------------------------------------------------------

def move_receiver(settings: AssociationSettings, port: int, writer: WriterOptions, hosts: list[str] | None, *,
                  on_received: Callable[[Received], None] | None = None,
                  on_log: Callable[[str, str], None] | None = None,
                  on_association: Callable[[NegotiationReport], None] | None = None) -> StoreServer:
    """movescu's built-in storage SCP: storescp's server (the shared acceptor
    and writer) on ``port``, any storage SOP class, accepting associations
    only from ``hosts`` while the move runs."""
    bind = "::" if hosts and any(":" in h for h in hosts) else ""
    return StoreServer(settings, AcceptorOptions(port=port, bind=bind, allowed_hosts=hosts, max_associations=8),
                       writer, StorageOptions(promiscuous=True), on_received=on_received, on_log=on_log,
                       on_association=on_association)


def peer_addresses(peer: Peer) -> list[str]:
    """Every address ``peer.host`` resolves to (where its sub-associations come from)."""
    try:
        infos = socket.getaddrinfo(peer.host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return [peer.host]
    found = {str(i[4][0]) for i in infos}
    mapped = {f"::ffff:{a}" for a in found if ":" not in a}
    return sorted(found | mapped)


def _combine(total: RetrieveOutcome | None, outcome: RetrieveOutcome) -> RetrieveOutcome:
    """Several requests (one per series, or per association) as one outcome:
    counts add up; the worst status wins."""
    if total is None:
        return outcome
    total.completed += outcome.completed
    total.failed += outcome.failed
    total.warning += outcome.warning
    total.failed_uids += outcome.failed_uids
    total.seconds += outcome.seconds
    rank = {Category.SUCCESS: 0, Category.WARNING: 1, Category.CANCEL: 2, Category.FAILURE: 3}
    if rank.get(outcome.status.category, 3) > rank.get(total.status.category, 3):
        total.status, total.error_comment = outcome.status, outcome.error_comment
    total.cancelled = total.cancelled or outcome.cancelled
    return total


def _stop_after(outcome: RetrieveOutcome) -> bool:
    return outcome.status.category in (Category.FAILURE, Category.CANCEL)


def move(settings: AssociationSettings, peer: Peer, sop_class: str, identifiers: Sequence[Dataset], destination: str,
         options: RetrieveOptions, *, receiver: StoreServer | None = None,
         on_report: Callable[[NegotiationReport], None] | None = None,
         on_progress: Callable[[Progress], None] | None = None) -> RetrieveOutcome:
    """C-MOVE of each identifier to ``destination``, on one association; with
    ``receiver`` running, what it stored joins the outcome."""
    from dcmcli.dataset import encode

    total: RetrieveOutcome | None = None
    try:
        with open_association(settings, peer, [Context(None, sop_class, list(QUERY_SYNTAXES))]) as assoc:
            if on_report:
                on_report(assoc.report)
            context_id = assoc.context_for(sop_class)
            assert context_id is not None
            ts = assoc.accepted[context_id][1]
            for ident in identifiers:
                outcome = _follow(assoc, context_id, C_MOVE_RQ, C_MOVE_RSP, "C-MOVE", sop_class, encode(ident, ts),
                                  options, {"move_destination": destination}, on_progress)
                total = _combine(total, outcome)
                if _stop_after(outcome):
                    break
    finally:
        if receiver is not None:
            # The peer may release its sub-association after its final response.
            receiver.stop(timeout=max(5.0, settings.acse_timeout))
    assert total is not None
    if receiver is not None:
        total.received = receiver.storage.count - receiver.storage.failures
        total.refused = receiver.storage.failures
    total.hint = status_hint(total.status, "C-MOVE", settings, destination, total.refused)
    return total


def resolve_identifiers(settings: AssociationSettings, peer: Peer, model: object, identifier: Dataset,
                        on_log: Callable[[str, str], None] | None = None) -> list[Dataset]:
    """Identifiers a retrieve can send. A C-MOVE/C-GET identifier names the
    level's unique key (PS3.4 C.4.2.2.1); when the user gave other keys
    instead (``-k PatientName=Doe*``), the matches are found first (C-FIND
    at the same level) and retrieved by their UIDs, one request per parent."""
    from dcmcli.net.services.query import UNIQUE_KEY, FindOptions, Match, find
    from dcmcli.uids import QueryModel

    assert isinstance(model, QueryModel)
    level = str(identifier.get("QueryRetrieveLevel") or "")
    key = UNIQUE_KEY.get(level)
    if not key or identifier.get(key):
        return [identifier]
    if model.find is None:
        from dcmcli.errors import UsageError

        raise UsageError(f"a retrieve at {level} level needs {key}=...", f"give -k {key}=UID (findscu lists them)")
    import copy

    query = copy.deepcopy(identifier)
    parents = [UNIQUE_KEY[lv] for lv in model.levels[:model.levels.index(level)] if lv in UNIQUE_KEY
               and not (lv == "PATIENT" and model.name == "study")]
    for kw in [*parents, key]:
        if kw not in query:
            setattr(query, kw, "")
    groups: dict[tuple[str, ...], list[str]] = {}

    def on_match(m: Match) -> None:
        r = m.dataset()
        uid = str(r.get(key) or "")
        if uid:
            groups.setdefault(tuple(str(r.get(p) or "") for p in parents), []).append(uid)

    outcome = find(settings, peer, model.find, query, FindOptions(), on_match=on_match)[-1]
    if outcome.status.category == Category.FAILURE:
        from dcmcli.errors import DcmcliError

        raise DcmcliError(f"finding what to retrieve failed: {outcome.status.meaning} ({outcome.status.hex})"
                          + (f": {outcome.error_comment}" if outcome.error_comment else ""),
                          f"give -k {key}=UID", exit_code=ExitCode.OPERATION_FAILED)
    from pydicom.dataset import Dataset as DS

    out = []
    for parent_values, uids in groups.items():
        ds = DS()
        ds.QueryRetrieveLevel = level
        for kw, value in zip(parents, parent_values):
            setattr(ds, kw, value)
        unique = list(dict.fromkeys(uids))
        setattr(ds, key, unique if len(unique) > 1 else unique[0])
        out.append(ds)
    if on_log:
        n = sum(len(set(u)) for u in groups.values())
        plural = {"STUDY": "studies", "SERIES": "series"}.get(level, level.lower() + "s")
        on_log("info", f"{n} {level.lower() if n == 1 else plural} match{'es' if n == 1 else ''} the keys; "
                       f"retrieving {'it' if n == 1 else 'them'} by {key}")
    return out


def _files_by_series(paths: Sequence[str]) -> dict[tuple[str, str, str], list[tuple[str, str, str]]]:
    """(patient, study, series) -> [(SOP instance, SOP class, transfer syntax)] of the files."""
    from pathlib import Path as P

    from dcmcli.dicomfile import collect_inputs, read_top_level
    from dcmcli.errors import InputError

    inputs = collect_inputs(paths)
    if not inputs.files:
        problem = inputs.nothing_to_send()
        raise InputError(f"--from-files: {problem[1] if problem else 'no DICOM files'}",
                         "name DICOM files or folders holding them")
    by_series: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}
    for info in inputs.files:
        raw = read_top_level(P(info.path), info.dataset_offset, info.transfer_syntax,
                             [0x00100020, 0x0020000D, 0x0020000E])
        text = {t: v.decode("latin-1").strip(" \x00") for t, v in raw.items()}
        key = (text.get(0x00100020, ""), text.get(0x0020000D, ""), text.get(0x0020000E, ""))
        if not key[1] or not key[2]:
            raise InputError(f"--from-files: {info.path} has no Study or Series Instance UID",
                             "only files with both UIDs can be retrieved by instance")
        by_series.setdefault(key, []).append((info.sop_instance_uid, info.sop_class_uid, info.transfer_syntax))
    return by_series


def identifiers_from_files(paths: Sequence[str], model: object) -> list[Dataset]:
    """Identifiers that retrieve exactly the instances of these files: one
    IMAGE-level request per series, listing its SOP Instance UIDs."""
    from dcmcli.errors import UsageError
    from dcmcli.uids import QueryModel

    assert isinstance(model, QueryModel)
    if "IMAGE" not in model.levels:
        # Sent anyway, dcmqrscp answers Success with nothing to send: "nothing matched".
        raise UsageError(f"--from-files retrieves instances by SOP Instance UID (IMAGE level), which the "
                         f"{model.title} model does not have", "use -S (Study Root) or -P (Patient Root)")
    out = []
    for (patient, study, series), found in _files_by_series(paths).items():
        uids = list(dict.fromkeys(uid for uid, _, _ in found))
        out.append(_image_identifier(study, series, uids, patient if model.name == "patient" else None))
    return out


def inventory_from_files(paths: Sequence[str]) -> Inventory:
    """What a C-GET of exactly these files brings, known from the files
    themselves: their SOP classes and transfer syntaxes (no C-FIND needed).
    The syntaxes matter: a peer that picks uncompressed from a context
    listing everything may be unable to decompress (Orthanc and JPEG 2000),
    while a context of the file's own syntax lets it send it as stored."""
    classes: dict[str, list[str]] = {}
    instances: list[tuple[str, str, str, str]] = []
    for (_patient, study, series), found in _files_by_series(paths).items():
        for uid, sop_class, ts in found:
            known = classes.setdefault(sop_class, [])
            if ts not in known:
                known.append(ts)
            instances.append((study, series, uid, sop_class))
    return Inventory(classes, instances, len(instances))


# -- C-GET -------------------------------------------------------------------------

#: What a C-GET proposes per storage SOP class, beside one context listing
#: every syntax (uncompressed first): one context per compressed syntax, for
#: peers that accept the first syntax of a list (Orthanc picks uncompressed,
#: and cannot decompress JPEG 2000 to send it so).
GET_COMPRESSED = (JPEG_LS_LOSSLESS, J2K_LOSSLESS, J2K, JPEG_BASELINE, JPEG_LOSSLESS_SV1, JPEG_EXTENDED, RLE,
                  JPEG_LOSSLESS_P14, JPEG_LS_NEAR_LOSSLESS, HTJ2K_LOSSLESS, HTJ2K)

#: Storage classes proposed when the peer does not say which classes a study holds.
COMMON_STORAGE = (
    "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.4",
    "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.1.3", "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1",
    "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130",
    "1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3", "1.2.840.10008.5.1.4.1.1.7.4", "1.2.840.10008.5.1.4.1.1.12.1",
    "1.2.840.10008.5.1.4.1.1.12.1.1", "1.2.840.10008.5.1.4.1.1.12.2", "1.2.840.10008.5.1.4.1.1.481.1",
    "1.2.840.10008.5.1.4.1.1.481.2", "1.2.840.10008.5.1.4.1.1.481.3", "1.2.840.10008.5.1.4.1.1.481.5",
    "1.2.840.10008.5.1.4.1.1.481.8", "1.2.840.10008.5.1.4.1.1.481.4", "1.2.840.10008.5.1.4.1.1.88.11",
    "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.34",
    "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.5.1.4.1.1.88.67", "1.2.840.10008.5.1.4.1.1.88.50",
    "1.2.840.10008.5.1.4.1.1.11.1", "1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.77.1.1",
    "1.2.840.10008.5.1.4.1.1.77.1.4", "1.2.840.10008.5.1.4.1.1.77.1.2", "1.2.840.10008.5.1.4.1.1.77.1.5.1",
    "1.2.840.10008.5.1.4.1.1.77.1.6", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.1",
    "1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.13.1.3", "1.2.840.10008.5.1.4.1.1.30",
    "1.2.840.10008.5.1.4.1.1.2.2", "1.2.840.10008.5.1.4.1.1.4.4", "1.2.840.10008.5.1.4.1.1.128.1",
    "1.2.840.10008.5.1.4.1.1.9.1.1", "1.2.840.10008.5.1.4.1.1.9.1.2", "1.2.840.10008.5.1.4.1.1.12.1",
)


@dataclass
class StoragePlan:
    """Storage contexts for one C-GET association, and what to ask for on it."""

    contexts: list[tuple[str, list[str]]]
    identifiers: list[Dataset] = field(default_factory=list)  # empty: the user's identifier


def get_storage_syntaxes() -> list[str]:
    """getscu's storage context of every syntax: uncompressed first, then storescp's order."""
    return [ELE, ILE, EBE] + [t for t in all_transfer_syntaxes() if t not in (ELE, ILE, EBE)]


def unknown_class_syntaxes() -> list[str]:
    """getscu's one context per common storage class when the peer did not say which classes it has."""
    return [ELE, ILE] + [t for t in all_transfer_syntaxes() if t not in (ELE, ILE)]


def storage_contexts(classes: dict[str, list[str]], *, compressed: bool = True) -> list[tuple[str, list[str]]]:
    """(SOP class, [syntaxes]) pairs: per class, one context of every syntax
    (uncompressed first, then what the peer said the objects are in, then the
    rest), and one context per compressed syntax."""
    everything = get_storage_syntaxes()
    pairs: list[tuple[str, list[str]]] = []
    for sop, known in classes.items():
        first = [ELE, ILE] + [t for t in known if t not in (ELE, ILE)]
        pairs.append((sop, first + [t for t in everything if t not in first]))
        if compressed:
            single = list(dict.fromkeys([t for t in known if t not in (ELE, ILE, EBE)] + list(GET_COMPRESSED)))
            pairs += [(sop, [t]) for t in single]
    return pairs


def parse_store_tc(specs: Sequence[str]) -> dict[str, list[str]]:
    """``--store-tc SOPCLASS[:TS,...]`` into {SOP class: [syntaxes]} ([] = every syntax)."""
    from dcmcli.uids import parse_sop_class, parse_transfer_syntax

    out: dict[str, list[str]] = {}
    for spec in specs:
        sop, _, ts = spec.partition(":")
        out.setdefault(parse_sop_class(sop), []).extend(parse_transfer_syntax(t) for t in ts.split(",") if t.strip())
    return out


def plan_storage(classes: dict[str, list[str]] | None, instances: list[tuple[str, str, str, str]] | None,
                 base: Dataset | None, exact: dict[str, list[str]] | None = None,
                 limit: int = MAX_CONTEXTS - 1) -> list[StoragePlan]:
    """The associations a C-GET needs.

    ``exact`` (``--store-tc``): those contexts only. ``classes``: the SOP
    classes (and syntaxes) the study holds; when they fit one association,
    one C-GET with the user's identifier; else the classes are spread over
    several associations, each asking at IMAGE level for its instances
    (``instances``: study, series, SOP instance UID, SOP class). Unknown
    classes (None): the common storage classes, one context each.
    """
    if exact:
        pairs = [(sop, ts or [ELE, ILE]) for sop, ts in exact.items()]
        return [StoragePlan(pairs[i:i + limit]) for i in range(0, len(pairs), limit)][:1]
    if not classes:
        return [StoragePlan([(sop, unknown_class_syntaxes()) for sop in list(dict.fromkeys(COMMON_STORAGE))[:limit]])]
    pairs = storage_contexts(classes)
    if len(pairs) <= limit:
        return [StoragePlan(pairs)]
    if instances is None or base is None:
        return [StoragePlan(storage_contexts(classes, compressed=False)[:limit])]
    # Spread: classes in groups that fit, each group's instances asked for by UID.
    per_class = 1 + len(GET_COMPRESSED)
    group_size = max(1, limit // per_class)
    sops = list(classes)
    plans = []
    for i in range(0, len(sops), group_size):
        group = {s: classes[s] for s in sops[i:i + group_size]}
        plan = StoragePlan(storage_contexts(group))
        by_series: dict[tuple[str, str], list[str]] = {}
        for study, series, sop_uid, sop_class in instances:
            if sop_class in group:
                by_series.setdefault((study, series), []).append(sop_uid)
        for (study, series), uids in by_series.items():
            plan.identifiers.append(_image_identifier(study, series, uids, base.get("PatientID") or None,
                                                      base.get("SpecificCharacterSet")))
        plans.append(plan)
    return plans


def _image_identifier(study: str, series: str, uids: list[str], patient_id: str | None = None,
                      charset: object = None) -> Dataset:
    """An IMAGE-level identifier naming instances of one series by UID (a list matches any)."""
    from pydicom.dataset import Dataset as DS

    ds = DS()
    if patient_id:
        ds.PatientID = patient_id
    if charset:
        ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = uids if len(uids) > 1 else uids[0]
    return ds


@dataclass
class Inventory:
    """What a C-FIND at IMAGE level said a retrieve will bring."""

    classes: dict[str, list[str]]  # SOP class -> transfer syntaxes the peer named
    instances: list[tuple[str, str, str, str]]  # (study, series, SOP instance, SOP class)
    matches: int


def inventory_request(model: object, identifier: Dataset) -> tuple[str, Dataset] | None:
    """The C-FIND (its SOP class and identifier, at IMAGE level with the same
    keys) that asks which SOP classes and syntaxes a retrieve of ``identifier``
    brings; None when the model has no IMAGE level to ask at."""
    import copy

    from dcmcli.uids import QUERY_MODELS, QueryModel

    assert isinstance(model, QueryModel)
    find_model = model if model.find and "IMAGE" in model.levels else next(m for m in QUERY_MODELS if m.name == "study")
    if "IMAGE" not in find_model.levels or find_model.find is None:
        return None
    ds = copy.deepcopy(identifier)
    ds.QueryRetrieveLevel = "IMAGE"
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if kw not in ds:
            setattr(ds, kw, "")
    if find_model.name == "patient" and "PatientID" not in ds:
        ds.PatientID = ""
    ds.SOPClassUID = ""
    ds.add_new(0x00083002, "UI", None)  # Available Transfer Syntax UID
    return find_model.find, ds


def inventory_on(assoc: Association, find_sop_class: str, ds: Dataset, *,
                 on_log: Callable[[str, str], None] | None = None) -> Inventory | None:
    """The inventory C-FIND (``inventory_request``) on an open association with
    its context; None when the peer does not answer SOP classes (or fails)."""
    from dcmcli.dataset import encode, fast_json
    from dcmcli.net.services.query import FindOptions, Match, run_find

    classes: dict[str, list[str]] = {}
    instances: list[tuple[str, str, str, str]] = []
    count = 0

    def first(record: dict, tag: str) -> str:
        values = (record.get(tag) or {}).get("Value") or [""]
        return str(values[0] or "")

    def on_match(m: Match) -> None:
        nonlocal count
        count += 1
        # straight from the bytes (pydicom only for what fast_json declines)
        record = fast_json(m.data, m.transfer_syntax)
        if record is None:
            from dcmcli.dataset import to_json

            record = to_json(m.dataset())
        sop = first(record, "00080016")
        if not sop:
            return
        found = [str(t) for t in (record.get("00083002") or {}).get("Value") or [] if t]
        known = classes.setdefault(sop, [])
        known.extend(t for t in found if t not in known)
        instances.append((first(record, "0020000D"), first(record, "0020000E"), first(record, "00080018"), sop))

    context_id = assoc.context_for(find_sop_class)
    if context_id is None:
        return None
    # A peer that leaves SOP Class UID out of its first answer (dcmqrscp does) leaves it out of
    # all: cancel there, rather than read thousands of answers that cannot say anything.
    outcome = run_find(assoc, context_id, find_sop_class, encode(ds, assoc.accepted[context_id][1]),
                       FindOptions(stop=lambda: count > 0 and not classes), 1, on_match)
    if count and not classes and on_log:
        answers = f"{count} answer{'s' if count != 1 else ''}"
        on_log("info", f"C-FIND at IMAGE level cancelled after {answers}: no SOP Class UID in them"
               if outcome.status.category == Category.CANCEL else f"no SOP Class UID in the C-FIND's {answers}")
    if outcome.status.category == Category.FAILURE or (count and not classes):
        return None
    return Inventory(classes, instances, count)


def get(settings: AssociationSettings, peer: Peer, sop_class: str, identifiers: Sequence[Dataset],
        plans: list[StoragePlan],
        writer: StorageWriter, options: RetrieveOptions, *,
        on_received: Callable[[Received], None] | None = None,
        on_report: Callable[[NegotiationReport], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_log: Callable[[str, str], None] | None = None,
        ask: tuple[object, Dataset] | None = None,
        on_inventory: Callable[[Inventory | None], None] | None = None) -> RetrieveOutcome:
    """C-GET: the objects come back on our association as C-STORE requests,
    stored by the shared storage handler; one association per plan.

    ``ask`` (the model and the user's identifier): ``plans`` are the common
    storage classes, made without knowing what comes; the first association
    also proposes the model's C-FIND and asks on it first which SOP classes
    and syntaxes the objects have (``inventory_on``, told to ``on_inventory``).
    When the peer says, that association is released and the C-GET runs on
    associations planned for exactly those (``plan_storage``); when it does
    not (dcmqrscp), the C-GET runs on the same association: no second one."""
    from dcmcli.dataset import encode

    storage = StorageService(writer, StorageOptions(promiscuous=True), on_received=on_received)
    log = on_log or (lambda level, msg: None)
    handlers = {C_STORE_RQ: store_handler(storage, log)}
    total: RetrieveOutcome | None = None
    request = inventory_request(*ask) if ask is not None else None
    if ask is not None and request is None and on_inventory:
        on_inventory(None)  # no IMAGE level to ask at
    queue = list(plans)
    while queue:
        plan = queue.pop(0)
        contexts = [Context(None, sop_class, list(QUERY_SYNTAXES))] + [Context(None, s, list(t)) for s, t in plan.contexts]
        if request is not None:
            contexts.append(Context(None, request[0], list(QUERY_SYNTAXES)))
        roles = [RoleSelection(s, False, True) for s in dict.fromkeys(s for s, _ in plan.contexts)]
        common = storage_common_extended((s for s, _ in plan.contexts), options.related_general,
                                         enabled=options.common_extended)
        with open_association(settings, peer, contexts, roles=roles, common_extended=common) as assoc:
            if on_report:
                on_report(assoc.report)
            if request is not None:
                assert ask is not None
                inv = inventory_on(assoc, request[0], request[1], on_log=on_log)
                request = None
                if on_inventory:
                    on_inventory(inv)
                if inv is not None:  # the peer said: plan for exactly that, on associations of their own
                    if not inv.matches:
                        total = RetrieveOutcome("C-GET", describe(0x0000, "C-GET"))
                        break
                    queue = plan_storage(inv.classes, inv.instances, ask[1])
                    continue
            context_id = assoc.context_for(sop_class)
            if context_id is None:
                from dcmcli.errors import NoAcceptableContext

                raise NoAcceptableContext(f"{peer} accepted the association but not {uid_name(sop_class)}",
                                          "the peer does not support C-GET with this information model; try movescu",
                                          report=assoc.report)
            refused = [r.sop_class for r in assoc.report.roles if r.accepted_scp is False]
            if refused and len(refused) == len(assoc.report.roles):
                log("warning", f"{peer} refused the SCP role for every storage SOP class: it may send nothing")
            ts = assoc.accepted[context_id][1]
            for ident in plan.identifiers or list(identifiers):
                outcome = _follow(assoc, context_id, C_GET_RQ, C_GET_RSP, "C-GET", sop_class, encode(ident, ts),
                                  options, {}, on_progress, handlers)
                total = _combine(total, outcome)
                if _stop_after(outcome):
                    break
        if total is not None and _stop_after(total):
            break
    assert total is not None
    total.received = storage.count - storage.failures
    total.refused = storage.failures
    total.cancelled = total.status.category == Category.CANCEL
    total.hint = status_hint(total.status, "C-GET", settings, None, total.refused)
    return total


__all__ = ["Progress", "RetrieveOptions", "RetrieveOutcome", "move_receiver", "move", "get", "plan_storage",
           "identifiers_from_files", "inventory_from_files",
           "parse_store_tc", "storage_contexts", "peer_addresses", "StoragePlan", "COMMON_STORAGE",
           "unknown_ae_hint", "NetworkError"]


def move_classes() -> list[str]:
    from dcmcli.uids import QUERY_MODELS

    return [m.move for m in QUERY_MODELS if m.move]


def get_classes() -> list[str]:
    from dcmcli.uids import QUERY_MODELS

    return [m.get for m in QUERY_MODELS if m.get]


def resolve_find_classes(service: str) -> list[str]:
    """The C-FIND classes a retrieve may use first: its model's (when the keys lack the level's unique
    key, resolve_identifiers), and for getscu's inventory Patient or Study Root's."""
    from dcmcli.uids import QUERY_MODELS

    return [m.find for m in QUERY_MODELS if m.uid(service) and m.find and m.levels]


def _common_storage() -> list[str]:
    return list(dict.fromkeys(COMMON_STORAGE))


def _retrieve_statuses(service: str) -> Statuses:
    return Statuses(service, "SCU", behaviour={
        "pending": "the progress bar and `progress` events follow the sub-operation counts",
        "success": "every sub-operation completed; exit 0",
        "cancel": "cancelled as asked (--cancel-after); exit 0",
        "warning": "sub-operations with warnings; exit 0, or 67 with --warnings-as-errors",
        "failure": "the meaning, the Error Comment, the failed SOP Instance UIDs and a hint printed; exit 66 "
                   "(also for any failed sub-operation, or an object counted as sent that never arrived)"})


_FOUND = "each storage SOP class the C-FIND found (any storage SOP class)"
_FOUND_WHEN = ("the C-FIND named the classes (more than fit 128 contexts: spread over associations); "
               "--store-tc SOPCLASS[:TS,...] proposes exactly what it names instead")
_RESOLVE = ("C-FIND first, when the keys lack the level's unique key (resolved to UIDs), or to learn the SOP "
            "classes of a C-GET (getscu; not with --no-find)")
#: The AEs of movescu and getscu (dcmcli/conformance).
CONFORMANCE = [
    ApplicationEntity(
        "MOVESCU", "movescu",
        "Asks a peer with C-MOVE to send the matching instances to `-aem` (default: our own AE title); with "
        "`+P PORT` it is that destination too, a storage SCP for the duration of the move, accepting only the "
        "peer's address (`--any-sender` lifts that).",
        contexts=(
            Contexts(move_classes, QUERY_SYNTAXES, "SCU", True,
                     label="the C-MOVE SOP class of the model asked for (one per association): these"),
            Contexts(lambda: resolve_find_classes("move"), QUERY_SYNTAXES, "SCU", True,
                     label="the model's C-FIND SOP class", when="keys without the level's unique key",
                     note=_RESOLVE),
            *(Contexts(c.sop_classes, c.transfer_syntaxes, c.role, c.proposed,
                       c.label and "every storage SOP class, and any other (private, unknown): the receiver is "
                                   "promiscuous", when="+P PORT",
                       note="the receiver (a new association from the peer, or the C-STORE sub-operations' "
                            "destination)") for c in STORAGE_SCP_CONTEXTS),
        ),
        statuses=(_retrieve_statuses("C-MOVE"), FIND_STATUSES, STORAGE_SCP_STATUSES),
        initiation=("One association per run for the C-MOVE (per request with --from-files), released after "
                    "the final response.",),
        acceptance=("`+P`: the receiver accepts up to 8 associations at a time, from the peer's addresses only.",),
    ),
    ApplicationEntity(
        "GETSCU", "getscu",
        "Asks a peer with C-GET for the matching instances, which come back as C-STORE sub-operations on the "
        "same association and are stored as storescp stores them.",
        contexts=(
            Contexts(get_classes, QUERY_SYNTAXES, "SCU", True,
                     label="the C-GET SOP class of the model asked for (one per association): these"),
            Contexts(lambda: resolve_find_classes("get"), QUERY_SYNTAXES, "SCU", True,
                     label="the model's C-FIND SOP class (Study Root's for models without an IMAGE level)",
                     when="asked first, at IMAGE level, on the first association (not with --no-find)",
                     note=_RESOLVE),
            Contexts(storage_sop_classes, get_storage_syntaxes, "SCP", True, label=_FOUND,
                     role_selection="proposes SCP role (not SCU)", when=_FOUND_WHEN, extended=CEN_PROPOSED,
                     note="one context of every syntax: uncompressed first, the syntaxes the peer named next"),
            Contexts(storage_sop_classes, GET_COMPRESSED, "SCP", True, one_per_syntax=True, label=_FOUND,
                     role_selection="proposes SCP role (not SCU)", extended=CEN_PROPOSED, when=_FOUND_WHEN,
                     note="for peers that send only over a context of the object's own syntax"),
            Contexts(_common_storage, unknown_class_syntaxes, "SCP", True,
                     label="the common storage SOP classes", role_selection="proposes SCP role (not SCU)",
                     extended=CEN_PROPOSED,
                     when="the first association (beside the C-FIND: the C-GET runs on it when the peer does not "
                          "say which classes, as dcmqrscp), or --no-find",
                     note="one context each, uncompressed first"),
        ),
        statuses=(_retrieve_statuses("C-GET"), FIND_STATUSES, STORAGE_SCP_STATUSES),
        initiation=("One association per run when the peer does not say which SOP classes come (the C-FIND "
                    "first and the C-GET on it); when it does, that one is released and the C-GET runs on one "
                    "planned for those classes; when their contexts exceed 128, the SOP classes are spread over "
                    "several associations, each retrieving its instances by UID.",),
    ),
]
