"""dcmcli's DICOM Conformance Statement (PS3.2 Annex N), generated from the code.

Everything in it comes from the registries and the declarations: the AEs and
their presentation contexts from each service module's ``CONFORMANCE`` list
(``dcmcli.conformance``), SOP classes and transfer syntaxes from
``dcmcli.uids``, statuses from ``dcmcli.status``, exit codes from
``dcmcli.errors``, association defaults from ``AssociationSettings`` and
``AcceptorOptions``, TLS profiles from ``dcmcli.net.tls``, media profiles from
``dcmcli.media.records``. ``statement()`` builds the document as blocks,
``markdown()`` and ``html()`` render it. The committed ``CONFORMANCE.md`` is
regenerated with the man pages (``python -m dcmcli.cli.gendocs``) and a test
fails when it is stale.
"""

from __future__ import annotations

import html as _html
import importlib
import pkgutil
import re
from collections.abc import Iterable, Sequence
from dataclasses import field, replace

from dcmcli import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, __version__
from dcmcli.conformance import OWN, ApplicationEntity, Contexts, Statuses
from dcmcli.records import dataclass

#: The packages whose modules may declare AEs (a new service module there is found without any change here).
PACKAGES = ("dcmcli.net.services", "dcmcli.media", "dcmcli.web")


# -- collecting the declarations -------------------------------------------------

def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        # sub-packages too (services/print/): every module below the package
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.") if not m.ispkg]
    return names


def application_entities() -> list[ApplicationEntity]:
    """Every declared AE, the contributions of several modules merged by name, ordered by name."""
    merged: dict[str, ApplicationEntity] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for ae in getattr(module, "CONFORMANCE", ()):
            old = merged.get(ae.name)
            if old is None:
                merged[ae.name] = ae
                continue
            merged[ae.name] = replace(
                old, function=old.function or ae.function, contexts=old.contexts + ae.contexts,
                statuses=old.statuses + ae.statuses, initiation=old.initiation + ae.initiation,
                acceptance=old.acceptance + ae.acceptance, media=tuple(dict.fromkeys(old.media + ae.media)),
                web=old.web + ae.web)
    return [merged[k] for k in sorted(merged)]


# -- the document as blocks ------------------------------------------------------

@dataclass
class Doc:
    blocks: list[tuple] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    tables: int = 0
    label: str = ""  # the major section tables are numbered in

    def h(self, level: int, title: str) -> str:
        """A numbered heading (level 1: "1 Overview"); returns its number."""
        while len(self.numbers) < level:
            self.numbers.append(0)
        del self.numbers[level:]
        self.numbers[level - 1] += 1
        number = ".".join(str(n) for n in self.numbers)
        if level == 1:
            self.label, self.tables = number, 0
        self.blocks.append(("h", level, f"{number} {title}"))
        return number

    def annex(self, letter: str, title: str) -> None:
        self.numbers, self.label, self.tables = [0], letter, 0
        self.blocks.append(("h", 1, f"Annex {letter} {title}"))

    def p(self, *text: str) -> None:
        self.blocks.append(("p", " ".join(t for t in text if t)))

    def ul(self, items: Iterable[str]) -> None:
        items = [i for i in items if i]
        if items:
            self.blocks.append(("ul", items))

    def table(self, title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        self.tables += 1
        self.blocks.append(("table", f"Table {self.label}-{self.tables}. {title}", list(header),
                            [list(r) for r in rows]))


def _yn(value: bool) -> str:
    return "Y" if value else "N"


def _retired(uid: str) -> bool:
    from dcmcli.uids import _uid_dictionary

    entry = _uid_dictionary().get(uid)
    return bool(entry and entry[3])


def name_of(uid: str) -> str:
    """The UID's name from the registry, marked when the standard has retired it."""
    from dcmcli.uids import uid_name

    return uid_name(uid) + (" (retired)" if _retired(uid) else "")


def _uid_key(uid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in uid.split("."))


def _syntaxes_text(c: Contexts) -> str:
    if c.transfer_syntaxes == OWN:
        return "the transfer syntax of each file (one context per syntax found)"
    names = [f"{name_of(t)} `{t}`" for t in c.syntaxes()]
    return ("one context each: " if c.one_per_syntax else "") + "; ".join(names)


def _classes_text(c: Contexts, storage: set[str]) -> str:
    classes = c.classes()
    if c.label and not classes:  # a rule, not a list (storescp: what Common Extended Negotiation names)
        return c.label
    if c.label and set(classes) == storage:
        return f"{c.label} (Table 1-1)"
    listed = "; ".join(f"{name_of(u)} `{u}`" for u in classes)
    return f"{c.label}: {listed}" if c.label else listed


# -- sections --------------------------------------------------------------------

def _cover(d: Doc) -> None:
    d.blocks.append(("title", f"dcmcli {__version__}: DICOM Conformance Statement"))
    d.p(f"Product: dcmcli {__version__}, a DICOM command-line toolbox (all subcommands and options; "
        "optional codecs as installed). This statement follows the template of PS3.2 Annex N. It is generated "
        "from dcmcli's own registries and service declarations (`dcmcli conformance`, and the committed copy "
        "by `python -m dcmcli.cli.gendocs`): do not edit it by hand.")


def _overview(d: Doc, aes: list[ApplicationEntity]) -> None:
    from dcmcli.uids import storage_sop_classes

    d.h(1, "Overview")
    d.p("dcmcli sends, receives, queries and retrieves DICOM objects over DIMSE (one application entity per "
        "subcommand and role), requests storage commitment, MPPS, IAN and UPS operations, serves a modality "
        "worklist, creates, updates and reads DICOMDIR file-sets, and is a DICOMweb user agent. The application "
        "entities:")
    d.ul(f"**{ae.name}** (`dcmcli {ae.command}`): {_first_sentence(ae.function)}" for ae in aes)
    d.h(2, "Content and Transfer")
    sends = {u for ae in aes for c in ae.contexts if c.role == "SCU" and c.proposed for u in c.classes()}
    receives = {u for ae in aes for c in ae.contexts if c.role == "SCP" for u in c.classes()}
    media = any(ae.media for ae in aes)
    web = any(ae.web for ae in aes)
    rows = []
    for uid in sorted(set(storage_sop_classes()), key=_uid_key):
        rows.append([name_of(uid), f"`{uid}`", "U, LL, L, O", _yn(uid in sends), _yn(uid in receives),
                     "UA" if web else "", "FSC, FSU, FSR" if media else ""])
    rows.append([name_of("1.2.840.10008.1.3.10"), "`1.2.840.10008.1.3.10`", "ELE", "N", "N", "",
                 "FSC, FSU, FSR" if media else ""])
    d.table("Storage SOP Classes", ["SOP Class", "SOP Class UID", "Transfer Syntax Set", "DIMSE SCU",
                                    "DIMSE SCP", "DICOM Web", "Media"], rows)
    d.p("Objects are sent, received and stored as they are (no SOP class is created, displayed or processed; "
        "`--store-as`, storescu's fallbacks and dcmconv transcode pixel data, see 5.2). Private and unknown SOP "
        "classes are sent by storescu and received by storescp `--promiscuous`.")
    d.table("Supported Transfer Syntaxes", ["Transfer Syntax Set", "Transfer Syntax", "UID"], _syntax_rows())
    d.h(2, "DIMSE Services")
    groups = _dimse_groups(aes)
    for title, uids in groups:
        if uids or title != PRINTING:
            d.table(title, ["SOP Class", "UID", "SCU", "SCP"],
                    [[name_of(u), f"`{u}`", _yn(u in sends or _is_scu(aes, u)), _yn(u in receives)] for u in uids])
    if not dict(groups)[PRINTING]:
        d.p("Printing: N/A.")
    d.h(2, "DICOM Web Services")
    rows = [[svc, tx, res, "Y", "N"] for ae in aes for svc, tx, res in ae.web]
    if rows:
        d.table("DICOM Web Services", ["Service", "Transaction", "Resources", "User Agent", "Origin Server"], rows)
    d.h(2, "Media Services")
    d.table("Media Services", ["Media Storage Application Profile", "FSC", "FSR", "FSU"],
            [[f"{p.name}: {p.description}", "Y", "Y", "Y"] for p in _profiles()])
    d.h(2, "Real-Time Video - N/A")
    d.p("N/A")
    d.h(2, "De-identification Profiles - N/A")
    d.p("N/A")
    d.h(2, "Specific Character Sets")
    d.table("Specific Character Sets (read)", ["Group", "Defined Terms"], _charset_rows())
    d.p("What is written: storescp, movescu and getscu store objects as received; findscu's and ncreatescu's "
        "requests are ISO_IR 6 (default repertoire) unless a value is outside ASCII, then ISO_IR 192 (UTF-8); "
        "mwlscp answers in the request's character set when every value fits, else in the item's own, else "
        "ISO_IR 192; dcmconv `+U8` converts to ISO_IR 192.")


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?\.)(\s|$)", text)
    return m.group(1) if m else text


def _is_scu(aes: list[ApplicationEntity], uid: str) -> bool:
    return any(uid in c.classes() for ae in aes for c in ae.contexts if c.role == "SCU")


#: Print Management (PS3.4 H) SOP classes are below this root (Media Creation Management too, which is not printing).
_PRINT_ROOT = "1.2.840.10008.5.1.1."
PRINTING = "Print Management SOP Classes"


def _dimse_groups(aes: list[ApplicationEntity]) -> list[tuple[str, list[str]]]:
    from dcmcli.uids import MEDIA_CREATION, QUERY_MODELS, VERIFICATION, storage_sop_classes

    storage = set(storage_sop_classes())
    every = {u for ae in aes for c in ae.contexts for u in c.classes()} - storage
    qr = {u for m in QUERY_MODELS for u in (m.find, m.move, m.get) if u} & every
    verification = {VERIFICATION} & every
    printing = {u for u in every if u.startswith(_PRINT_ROOT) and u != MEDIA_CREATION}
    workflow = every - qr - verification - printing
    order = lambda s: sorted(s, key=_uid_key)  # noqa: E731
    return [("Verification SOP Class", order(verification)),
            ("Workflow Management and other Normalized SOP Classes", order(workflow)),
            ("Query/Retrieve and other C-FIND / C-MOVE / C-GET SOP Classes", order(qr)),
            (PRINTING, order(printing))]


def _syntax_rows() -> list[list[str]]:
    from dcmcli.uids import UNCOMPRESSED, all_transfer_syntaxes, is_lossy

    rows = []
    for ts in all_transfer_syntaxes():
        if ts in UNCOMPRESSED:
            group = "U (uncompressed)"
        elif is_lossy(ts):
            group = "L (lossy, video included)"
        elif ts in _lossless():
            group = "LL (lossless compressed)"
        else:
            group = "O (other encapsulated)"
        rows.append([group, name_of(ts), f"`{ts}`"])
    order = {"U": 0, "LL": 1, "L": 2, "O": 3}
    return sorted(rows, key=lambda r: (order[r[0].split()[0]], _uid_key(r[2].strip("`"))))


def _lossless() -> set[str]:
    from dcmcli.transcode.catalog import LOSSLESS_PREFERENCE

    from dcmcli.uids import J2K_MC_LOSSLESS

    return set(LOSSLESS_PREFERENCE) | {J2K_MC_LOSSLESS}


def _profiles() -> list:
    from dcmcli.media.records import PROFILES

    return list(PROFILES.values())


def _charset_rows() -> list[list[str]]:
    from pydicom.charset import python_encoding

    terms = [t for t in python_encoding if t]
    multi = ("ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149", "ISO 2022 IR 58", "ISO 2022 GBK", "ISO 2022 58")
    groups = {
        "Single-byte without code extensions": [t for t in terms if t.startswith("ISO_IR") and t != "ISO_IR 192"],
        "Single-byte with code extensions": [t for t in terms if t.startswith("ISO 2022") and t not in multi],
        "Multi-byte without code extensions": [t for t in terms if t in ("ISO_IR 192", "GB18030", "GBK")],
        "Multi-byte with code extensions": [t for t in terms if t in multi],
    }
    return [[g, "; ".join(ts)] for g, ts in groups.items()]


def _introduction(d: Doc) -> None:
    d.h(1, "Introduction")
    d.h(2, "Revision History")
    d.table("Revision History", ["Document Version", "Product Version", "Change"],
            [[__version__, f"dcmcli {__version__}", "generated from the code of this version"]])
    d.h(2, "Audience")
    d.p("This document is written for the people that need to understand how dcmcli will integrate into "
        "their healthcare facility: integrators (sections 4 to 7), field service (5 and 7), security and IT "
        "staff (8).")
    d.h(2, "Remarks")
    d.p("The use of these DICOM Conformance Statements, in conjunction with the DICOM Standards, is intended "
        "to facilitate communication with dcmcli, but is not sufficient to guarantee interoperation of the "
        "connection. Test procedures should be defined and executed by the user to validate the connectivity "
        "with other systems.")
    d.h(2, "Abbreviations")
    d.table("Abbreviations", ["Abbreviation", "Meaning"], [
        ["AE", "Application Entity"], ["AET", "Application Entity Title"], ["DIMSE", "DICOM Message Service Element"],
        ["ELE", "Explicit VR Little Endian"], ["ILE", "Implicit VR Little Endian"], ["FSC / FSU / FSR",
        "File-set Creator / Updater / Reader"], ["PDU", "Protocol Data Unit"], ["RWA", "Real-World Activity"],
        ["SCU / SCP", "Service Class User / Provider"], ["TLS", "Transport Layer Security"], ["UA", "User Agent"]])
    d.h(2, "References")
    d.ul(["NEMA PS3 / ISO 12052, Digital Imaging and Communications in Medicine (DICOM) Standard, "
          "https://www.dicomstandard.org/current",
          "dcmcli's README and man pages (`man dcmcli-<command>`): every option named here."])


def _implementation_model(d: Doc, aes: list[ApplicationEntity]) -> None:
    d.h(1, "Implementation Model")
    d.p("dcmcli is one program with subcommands; each subcommand that uses the network or media is one "
        "application entity, in the roles below, started by the user (or a script) from the command line. "
        "The AE title is each command's name in capitals by default (`-aet` changes it).")
    d.h(2, "Application Data Flow")
    rows = []
    for ae in aes:
        roles = sorted({f"{c.role}" for c in ae.contexts}) + list(ae.media) + (["User Agent"] if ae.web else [])
        rows.append([ae.name, f"`dcmcli {ae.command}`", ", ".join(roles), _first_sentence(ae.function)])
    d.table("Application Entities", ["AE (default title)", "Command", "Roles", "Real-World Activity"], rows)
    for ae in aes:
        d.h(3, f"Functional Definition of {ae.name}")
        d.p(ae.function)


def _service_mapping(d: Doc, aes: list[ApplicationEntity]) -> None:
    from dcmcli.uids import storage_sop_classes

    storage = set(storage_sop_classes())
    d.h(1, "Service and Interoperability Description")
    d.h(2, "Service to AE Mapping")
    rows = []
    for ae in aes:
        for c in ae.contexts:
            rows.append([ae.name, _classes_text(c, storage), c.role, c.when or "always"])
        for m in ae.media:
            rows.append([ae.name, "Media Storage Directory (DICOMDIR)", m, ""])
        for svc, tx, _ in ae.web:
            rows.append([ae.name, f"{svc}: {tx}", "User Agent", ""])
    d.table("Service to AE Mapping", ["AE", "Supported Services (SOP Classes)", "Role", "Condition"], rows)
    d.h(2, "DIMSE Services")
    d.p("Each AE's SOP classes, presentation contexts, policies and statuses are in section 7.2 (one subsection "
        "per AE) and 7.3. Transcoding (Storage SCU): a file whose own transfer syntax the peer refused goes in "
        "the best one it accepted: uncompressed (decompressed, same SOP Instance UID), else compressed "
        "losslessly (verified bit for bit), else, for a lossy file or with `--allow-lossy`, lossy (a new SOP "
        "Instance UID, Lossy Image Compression attributes, a Source Image Sequence).")
    d.h(2, "DICOM Web Services")
    d.p("wado is a user agent of the URI and Studies services (section 1.3), over HTTP/1.1 or HTTPS. "
        "Retrieve asks for `multipart/related; type=\"application/dicom\"; transfer-syntax=*` by default "
        "(`--transfer-syntax` another), rendered resources as image/jpeg or image/png; STOW-RS sends "
        "application/dicom parts in batches; QIDO-RS asks for application/dicom+json.")
    d.h(2, "Media Services")
    d.p("dcmdir is File-set Creator, Updater and Reader of the general-purpose profiles below (PS3.11); the "
        "profile (`--profile`, default STD-GEN-CD) decides the transfer syntaxes allowed; a file in another "
        "stops create/update (exit 27) unless `--transcode` converts it.")
    d.table("Media Application Profiles and their Transfer Syntaxes", ["Profile", "Transfer Syntaxes"],
            [[p.name, "; ".join(f"{name_of(t)} `{t}`" for t in p.syntaxes)] for p in _profiles()])
    d.h(2, "Cross Service Considerations - N/A")
    d.p("N/A")


def _configuration(d: Doc) -> None:
    from dcmcli.net.acceptor import AcceptorOptions
    from dcmcli.net.association import AssociationSettings

    s, a = AssociationSettings(), AcceptorOptions()
    d.h(1, "Configuration")
    d.p("Everything is configured per run with command-line options (the same spellings as DCMTK's tools); "
        "there is no configuration file. USER: an option; FIXED: not configurable.")
    d.table("General Configuration Parameters", ["Parameter", "Configurable", "Default Value", "Comments"], [
        ["Connect timeout", "USER (`-to`)", f"{s.connect_timeout:g} s", "TCP connection to the peer"],
        ["A-ASSOCIATE and A-RELEASE response timeout (ACSE)", "USER (`-ta`)", f"{s.acse_timeout:g} s",
         "for the whole request or release; acceptors: the TLS handshake too"],
        ["DIMSE timeout", "USER (`-td`)", f"{s.dimse_timeout:g} s", "each message; 0: none"],
        ["Maximum PDU received", "USER (`-pdu`)", str(s.max_pdu), "0: unlimited"],
        ["TCP_NODELAY", "USER (`--no-tcp-nodelay`)", "on" if s.tcp_nodelay else "off", ""],
        ["Maximum simultaneous associations accepted", "USER (`--max-associations`)", str(a.max_associations),
         "more are rejected (A-ASSOCIATE-RJ, local limit exceeded)"],
        ["Connections waiting to negotiate", "FIXED", str(a.max_pending), ""],
        ["Shutdown grace period", "USER (`--shutdown-timeout`)", f"{a.shutdown_timeout:g} s",
         "associations in flight at SIGINT/SIGTERM"],
        ["Local AE title", "USER (`-aet`)", "the command's name in capitals", "1-16 ASCII characters"],
        ["Remote (called) AE title", "USER (`-aec`, or AET@host:port)", "ANY-SCP", ""],
        ["Listening port", "USER (the port argument)", "none", "0 picks a free port"],
    ])


def _general_parameters(d: Doc) -> None:
    from dcmcli.net.acceptor import AcceptorOptions
    from dcmcli.net.association import AssociationSettings
    from dcmcli.net.ul import APPLICATION_CONTEXT

    s, a = AssociationSettings(), AcceptorOptions()
    d.h(3, "General Association Parameters")
    d.table("General Association Parameters", ["Category", "Name", "Value"], [
        ["Networking", "Application Context Name", f"`{APPLICATION_CONTEXT}`"],
        ["Networking", "Implementation Class UID", f"`{IMPLEMENTATION_CLASS_UID}`"],
        ["Networking", "Implementation Version Name", IMPLEMENTATION_VERSION_NAME],
        ["Networking", "Maximum PDU Length (received)", f"{s.max_pdu} (`-pdu`; 0: unlimited)"],
        ["Networking", "ARTIM / ACSE timeout", f"{s.acse_timeout:g} s (`-ta`)"],
        ["Networking", "Maximum simultaneous associations as initiator",
         "1 (storescu `-j N`: N; a report listener or movescu's receiver beside it)"],
        ["Networking", "Maximum simultaneous associations as acceptor", f"{a.max_associations} (`--max-associations`)"],
        ["Networking", "Maximum number of outstanding asynchronous transactions",
         "1: no Asynchronous Operations Window is proposed; one proposed to a dcmcli acceptor is answered 1/1"],
        ["Media", "File Meta Information Version", "00\\01"],
        ["Media", "Implementation Class UID", f"`{IMPLEMENTATION_CLASS_UID}`"],
        ["Media", "Implementation Version Name", IMPLEMENTATION_VERSION_NAME],
        ["Web", "Maximum connections as user agent", "1 (wado `-j N`: N)"],
    ])


def _ae_details(d: Doc, ae: ApplicationEntity, storage: set[str]) -> None:
    d.h(3, ae.name)
    d.p(f"`dcmcli {ae.command}`. Association parameters: as in 7.1.1.")
    proposed = [c for c in ae.contexts if c.proposed]
    accepted = [c for c in ae.contexts if not c.proposed]
    if proposed or ae.initiation:
        d.p("**Association initiation.**")
        d.ul(ae.initiation)
        if proposed:
            d.table(f"Presentation Contexts Proposed by {ae.name}",
                    ["Abstract Syntax", "Transfer Syntaxes", "Role", "Extended Negotiation", "Condition"],
                    [[_classes_text(c, storage), _syntaxes_text(c) + (f" ({c.note})" if c.note else ""), c.role,
                      "; ".join(x for x in (c.role_selection and f"role selection: {c.role_selection}", c.extended)
                                if x) or "none", c.when or "always"] for c in proposed])
    if accepted or ae.acceptance:
        d.p("**Association acceptance.**")
        d.ul(ae.acceptance)
        if accepted:
            d.table(f"Presentation Contexts Accepted by {ae.name}",
                    ["Abstract Syntax", "Transfer Syntaxes (in order of preference)", "Role",
                     "Extended Negotiation", "Condition"],
                    [[_classes_text(c, storage), _syntaxes_text(c) + (f" ({c.note})" if c.note else ""), c.role,
                      "; ".join(x for x in (c.role_selection and f"role selection: {c.role_selection}", c.extended)
                                if x) or "none", c.when or "always"] for c in accepted])
            d.p("Transfer syntax selection: of those the requestor proposes in a context, the first of this "
                "list is accepted (the acceptor's preference, not the requestor's order).")


def _network(d: Doc, aes: list[ApplicationEntity]) -> None:
    from dcmcli.uids import storage_sop_classes

    storage = set(storage_sop_classes())
    d.h(1, "Network and Media Communication Details")
    d.h(2, "General")
    d.p("Every AE uses the same association core: TCP/IP on IPv4 and IPv6 (a peer is `host port` or "
        "`[AET@]host:port`, `[::1]:104`), optionally TLS (section 8).")
    _general_parameters(d)
    d.h(2, "Specifications")
    for ae in aes:
        if ae.contexts:
            _ae_details(d, ae, storage)
    d.h(2, "Status Codes")
    _failures(d)
    for ae in aes:
        for st in ae.statuses:
            _status_table(d, ae, st)
    _web_statuses(d)


def _failures(d: Doc) -> None:
    from dcmcli.errors import EXIT_CODES

    d.h(3, "Communication Failure Behavior")
    net = [e for e in EXIT_CODES if 60 <= int(e.code) <= 79 and int(e.code) not in (66, 67, 68, 69, 70)]
    d.table("Communication Failure Behavior as Association Initiator", ["Failure", "Behavior"],
            [[e.meaning, f"one line saying what happened and what to try; exit {int(e.code)} ({e.name})"]
             for e in net])
    from dcmcli.net import acceptor as acc

    rj = {"RJ_CALLING_NOT_RECOGNISED": "calling AE title not allowed (`--allow-calling`), or not the address a "
                                       "receiver waits for",
          "RJ_CALLED_NOT_RECOGNISED": "called AE title not ours (`--require-called`), or without a worklist folder",
          "RJ_APPLICATION_CONTEXT": "an application context other than the DICOM one",
          "RJ_PROTOCOL_VERSION": "a protocol version without bit 0",
          "RJ_LOCAL_LIMIT": "more associations than `--max-associations`",
          "RJ_USER_IDENTITY": "a user identity not in `--require-user` (or none)"}
    rows = [[why, "A-ASSOCIATE-RJ result {} source {} reason {}".format(*getattr(acc, name))]
            for name, why in rj.items()]
    rows += [["a malformed PDU, item or command set; a PDU where another was expected", "A-ABORT, one log line"],
             ["no complete A-ASSOCIATE-RQ within `-ta`, no message within `-td`", "the connection closed, logged"],
             ["TLS handshake failed (not TLS, no certificate, not trusted)", "the connection closed, logged"]]
    d.table("Communication Failure Handling as Association Acceptor", ["Exception", "Response"], rows)


def status_codes(st: Statuses) -> list[int]:
    """The codes a status table of the statement lists: those declared (SCP), or the service's table (SCU)."""
    from dcmcli import status

    if st.role == "SCP" or st.codes:
        return list(st.codes)
    table = dict(status.SERVICE.get(st.service, {}))
    general = {0x0000, 0xFE00, 0xFF00, 0xFF01} if st.service in ("C-FIND", "C-MOVE", "C-GET") else {0x0000}
    if st.service.startswith("N-"):
        general = {c for c in status.GENERAL if c < 0xFE00}
    codes = set(table) | general
    return sorted(codes, key=lambda c: (_category_order(status.describe(c, st.service).category.value), c))


def _category_order(cat: str) -> int:
    return ["success", "pending", "cancel", "warning", "failure"].index(cat)


def _status_table(d: Doc, ae: ApplicationEntity, st: Statuses) -> None:
    from dcmcli.status import describe

    lookup = "STORAGE-COMMITMENT" if st.service == "STORAGE-COMMITMENT" else st.service
    label = {"STORAGE-COMMITMENT": "Storage Commitment Failure Reasons"}.get(st.service, st.service)
    rows = []
    for code in status_codes(st):
        s = describe(code, lookup)
        rows.append([s.category.value, s.meaning, f"{code:04X}",
                     st.conditions.get(code, "") if st.role == "SCP" else st.behaviour.get(s.category.value, "")])
    if st.role == "SCU":
        rows.append(["-", "Other Status Codes", "anything else",
                     "read as the status table says (Bxxx a warning, anything else a failure): "
                     + st.behaviour.get("failure", "exit 66")])
    d.table(f"{label} {st.role} Status Codes of {ae.name}",
            ["Service Status", "Further Meaning", "Status Code", "Condition" if st.role == "SCP" else "Behavior"],
            rows)


def _web_statuses(d: Doc) -> None:
    from dcmcli.web.http import _HINTS

    d.h(3, "DICOM Web Status Codes")
    rows = [["Success", "200, 204, 206", "read; a 204 or an empty answer is no match"]]
    rows += [["Failure", "401, 403", "credentials refused or wanted; exit 69"]]
    rows += [["Failure", str(code), f"{meaning}; exit 66"] for code, (meaning, _hint) in sorted(_HINTS.items())]
    rows += [["-", "Other Status Codes", "any other 4xx/5xx: the server's explanation printed; exit 66"]]
    d.table("DICOM Web User Agent Status Codes", ["Status", "Code", "Behavior"], rows)


def _security(d: Doc) -> None:
    from dcmcli.net.acceptor import USER_IDENTITY_TYPES_CHECKED
    from dcmcli.net.tls import PROFILES

    d.h(1, "Security")
    d.h(2, "External Network Requirements - N/A")
    d.p("N/A")
    d.h(2, "TCP Port Configuration")
    d.p("dcmcli opens no port by default: servers listen on the port given on the command line (storescp, "
        "mwlscp, movescu `+P`, nactionscu `--port`); SCUs connect to the peer's port.")
    d.h(2, "DICOM Security Profiles Support")
    d.table("Secure Transport Connection Profiles", ["Profile", "Secured AE", "Option", "Reference"],
            [[desc.split(":")[0], "ALL", f"`{flag}`" + (" (default)" if name == "bcp195-nd" else ""),
              "PS3.15 B.9-B.11"] for name, (flag, _lo, _hi, _c, desc) in PROFILES.items()])
    d.p("TLS (`+tls KEY CERT`, `+tla`) is per run, for every AE: requestors wrap the socket before the "
        "A-ASSOCIATE-RQ and verify the peer's certificate and host name by default; acceptors verify a client "
        "certificate when presented (`-rc` requires one). Trusted certificates from `+cf`, `+cd` or "
        "`--tls-system-ca`; revocation lists `+crl`.")
    d.h(2, "User Identity Negotiation")
    d.table("User Identity Negotiation as Initiator", ["User-Identity-Type", "Supported", "Requested Value"], [
        ["1 (username)", "Y", "`-usr NAME`"], ["2 (username and passcode)", "Y", "`-usr NAME -pwd PASSWORD`"],
        ["4 (SAML assertion)", "Y", "`--saml FILE`"], ["5 (JSON Web Token)", "Y", "`--jwt TOKEN`"],
        ["Positive-response-requested", "Y", "`-rsp` (1); otherwise 0"]])
    d.p("Kerberos (type 3) is not sent.")
    how = {1: "a `user` line", 2: "a `user:password` line", 5: "`jwt-hs256:SECRET` (HS256 signature, expiry)"}
    names = {1: "username", 2: "username and passcode", 5: "JSON Web Token"}
    d.table("User Identity Negotiation as Acceptor", ["User-Identity-Type", "Supported", "How it is checked"],
            [[f"{t} ({names[t]})", "Y", f"`--require-user FILE`: {how[t]}"] for t in USER_IDENTITY_TYPES_CHECKED]
            + [["Positive response", "Y", "sent (empty) for types "
                + ", ".join(map(str, USER_IDENTITY_TYPES_CHECKED)) + " when requested and accepted"]])
    d.p("With `--require-user`, other types (3, 4) and requestors without a user identity are rejected "
        "(A-ASSOCIATE-RJ); without it any user identity is accepted and none is answered.")
    d.h(2, "Web Services Security Features")
    d.p("HTTP basic (`-u USER[:PASSWORD]`, the password from the environment or prompted) and bearer tokens "
        "(`--token`, `--token-env`); HTTPS with the same certificate options as DICOM TLS (`--cacert`, `+cf`, "
        "`+tls KEY CERT`, the profiles); `--insecure` skips verification, with a warning.")


def _annexes(d: Doc) -> None:
    d.annex("A", "IOD Contents")
    d.p("dcmcli creates no SOP instances of its own but these, each described by the option that makes it: "
        "DICOMDIRs (Basic Directory IOD, records of PS3.3 F.5 for every instance referenced: `dcmdir`); lossy "
        "copies (`dcmconv`, storescu's lossy fallback: a new SOP Instance UID, Lossy Image Compression, Lossy "
        "Image Compression Ratio and Method, Source Image Sequence, the rest of the source data set kept); MPPS, "
        "IAN and UPS data sets (`ncreatescu --mpps|--ian|--ups`) built from the images' attributes (see the "
        "README and the man pages for each attribute's source). Received and stored objects keep their data "
        "set; dcmcli writes its own File Meta Information (Implementation Class UID and Version Name above, "
        "Source Application Entity Title: the sender's AE title).")


# -- the statement ---------------------------------------------------------------

def statement() -> Doc:
    """The whole statement as blocks."""
    aes = application_entities()
    d = Doc()
    _cover(d)
    _overview(d, aes)
    d.h(1, "Table of Contents")
    d.blocks.append(("toc",))
    _introduction(d)
    _implementation_model(d, aes)
    _service_mapping(d, aes)
    _configuration(d)
    _network(d, aes)
    _security(d)
    _annexes(d)
    return d


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def markdown(doc: Doc | None = None) -> str:
    d = doc or statement()
    out: list[str] = []
    heads = [b for b in d.blocks if b[0] == "h" and b[1] <= 2]
    for b in d.blocks:
        kind = b[0]
        if kind == "title":
            out += [f"# {b[1]}", ""]
        elif kind == "toc":
            out += [f"{'  ' * (h[1] - 1)}- [{h[2]}](#{_anchor(h[2])})" for h in heads]
            out.append("")
        elif kind == "h":
            out += [f"{'#' * (b[1] + 1)} {b[2]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "ul":
            out += [f"- {i}" for i in b[1]] + [""]
        elif kind == "table":
            _, title, header, rows = b
            cell = lambda t: str(t).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            out += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _inline(text: str) -> str:
    t = _html.escape(text, quote=False)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)


def html(doc: Doc | None = None) -> str:
    d = doc or statement()
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>dcmcli {__version__}: DICOM Conformance Statement</title>",
           "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #999;padding:2px 6px;vertical-align:top;text-align:left}</style>",
           "</head><body>"]
    heads = [b for b in d.blocks if b[0] == "h" and b[1] <= 2]
    for b in d.blocks:
        kind = b[0]
        if kind == "title":
            out.append(f"<h1>{_inline(b[1])}</h1>")
        elif kind == "toc":
            out.append("<ul>")
            out += [f'<li style="margin-left:{(h[1] - 1) * 2}em"><a href="#{_anchor(h[2])}">{_inline(h[2])}</a></li>'
                    for h in heads]
            out.append("</ul>")
        elif kind == "h":
            out.append(f'<h{b[1] + 1} id="{_anchor(b[2])}">{_inline(b[2])}</h{b[1] + 1}>')
        elif kind == "p":
            out.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            _, title, header, rows = b
            out.append(f"<table><caption>{_inline(title)}</caption><tr>"
                       + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


__all__ = ["application_entities", "statement", "markdown", "html", "name_of", "status_codes", "PACKAGES"]
