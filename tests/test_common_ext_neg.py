"""SOP Class Common Extended Negotiation (PS3.7 D.3.3.6, PS3.4 B.3.1.3-B.3.1.4, B.4.1.2).

The sub-item against pynetdicom's codec both ways; storescu -cen and
getscu -cen as pynetdicom's AE receives the items (tests/storage_peer.py,
which records them and treats a private class its item names as storage by
its own reading); pynetdicom's AE proposing private SOP classes to dcmcli
storescp with and without items; DCMTK's storescp, which ignores the items,
still taking what storescu -cen sends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from conftest import copy_samples, json_lines, received_events, run_dcmcli

STORAGE = "1.2.840.10008.4.2"
CT = "1.2.840.10008.5.1.4.1.1.2"
DM_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENHANCED_SR, COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33"
COMPREHENSIVE_3D_SR, EXTENSIBLE_SR = "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.88.35"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
PRIVATE = "1.2.826.0.1.3680043.8.498.77.1"  # under pydicom's root: no standard class
PRIVATE_2, PRIVATE_3, PRIVATE_4 = (f"1.2.826.0.1.3680043.8.498.77.{n}" for n in (2, 3, 4))


def _reclassed(src: Path, sop_class: str, dest: Path) -> Path:
    """A copy of ``src`` under another SOP Class UID (storage does not check the IOD), an instance of its own."""
    from pydicom.uid import generate_uid

    ds = dcmread(src)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(dest, enforce_file_format=True)
    return dest


def _four_classes(workdir: Path) -> list[Path]:
    """CT (no related general class), Digital Mammography (-> Digital X-Ray), Basic Text SR (-> the SR
    generals) and a private class, each its own instance."""
    ct = copy_samples(workdir / "src", ["explicit-le"])[0]
    return [ct, _reclassed(ct, DM_PRESENTATION, workdir / "dm.dcm"), _reclassed(ct, BASIC_TEXT_SR, workdir / "sr.dcm"),
            _reclassed(ct, PRIVATE, workdir / "private.dcm")]


# -- the sub-item and the table ----------------------------------------------------

def test_common_extended_items_round_trip_with_pynetdicom() -> None:
    """dcmcli's 0x57 sub-items read back by pynetdicom and by dcmcli, field for field; pynetdicom's read
    by dcmcli; an A-ASSOCIATE-AC never carries one (request only)."""
    from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
    from pynetdicom.pdu_primitives import SOPClassCommonExtendedNegotiation as PndItem

    from dcmcli.net.ul import (Associate, CommonExtendedNegotiation, Context, decode_associate, encode_associate_ac,
                               encode_associate_rq)

    items = [CommonExtendedNegotiation(CT, STORAGE),
             CommonExtendedNegotiation(DM_PRESENTATION, STORAGE, [DX_PRESENTATION]),
             CommonExtendedNegotiation(BASIC_TEXT_SR, STORAGE,
                                       [ENHANCED_SR, COMPREHENSIVE_SR, COMPREHENSIVE_3D_SR, EXTENSIBLE_SR]),
             CommonExtendedNegotiation(PRIVATE, "1.2.3.4", [SECONDARY_CAPTURE])]
    a = Associate("SCU", "SCP", [Context(1, CT, ["1.2.840.10008.1.2"])], 16384, common_extended=items)
    raw = encode_associate_rq(a)
    pdu = A_ASSOCIATE_RQ()
    pdu.decode(raw)
    got = {str(i.sop_class_uid): (str(i.service_class_uid),
                                  [str(u) for u in i.related_general_sop_class_identification])
           for i in pdu.to_primitive().user_information if isinstance(i, PndItem)}
    assert got == {i.sop_class: (i.service_class, i.related_general_sop_classes) for i in items}
    assert decode_associate(1, raw[6:]).common_extended == items

    prim = pdu.to_primitive()  # pynetdicom encodes the same items again: dcmcli reads them as they were
    again = A_ASSOCIATE_RQ()
    again.from_primitive(prim)
    assert decode_associate(1, again.encode()[6:]).common_extended == items

    ac_raw = encode_associate_ac(Associate("SCU", "SCP", [Context(1, CT, ["1.2.840.10008.1.2"], 0)], 16384,
                                           common_extended=items))
    ac = A_ASSOCIATE_AC()
    ac.decode(ac_raw)
    assert not [i for i in ac.to_primitive().user_information if isinstance(i, PndItem)]
    assert decode_associate(2, ac_raw[6:]).common_extended == []


def test_related_general_table_and_the_items_sent() -> None:
    from dcmcli.errors import UsageError
    from dcmcli.net.contexts import storage_common_extended
    from dcmcli.uids import (RELATED_GENERAL_SOP_CLASSES, VERIFICATION, parse_related_general,
                             related_general_sop_classes, storage_sop_classes)

    known = set(storage_sop_classes())
    for sop, related in RELATED_GENERAL_SOP_CLASSES.items():  # every entry a storage class, related to others
        assert sop in known and related and set(related) <= known and sop not in related, sop
    assert related_general_sop_classes(DM_PRESENTATION) == (DX_PRESENTATION,)
    assert related_general_sop_classes("1.2.840.10008.5.1.4.1.1.1.3.1") == ("1.2.840.10008.5.1.4.1.1.1.1.1",)
    assert related_general_sop_classes(BASIC_TEXT_SR) == (ENHANCED_SR, COMPREHENSIVE_SR, COMPREHENSIVE_3D_SR,
                                                          EXTENSIBLE_SR)
    assert related_general_sop_classes(COMPREHENSIVE_SR) == (COMPREHENSIVE_3D_SR, EXTENSIBLE_SR)
    assert related_general_sop_classes("1.2.840.10008.5.1.4.1.1.2.1") == ("1.2.840.10008.5.1.4.1.1.2.2",)
    # PS3.4 B.3.1.4: a standard class the table does not list conveys none (CT, the CAD SRs, a private one)
    for sop in (CT, "1.2.840.10008.5.1.4.1.1.88.50", "1.2.840.10008.5.1.4.1.1.88.65", PRIVATE):
        assert related_general_sop_classes(sop) == ()

    extra = parse_related_general([f"{PRIVATE}=SecondaryCaptureImageStorage", f"{PRIVATE}={CT},{SECONDARY_CAPTURE}"])
    assert extra == {PRIVATE: (SECONDARY_CAPTURE, CT)}
    items = storage_common_extended([CT, CT, VERIFICATION, PRIVATE, DM_PRESENTATION], extra)
    assert [(i.sop_class, i.service_class, i.related_general_sop_classes) for i in items] == [
        (CT, STORAGE, []), (PRIVATE, STORAGE, [SECONDARY_CAPTURE, CT]), (DM_PRESENTATION, STORAGE, [DX_PRESENTATION])]
    for bad in ("1.2.3", "1.2.3=", "=CTImageStorage", "1.2.3=NoSuchStorage", "1.2..3=CTImageStorage"):
        with pytest.raises(UsageError):
            parse_related_general([bad])


def test_report_shows_the_items_and_what_they_did() -> None:
    from dcmcli.net.association import CommonExtendedReport, ContextReport, NegotiationReport
    from dcmcli.net.peer import Peer

    report = NegotiationReport(Peer("127.0.0.1", 104, "X"), "SCU", "SCP", side="acceptor", outcome="accepted")
    report.contexts = [ContextReport(1, PRIVATE, ["1.2.840.10008.1.2"], 0, "1.2.840.10008.1.2",
                                     "common-extended-negotiation")]
    report.common_extended = [CommonExtendedReport(PRIVATE, STORAGE, [SECONDARY_CAPTURE], "accepted-as-storage")]
    lines = report.lines()
    assert (f"  context 1: {PRIVATE} [Implicit VR Little Endian]: accepted in Implicit VR Little Endian "
            "(as storage: the requestor's common extended negotiation)") in lines
    assert (f"  common extended negotiation {PRIVATE}: service class Storage Service Class, related general SOP "
            "classes Secondary Capture Image Storage: its SOP class accepted as storage because of it") in lines
    event = report.as_dict()
    assert event["common_extended_negotiation"] == [{
        "sop_class": PRIVATE, "sop_class_name": PRIVATE, "service_class": STORAGE,
        "service_class_name": "Storage Service Class", "related_general_sop_classes": [SECONDARY_CAPTURE],
        "effect": "accepted-as-storage"}]


# -- requestor: what pynetdicom receives ------------------------------------------------

def test_storescu_cen_items_as_pynetdicom_receives_them(storage_peer, workdir: Path) -> None:
    """-cen: one item per SOP class, service class Storage, PS3.4 Table B.3-3's related general classes (none
    for CT), --related-general's for the private class; pynetdicom, reading the item, stores the private
    class as storage. Without -cen nothing is sent."""
    files = _four_classes(workdir)
    peer = storage_peer("--private", PRIVATE)
    r = run_dcmcli("storescu", "--json", "-cen", "--related-general", f"{PRIVATE}=SecondaryCaptureImageStorage",
                   "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 0, r.stderr
    common = {e["sop_class"]: (e["service_class"], e["related"]) for e in peer.received()
              if e["op"] == "common-extended"}
    assert common == {CT: (STORAGE, []), DM_PRESENTATION: (STORAGE, [DX_PRESENTATION]),
                      BASIC_TEXT_SR: (STORAGE, [ENHANCED_SR, COMPREHENSIVE_SR, COMPREHENSIVE_3D_SR, EXTENSIBLE_SR]),
                      PRIVATE: (STORAGE, [SECONDARY_CAPTURE])}
    stores = {e["sop_class"]: e["service_class"] for e in peer.received() if e["op"] == "C-STORE"}
    assert stores == {CT: STORAGE, DM_PRESENTATION: STORAGE, BASIC_TEXT_SR: STORAGE, PRIVATE: STORAGE}
    assoc = next(e for e in json_lines(r.stdout) if e["event"] == "association")
    sent = assoc["common_extended_negotiation"]
    assert {(c["sop_class"], c["effect"]) for c in sent} == {  # type: ignore[union-attr]
        (CT, None), (DM_PRESENTATION, None), (BASIC_TEXT_SR, None), (PRIVATE, None)}

    before = len(peer.received())
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(files[1]))
    assert r.returncode == 0, r.stderr
    assert [e["op"] for e in peer.received()[before:]] == ["C-STORE"]
    assoc = next(e for e in json_lines(r.stdout) if e["event"] == "association")
    assert assoc["common_extended_negotiation"] == []


def test_getscu_cen_offers_its_storage_classes(storage_peer, workdir: Path, tmp_path: Path) -> None:
    """getscu -cen: the storage contexts it proposes (here --store-tc's) each with an item; the objects
    come back and are stored."""
    files = _four_classes(workdir)[:2]
    peer = storage_peer("--get", str(files[0]), "--get", str(files[1]))
    out = tmp_path / "got"
    r = run_dcmcli("getscu", "--json", "-cen", "--store-tc", "CTImageStorage", "--store-tc",
                   "DigitalMammographyXRayImageStorageForPresentation", "-od", str(out), "127.0.0.1", str(peer.port),
                   "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3")
    assert r.returncode == 0, r.stderr
    common = {e["sop_class"]: (e["service_class"], e["related"]) for e in peer.received()
              if e["op"] == "common-extended"}
    assert common == {CT: (STORAGE, []), DM_PRESENTATION: (STORAGE, [DX_PRESENTATION])}
    assert len([e for e in json_lines(r.stdout) if e["event"] == "received"]) == 2
    assert len(list(out.rglob("*.dcm"))) == 2


# -- acceptor: dcmcli storescp -------------------------------------------------------

def _propose(port: int, classes: list[str], items: list[tuple[str, str, list[str]]]):  # type: ignore[no-untyped-def]
    """pynetdicom's AE as requestor: ``classes`` in one context each, with these Common Extended
    Negotiation items; returns (context results by class, the AC's items, the open association)."""
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import SOPClassCommonExtendedNegotiation

    ae = AE(ae_title="PNDSCU")
    for c in classes:
        ae.add_requested_context(c, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    ext = []
    for sop, service, related in items:
        item = SOPClassCommonExtendedNegotiation()
        item.sop_class_uid, item.service_class_uid = sop, service
        item.related_general_sop_class_identification = related
        ext.append(item)
    assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP", ext_neg=ext)
    assert assoc.is_established
    results = {str(cx.abstract_syntax): cx.result for cx in assoc.rejected_contexts + assoc.accepted_contexts}
    back = [i for i in assoc.acceptor.user_information if isinstance(i, SOPClassCommonExtendedNegotiation)]
    return results, back, assoc


def _association_event(peer) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return next(e for e in _events_until(peer, "association") if e["event"] == "association")


def _events_until(peer, name: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    seen = []
    while True:
        ev = peer.events.get(timeout=30)
        assert ev is not None and ev["event"] != "schema-violation", ev
        seen.append(ev)
        if ev["event"] == name:
            return seen


def test_pynetdicom_private_classes_with_cen_are_stored_by_storescp(dcmcli_storescp, workdir: Path) -> None:
    """A private class whose item says Storage, and one whose item names a storage class as its related
    general class, are accepted and stored (PS3.4 B.4.1.2); one whose item says neither, and one without
    an item, are refused (0x03: abstract syntax not supported). Nothing comes back in the AC; the
    association event says which contexts the items made and what each item did."""
    src = copy_samples(workdir, ["explicit-le"])[0]
    private = dcmread(_reclassed(src, PRIVATE, workdir / "private.dcm"))
    related = dcmread(_reclassed(src, PRIVATE_2, workdir / "p2.dcm"))
    peer = dcmcli_storescp()
    results, back, assoc = _propose(peer.port, [PRIVATE, PRIVATE_2, PRIVATE_3, PRIVATE_4, CT],
                                    [(PRIVATE, STORAGE, []), (PRIVATE_2, "1.2.826.0.1.3680043.8.498.77.99",
                                                              [SECONDARY_CAPTURE]),
                                     (PRIVATE_3, "1.2.840.10008.4.1", []), (CT, STORAGE, [])])
    try:
        assert results == {PRIVATE: 0, PRIVATE_2: 0, PRIVATE_3: 3, PRIVATE_4: 3, CT: 0}
        assert back == []
        assert assoc.send_c_store(private).Status == 0x0000
        assert assoc.send_c_store(related).Status == 0x0000
    finally:
        assoc.release()
    event = _association_event(peer)
    via = {c["abstract_syntax"]: c["accepted_via"] for c in event["contexts"]}  # type: ignore[union-attr]
    assert via == {PRIVATE: "common-extended-negotiation", PRIVATE_2: "common-extended-negotiation",
                   PRIVATE_3: None, PRIVATE_4: None, CT: None}
    effects = {c["sop_class"]: c["effect"] for c in event["common_extended_negotiation"]}  # type: ignore[union-attr]
    assert effects == {PRIVATE: "accepted-as-storage", PRIVATE_2: "accepted-as-storage", PRIVATE_3: "not-used",
                       CT: "not-needed"}
    got = received_events(peer, 2)
    assert sorted(e["sop_class_uid"] for e in got) == [PRIVATE, PRIVATE_2]
    assert all(e["status"]["code"] == 0 for e in got)  # type: ignore[index]


def test_storescp_promiscuous_and_no_common_ext_neg(dcmcli_storescp) -> None:
    """-pm accepts the private class as before (the item not needed); --no-common-ext-neg refuses it
    although its item says Storage."""
    promiscuous = dcmcli_storescp("-pm")
    results, _, assoc = _propose(promiscuous.port, [PRIVATE, PRIVATE_4], [(PRIVATE, STORAGE, [])])
    assoc.release()
    assert results == {PRIVATE: 0, PRIVATE_4: 0}
    event = _association_event(promiscuous)
    assert [c["accepted_via"] for c in event["contexts"]] == [None, None]  # type: ignore[union-attr]
    assert [c["effect"] for c in event["common_extended_negotiation"]] == ["not-needed"]  # type: ignore[union-attr]

    strict = dcmcli_storescp("--no-common-ext-neg")
    results, _, assoc = _propose(strict.port, [PRIVATE, CT], [(PRIVATE, STORAGE, [])])
    assoc.release()
    assert results == {PRIVATE: 3, CT: 0}
    event = _association_event(strict)
    assert [c["effect"] for c in event["common_extended_negotiation"]] == ["not-used"]  # type: ignore[union-attr]


def test_echoscu_probe_with_cen_asks_whether_a_private_class_is_taken(storage_peer, dcmcli_storescp) -> None:
    """echoscu --propose ... -cen: the probe's association carries the items storescu -cen would send, so
    it answers whether the peer would store a private class sent as storage. pynetdicom's AE records the
    items (one per class, not one per probed syntax); dcmcli storescp accepts the private class only with
    them. -cen without a probe is a usage error."""
    args = ["echoscu", "--json", "--propose", PRIVATE, "--propose", CT, "--probe-ts", "ile", "--probe-ts", "ele",
            "--related-general", f"{PRIVATE}=SecondaryCaptureImageStorage"]
    peer = storage_peer("--private", PRIVATE)
    r = run_dcmcli(*args, "127.0.0.1", str(peer.port))
    assert r.returncode == 0, r.stderr
    common = [(e["sop_class"], e["service_class"], e["related"]) for e in peer.received()
              if e["op"] == "common-extended"]
    assert sorted(common) == sorted([(CT, STORAGE, []), (PRIVATE, STORAGE, [SECONDARY_CAPTURE])])
    classes = {e["sop_class_uid"]: e["accepted"] for e in json_lines(r.stdout) if e["event"] == "probe-class"}
    assert classes == {PRIVATE: True, CT: True}

    scp = dcmcli_storescp()
    for extra, private_taken in (([], False), (["-cen"], True)):
        r = run_dcmcli("echoscu", "--json", "--propose", PRIVATE, "--propose", CT, *extra, "127.0.0.1", str(scp.port))
        assert r.returncode == 0, r.stderr
        classes = {e["sop_class_uid"]: e["accepted"] for e in json_lines(r.stdout) if e["event"] == "probe-class"}
        assert classes == {PRIVATE: private_taken, CT: True}
        assoc = next(e for e in json_lines(r.stdout) if e["event"] == "association")
        assert [c["sop_class"] for c in assoc["common_extended_negotiation"]] == (  # type: ignore[union-attr]
            [PRIVATE, CT] if extra else [])

    r = run_dcmcli("echoscu", "-cen", "127.0.0.1", str(scp.port))
    assert r.returncode == 1 and "go with the storage probe" in r.stderr and "Traceback" not in r.stderr


# -- DCMTK ignores the items ---------------------------------------------------------------

def test_dcmtk_storescp_takes_what_storescu_cen_sends(dcmtk_storescp, workdir: Path) -> None:
    """DCMTK's storescp does not act on the items: storescu -cen negotiates and sends as without them; -v
    lists the items sent."""
    files = _four_classes(workdir)[:3]
    peer = dcmtk_storescp()
    r = run_dcmcli("storescu", "-v", "-cen", "127.0.0.1", str(peer.port), *map(str, files))
    assert r.returncode == 0, r.stderr
    assert ("common extended negotiation Digital Mammography X-Ray Image Storage - For Presentation: service "
            "class Storage Service Class, related general SOP classes Digital X-Ray Image Storage - For "
            "Presentation") in r.stderr
    assert "common extended negotiation CT Image Storage: service class Storage Service Class, related general " \
           "SOP classes none" in r.stderr
    got = {str(dcmread(p, stop_before_pixels=True).SOPClassUID) for p in peer.outdir.iterdir() if p.is_file()}
    assert got == {CT, DM_PRESENTATION, BASIC_TEXT_SR}
