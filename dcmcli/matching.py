"""C-FIND matching (PS3.4 C.2.2.2) and return keys, on pydicom data sets.

Plain code, no network: the worklist SCP uses it today, a query/retrieve SCP
over storescp's archive can use it tomorrow.

``Matcher(identifier)`` compiles a request's identifier once; ``match(item)``
returns the response identifier for one entity (exactly the requested
attributes, with the entity's values or zero length, sequences with their
matching items only), or None when the entity does not match.

Matching types, chosen per key as C.2.2.2 says:

* universal: a zero-length key (and ``*`` alone) matches every entity;
* single value: exact and case-sensitive; leading and trailing spaces are not
  significant (trailing only, for the text VRs LT, ST, UT, UC); person names
  compared component by component (``SMITH^JOHN`` equals ``SMITH^JOHN^^``),
  case-insensitively with ``case_insensitive_pn``; a key without ``=`` groups
  matches a name when any of its groups (alphabetic, ideographic, phonetic)
  matches, with groups it is compared group by group; a single time matches
  the times it is a prefix of at its precision (``0856`` matches ``085607``);
* list of UIDs: a UI key with ``\\`` matches any of its UIDs (other VRs:
  any of the values);
* wildcard: ``*`` (any characters) and ``?`` (one character) in AE, CS, LO,
  LT, PN, SH, ST, UC, UR, UT keys;
* range: ``a-b``, ``a-``, ``-b`` in DA, TM, DT keys, inclusive; a time range's
  end covers its precision (``-12`` includes 12:59:59.999999); with
  ``combined_datetime`` (negotiated, C.2.2.2.5) a date range and a time range
  of a pair (Scheduled Procedure Step Start Date and Time, ...) match as one
  datetime range;
* sequence: a sequence key with one item matches when any item of the
  entity's sequence matches all its keys, and only the matching items are
  returned, each with the requested attributes; a sequence key with no item,
  or an empty item, matches every entity and returns the whole sequence.

Entity attributes with several values match when any value matches; an
entity without a value matches only universal keys.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import field
from typing import TYPE_CHECKING, Any

from dcmcli.records import dataclass


if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SPECIFIC_CHARACTER_SET = 0x00080005
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_TRAILING_ONLY = frozenset({"LT", "ST", "UT", "UC", "UR"})

#: Date and time attributes matched as one datetime when combined matching
#: is negotiated (C.2.2.2.5): date tag -> time tag.
DATE_TIME_PAIRS = {
    0x00400002: 0x00400003,  # Scheduled Procedure Step Start Date / Time
    0x00400004: 0x00400005,  # Scheduled Procedure Step End Date / Time
    0x00100030: 0x00100032,  # Patient's Birth Date / Time
    0x00080020: 0x00080030,  # Study Date / Time
    0x00080021: 0x00080031,  # Series Date / Time
    0x00080022: 0x00080032,  # Acquisition Date / Time
    0x00080023: 0x00080033,  # Content Date / Time
    0x00400244: 0x00400245,  # Performed Procedure Step Start Date / Time
}


class MatchKeyError(ValueError):
    """A key whose value cannot be used for matching (answered 0xC000 / A900)."""


def element_texts(elem: Any) -> list[str]:
    """The values of a non-sequence element as strings (decoded: the data set's
    character set applied); [] when it has none."""
    if elem is None:
        return []
    value = elem.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (bytes, bytearray)):
        return [bytes(value).decode("latin-1")]
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)]


def key_text(elem: Any) -> str:
    """A key's whole value as one string (values joined by ``\\``)."""
    return "\\".join(element_texts(elem))


def _strip(vr: str, text: str) -> str:
    if vr == "UI":
        return text.rstrip("\0 ")
    return text.rstrip(" ") if vr in _TRAILING_ONLY else text.strip(" ")


# -- person names ---------------------------------------------------------
def _pn_groups(text: str) -> list[str]:
    return [_pn_norm(g) for g in text.split("=")]


def _pn_norm(group: str) -> str:
    parts = [p.strip(" ") for p in group.split("^")]
    while parts and parts[-1] == "":
        parts.pop()
    return "^".join(parts)


# -- dates and times ------------------------------------------------------
def _norm_date(text: str) -> str:
    return text.replace(".", "").strip()  # ACR-NEMA 1993.10.15


def _norm_time(text: str, end: bool = False) -> str:
    """HHMMSS.FFFFFF; ``end``: the last instant the given precision covers
    (``12`` -> 125959.999999)."""
    whole, _, frac = text.replace(":", "").strip().partition(".")
    if end:
        whole = whole + "235959"[len(whole):] if len(whole) < 2 else whole + "5959"[len(whole) - 2:]
        frac = (frac + "999999")[:6]
    else:
        whole = (whole + "000000")[:6]
        frac = (frac + "000000")[:6]
    return f"{whole[:6]}.{frac}"


def _norm_dt(text: str, end: bool = False) -> str:
    """YYYYMMDDHHMMSS.FFFFFF (timezone offsets are dropped)."""
    t = re.sub(r"[+-]\d{4}$", "", text.strip())
    whole, _, frac = t.partition(".")
    if end:
        template = "99991231235959"
        whole = whole + template[len(whole):]
        if len(whole) >= 8 and whole[4:8] == "1299":  # an open month end
            whole = whole[:6] + "31" + whole[8:]
        frac = (frac + "999999")[:6]
    else:
        whole = whole + "00010101000000"[len(whole):]
        if whole[4:6] == "00":
            whole = whole[:4] + "01" + whole[6:]
        if whole[6:8] == "00":
            whole = whole[:6] + "01" + whole[8:]
        frac = (frac + "000000")[:6]
    return f"{whole[:14]}.{frac}"


_DT_RANGE = re.compile(r"^(?P<a>\d{4,14}(?:\.\d{1,6})?(?:[+-]\d{4})?)?-(?P<b>\d{4,14}(?:\.\d{1,6})?(?:[+-]\d{4})?)?$")


def _split_range(vr: str, text: str) -> tuple[str, str] | None:
    """(start, end) of a range key ("" for an open end), or None for a single value."""
    if vr == "DT":
        m = _DT_RANGE.match(text)
        if not m or "-" not in text:
            return None
        if m.group("a") is None and m.group("b") is None:
            raise MatchKeyError(f"the range {text!r} has neither start nor end")
        return m.group("a") or "", m.group("b") or ""
    if "-" not in text:
        return None
    a, sep, b = text.partition("-")
    if "-" in b or (not a and not b):
        raise MatchKeyError(f"{text!r} is not a valid {vr} range (start-end, start-, -end)")
    return a.strip(), b.strip()


_DA_SHAPE = re.compile(r"^\d{8}$")
_TM_SHAPE = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")
_DT_SHAPE = re.compile(r"^\d{4,14}(\.\d{1,6})?([+-]\d{4})?$")


def _check_shape(vr: str, value: str, tag: int) -> None:
    shape = {"DA": _DA_SHAPE, "TM": _TM_SHAPE, "DT": _DT_SHAPE}[vr]
    probe = _norm_date(value) if vr == "DA" else value.replace(":", "") if vr == "TM" else value
    if not shape.match(probe):
        raise MatchKeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} value {value!r} is neither a {vr} "
                            f"nor a range")


# -- one key --------------------------------------------------------------
Test = Callable[[list[str]], bool]


def _wildcard(pattern: str, flags: int) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(out), flags | re.DOTALL)


def _value_test(vr: str, text: str, tag: int, case_insensitive_pn: bool) -> Test | None:
    """A test of an entity's values for one non-sequence key; None: universal."""
    text = _strip(vr, text)
    if text == "" or (text == "*" and vr in WILDCARD_VRS):
        return None
    if vr in ("DA", "TM", "DT"):
        rng = _split_range(vr, text)
        if rng is not None:
            for part in rng:
                if part:
                    _check_shape(vr, part, tag)
            return _range_test(vr, rng)
        for part in text.split("\\"):
            _check_shape(vr, part, tag)
        singles = [_single_time(vr, p) for p in text.split("\\")]
        return lambda values: any(s(v) for v in values for s in singles)
    alternatives = [_strip(vr, p) for p in text.split("\\")] if vr != "PN" else [text]
    tests: list[Callable[[str], bool]] = []
    flags = re.IGNORECASE if (vr == "PN" and case_insensitive_pn) else 0
    for alt in alternatives:
        wild = vr in WILDCARD_VRS and ("*" in alt or "?" in alt)
        if vr == "PN":
            tests.append(_pn_test(alt, wild, flags))
        elif wild:
            rx = _wildcard(alt, 0)
            tests.append(lambda v, rx=rx: rx.fullmatch(v) is not None)
        else:
            tests.append(lambda v, alt=alt: v == alt)

    def test(values: list[str]) -> bool:
        return any(t(_strip(vr, v)) for v in values for t in tests)

    return test


def _pn_test(key: str, wild: bool, flags: int) -> Callable[[str], bool]:
    groups = key.split("=")
    if wild:
        rxs = [_wildcard(_pn_norm(g) if not ("*" in g or "?" in g) else g.strip(" "), flags) if g else None
               for g in groups]
    fold = (lambda s: s.casefold()) if flags else (lambda s: s)
    norms = [fold(_pn_norm(g)) for g in groups]

    def one(key_group: int, entity_group: str) -> bool:
        if wild:
            rx = rxs[key_group]
            if rx is None:
                return True
            norm = _pn_norm(entity_group)
            padded = "^".join((norm.split("^") + [""] * 5)[:max(5, norm.count("^") + 1)])
            return rx.fullmatch(norm) is not None or rx.fullmatch(padded) is not None
        return norms[key_group] == "" or norms[key_group] == fold(_pn_norm(entity_group))

    def test(value: str) -> bool:
        entity = value.split("=")
        if len(groups) == 1:  # no groups in the key: any group of the name
            return any(one(0, g) for g in entity if _pn_norm(g))
        return all(one(i, entity[i] if i < len(entity) else "") for i in range(len(groups)) if groups[i].strip())

    return test


def _single_time(vr: str, text: str) -> Callable[[str], bool]:
    if vr == "DA":
        d = _norm_date(text)
        return lambda v: _norm_date(v) == d
    if vr == "TM":
        t = text.replace(":", "")
        return lambda v: v.replace(":", "").strip().startswith(t)
    t = re.sub(r"[+-]\d{4}$", "", text)
    return lambda v: re.sub(r"[+-]\d{4}$", "", v.strip()).startswith(t)


def _range_test(vr: str, rng: tuple[str, str]) -> Test:
    a, b = rng
    if vr == "DA":
        lo, hi = _norm_date(a) or "00000000", _norm_date(b) or "99999999"
        conv: Callable[[str], str] = _norm_date
    elif vr == "TM":
        lo, hi = (_norm_time(a) if a else "000000.000000"), (_norm_time(b, end=True) if b else "999999.999999")
        conv = _norm_time
    else:
        lo, hi = (_norm_dt(a) if a else ""), (_norm_dt(b, end=True) if b else "~")
        conv = _norm_dt

    def test(values: list[str]) -> bool:
        for v in values:
            try:
                n = conv(v)
            except Exception:  # noqa: BLE001 - a broken entity value matches nothing
                continue
            if lo <= n <= hi:
                return True
        return False

    return test


# -- the compiled identifier ----------------------------------------------
@dataclass
class _Key:
    tag: int
    vr: str
    keyword: str
    test: Test | None = None  # None: universal
    #: for sequences: the item's keys (None: return whole items)
    item: list[_Key] | None = None
    #: combined datetime: (date key, time key) matched together, on the date key
    pair: tuple[str, str, str, str] | None = None

    @property
    def matching(self) -> bool:
        """Whether this key restricts the matches (not a return key only)."""
        if self.vr == "SQ":
            return self.item is not None and any(k.matching for k in self.item)
        return self.test is not None or self.pair is not None


def _tag_vr(elem: Any) -> str:
    vr = str(elem.VR)
    if vr in ("UN", "US or SS", "OB or OW", "US or OW", "US or SS or OW"):
        from pydicom.datadict import dictionary_VR

        try:
            vr = dictionary_VR(elem.tag)
        except KeyError:
            pass
    return vr


@dataclass
class Matcher:
    """A request's identifier, compiled for matching many entities."""

    identifier: Dataset
    case_insensitive_pn: bool = False
    combined_datetime: bool = False
    keys: list[_Key] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = self._compile(self.identifier)

    def _compile(self, ds: Dataset) -> list[_Key]:
        keys: list[_Key] = []
        by_tag: dict[int, _Key] = {}
        for elem in ds:
            tag = int(elem.tag)
            if tag == SPECIFIC_CHARACTER_SET or (tag >> 16) in (0x0000, 0x0002) or (tag & 0xFFFF) == 0:
                continue  # not keys (group lengths too)
            vr = _tag_vr(elem)
            key = _Key(tag, vr, elem.keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
            if vr == "SQ":
                items = list(elem.value or [])
                if len(items) > 1:
                    raise MatchKeyError(f"the sequence key {key.keyword} has {len(items)} items (one at most)")
                if items and len(items[0]):
                    key.item = self._compile(items[0])
            else:
                try:
                    key.test = _value_test(vr, key_text(elem), tag, self.case_insensitive_pn)
                except MatchKeyError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a value pydicom could not read
                    raise MatchKeyError(f"{key.keyword}: {exc}") from None
            keys.append(key)
            by_tag[tag] = key
        if self.combined_datetime:
            for date_tag, time_tag in DATE_TIME_PAIRS.items():
                dk, tk = by_tag.get(date_tag), by_tag.get(time_tag)
                if dk is None or tk is None or dk.test is None or tk.test is None:
                    continue
                d = _split_range("DA", _strip("DA", key_text(ds[date_tag])))
                t = _split_range("TM", _strip("TM", key_text(ds[time_tag])))
                if d is None or t is None:
                    continue
                dk.pair = (d[0], d[1], t[0], t[1])
                dk.test = tk.test = None  # matched together, on the date key
                tk.pair = None
        return keys

    # -- matching ----------------------------------------------------------
    def match(self, entity: Dataset) -> Dataset | None:
        """The response identifier for ``entity``, or None when it does not match."""
        got = _match(self.keys, entity)
        return None if got is None else to_dataset(got)

    def answer(self, entity: Dataset) -> Answer | None:
        """``match`` without building a data set (what a server encodes)."""
        return _match(self.keys, entity)


def _pair_match(pair: tuple[str, str, str, str], entity: Dataset, date_tag: int) -> bool:
    da, db, ta, tb = pair
    dates = element_texts(entity.get(date_tag))
    times = element_texts(entity.get(DATE_TIME_PAIRS[date_tag])) or ["000000"]
    lo = (_norm_date(da) if da else "00000000") + (_norm_time(ta) if ta and da else "000000.000000")
    hi = (_norm_date(db) if db else "99999999") + (_norm_time(tb, end=True) if tb and db else "999999.999999")
    for d in dates:
        for t in times:
            try:
                n = _norm_date(d) + _norm_time(t)
            except Exception:  # noqa: BLE001
                continue
            if lo <= n <= hi:
                return True
    return False


_NONE: list[str] = []


def _cache(entity: Dataset) -> dict[int, Any]:
    """Per entity, the values matching reads (decoded once, reused by every
    query while the worklist cache holds the entity)."""
    cache = entity.__dict__.get("_dcmcli_match")
    if cache is None:
        cache = {}
        object.__setattr__(entity, "_dcmcli_match", cache)
    return cache


def _texts(entity: Dataset, tag: int) -> list[str]:
    cache = _cache(entity)
    got = cache.get(tag)
    if got is None:
        got = cache[tag] = element_texts(entity.get(tag))
    return got  # type: ignore[no-any-return]


def _items(entity: Dataset, tag: int) -> list[Dataset]:
    cache = _cache(entity)
    key = -tag - 1  # sequences beside values in the same cache
    got = cache.get(key)
    if got is None:
        elem = entity.get(tag)
        got = cache[key] = list(elem.value or []) if elem is not None and _tag_vr(elem) == "SQ" else []
    return got  # type: ignore[no-any-return]


def _select(keys: list[_Key], entity: Dataset) -> dict[int, list[Dataset]] | None:
    """Whether ``entity`` matches: None if not, else the matching items of each
    sequence key that restricts (the others return their whole sequence)."""
    picks: dict[int, list[Dataset]] = {}
    for key in keys:
        if key.vr == "SQ":
            if key.item is None or not key.matching:
                continue
            assert key.item is not None
            chosen = [it for it in _items(entity, key.tag) if _select(key.item, it) is not None]
            if not chosen:
                return None
            picks[key.tag] = chosen
            continue
        if key.pair is not None and not _pair_match(key.pair, entity, key.tag):
            return None
        if key.test is not None and not key.test(_texts(entity, key.tag)):
            return None
    return picks


def _element(entity: Dataset, tag: int) -> Any:
    cache = _cache(entity)
    key = tag | (1 << 40)
    if key in cache:
        return cache[key]
    elem = cache[key] = entity.get(tag)
    return elem


#: An answer, light: (tag, VR, the entity's DataElement or None for zero
#: length, or for a sequence its items' answers), in tag order. Building
#: pydicom data sets per match was most of a query's time (measured).
Answer = list[tuple[int, str, Any]]


def _match(keys: list[_Key], entity: Dataset) -> Answer | None:
    picks = _select(keys, entity)
    return None if picks is None else _build(keys, entity, picks)


def _build(keys: list[_Key], entity: Dataset, picks: dict[int, list[Dataset]]) -> Answer:
    out: Answer = []
    for key in keys:
        if key.vr == "SQ":
            if key.item is None:  # universal: the whole sequence
                out.append((key.tag, "SQ", [_whole(i) for i in _items(entity, key.tag)]))
                continue
            chosen = picks.get(key.tag)
            if chosen is None:  # return keys only: every item, with the requested attributes
                chosen = _items(entity, key.tag)
            out.append((key.tag, "SQ", [_build(key.item, it, _select(key.item, it) or {}) for it in chosen]))
            continue
        out.append((key.tag, key.vr, _element(entity, key.tag)))
    return out


def _whole(item: Dataset) -> Answer:
    out: Answer = []
    for elem in item:
        if elem.VR == "SQ":
            out.append((int(elem.tag), "SQ", [_whole(i) for i in elem.value]))
        else:
            out.append((int(elem.tag), str(elem.VR), elem))
    return out


def to_dataset(answer: Answer) -> Dataset:
    """A light answer as a pydicom data set."""
    from pydicom.dataset import Dataset as DS
    from pydicom.sequence import Sequence

    out = DS()
    for tag, vr, value in answer:
        if vr == "SQ":
            out.add_new(tag, "SQ", Sequence([to_dataset(a) for a in value]))
        elif value is None:
            out.add_new(tag, vr, None)
        else:
            out[tag] = value
    return out


def needs_unicode(answer: Answer) -> bool:
    """Whether a text value of the answer is outside ASCII."""
    for _tag, vr, value in answer:
        if vr == "SQ":
            if any(needs_unicode(a) for a in value):
                return True
        elif value is not None:
            memo = value.__dict__.get("_dcmcli_ascii")
            if memo is None:
                v = value.value
                memo = not (isinstance(v, str) or vr == "PN" or type(v).__name__ == "MultiValue") or str(v).isascii()
                value.__dict__["_dcmcli_ascii"] = memo
            if not memo:
                return True
    return False


__all__ = ["Answer", "Matcher", "MatchKeyError", "needs_unicode", "to_dataset", "element_texts", "key_text", "DATE_TIME_PAIRS", "WILDCARD_VRS"]
