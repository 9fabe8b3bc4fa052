"""The conformance statement (CONFORMANCE.md, `dcmcli conformance`) against the
standard and against what the commands really do.

* the committed copy is current (as the man pages: one generator);
* every UID it names is a valid UID in pydicom's dictionary (or one of the few
  newer ones dcmcli's registry adds, checked against pynetdicom's), and every
  retired one is marked retired;
* every status code it lists is in the shared status table, in the category
  the table gives it;
* what each SCU proposes, recorded by a peer that decodes every A-ASSOCIATE-RQ
  with pynetdicom's PDU classes, is what the statement says it proposes; what
  storescp and mwlscp accept, proposed by pynetdicom, is what it says they
  accept;
* the declaration convention holds: every service module that negotiates
  declares its AE, every network subcommand has one.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import json_lines, run_dcmcli, sample
from dcmcli import IMPLEMENTATION_CLASS_UID
from dcmcli.conformance import OWN, ApplicationEntity, Contexts
from dcmcli.conformance import statement as cs
from dcmcli.uids import (ELE, EXTRA_STORAGE, EXTRA_SYNTAXES, ILE, JPEG_BASELINE, QUERY_MODELS, UPS_EVENT, UPS_PUSH,
                         UPS_WATCH, all_transfer_syntaxes, storage_sop_classes)

ROOT = Path(__file__).resolve().parents[1]
CT = "1.2.840.10008.5.1.4.1.1.2"
SC = "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture(scope="module")
def text() -> str:
    return cs.markdown()


@pytest.fixture(scope="module")
def aes() -> dict[str, ApplicationEntity]:
    return {ae.name: ae for ae in cs.application_entities()}


# -- the committed copy, the command ------------------------------------------------

def test_committed_statement_is_current(text: str) -> None:
    committed = (ROOT / "CONFORMANCE.md").read_text(encoding="utf-8")
    assert committed == text, "CONFORMANCE.md is stale: run `python -m dcmcli.cli.gendocs` and commit it"


def test_command_writes_markdown_and_html(tmp_path: Path, text: str) -> None:
    r = run_dcmcli("conformance")
    assert r.returncode == 0, r.stderr
    assert r.stdout == text
    out = tmp_path / "dcs.html"
    r = run_dcmcli("conformance", "--html", "--json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    assert [e["event"] for e in events] == ["written", "summary"]
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert events[0]["bytes"] == len(page.encode()) and events[1]["application_entities"] >= 11
    assert "<td>STORESCU</td>" in page and "<code>1.2.840.10008.1.1</code>" in page


def test_command_errors(tmp_path: Path) -> None:
    r = run_dcmcli("conformance", "-o", str(tmp_path / "missing" / "dcs.md"))
    assert r.returncode == 40 and "cannot write" in r.stderr and r.stderr.count("\n") == 1
    r = run_dcmcli("conformance", "--json")
    assert r.returncode == 1 and "--json needs -o FILE" in r.stderr


def test_statement_has_the_annex_n_sections(text: str) -> None:
    for heading in ("## 1 Overview", "### 1.1 Content and Transfer", "## 2 Table of Contents", "## 3 Introduction",
                    "## 4 Implementation Model", "## 5 Service and Interoperability Description",
                    "## 6 Configuration", "## 7 Network and Media Communication Details", "## 8 Security",
                    "### 1.4 Media Services", "### 1.3 DICOM Web Services", "### 7.3 Status Codes",
                    "### 1.7 Specific Character Sets"):
        assert f"\n{heading}\n" in text, heading
    assert "Implementation Class UID | `" + IMPLEMENTATION_CLASS_UID + "`" in text
    assert "| Networking | Maximum PDU Length (received) | 131072" in text
    for profile in ("BCP 195 non-downgrading", "STD-GEN-CD", "STD-GEN-USB-J2K"):
        assert profile in text
    # every table has rows (the template: include rows only for supported things; no empty section)
    for m in re.finditer(r"\*\*(Table [^*]+)\*\*\n\n\|.*\n\|[-|]+\n(\|)?", text):
        assert m.group(2), f"{m.group(1)} has no rows"


# -- UIDs and statuses against the standard ----------------------------------------

def _uid_dictionary() -> dict[str, tuple[str, ...]]:
    from pydicom._uid_dict import UID_dictionary

    return UID_dictionary  # type: ignore[return-value]


def test_every_uid_is_valid_known_and_retired_ones_marked(text: str) -> None:
    import pynetdicom.sop_class

    from dcmcli.uids import is_uid

    known = _uid_dictionary()
    newer_storage = {str(v) for v in pynetdicom.sop_class._STORAGE_CLASSES.values()}
    named = 0
    for line in text.splitlines():
        for uid in re.findall(r"`(\d+(?:\.\d+)+)`", line):
            named += 1
            assert is_uid(uid), f"not a valid UID: {uid}"
            if uid == IMPLEMENTATION_CLASS_UID:
                assert uid.startswith("2.25."), uid  # dcmcli's own, UUID-derived (PS3.5 B.2)
                continue
            if uid not in known:
                assert uid in EXTRA_STORAGE or uid in EXTRA_SYNTAXES, f"{uid} is in no dictionary"
                if uid in EXTRA_STORAGE:
                    assert uid in newer_storage, f"{uid}: pynetdicom does not know this storage class either"
                continue
            entry = known[uid]
            if entry[3]:  # retired: only deliberately (DCMTK's -O, Explicit VR Big Endian accepted), and marked
                assert "(retired)" in line, f"retired UID {uid} ({entry[0]}) not marked: {line[:200]}"
    assert named > 300


def test_extra_syntaxes_are_the_standards_jpeg_xl() -> None:
    # PS3.6 Table A-1 (2024): not yet in pydicom 3.0's dictionary
    assert {u: n for u, (n, _) in EXTRA_SYNTAXES.items()} == {
        "1.2.840.10008.1.2.4.110": "JPEG XL Lossless", "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
        "1.2.840.10008.1.2.4.112": "JPEG XL"}


def test_every_declared_uid_is_a_sop_class_or_transfer_syntax(aes: dict[str, ApplicationEntity]) -> None:
    known = _uid_dictionary()
    for ae in aes.values():
        for c in ae.contexts:
            for uid in c.classes():
                kind = known[uid][1] if uid in known else ("SOP Class" if uid in EXTRA_STORAGE else "?")
                assert kind in ("SOP Class", "Meta SOP Class"), (ae.name, uid, kind)
            for ts in c.syntaxes():
                kind = known[ts][1] if ts in known else ("Transfer Syntax" if ts in EXTRA_SYNTAXES else "?")
                assert kind == "Transfer Syntax", (ae.name, ts, kind)


def _status_tables(text: str) -> Iterator[tuple[str, str, list[list[str]]]]:
    pattern = re.compile(r"\*\*Table [\d]+-\d+\. (.+?) (SCU|SCP) Status Codes of (\S+)\*\*\n\n\|.*\n\|[-|]+\n((?:\|.*\n)+)")
    for m in pattern.finditer(text):
        rows = [[c.strip() for c in row.strip().strip("|").split(" | ")] for row in m.group(4).splitlines()]
        yield m.group(1), m.group(3), rows


def test_every_status_code_is_in_the_status_table(text: str) -> None:
    from dcmcli import status

    tables = list(_status_tables(text))
    assert len(tables) >= 15
    services = {"Storage Commitment Failure Reasons": "STORAGE-COMMITMENT"}
    seen = 0
    for title, ae, rows in tables:
        service = services.get(title, title)
        assert service in status.SERVICE, (title, ae)
        for category, meaning, code, _ in rows:
            if code == "anything else":
                continue
            value = int(code, 16)
            assert value in status.GENERAL or value in status.SERVICE[service], f"{ae} {title}: {code} not in the table"
            described = status.describe(value, service)
            assert (described.category.value, described.meaning) == (category, meaning), (ae, title, code)
            seen += 1
    assert seen > 100


def test_scp_statuses_have_their_condition(aes: dict[str, ApplicationEntity]) -> None:
    for ae in aes.values():
        for st in ae.statuses:
            if st.role == "SCP":
                assert st.codes and set(st.codes) == set(st.conditions), (ae.name, st.service)


def test_configuration_defaults_are_the_options_defaults() -> None:
    """The statement reads AssociationSettings and AcceptorOptions; the CLI's options must default to the same."""
    from dcmcli.cli.options import _SHARED
    from dcmcli.net.acceptor import AcceptorOptions
    from dcmcli.net.association import AssociationSettings

    defaults = {name: default for name, _a, default, _s in _SHARED}
    s, a = AssociationSettings(), AcceptorOptions()
    assert defaults["max_pdu"] == s.max_pdu
    assert defaults["acse_timeout"] == s.acse_timeout
    assert defaults["dimse_timeout"] == s.dimse_timeout
    assert defaults["timeout"] == s.connect_timeout
    assert defaults["shutdown_timeout"] == a.shutdown_timeout
    assert defaults["max_associations"] == a.max_associations


def test_probe_syntaxes_match_echoscu_default() -> None:
    from dcmcli.cli.echoscu import PROBE_DEFAULT_TS
    from dcmcli.net.services.echo import PROBE_SYNTAXES
    from dcmcli.uids import parse_transfer_syntax

    assert tuple(parse_transfer_syntax(t) for t in PROBE_DEFAULT_TS) == PROBE_SYNTAXES


# -- the declaration convention -------------------------------------------------------

def test_every_negotiating_module_declares_its_ae() -> None:
    """A service module that proposes or accepts contexts has a CONFORMANCE list (printscu's too)."""
    import importlib

    markers = ("open_association(", "open_session(", "request_association(", "def transfer_syntaxes(")
    for name in cs._modules():
        module = importlib.import_module(name)
        source = Path(module.__file__).read_text(encoding="utf-8")  # type: ignore[arg-type]
        if any(m in source for m in markers):
            assert getattr(module, "CONFORMANCE", None), f"{name} negotiates but declares no AE (CONFORMANCE)"


def test_every_network_command_is_an_ae(aes: dict[str, ApplicationEntity]) -> None:
    found = {}
    for path in sorted((ROOT / "dcmcli" / "cli").glob("*.py")):
        for m in re.finditer(r'dcmcli_command\(app, "([^"]+)", network="(scu|scp)", default_aet="([^"]+)"',
                             path.read_text(encoding="utf-8")):
            found[m.group(1)] = m.group(3)
    assert {"echoscu", "storescu", "storescp", "findscu", "movescu", "getscu", "mwlscp"} <= set(found)
    for command, aet in found.items():
        assert aet in aes, f"{command} (AE {aet}) is not in the statement: declare it (README Layout)"
        assert aes[aet].command == command and aes[aet].function, aet
    assert {"DCMDIR", "WADO"} <= set(aes) and aes["DCMDIR"].media == ("FSC", "FSU", "FSR")


# -- what the SCUs propose, recorded ------------------------------------------------

@dataclass
class Request:
    calling: str
    called: str
    contexts: list[tuple[str, tuple[str, ...]]]
    roles: dict[str, tuple[int, int]]
    extended: dict[str, bytes]
    #: SOP Class Common Extended Negotiation: SOP class -> (service class, related general SOP classes)
    common: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


@dataclass
class Recorder:
    """A peer that reads each A-ASSOCIATE-RQ, decodes it with pynetdicom's PDU
    classes, records it and answers A-ASSOCIATE-RJ (permanent, no reason)."""

    sock: socket.socket
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    head = self._read(conn, 6)
                    body = self._read(conn, struct.unpack(">I", head[2:])[0])
                except (OSError, ValueError):
                    continue
                self._record(head + body)
                conn.sendall(bytes([0x03, 0, 0, 0, 0, 4, 0, 1, 1, 1]))  # A-ASSOCIATE-RJ 1/1/1

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ValueError("closed")
            data += chunk
        return data

    def _record(self, raw: bytes) -> None:
        from pynetdicom.pdu import A_ASSOCIATE_RQ
        from pynetdicom.pdu_items import (SCP_SCU_RoleSelectionSubItem, SOPClassCommonExtendedNegotiationSubItem,
                                          SOPClassExtendedNegotiationSubItem)

        assert raw[0] == 0x01
        pdu = A_ASSOCIATE_RQ()
        pdu.decode(raw)
        contexts = [(str(p.abstract_syntax), tuple(str(t) for t in p.transfer_syntax))
                    for p in pdu.presentation_context]
        roles: dict[str, tuple[int, int]] = {}
        extended: dict[str, bytes] = {}
        common: dict[str, tuple[str, tuple[str, ...]]] = {}
        for item in pdu.user_information.user_data:
            if isinstance(item, SCP_SCU_RoleSelectionSubItem):
                roles[str(item.sop_class_uid)] = (int(item.scu_role), int(item.scp_role))
            elif isinstance(item, SOPClassExtendedNegotiationSubItem):
                extended[str(item.sop_class_uid)] = bytes(item.service_class_application_information)
            elif isinstance(item, SOPClassCommonExtendedNegotiationSubItem):
                common[str(item.sop_class_uid)] = (str(item.service_class_uid), tuple(
                    str(u) for u in item.related_general_sop_class_identification))
        with self.lock:
            self.requests.append(Request(pdu.calling_ae_title.strip(), pdu.called_ae_title.strip(), contexts,
                                         roles, extended, common))
        self.arrived.set()

    def run(self, *args: str, expect: int = 61) -> list[Request]:
        """Run a dcmcli command against this peer; the association requests it made."""
        with self.lock:
            self.requests.clear()
        r = run_dcmcli(*args[:1], "-ta", "10", "-to", "10", *args[1:], timeout=60)
        assert r.returncode == expect, (args, r.returncode, r.stderr[-500:])
        with self.lock:
            return list(self.requests)


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    rec = Recorder(sock)
    thread = threading.Thread(target=rec.serve, daemon=True)
    thread.start()
    yield rec
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() the thread is blocked in
    except OSError:
        pass
    sock.close()
    thread.join(10)
    assert not thread.is_alive()


def declared(ae: ApplicationEntity, pick: Callable[[Contexts], bool], sop_classes: list[str] | None = None,
             own: dict[str, list[str]] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """The contexts the statement says ``ae`` proposes, for the declared Contexts ``pick`` selects,
    instantiated for ``sop_classes`` (a class-dependent list: the files') and each file's ``own`` syntaxes."""
    out: list[tuple[str, tuple[str, ...]]] = []
    chosen = [c for c in ae.contexts if c.proposed and pick(c)]
    classes = sop_classes or list(dict.fromkeys(u for c in chosen for u in c.classes()))
    for sop in classes:
        for c in chosen:
            if sop not in c.classes():
                continue
            if c.transfer_syntaxes == OWN:
                out += [(sop, (t,)) for t in (own or {}).get(sop, [])]
            elif c.one_per_syntax:
                out += [(sop, (t,)) for t in c.syntaxes()]
            else:
                out.append((sop, tuple(c.syntaxes())))
    return out


def _peer(rec: Recorder) -> list[str]:
    return ["127.0.0.1", str(rec.port)]


def test_echoscu_proposes_what_the_statement_says(recorder: Recorder, aes: dict[str, ApplicationEntity]) -> None:
    ae = aes["ECHOSCU"]
    rq, = recorder.run("echoscu", *_peer(recorder))
    assert rq.contexts == declared(ae, lambda c: not c.when) and rq.calling == "ECHOSCU"
    rq, = recorder.run("echoscu", "--propose", "CTImageStorage", *_peer(recorder), expect=61)
    assert rq.contexts == declared(ae, lambda c: c.when.startswith("--propose-storage"), [CT])
    first = recorder.run("echoscu", "--propose-storage", *_peer(recorder))[0]
    assert first.contexts == declared(ae, lambda c: c.when.startswith("--propose-storage"))[:128]


@pytest.mark.parametrize("name, sop, ts, pick", [
    ("CT_small.dcm", CT, ELE, lambda c: "lossy" not in c.when),
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", SC, JPEG_BASELINE, lambda c: True),  # lossy already: the lossy group too
    ("test-SR.dcm", "1.2.840.10008.5.1.4.1.1.88.33", ELE, lambda c: not c.when),  # no Pixel Data
])
def test_storescu_proposes_what_the_statement_says(recorder: Recorder, aes: dict[str, ApplicationEntity],
                                                   name: str, sop: str, ts: str, pick: Callable[[Contexts], bool]
                                                   ) -> None:
    rq, = recorder.run("storescu", *_peer(recorder), str(sample(name)))
    assert rq.contexts == declared(aes["STORESCU"], pick, [sop], {sop: [ts]})
    assert rq.roles == {} and rq.extended == {}


def test_storescu_cen_sends_what_the_statement_says(recorder: Recorder, aes: dict[str, ApplicationEntity]) -> None:
    """-cen: one SOP Class Common Extended Negotiation item per SOP class proposed, as the statement
    declares for storescu's storage contexts: service class Storage, PS3.4 Table B.3-3's related general
    classes (a Comprehensive SR: Comprehensive 3D and Extensible SR; a CT: none); without -cen, none."""
    from dcmcli.net.contexts import CEN_PROPOSED
    from dcmcli.uids import STORAGE_SERVICE_CLASS, related_general_sop_classes

    sr = "1.2.840.10008.5.1.4.1.1.88.33"
    rq, = recorder.run("storescu", "-cen", *_peer(recorder), str(sample("CT_small.dcm")), str(sample("test-SR.dcm")))
    # declared once per SOP class (the items are per class, not per context): on its first context group
    assert aes["STORESCU"].contexts[0].extended == CEN_PROPOSED
    assert rq.common == {sop: (STORAGE_SERVICE_CLASS, related_general_sop_classes(sop)) for sop in (CT, sr)}
    assert rq.common[sr][1] == ("1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.88.35")
    assert {sop for sop, _ in rq.contexts} == {CT, sr}
    rq, = recorder.run("storescu", *_peer(recorder), str(sample("CT_small.dcm")))
    assert rq.common == {}


def test_storescu_no_compress_fallback(recorder: Recorder, aes: dict[str, ApplicationEntity]) -> None:
    rq, = recorder.run("storescu", "--no-compress-fallback", *_peer(recorder), str(sample("CT_small.dcm")))
    assert rq.contexts == declared(aes["STORESCU"], lambda c: not c.when, [CT], {CT: [ELE]})


def test_findscu_proposes_every_model_the_statement_lists(recorder: Recorder, aes: dict[str, ApplicationEntity]
                                                          ) -> None:
    ae = aes["FINDSCU"]
    expected = declared(ae, lambda c: True)
    seen = []
    for model in QUERY_MODELS:
        if not model.find:
            continue
        rq, = recorder.run("findscu", "-M", model.find, *_peer(recorder), "-k", "PatientID=1")
        seen += rq.contexts
    assert seen == expected
    rq, = recorder.run("findscu", "--relational", "--datetime", "--fuzzy", "--timezone", *_peer(recorder),
                       "-k", "PatientID=1")
    study_find = QUERY_MODELS[1].find
    assert rq.extended == {study_find: b"\x01\x01\x01\x01"} and "relational" in ae.contexts[0].extended


def test_movescu_proposes_what_the_statement_says(recorder: Recorder, aes: dict[str, ApplicationEntity]) -> None:
    ae = aes["MOVESCU"]
    moves = {c for c, _ in declared(ae, lambda c: c.role == "SCU" and not c.when)}
    assert moves == {m.move for m in QUERY_MODELS if m.move}
    for model in ("patient", "study", "patient-study", "composite"):
        m = next(q for q in QUERY_MODELS if q.name == model)
        rq, = recorder.run("movescu", "-M", model, *_peer(recorder), "-k", "PatientID=1",
                           "-k", "StudyInstanceUID=1.2.3", "-L", "STUDY")
        assert rq.contexts == [c for c in declared(ae, lambda c: not c.when) if c[0] == m.move]
    # keys without the unique key: a C-FIND first, as the statement says
    rq, = recorder.run("movescu", *_peer(recorder), "-k", "PatientID=123")
    find = [c for c in declared(ae, lambda c: "unique key" in c.when) if c[0] == QUERY_MODELS[1].find]
    assert rq.contexts == find


def test_getscu_proposes_what_the_statement_says(recorder: Recorder, aes: dict[str, ApplicationEntity]) -> None:
    from dcmcli.net.services.retrieve import COMMON_STORAGE

    ae = aes["GETSCU"]
    rq, = recorder.run("getscu", "--no-find", *_peer(recorder), "-k", "StudyInstanceUID=1.2.3")
    get = [c for c in declared(ae, lambda c: c.role == "SCU" and not c.when) if c[0] == QUERY_MODELS[1].get]
    storage = declared(ae, lambda c: c.role == "SCP" and "--no-find" in c.when)
    assert rq.contexts == get + storage[:127]
    assert [c for c, _ in storage] == list(dict.fromkeys(COMMON_STORAGE))
    assert rq.roles == {sop: (0, 1) for sop, _ in storage[:127]}
    # and by default: the first association also proposes the C-FIND it asks on first
    rq, = recorder.run("getscu", *_peer(recorder), "-k", "StudyInstanceUID=1.2.3")
    find = [c for c in declared(ae, lambda c: "asked first" in c.when) if c[0] == QUERY_MODELS[1].find]
    first = declared(ae, lambda c: c.role == "SCP" and "the first association" in c.when)
    assert first == storage and len(find) == 1
    assert rq.contexts == get + storage[:126] + find


def test_getscu_storage_plan_after_a_find_is_the_statements() -> None:
    """The plan for classes a C-FIND found (no peer answers C-FIND here): per class, one context of
    every syntax and one per compressed syntax, as declared."""
    from dcmcli.net.services.retrieve import CONFORMANCE, plan_storage

    ae = next(a for a in CONFORMANCE if a.name == "GETSCU")
    plan, = plan_storage({CT: [JPEG_BASELINE]}, [], None)
    every, single = (c for c in ae.contexts if "C-FIND named" in c.when)
    assert plan.contexts[0][0] == CT and set(plan.contexts[0][1]) == set(every.syntaxes())
    assert plan.contexts[0][1][:3] == [ELE, ILE, JPEG_BASELINE]
    singles = [t for _, (t,) in plan.contexts[1:]]  # the syntax the peer named first, then the declared ones
    assert singles[0] == JPEG_BASELINE and sorted(singles) == sorted(single.syntaxes())


@pytest.mark.parametrize("args, classes", [
    (("nactionscu", "--commit", "@peer", "@ct"), ["1.2.840.10008.1.20.1"]),
    (("nactionscu", "--ups-state", "IN PROGRESS", "@peer", "1.2.3.4"), [UPS_PUSH]),
    (("nactionscu", "--ups-subscribe", "@peer"), [UPS_WATCH, UPS_EVENT]),
    (("nactionscu", "@peer", "media-creation", "1.2.3.4", "1"), ["1.2.840.10008.5.1.1.33"]),
    (("ncreatescu", "--mpps", "@peer", "@ct"), ["1.2.840.10008.3.1.2.3.3"]),
    (("ncreatescu", "--ian", "@peer", "@ct"), ["1.2.840.10008.5.1.4.33"]),
    (("ncreatescu", "--ups", "@peer"), [UPS_PUSH]),
    (("ncreatescu", "@peer", "event-logging"), ["1.2.840.10008.1.40"]),
    # printscu: grayscale meta, Print Job, Presentation LUT; with --status also colour and Printer Configuration
    (("printscu", "@peer", "@ct"), ["1.2.840.10008.5.1.1.9", "1.2.840.10008.5.1.1.14", "1.2.840.10008.5.1.1.23"]),
    (("printscu", "--status", "@peer"), ["1.2.840.10008.5.1.1.18", "1.2.840.10008.5.1.1.9", "1.2.840.10008.5.1.1.14",
                                         "1.2.840.10008.5.1.1.23", "1.2.840.10008.5.1.1.16.376"]),
])
def test_normalized_scus_propose_what_the_statement_says(recorder: Recorder, aes: dict[str, ApplicationEntity],
                                                         args: tuple[str, ...], classes: list[str]) -> None:
    argv: list[str] = []
    for a in args:
        argv += _peer(recorder) if a == "@peer" else [str(sample("CT_small.dcm"))] if a == "@ct" else [a]
    rq, = recorder.run(*argv)
    ae = aes[args[0].upper()]
    every = {pair for c in ae.contexts if c.proposed for pair in declared(ae, lambda x, c=c: x is c)}
    assert [sop for sop, _ in rq.contexts] == classes
    assert set(rq.contexts) <= every, f"{args}: proposes {rq.contexts}, the statement says {sorted(every)}"


# -- what the SCPs accept, proposed by pynetdicom ----------------------------------

def _accepted(port: int, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Propose each (SOP class, transfer syntax) pair as a context of its own, 128 per association."""
    from pynetdicom import AE

    out: set[tuple[str, str]] = set()
    for i in range(0, len(pairs), 128):
        ae = AE(ae_title="PROPOSER")
        ae.acse_timeout = ae.network_timeout = 10
        for sop, ts in pairs[i:i + 128]:
            ae.add_requested_context(sop, [ts])
        assoc = ae.associate("127.0.0.1", port, ae_title="ANY-SCP")
        if assoc.is_established:
            out |= {(str(c.abstract_syntax), str(c.transfer_syntax[0])) for c in assoc.accepted_contexts}
            assoc.release()
        ae.shutdown()
    return out


def _declared_accepted(ae: ApplicationEntity, pick: Callable[[Contexts], bool] = lambda c: True
                       ) -> list[tuple[str, list[str]]]:
    return [(sop, c.syntaxes()) for c in ae.contexts if not c.proposed and pick(c) for sop in c.classes()]


def test_storescp_accepts_what_the_statement_says(dcmcli_storescp, aes: dict[str, ApplicationEntity]) -> None:
    ae = aes["STORESCP"]
    port = dcmcli_storescp("--commitment").port
    declared_pairs = {(sop, ts) for sop, tss in _declared_accepted(ae) for ts in tss}
    others = ["1.2.840.10008.5.1.4.31", "1.2.840.10008.3.1.2.3.3", QUERY_MODELS[1].find]  # not served
    proposed = sorted({(sop, ts) for sop in [*storage_sop_classes(), "1.2.840.10008.1.1",
                                             "1.2.840.10008.1.20.1", *others]
                       for ts in [*all_transfer_syntaxes()]})
    assert _accepted(port, proposed) == declared_pairs & set(proposed)
    assert {sop for sop, _ in declared_pairs} >= set(storage_sop_classes())
    # the transfer syntax chosen from a list is the first of the statement's order, not the proposer's
    from pynetdicom import AE

    proposer = AE(ae_title="PROPOSER")
    syntaxes = next(tss for sop, tss in _declared_accepted(ae) if sop == CT)
    proposer.add_requested_context(CT, list(reversed(syntaxes)))
    assoc = proposer.associate("127.0.0.1", port)
    assert assoc.is_established
    assert str(assoc.accepted_contexts[0].transfer_syntax[0]) == syntaxes[0]
    assoc.release()
    proposer.shutdown()


def test_mwlscp_accepts_what_the_statement_says(tmp_path: Path, dcmcli_mwlscp,
                                                 aes: dict[str, ApplicationEntity]) -> None:
    from dcmcli.net.association import AssociationSettings, open_association
    from dcmcli.net.peer import Peer
    from dcmcli.net.ul import Context, ExtendedNegotiation

    ae = aes["MWLSCP"]
    source = tmp_path / "today.csv"
    source.write_text("PatientName,PatientID\nDoe^Jane,P1\n", encoding="utf-8")
    port = dcmcli_mwlscp("--source", str(source)).port
    declared_pairs = {(sop, ts) for sop, tss in _declared_accepted(ae) for ts in tss}
    proposed = sorted({(sop, ts) for sop in ["1.2.840.10008.5.1.4.31", "1.2.840.10008.1.1", CT,
                                             QUERY_MODELS[1].find] for ts in all_transfer_syntaxes()})
    assert _accepted(port, proposed) == declared_pairs
    mwl = "1.2.840.10008.5.1.4.31"
    with open_association(AssociationSettings(calling_aet="PROPOSER"), Peer("127.0.0.1", port, "ANY-SCP"),
                          [Context(None, mwl, [ELE])],
                          extended=[ExtendedNegotiation(mwl, b"\x01\x01\x01\x01")]) as assoc:
        answer, = assoc.report.extended
    assert answer.accepted == [0, 1, 0, 0]  # combined date-time only, as the statement says
    assert "combined date-time matching accepted" in ae.contexts[1].extended


# -- the installation: --version, doctor ----------------------------------------------

def test_version_names_every_package_and_the_implementation_uid() -> None:
    from importlib.metadata import version

    r = run_dcmcli("--version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("dcmcli ") and IMPLEMENTATION_CLASS_UID in lines[1]
    for package in ("pydicom", "pynetdicom", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle",
                    "pyjpegls", "imagecodecs"):
        assert any(line.startswith(f"{package} {version(package)}") for line in lines), (package, lines)


def test_doctor_reports_packages_codecs_and_peers() -> None:
    from dcmcli.transcode.catalog import SYNTAXES

    r = run_dcmcli("doctor", "--json")
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    checks = [e for e in events if e["event"] == "check"]
    assert {c["area"] for c in checks} == {"package", "codec", "peer"}
    codecs = [c for c in checks if c["area"] == "codec"]
    assert len(codecs) == len(SYNTAXES) and all(c["ok"] for c in codecs), [c for c in codecs if not c["ok"]]
    assert any(c["name"] == "/usr/bin/storescp" for c in checks)
    assert events[-1]["event"] == "summary" and events[-1]["required_problems"] == 0


def test_doctor_exits_24_when_a_codec_package_is_missing(tmp_path: Path) -> None:
    """A Python where imagecodecs cannot be imported (a module of that name that fails): its
    syntaxes cannot be encoded, and doctor says so."""
    (tmp_path / "imagecodecs").mkdir()
    (tmp_path / "imagecodecs" / "__init__.py").write_text("raise ImportError('not here')\n")
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]])}
    r = run_dcmcli("doctor", env=env)
    assert r.returncode == 24, (r.returncode, r.stdout[-800:], r.stderr)
    assert "MISSING" in r.stdout and "JPEG XL" in r.stdout and "required missing" in r.stdout


def test_user_identity_types_the_statement_says_are_checked_are_the_checked_ones() -> None:
    from dcmcli.net.acceptor import USER_IDENTITY_TYPES_CHECKED, UserTable
    from dcmcli.net.ul import UserIdentity

    table = UserTable.parse("alice\n")
    for kind in range(1, 6):
        why = table.refusal(UserIdentity(kind, False, b"alice", b""))
        assert (why is None or "is not accepted here" not in why) == (kind in USER_IDENTITY_TYPES_CHECKED), (kind, why)


def test_storescp_sends_the_commitment_report_as_the_statement_says(dcmcli_storescp, recorder: Recorder,
                                                                     aes: dict[str, ApplicationEntity]) -> None:
    """A requester that releases right after the N-ACTION (as Orthanc does) gets the report on a new
    association: what storescp proposes for it, recorded. The requester is a raw client whose
    A-RELEASE-RQ follows its request at once, so storescp reads the release where it waits for the
    report's answer; pynetdicom's AE, releasing after the response, lost that race now and then and
    got the report on its own association."""
    from pydicom.dataset import Dataset

    from dcmcli.dataset import encode
    from dcmcli.net.dimse import N_ACTION_RQ, decode_command, request
    from hostile_peer import Raw, pdu, pdv_pdu, valid_rq

    sc, instance = "1.2.840.10008.1.20.1", "1.2.840.10008.1.20.1.1"
    port = dcmcli_storescp("--commitment", "--commitment-peer", f"REQUESTER=127.0.0.1:{recorder.port}").port
    with recorder.lock:
        recorder.requests.clear()
        recorder.arrived.clear()
    ds = Dataset()
    ds.TransactionUID = "1.2.826.0.1.3680043.8.498.1"
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CT, "1.2.826.0.1.3680043.8.498.2"
    ds.ReferencedSOPSequence = [item]
    with Raw(port) as c:
        c.send(valid_rq([(1, sc, (ELE,))], calling="REQUESTER"))
        assert c.read_pdu()[0] == 0x02  # A-ASSOCIATE-AC
        c.send(pdv_pdu(1, request(N_ACTION_RQ, 1, dataset=True, requested_sop_class=sc,
                                  requested_sop_instance=instance, action_type_id=1)))
        c.send(pdv_pdu(1, encode(ds, ELE), command=False))
        c.send(pdu(0x05, bytes(4)))  # A-RELEASE-RQ
        pdu_type, body = c.read_pdu()
        assert pdu_type == 0x04 and decode_command(body[6:]).status == 0x0000  # the N-ACTION-RSP
        while pdu_type != 0x06:  # the report storescp sent before it read the release, then A-RELEASE-RP
            pdu_type, body = c.read_pdu()
    assert recorder.arrived.wait(30), "no association for the report"
    rq, = recorder.requests
    assert rq.calling == "STORESCP" and rq.called == "REQUESTER"
    declared_rq = [c for c in aes["STORESCP"].contexts if c.proposed]
    assert rq.contexts == [(sc, tuple(declared_rq[0].syntaxes()))] and len(declared_rq) == 1
    assert rq.roles == {sc: (0, 1)} and "proposes SCP role" in declared_rq[0].role_selection


def test_a_new_service_declared_the_same_way_appears(monkeypatch: pytest.MonkeyPatch) -> None:
    """What printscu's module will do: declare its AE; the statement then has it, its Print Management
    classes in their own table (Printing no longer N/A), its contexts and its statuses."""
    from dcmcli.conformance import Statuses

    grayscale, printer = "1.2.840.10008.5.1.1.9", "1.2.840.10008.5.1.1.16"
    fake = ApplicationEntity("PRINTSCU", "printscu", "Prints images on a DICOM printer.", contexts=(
        Contexts((grayscale, printer), (ELE, ILE), "SCU", True),),
        statuses=(Statuses("N-CREATE", "SCU", behaviour={"failure": "exit 66"}),))
    real = cs.application_entities
    monkeypatch.setattr(cs, "application_entities", lambda: sorted([*real(), fake], key=lambda a: a.name))
    text = cs.markdown()
    assert "Printing: N/A." not in text and "Print Management SOP Classes**" in text
    assert f"| Basic Grayscale Print Management Meta SOP Class | `{grayscale}` | Y | N |" in text
    assert "#### 7.2.8 PRINTSCU" in text and "N-CREATE SCU Status Codes of PRINTSCU" in text
    assert "- **PRINTSCU** (`dcmcli printscu`): Prints images on a DICOM printer." in text
