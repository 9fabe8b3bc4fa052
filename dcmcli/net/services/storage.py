"""The Storage SCP role: C-STORE requests into the storage writer.

``StorageService`` is the one place a received C-STORE is handled, on any
association: storescp's (via the acceptor), movescu's built-in receiver
(the same), and getscu's own association (C-STORE sub-operations of a C-GET
arrive on the requestor's side; ``Association.exchange`` hands them here).
``StoreServer`` is storescp: an acceptor serving Verification and Storage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import Protocol

from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.net.acceptor import (VERIFICATION_SYNTAXES, Acceptor, AcceptorOptions, ServedAssociation, Service,
                                 VerificationService)
from dcmcli.net.association import AssociationSettings, NegotiationReport
from dcmcli.net.dimse import C_STORE_RQ, Channel, Message, c_store_rsp
from dcmcli.net.services.writer import (STATUS_CANNOT_UNDERSTAND, STATUS_DUPLICATE, STATUS_OUT_OF_RESOURCES,
                                        STATUS_SUCCESS, Received, StorageWriter, WriterOptions)
from dcmcli.net.ul import CommonExtendedNegotiation
from dcmcli.records import dataclass
from dcmcli.uids import STORAGE_SERVICE_CLASS, VERIFICATION, all_transfer_syntaxes, is_uid, storage_sop_classes

STATUS_DOES_NOT_MATCH = 0xA900


class StoringSide(Protocol):
    """What the storage handler needs of an association, acceptor or requestor side."""

    channel: Channel

    @property
    def accepted(self) -> dict[int, tuple[str, str]]: ...
    @property
    def remote_aet(self) -> str: ...
    @property
    def local_aet(self) -> str: ...
    @property
    def remote_address(self) -> str: ...
    def send(self, context_id: int, command: bytes, data: bytes | None = None) -> None: ...


@dataclass
class StorageOptions:
    """Which objects a storage SCP accepts."""

    transfer_syntaxes: list[str] = field(default_factory=all_transfer_syntaxes)
    promiscuous: bool = False  # accept any SOP class, private and unknown ones too
    #: Accept a SOP class we do not know when the requestor's SOP Class Common
    #: Extended Negotiation names the Storage Service Class for it, or a related
    #: general SOP class that is a storage class (PS3.4 B.4.1.2: we store
    #: every attribute, a Level 2 (Full) SCP).
    common_extended: bool = True


class StorageService(Service):
    """C-STORE SCP: every storage SOP class (or any, promiscuous) into a writer."""

    name = "storage"

    def __init__(self, writer: StorageWriter, options: StorageOptions | None = None, *,
                 on_received: Callable[[Received], None] | None = None) -> None:
        self.writer = writer
        self.options = options or StorageOptions()
        self.on_received = on_received or (lambda r: None)
        self._storage = set(storage_sop_classes())
        self._lock = threading.Lock()
        self.count = 0
        self.failures = 0

    def transfer_syntaxes(self, abstract_syntax: str) -> Sequence[str] | None:
        if abstract_syntax == VERIFICATION:
            return None
        if abstract_syntax in self._storage or self.options.promiscuous:
            return self.options.transfer_syntaxes
        return None

    def common_extended(self, abstract_syntax: str, item: CommonExtendedNegotiation) -> Sequence[str] | None:
        if not self.options.common_extended or abstract_syntax == VERIFICATION:
            return None
        if item.service_class == STORAGE_SERVICE_CLASS or any(
                g in self._storage for g in item.related_general_sop_classes):
            return self.options.transfer_syntaxes
        return None

    def handle(self, assoc: ServedAssociation, msg: Message) -> None:  # type: ignore[override]
        if msg.command.field != C_STORE_RQ:
            assoc.channel.discard_data()
            assoc.refuse(msg, 0x0211, "unrecognised operation")
            return
        self.store(assoc, msg, assoc.log)

    def store(self, side: StoringSide, msg: Message, log: Callable[[str, str], None]) -> Received:
        """Receive one C-STORE request's data set, store it, answer it."""
        cmd = msg.command
        sop_class, sop_instance = cmd.text(0x0002), cmd.text(0x1000)
        ts = side.accepted[msg.context_id][1]
        calling, called, peer = side.remote_aet, side.local_aet, side.remote_address

        def answer(status: int, path: object, message: str, stored_ts: str = "", size: int = 0) -> Received:
            side.send(msg.context_id, c_store_rsp(cmd.message_id, sop_class if is_uid(sop_class) else "",
                                                  sop_instance if is_uid(sop_instance) else "", status,
                                                  message if status else None))
            # The peer reads the answer before it sends its next request: make
            # that object's file meanwhile.
            self.writer.make_next_file()
            rec = Received(path, sop_class, sop_instance, ts, calling, called, peer, size,  # type: ignore[arg-type]
                           status, message, stored_ts or ts)
            with self._lock:
                self.count += 1
                if status != STATUS_SUCCESS:
                    self.failures += 1
            self.on_received(rec)
            return rec

        if not cmd.has_dataset:
            log("warning", f"C-STORE-RQ from {calling}@{peer} without a data set; answered 0xC000")
            return answer(STATUS_CANNOT_UNDERSTAND, None, "cannot understand: the request has no data set")
        for what, uid in (("SOP Class UID", sop_class), ("SOP Instance UID", sop_instance)):
            if not is_uid(uid):
                size = side.channel.discard_data()
                log("warning", f"C-STORE-RQ from {calling}@{peer} with an invalid Affected {what} {uid!r}; "
                               f"answered 0xC000, nothing stored")
                return answer(STATUS_CANNOT_UNDERSTAND, None, f"cannot understand: invalid Affected {what}", size=size)
        inc = self.writer.begin(sop_class, sop_instance, ts, calling)
        try:
            side.channel.read_data_into(inc)
        except BaseException:
            inc.discard()  # ended mid-object: no half-written file stays
            raise
        mismatch = self.writer.check_identity(inc)
        if mismatch:
            inc.discard()
            log("warning", f"{sop_instance} from {calling}: {mismatch}; answered 0xA900, nothing stored")
            return answer(STATUS_DOES_NOT_MATCH, None, mismatch, size=inc.size)
        outcome = self.writer.finish(inc, calling, called, peer)
        return answer(outcome.status, outcome.path, outcome.message, outcome.stored_transfer_syntax, inc.size)


def store_handler(service: StorageService, log: Callable[[str, str], None]) -> Callable[..., None]:
    """A handler for ``Association.exchange``: C-STORE sub-operations on the requestor's own association."""

    def handle(side: StoringSide, msg: Message) -> None:
        service.store(side, msg, log)

    return handle


class StoreServer:
    """storescp: an acceptor serving Verification and Storage into a writer."""

    def __init__(self, settings: AssociationSettings, acceptor: AcceptorOptions, writer: WriterOptions,
                 storage: StorageOptions | None = None, *,
                 on_received: Callable[[Received], None] | None = None,
                 on_log: Callable[[str, str], None] | None = None,
                 on_association: Callable[[NegotiationReport], None] | None = None,
                 extra_services: Sequence[Service] = ()) -> None:
        self.settings = settings
        self.on_log = on_log or (lambda level, msg: None)
        self.writer = StorageWriter(writer, on_log=self.on_log)
        self.storage = StorageService(self.writer, storage, on_received=on_received)
        self.acceptor = Acceptor(settings, acceptor, [VerificationService(), self.storage, *extra_services],
                                 on_log=self.on_log, on_association=on_association)

    @property
    def port(self) -> int | None:
        return self.acceptor.port

    @property
    def count(self) -> int:
        return self.storage.count

    @property
    def failures(self) -> int:
        return self.storage.failures

    @property
    def listening(self) -> bool:
        return self.acceptor.listening

    def start(self) -> int:
        self.writer.prepare()
        return self.acceptor.start()

    def stop(self, timeout: float | None = None) -> int:
        aborted = self.acceptor.stop(timeout)
        self.writer.close()
        return aborted

    def listening_info(self) -> dict[str, object]:
        o = self.acceptor.options
        return {"port": self.port, "bind": o.bind or "0.0.0.0", "output_dir": str(self.writer.options.output_dir),
                "ae_title": self.settings.calling_aet}


_ALL_STORAGE = "every storage SOP class (`--promiscuous`: any SOP class, private and unknown ones too)"
_CEN_STORAGE = ("any other SOP class (private, unknown) whose SOP Class Common Extended Negotiation item names the "
                f"Storage Service Class `{STORAGE_SERVICE_CLASS}` or a storage SOP class as related general class")
_CEN_ACCEPTED = ("SOP Class Common Extended Negotiation (PS3.7 D.3.3.6) read, never answered (request only): "
                 "PS3.4 B.4.1.2, dcmcli stores every attribute (Level 2)")
#: The contexts of a storage SCP, storescp's and the receivers' of movescu and getscu.
STORAGE_SCP_CONTEXTS = (
    Contexts((VERIFICATION,), VERIFICATION_SYNTAXES, "SCP", False),
    Contexts(storage_sop_classes, all_transfer_syntaxes, "SCP", False, label=_ALL_STORAGE,
             note="the first syntax of this list that the requestor proposes is accepted (`--accept-ts` "
                  "restricts and reorders it, `+xi` Implicit VR Little Endian only)"),
)
#: storescp's beyond those (the receivers of movescu and getscu accept any SOP class anyway).
CEN_STORAGE_CONTEXTS = Contexts((), all_transfer_syntaxes, "SCP", False, label=_CEN_STORAGE, extended=_CEN_ACCEPTED,
                                when="the requestor sends that item; not with `--no-common-ext-neg`",
                                note="as for the storage SOP classes")
#: What the storage SCP answers, and when.
STORAGE_SCP_STATUSES = Statuses("C-STORE", "SCP", (STATUS_SUCCESS, STATUS_DUPLICATE, STATUS_OUT_OF_RESOURCES,
                                                   STATUS_DOES_NOT_MATCH, STATUS_CANNOT_UNDERSTAND), {
    STATUS_SUCCESS: "stored (with `--store-as` converted, or stored as received when it cannot be)",
    STATUS_DUPLICATE: "the instance is stored already and `--on-duplicate reject` is set",
    STATUS_OUT_OF_RESOURCES: "the disk is full or the output cannot be written (the Error Comment says why)",
    STATUS_DOES_NOT_MATCH: "the data set names other SOP Class / Instance UIDs than the request",
    STATUS_CANNOT_UNDERSTAND: "no data set, or the Affected SOP Class / Instance UID is not a valid UID",
})
#: The AE this module is (dcmcli/conformance: the conformance statement is built from it).
CONFORMANCE = [ApplicationEntity(
    "STORESCP", "storescp",
    "Listens for associations and stores every object received with C-STORE, as it arrives (no decoding), "
    "into `-od` under the layout asked for; answers C-ECHO. Runs until SIGINT/SIGTERM.",
    contexts=(*STORAGE_SCP_CONTEXTS, CEN_STORAGE_CONTEXTS),
    statuses=(STORAGE_SCP_STATUSES,),
    acceptance=(
        "Any calling AE title is accepted unless `--allow-calling` lists them; the called AE title only with "
        "`--require-called`; refusals are A-ASSOCIATE-RJ (calling / called AE title not recognised).",
    ),
)]
