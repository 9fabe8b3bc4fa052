"""The normalized services as an SCU: N-ACTION, N-CREATE, N-SET, N-GET,
N-DELETE, and the N-EVENT-REPORTs a peer sends back (nactionscu, ncreatescu,
printscu and their presets).

One association (``open_session``) with a context per SOP class in both
little endian syntaxes (a class used under a meta SOP class, such as Print
Management's film session, goes on the meta class's context: ``via``); each
request is one ``Association.exchange``, whose handlers answer
N-EVENT-REPORTs arriving while we wait; ``NSession.wait``
serves them after the last response, for a while or until the caller has
what it waits for. ``EventListener`` is the acceptor service for reports
that come on a new association from the peer (storage commitment, UPS
events), on the shared acceptor. No sockets here, no typer.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.errors import AssociationAborted
from dcmcli.net.acceptor import ServedAssociation, Service
from dcmcli.net.association import Association, AssociationSettings, NegotiationReport
from dcmcli.net.dimse import (N_ACTION_RQ, N_ACTION_RSP, N_CREATE_RQ, N_CREATE_RSP, N_DELETE_RQ, N_DELETE_RSP,
                              N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP, N_GET_RQ, N_GET_RSP, N_SET_RQ, N_SET_RSP, Command,
                              Message, request, response)
from dcmcli.net.peer import Peer
from dcmcli.net.ul import ConnectionClosed, Context, PeerAborted, ProtocolError
from dcmcli.records import dataclass
from dcmcli.status import Status, describe
from dcmcli.uids import ELE, ILE, N_SOP_CLASS_NAMES, uid_name

#: What every normalized SOP class is proposed in (and the report listener accepts).
NORMALIZED_SYNTAXES = (ELE, ILE)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: Largest data set accepted in a response or event report.
DATA_LIMIT = 64 << 20


@dataclass
class NResult:
    """The response to one N-ACTION, N-CREATE, N-SET, N-GET or N-DELETE."""

    operation: str  # "N-ACTION", "N-CREATE", "N-SET", "N-GET", "N-DELETE"
    sop_class_uid: str
    sop_instance_uid: str  # the SCP's (N-CREATE: the one it assigned) or ours
    status: Status
    error_comment: str = ""
    data: bytes | None = None
    transfer_syntax: str = ELE
    action_type_id: int | None = None

    def dataset(self) -> Dataset | None:
        from dcmcli.dataset import decode

        return decode(self.data, self.transfer_syntax) if self.data else None

    def as_dict(self) -> dict[str, object]:
        from dcmcli.dataset import to_json

        ds = self.dataset()
        return {"operation": self.operation, "sop_class_uid": self.sop_class_uid,
                "sop_class": uid_name(self.sop_class_uid), "sop_instance_uid": self.sop_instance_uid or None,
                "action_type_id": self.action_type_id, "status": self.status.as_dict(),
                "error_comment": self.error_comment or None, "dataset": to_json(ds) if ds is not None else None}


@dataclass
class EventReport:
    """One N-EVENT-REPORT received (and answered 0000)."""

    sop_class_uid: str
    sop_instance_uid: str
    event_type_id: int
    data: bytes | None
    transfer_syntax: str
    via: str  # "same-association" or "new-association"
    calling_aet: str
    peer: str

    def dataset(self) -> Dataset | None:
        from dcmcli.dataset import decode

        return decode(self.data, self.transfer_syntax) if self.data else None

    def as_dict(self) -> dict[str, object]:
        from dcmcli.dataset import to_json

        ds = self.dataset()
        return {"sop_class_uid": self.sop_class_uid, "sop_class": uid_name(self.sop_class_uid),
                "sop_instance_uid": self.sop_instance_uid, "event_type_id": self.event_type_id,
                "via": self.via, "calling_aet": self.calling_aet, "peer": self.peer,
                "dataset": to_json(ds) if ds is not None else None}


def answer_event_report(side: Any, msg: Message, via: str, on_event: Callable[[EventReport], None]) -> None:
    """Read an N-EVENT-REPORT-RQ's data set, answer it Success, hand it on.

    ``side`` is either end of an association (``Association`` or
    ``ServedAssociation``): both have ``channel``, ``accepted``, ``send``,
    ``remote_aet`` and ``remote_address``."""
    cmd = msg.command
    data = side.channel.read_data(DATA_LIMIT) if cmd.has_dataset else None
    sop_class, instance, event_type = cmd.text(0x0002), cmd.text(0x1000), cmd.number(0x1002) or 0
    side.send(msg.context_id, response(N_EVENT_REPORT_RSP, cmd.message_id, 0x0000,
                                       affected_sop_class=sop_class or None,
                                       affected_sop_instance=instance or None, event_type_id=event_type))
    on_event(EventReport(sop_class, instance, event_type, data, side.accepted[msg.context_id][1], via,
                         side.remote_aet, side.remote_address))


class NSession:
    """N-requests on one open association."""

    def __init__(self, assoc: Association, on_event: Callable[[EventReport], None] | None = None,
                 via: dict[str, str] | None = None) -> None:
        self.assoc = assoc
        #: SOP class -> the abstract syntax whose context carries it (meta SOP classes).
        self.via = dict(via or {})
        #: The peer released the association while we waited for reports.
        self.released = False
        self.on_event = on_event or (lambda e: None)
        self.handlers = {N_EVENT_REPORT_RQ: lambda a, m: answer_event_report(a, m, "same-association",
                                                                             self.on_event)}

    def accepts(self, sop_class: str) -> bool:
        """Whether the peer accepted a context for this SOP class (or the meta class it is used under)."""
        return self.assoc.context_for(self.via.get(sop_class, sop_class)) is not None

    def _context(self, sop_class: str) -> int:
        cid = self.assoc.context_for(self.via.get(sop_class, sop_class))
        if cid is None:
            from dcmcli.errors import NoAcceptableContext

            raise NoAcceptableContext(f"{self.assoc.peer} did not accept {uid_name(sop_class)} ({sop_class})",
                                      "the peer does not support this SOP class; run with -v to see each context",
                                      report=self.assoc.report)
        return cid

    def encode(self, sop_class: str, ds: Dataset | None) -> bytes | None:
        if ds is None:
            return None
        from dcmcli.dataset import encode

        return encode(ds, self.assoc.accepted[self._context(sop_class)][1])

    def _exchange(self, operation: str, expected: int, sop_class: str, command: bytes, data: bytes | None,
                  message_id: int, instance: str, action_type: int | None = None) -> NResult:
        cid = self._context(sop_class)
        got: dict[str, Any] = {}

        def on_response(cmd: Command, payload: bytes | None) -> None:
            if cmd.field != expected:
                raise ProtocolError(f"a {cmd.name} answered an {operation}-RQ")
            got["data"] = payload

        try:
            final = self.assoc.exchange(cid, command, data, message_id, on_response=on_response,
                                        handlers=self.handlers, data_limit=DATA_LIMIT)
        except PeerAborted as exc:
            raise self.assoc.lost(exc, f"waiting for the {operation} response",
                                  "it aborted right after the request: the peer may not accept this request from "
                                  f"AE title {self.assoc.settings.calling_aet!r} (for Orthanc: add it to "
                                  f"DicomModalities), or it could not parse the data set (-d shows it)") from None
        except (ConnectionClosed, ProtocolError) as exc:
            raise self.assoc.lost(exc, f"waiting for the {operation} response") from None
        result = NResult(operation, final.text(0x0002) or sop_class, final.text(0x1000) or instance,
                         describe(final.status, operation), final.text(0x0902), got.get("data"),
                         self.assoc.accepted[cid][1], action_type)
        return result

    def action(self, sop_class: str, instance: str, action_type: int, ds: Dataset | None) -> NResult:
        data = self.encode(sop_class, ds)
        mid = self.assoc.next_message_id()
        cmd = request(N_ACTION_RQ, mid, dataset=data is not None, requested_sop_class=sop_class,
                      requested_sop_instance=instance, action_type_id=action_type)
        return self._exchange("N-ACTION", N_ACTION_RSP, sop_class, cmd, data, mid, instance, action_type)

    def create(self, sop_class: str, instance: str | None, ds: Dataset | None) -> NResult:
        data = self.encode(sop_class, ds)
        mid = self.assoc.next_message_id()
        cmd = request(N_CREATE_RQ, mid, dataset=data is not None, affected_sop_class=sop_class,
                      affected_sop_instance=instance or None)
        return self._exchange("N-CREATE", N_CREATE_RSP, sop_class, cmd, data, mid, instance or "")

    def set(self, sop_class: str, instance: str, ds: Dataset) -> NResult:
        data = self.encode(sop_class, ds)
        mid = self.assoc.next_message_id()
        cmd = request(N_SET_RQ, mid, dataset=True, requested_sop_class=sop_class, requested_sop_instance=instance)
        return self._exchange("N-SET", N_SET_RSP, sop_class, cmd, data, mid, instance)

    def get(self, sop_class: str, instance: str, attributes: Sequence[int] = ()) -> NResult:
        """N-GET: the attributes asked for (tags as ints), or all the SCP has when none are."""
        mid = self.assoc.next_message_id()
        cmd = request(N_GET_RQ, mid, requested_sop_class=sop_class, requested_sop_instance=instance,
                      attribute_identifier_list=list(attributes) or None)
        return self._exchange("N-GET", N_GET_RSP, sop_class, cmd, None, mid, instance)

    def delete(self, sop_class: str, instance: str) -> NResult:
        mid = self.assoc.next_message_id()
        cmd = request(N_DELETE_RQ, mid, requested_sop_class=sop_class, requested_sop_instance=instance)
        return self._exchange("N-DELETE", N_DELETE_RSP, sop_class, cmd, None, mid, instance)

    def wait(self, seconds: float, done: Callable[[], bool] = lambda: False) -> bool:
        """Serve N-EVENT-REPORTs on this association for up to ``seconds`` or
        until ``done()``; True when ``done()`` ended it. A peer that releases
        ends the wait here (False); reports may still come on a listener."""
        if seconds <= 0:
            return done()
        try:
            return self.assoc.serve(self.handlers, seconds, done)
        except ConnectionClosed as exc:
            if "released" in str(exc):
                self.released = True
                return done()
            raise self.assoc.lost(exc, "waiting for N-EVENT-REPORTs") from None
        except (PeerAborted, ProtocolError) as exc:
            raise self.assoc.lost(exc, "waiting for N-EVENT-REPORTs") from None


@contextlib.contextmanager
def open_session(settings: AssociationSettings, peer: Peer, sop_classes: Sequence[str], *,
                 on_event: Callable[[EventReport], None] | None = None,
                 on_report: Callable[[NegotiationReport], None] | None = None,
                 via: dict[str, str] | None = None) -> Iterator[NSession]:
    """An association for N-requests of ``sop_classes`` (abstract syntaxes:
    meta SOP classes too, with ``via`` naming the classes used on them);
    released at the end (unless the peer released it first), aborted on an error."""
    contexts = [Context(None, c, list(NORMALIZED_SYNTAXES)) for c in dict.fromkeys(sop_classes)]
    with _released_unless_gone(settings, peer, contexts) as assoc:  # a failure's report goes with its error
        if on_report:
            on_report(assoc.report)
        yield NSession(assoc, on_event, via)


@contextlib.contextmanager
def _released_unless_gone(settings: AssociationSettings, peer: Peer, contexts: list[Context]) -> Iterator[Association]:
    from dcmcli.net.association import request_association

    assoc = request_association(settings, peer, contexts)
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    if not assoc.conn.closed:
        try:
            assoc.release()
        except (ConnectionClosed, PeerAborted, ProtocolError) as exc:
            raise AssociationAborted(f"association with {peer} lost while releasing: {exc}",
                                     "the requests were answered; check the peer's log",
                                     report=assoc.report) from None


# -- reports on a new association: the listener -------------------------------------

class EventListener(Service):
    """Accepts N-EVENT-REPORTs of ``sop_classes`` on new associations (the
    peer as SCP of the class: role selection answered both ways), answers
    them 0000 and hands them to ``on_event``; anything else is refused."""

    name = "event-report listener"

    def __init__(self, sop_classes: Sequence[str], on_event: Callable[[EventReport], None]) -> None:
        self.sop_classes = set(sop_classes)
        self.on_event = on_event
        self._lock = threading.Lock()

    def transfer_syntaxes(self, abstract_syntax: str) -> Sequence[str] | None:
        return NORMALIZED_SYNTAXES if abstract_syntax in self.sop_classes else None

    def role(self, sop_class: str, scu: bool, scp: bool) -> tuple[bool, bool]:
        return scu, scp  # the peer sends the report as the SCP of the class

    def handle(self, assoc: ServedAssociation, msg: Message) -> None:
        if msg.command.field != N_EVENT_REPORT_RQ:
            assoc.channel.discard_data()
            assoc.refuse(msg, 0x0211, "this listener only takes N-EVENT-REPORTs")
            return
        with self._lock:
            answer_event_report(assoc, msg, "new-association", self.on_event)


__all__ = ["NResult", "EventReport", "NSession", "open_session", "EventListener", "answer_event_report",
           "build_dataset"]


def sop_reference(sop_class: str, sop_instance: str, **attributes: object) -> Dataset:
    """An item of a Referenced SOP Sequence (Referenced SOP Class and Instance UID), with
    ``attributes`` by keyword (InstanceAvailability, FailureReason, ...): the items that
    storage commitment, MPPS and IAN send."""
    from pydicom.dataset import Dataset as DS

    item = DS()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def build_dataset(keys: Sequence[str], files: Sequence[str], base: Dataset | None = None) -> Dataset | None:
    """The data set of a request: ``base`` (a preset's), then the ``--dataset``
    files (DICOM or DICOM JSON), then the ``-s`` keys (findscu's ``-k``
    syntax) on top. None when nothing was given."""
    from pathlib import Path

    from pydicom.dataset import Dataset as DS

    from dcmcli.dataset import read_dataset_file
    from dcmcli.keys import build_identifier, parse_key

    if base is None and not keys and not files:
        return None
    ds = base if base is not None else DS()
    for f in files:
        for part in read_dataset_file(Path(f), "data set file"):
            ds.update(part)
    return build_identifier([parse_key(k) for k in keys], ds)


def _named_classes() -> list[str]:
    return list(dict.fromkeys(N_SOP_CLASS_NAMES.values()))


_NAMED = "the SOP class given (a UID, a keyword, or a short name of the registry: these)"
N_SCU_BEHAVIOUR = {
    "success": "printed with the returned data set; exit 0",
    "warning": "printed with its meaning; exit 0, or 67 with --warnings-as-errors",
    "failure": "printed with its meaning, the Error Comment and a hint; exit 66"}
#: The AEs of the generic commands (the presets add theirs in commitment.py, mpps.py, ian.py, ups.py).
CONFORMANCE = [
    ApplicationEntity(
        "NACTIONSCU", "nactionscu",
        "Sends one N-ACTION (any SOP class, instance and action type, the Action Information from `--dataset` "
        "and `-s`), prints the reply and every N-EVENT-REPORT that arrives before release (`--wait`), on this "
        "association or, with `--port`, on a new one from the peer.",
        contexts=(Contexts(_named_classes, NORMALIZED_SYNTAXES, "SCU", True, label=_NAMED),),
        statuses=(Statuses("N-ACTION", "SCU", behaviour=N_SCU_BEHAVIOUR),
                  Statuses("N-EVENT-REPORT", "SCP", (0x0000,), {0x0000: "every N-EVENT-REPORT received is answered "
                                                                          "success and printed"})),
        initiation=("One association for the request(s), released after the last reply and the `--wait` for "
                    "event reports.",),
        acceptance=("With `--port`: a listener for the duration of the wait, accepting associations only from "
                    "the peer's address and only the SOP classes whose reports are awaited.",),
    ),
    ApplicationEntity(
        "NCREATESCU", "ncreatescu",
        "Sends one N-CREATE (any SOP class; the SOP Instance UID given or left to the SCP), prints the reply "
        "and the instance UID.",
        contexts=(Contexts(_named_classes, NORMALIZED_SYNTAXES, "SCU", True, label=_NAMED),),
        statuses=(Statuses("N-CREATE", "SCU", behaviour=N_SCU_BEHAVIOUR),),
        initiation=("One association per run, released after the last reply.",),
    ),
]
