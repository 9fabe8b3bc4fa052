"""The matching core (dcmcli/matching.py): every PS3.4 C.2.2.2 matching type,
return keys, character sets. No network."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dcmcli.dataset import decode, encode
from dcmcli.matching import Matcher, MatchKeyError
from dcmcli.uids import ELE


def item(**kw: object) -> Dataset:
    ds = Dataset()
    sps = kw.pop("sps", None)
    for k, v in kw.items():
        setattr(ds, k, v)
    if sps is not None:
        ds.ScheduledProcedureStepSequence = Sequence([_ds(s) for s in sps])  # type: ignore[union-attr]
    return ds


def _ds(d: dict[str, object]) -> Dataset:
    ds = Dataset()
    for k, v in d.items():
        setattr(ds, k, v)
    return ds


def query(**kw: object) -> Matcher:
    opts = {k: kw.pop(k) for k in ("case_insensitive_pn", "combined_datetime") if k in kw}
    return Matcher(item(**kw), **opts)  # type: ignore[arg-type]


def matches(m: Matcher, entity: Dataset) -> bool:
    return m.match(entity) is not None


ENTITY = item(PatientName="Smith^John^^^", PatientID="ID 1", StudyInstanceUID="1.2.3.4", PatientSex="M",
              AccessionNumber="ACC1", PatientBirthDate="19700115", sps=[
                  {"Modality": "CT", "ScheduledStationAETitle": ["CT1", "CT2"],
                   "ScheduledProcedureStepStartDate": "20261201", "ScheduledProcedureStepStartTime": "083000",
                   "ScheduledProcedureStepID": "SPS1"},
                  {"Modality": "MR", "ScheduledStationAETitle": "MR1",
                   "ScheduledProcedureStepStartDate": "20261202", "ScheduledProcedureStepStartTime": "140000",
                   "ScheduledProcedureStepID": "SPS2"}])


@pytest.mark.parametrize("key, value, expected", [
    ("PatientID", "", True),                   # universal
    ("PatientID", "ID 1", True),               # single value
    ("PatientID", " ID 1 ", True),             # leading/trailing spaces are not significant
    ("PatientID", "id 1", False),              # case-sensitive
    ("PatientID", "ID", False),                # not a prefix match
    ("PatientID", "*", True),                  # '*' alone: universal
    ("PatientID", "ID*", True),
    ("PatientID", "?D 1", True),               # '?' at the start
    ("PatientID", "ID ?", True),               # '?' at the end
    ("PatientID", "ID???", False),             # "?" is exactly one character
    ("PatientID", "*1", True),
    ("PatientID", "I*X", False),
    ("StudyInstanceUID", "1.2.3.4", True),
    ("StudyInstanceUID", "1.2.3", False),
    ("StudyInstanceUID", "9.9\\1.2.3.4", True),  # list of UIDs
    ("StudyInstanceUID", "9.9\\8.8", False),
    ("PatientSex", "M", True),
    ("PatientSex", "F\\M", True),              # several values: any of them
    ("AccessionNumber", "ACC*", True),
    ("PatientBirthDate", "19700115", True),
    ("PatientBirthDate", "19700101-19701231", True),  # closed range
    ("PatientBirthDate", "19700116-", False),  # open end
    ("PatientBirthDate", "19700115-", True),   # inclusive
    ("PatientBirthDate", "-19700115", True),   # open start, inclusive
    ("PatientBirthDate", "-19691231", False),
])
def test_top_level_matching(key: str, value: str, expected: bool) -> None:
    assert matches(query(**{key: value}), ENTITY) is expected


def test_absent_attribute_matches_only_universal() -> None:
    entity = item(PatientID="X")
    assert matches(query(PatientName=""), entity)
    assert matches(query(PatientName="*"), entity)
    assert not matches(query(PatientName="A*"), entity)
    assert not matches(query(PatientBirthDate="19000101-"), entity)
    empty = item(PatientID="X", PatientName="")
    assert not matches(query(PatientName="SMITH"), empty)


@pytest.mark.parametrize("value, ci, expected", [
    ("Smith^John", False, True),        # trailing empty components do not count
    ("Smith^John^^", False, True),
    ("SMITH^JOHN", False, False),       # case-sensitive by default
    ("SMITH^JOHN", True, True),         # --case-insensitive-pn
    ("smith*", True, True),
    ("Smith^*", False, True),
    ("Sm?th^J*", False, True),
    ("Smith", False, False),            # a family name alone is not the whole name
    ("Smith*", False, True),
])
def test_person_names(value: str, ci: bool, expected: bool) -> None:
    assert matches(query(PatientName=value, case_insensitive_pn=ci), ENTITY) is expected


def test_person_name_groups_iso_2022_japanese() -> None:
    """A name with alphabetic, ideographic and phonetic groups (PS3.5 H.3)
    matches a key of any one group, or group by group."""
    raw = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"
    ds = Dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.add_new(0x00100010, "PN", raw)
    entity = decode(encode(ds, ELE), ELE)
    assert str(entity.PatientName).split("=")[1] == "山田^太郎"
    assert matches(query(PatientName="Yamada^Tarou"), entity)
    assert matches(query(PatientName="山田^太郎"), entity)
    assert matches(query(PatientName="山田*"), entity)
    assert matches(query(PatientName="Yamada^Tarou=山田^太郎"), entity)
    assert not matches(query(PatientName="Yamada^Tarou=山田^次郎"), entity)
    assert matches(query(PatientName="=山田^太郎"), entity)  # an empty group is not compared


def test_latin1_and_utf8_names_match_after_decoding() -> None:
    latin = Dataset()
    latin.SpecificCharacterSet = "ISO_IR 100"
    latin.add_new(0x00100010, "PN", "Müller^Jürgen".encode("latin-1"))
    entity = decode(encode(latin, ELE), ELE)
    assert matches(query(PatientName="Müller^Jürgen"), entity)
    assert matches(query(PatientName="M?ller*"), entity)  # '?' is one character, not one byte
    assert matches(query(PatientName="MÜLLER^JÜRGEN", case_insensitive_pn=True), entity)
    utf8 = Dataset()
    utf8.SpecificCharacterSet = "ISO_IR 192"
    utf8.add_new(0x00100010, "PN", "Müller^Jürgen".encode("utf-8"))
    assert matches(query(PatientName="M?ller^J?rgen"), decode(encode(utf8, ELE), ELE))


@pytest.mark.parametrize("value, expected", [
    ("0830", True),              # a single time matches at its precision
    ("083000", True),
    ("0831", False),
    ("080000-090000", True),
    ("08-09", True),
    ("0831-", False),
    ("-08", True),               # an end covers its precision: up to 08:59:59.999999
    ("-0829", False),
    ("083000.000000-083000.000001", True),
])
def test_time_matching_in_a_sequence(value: str, expected: bool) -> None:
    m = Matcher(item(sps=[{"ScheduledProcedureStepStartTime": value}]))
    one = item(sps=[{"ScheduledProcedureStepStartTime": "083000"}])
    assert matches(m, one) is expected


def test_sequence_matching_returns_only_matching_items_and_requested_keys() -> None:
    m = Matcher(item(PatientName="", sps=[{"Modality": "MR", "ScheduledProcedureStepID": ""}]))
    answer = m.match(ENTITY)
    assert answer is not None
    items = list(answer.ScheduledProcedureStepSequence)
    assert [(i.Modality, i.ScheduledProcedureStepID) for i in items] == [("MR", "SPS2")]
    assert set(items[0].keys()) == {0x00080060, 0x00400009}
    assert set(answer.keys()) == {0x00100010, 0x00400100}
    assert not matches(Matcher(item(sps=[{"Modality": "US"}])), ENTITY)


def test_multi_valued_station_ae_matches_any_value() -> None:
    assert matches(Matcher(item(sps=[{"ScheduledStationAETitle": "CT2"}])), ENTITY)
    assert not matches(Matcher(item(sps=[{"ScheduledStationAETitle": "CT3"}])), ENTITY)


def test_keys_of_one_item_must_match_the_same_item() -> None:
    m = Matcher(item(sps=[{"Modality": "CT", "ScheduledProcedureStepStartDate": "20261202"}]))
    assert not matches(m, ENTITY)  # CT is on the 1st, MR on the 2nd


def test_empty_sequence_key_returns_whole_sequence() -> None:
    for key in (item(sps=[]), item(sps=[{}])):
        answer = Matcher(key).match(ENTITY)
        assert answer is not None and len(answer.ScheduledProcedureStepSequence) == 2
        assert answer.ScheduledProcedureStepSequence[1].ScheduledStationAETitle == "MR1"


def test_return_keys_only_sequence_matches_entity_without_it() -> None:
    entity = item(PatientID="X")
    answer = Matcher(item(PatientID="", sps=[{"Modality": ""}])).match(entity)
    assert answer is not None and len(answer.ScheduledProcedureStepSequence) == 0
    assert not matches(Matcher(item(sps=[{"Modality": "CT"}])), entity)


def test_missing_return_keys_come_back_zero_length() -> None:
    answer = Matcher(item(PatientID="", PatientWeight="", MedicalAlerts="")).match(ENTITY)
    assert answer is not None
    assert answer.PatientID == "ID 1"
    assert answer["PatientWeight"].VR == "DS" and answer["PatientWeight"].value in (None, "")
    assert answer["MedicalAlerts"].value in (None, "")


def test_date_range_across_sps_items_and_combined_datetime() -> None:
    # independent: date 20261201-20261202 and time 1200-1500: only SPS2 (14:00 on the 2nd) has both
    key = item(sps=[{"ScheduledProcedureStepStartDate": "20261201-20261202",
                     "ScheduledProcedureStepStartTime": "1200-1500", "ScheduledProcedureStepID": ""}])
    answer = Matcher(key).match(ENTITY)
    assert answer is not None and [i.ScheduledProcedureStepID for i in answer.ScheduledProcedureStepSequence] == ["SPS2"]
    # combined (C.2.2.2.5): from 2026-12-01 12:00 to 2026-12-02 15:00: still SPS2, and an entity at
    # 2026-12-01 18:00 matches combined but not independently
    late = item(sps=[{"ScheduledProcedureStepStartDate": "20261201", "ScheduledProcedureStepStartTime": "180000"}])
    assert not matches(Matcher(key), late)
    assert matches(Matcher(key, combined_datetime=True), late)
    early = item(sps=[{"ScheduledProcedureStepStartDate": "20261201", "ScheduledProcedureStepStartTime": "080000"}])
    assert not matches(Matcher(key, combined_datetime=True), early)
    # a date without a time in the worklist: the start of that day
    dateonly = item(sps=[{"ScheduledProcedureStepStartDate": "20261202"}])
    assert matches(Matcher(key, combined_datetime=True), dateonly)


@pytest.mark.parametrize("key", [
    {"PatientBirthDate": "1970*"},           # no wildcards in dates
    {"PatientBirthDate": "19700101-19701231-19711231"},
    {"PatientBirthDate": "-"},
    {"PatientBirthDate": "1970-01-01"},
])
def test_unusable_keys_raise(key: dict[str, str]) -> None:
    with pytest.raises(MatchKeyError):
        query(**key)


def test_two_items_in_a_sequence_key_raise() -> None:
    with pytest.raises(MatchKeyError, match="one at most"):
        Matcher(item(sps=[{"Modality": "CT"}, {"Modality": "MR"}]))


def test_broken_entity_value_matches_nothing() -> None:
    entity = item(PatientBirthDate="garbage")
    assert not matches(query(PatientBirthDate="19000101-"), entity)
    assert matches(query(PatientBirthDate=""), entity)
