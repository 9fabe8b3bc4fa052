"""C-FIND SCU (findscu, and the C-FIND that getscu runs before a retrieve).

One association, one context for the information model's FIND SOP class
in both little endian syntaxes, then each request (``repeat`` times) and
its pending responses, each match handed to the caller as it arrives.
C-CANCEL after ``cancel_after`` matches; ``limit`` also stops the output
there, whatever the peer still sends before it sees the cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING

from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.errors import NetworkError
from dcmcli.net.association import Association, AssociationSettings, NegotiationReport, open_association
from dcmcli.net.dimse import C_FIND_RQ, C_FIND_RSP, Command, request
from dcmcli.net.peer import Peer
from dcmcli.net.ul import ConnectionClosed, Context, ExtendedNegotiation, PeerAborted, ProtocolError
from dcmcli.records import dataclass
from dcmcli.status import Category, Status, describe
from dcmcli.uids import ELE, ILE, QUERY_MODELS, uid_name

#: What C-FIND, C-MOVE and C-GET requests are proposed in.
QUERY_SYNTAXES = (ELE, ILE)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: C-FIND extended negotiation bytes (PS3.4 C.5.1.1): relational queries,
#: combined date-time matching, fuzzy semantic matching of person names,
#: timezone query adjustment.
EXTENDED_FLAGS = ("relational", "datetime", "fuzzy", "timezone")


def extended_info(flags: set[str]) -> bytes | None:
    if not flags:
        return None
    return bytes(int(f in flags) for f in EXTENDED_FLAGS)


@dataclass
class FindOptions:
    priority: int = 0
    cancel_after: int | None = None
    limit: int | None = None
    repeat: int = 1
    extended: set[str] = field(default_factory=set)
    #: The caller's own reason to cancel, asked after each match (getscu's inventory: the answers lack what it needs).
    stop: Callable[[], bool] | None = None


@dataclass
class Match:
    """One pending response with its identifier (bytes; ``dataset()`` parses them)."""

    number: int
    data: bytes
    transfer_syntax: str
    status: Status
    repeat: int = 1

    def dataset(self) -> Dataset:
        from dcmcli.dataset import decode

        return decode(self.data, self.transfer_syntax)


@dataclass
class FindOutcome:
    """How one C-FIND ended."""

    repeat: int
    matches: int
    status: Status
    error_comment: str = ""
    offending_elements: list[int] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"repeat": self.repeat, "matches": self.matches, "status": self.status.as_dict(),
                "error_comment": self.error_comment or None,
                "offending_elements": [f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in self.offending_elements],
                "cancelled": self.cancelled, "seconds": round(self.seconds, 3)}


def find_status_hint(code: int) -> str:
    """What to try after a C-FIND failure status."""
    return {
        0xA900: "the peer says the identifier does not fit the information model: check the keys and -L (-d shows "
                "what was sent)",
        0xA700: "the peer is out of resources; try a narrower query",
        0xC000: "the peer could not process the query: see its log (-d shows the identifier sent); hierarchical peers "
                "need the unique keys of the levels above (StudyInstanceUID=... for a SERIES query)",
    }.get(code & 0xFF00 if code >= 0xC000 else code, "see the peer's log")


def unknown_ae_hint(settings: AssociationSettings) -> str:
    return (f"the peer may not allow this service for AE title {settings.calling_aet!r}: add {settings.calling_aet} "
            f"with this host to the peer's configuration (for Orthanc: DicomModalities), or use -aet with a "
            f"title it knows")


def lost_during(assoc: Association, exc: Exception, service: str, answered: int) -> NetworkError:
    """The error for an association lost during a query or retrieve: a peer
    that aborts right after the request (Orthanc for an AE it does not know)
    gets the hint about AE titles, never a bare abort or timeout."""
    if isinstance(exc, PeerAborted) and answered == 0:
        return assoc.lost(exc, f"waiting for the {service} response",
                          f"it aborted right after the request: {unknown_ae_hint(assoc.settings)}")
    if isinstance(exc, ConnectionClosed) and str(exc) == "timeout":
        return assoc.lost(exc, f"waiting for {service} responses", "raise -td if the peer is slow")
    return assoc.lost(exc, f"waiting for {service} responses")


def run_find(assoc: Association, context_id: int, sop_class: str, data: bytes, options: FindOptions, repeat: int,
             on_match: Callable[[Match], None]) -> FindOutcome:
    """One C-FIND on an open association."""
    ts = assoc.accepted[context_id][1]
    message_id = assoc.next_message_id()
    seen = 0
    t0 = time.perf_counter()

    def on_response(cmd: Command, payload: bytes | None) -> None:
        nonlocal seen
        if cmd.field != C_FIND_RSP:
            raise ProtocolError(f"a {cmd.name} answered a C-FIND-RQ")
        status = describe(cmd.status, "C-FIND")
        if status.category == Category.PENDING:
            seen += 1
            if payload is not None and (options.limit is None or seen <= options.limit):
                on_match(Match(seen, payload, ts, status, repeat))

    def should_cancel() -> bool:
        stop_at = min(n for n in (options.cancel_after, options.limit, 1 << 30) if n is not None)
        return seen >= stop_at or (options.stop is not None and options.stop())

    try:
        final = assoc.exchange(context_id, request(C_FIND_RQ, message_id, dataset=True, affected_sop_class=sop_class,
                                                   priority=options.priority),
                               data, message_id, on_response=on_response, should_cancel=should_cancel)
    except (ConnectionClosed, PeerAborted, ProtocolError) as exc:
        raise lost_during(assoc, exc, "C-FIND", seen) from None
    status = describe(final.status, "C-FIND")
    offending = final.get(0x0901)
    return FindOutcome(repeat, min(seen, options.limit) if options.limit else seen, status, final.text(0x0902),
                       list(offending) if isinstance(offending, list) else [],
                       status.category == Category.CANCEL or (should_cancel() and seen > 0),
                       time.perf_counter() - t0)


def find(settings: AssociationSettings, peer: Peer, sop_class: str, identifier: Dataset, options: FindOptions, *,
         on_match: Callable[[Match], None], on_report: Callable[[NegotiationReport], None] | None = None,
         on_outcome: Callable[[FindOutcome], None] | None = None) -> list[FindOutcome]:
    """Query ``peer``; every match goes to ``on_match`` as it arrives."""
    from dcmcli.dataset import encode

    info = extended_info(options.extended)
    extended = [ExtendedNegotiation(sop_class, info)] if info else []
    outcomes: list[FindOutcome] = []
    with open_association(settings, peer, [Context(None, sop_class, list(QUERY_SYNTAXES))], extended=extended) as assoc:
        if on_report:
            on_report(assoc.report)
        context_id = assoc.context_for(sop_class)
        assert context_id is not None  # request_association raises when nothing was accepted
        data = encode(identifier, assoc.accepted[context_id][1])
        for n in range(1, max(1, options.repeat) + 1):
            outcome = run_find(assoc, context_id, sop_class, data, options, n, on_match)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
            if outcome.status.category == Category.FAILURE:
                break
    return outcomes


__all__ = ["FindOptions", "FindOutcome", "Match", "find", "run_find", "extended_info", "EXTENDED_FLAGS",
           "lost_during", "unknown_ae_hint", "uid_name"]


# -- building the identifier ---------------------------------------------------

#: Return keys sent when the user names none, per level (what a person
#: looking at a PACS wants to see), and for the worklist.
DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "NumberOfPatientRelatedStudies"),
    "STUDY": ("PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy",
              "StudyDescription", "StudyID", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("Modality", "SeriesNumber", "SeriesDescription", "SeriesDate", "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("InstanceNumber", "SOPClassUID"),
    "FRAME": (),
    "worklist": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                 "RequestedProcedureID", "RequestedProcedureDescription", "StudyInstanceUID",
                 "ScheduledProcedureStepSequence[0].Modality",
                 "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
                 "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
                 "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
                 "ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName",
                 "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription",
                 "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID"),
}

#: The unique key of each level (PS3.4 C.3).
UNIQUE_KEY = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
              "IMAGE": "SOPInstanceUID"}


@dataclass
class Query:
    """An identifier, its level, and the columns a result table shows (the
    keys in the order the user gave them)."""

    identifier: Dataset
    level: str | None
    columns: list[tuple]  # key paths (dcmcli.keys.Step tuples)
    notes: list[str] = field(default_factory=list)  # keys that cannot match as meant


def build_query(model: object, level: str | None, keys: list[str], bases: list[Dataset], *,
                default_keys: bool = True) -> Query:
    """The identifier of a query or retrieve.

    ``bases`` are the query files (their keys first, ``keys`` on top);
    Query/Retrieve Level comes from ``level``, else the keys, else the
    model's default (PATIENT for Patient Root, else STUDY). The unique keys
    of the levels above are added as empty return keys (hierarchical
    peers such as dcmqrscp require them), and the level's own unique key
    too; with no key but the level, the level's usual return keys are
    asked for.
    """
    from dcmcli.errors import UsageError
    from dcmcli.identifier import FlatIdentifier, is_flat
    from dcmcli.keys import build_identifier, check_value, key_paths, parse_key
    from dcmcli.uids import QueryModel

    assert isinstance(model, QueryModel)
    parsed = [parse_key(k) for k in keys]
    user_keys = [k for k in parsed if k.tag not in (0x00080052, 0x00080005)]
    asked = not user_keys and not bases and default_keys  # the level's usual return keys are added
    ds: Dataset | FlatIdentifier
    if not bases and not asked and all(len(k.path) == 1 and is_flat(k.tag, k.value) for k in parsed):
        # a retrieve's usual keys, or a query's that names its keys: no pydicom (dcmcli.identifier)
        ds = FlatIdentifier()
        for k in parsed:
            ds.set(k.tag, k.value)
    else:
        from pydicom.dataset import Dataset as DS

        base = DS()
        for b in bases:
            base.update(b)
        ds = build_identifier(parsed, base)
    chosen: str | None = None
    defaults: tuple[str, ...] = ()
    if not model.levels:
        if level:
            raise UsageError(f"the {model.title} model has no Query/Retrieve Level", "leave out -L")
        if asked and model.name == "worklist":
            defaults = DEFAULT_KEYS["worklist"]
    else:
        if level:
            chosen = level.upper()
        elif "QueryRetrieveLevel" in ds and ds.QueryRetrieveLevel:
            chosen = str(ds.QueryRetrieveLevel).upper()
        else:
            chosen = "PATIENT" if model.name == "patient" else "STUDY"
        if chosen not in model.levels:
            raise UsageError(f"the {model.title} model has no {chosen} level", f"use one of {', '.join(model.levels)}")
        ds.QueryRetrieveLevel = chosen
        if asked:
            defaults = DEFAULT_KEYS.get(chosen, ())
    default_parsed = [parse_key(k) for k in defaults]
    if default_parsed:
        build_identifier(default_parsed, ds)  # type: ignore[arg-type]  # never flat: flat has no defaults
    unique: list[str] = []
    if chosen is not None:
        upto = model.levels[: model.levels.index(chosen) + 1] if chosen in UNIQUE_KEY else model.levels
        for lv in upto:
            kw = UNIQUE_KEY.get(lv)
            if kw and not (lv == "PATIENT" and model.name == "study"):
                unique.append(kw)
                if kw not in ds:
                    setattr(ds, kw, "")
    order: list[tuple] = [k.path for k in user_keys] + [k.path for k in default_parsed]
    order += [parse_key(kw).path for kw in unique]
    for path in key_paths(ds):
        if path not in order and not (len(path) > 1 and path[:1] in [p[:1] for p in order]):
            order.append(path)
    columns = []
    for path in order:
        if path not in columns and path[-1].tag not in (0x00080052, 0x00080005):
            columns.append(path)
    notes = [n for n in (check_value(k) for k in parsed) if n]
    return Query(ds, chosen, columns, notes)


def find_classes() -> list[str]:
    """Every C-FIND SOP class of the registry's information models (findscu -P -S -O -W -M)."""
    return [m.find for m in QUERY_MODELS if m.find]


FIND_STATUSES = Statuses("C-FIND", "SCU", behaviour={
    "pending": "each match printed (table, --json, --csv, --ndjson, -X)",
    "success": "the matches counted, 'no matches' when none; exit 0",
    "cancel": "after --cancel or --limit, as asked; exit 0",
    "failure": "the meaning, the Error Comment and a hint printed; exit 66"})
_EXTENDED = ("SOP Class Extended Negotiation (PS3.4 C.5.1.1) when asked: relational queries (--relational), "
             "combined date-time matching (--datetime), fuzzy semantic matching of person names (--fuzzy), "
             "timezone query adjustment (--timezone)")
#: The AE of findscu (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity(
    "FINDSCU", "findscu",
    "Queries a peer with C-FIND in the information model asked for (`-P`, `-S` (default), `-O`, `-W`, `-M`), "
    "with keys from `-k` and query files, and prints the matches.",
    contexts=(Contexts(find_classes, QUERY_SYNTAXES, "SCU", True,
                       label="the C-FIND SOP class of the model asked for (one per association): these",
                       extended=_EXTENDED),),
    statuses=(FIND_STATUSES,),
    initiation=("One association per run (`--repeat N`: the query N times on it), released after the last "
                "response.",),
)]
