"""``-k`` keys, as DCMTK's findscu takes them, into a data set.

Accepted forms (one per ``-k``):

* ``PatientName=Doe*`` (a keyword), ``(0010,0010)=Doe*``, ``0010,0010=Doe*``;
* ``PatientName`` or ``PatientName=``: a return key (empty value);
* sequence paths: ``ScheduledProcedureStepSequence[0].Modality=CT``,
  ``(0040,0100)[0].(0008,0060)=CT``; the index may be left out (``[0]``);
* ``ScheduledProcedureStepSequence``: an empty sequence (universal match);
* values with ``\\`` are multi-valued (UID lists, several modalities).

Used by findscu, movescu, getscu, the N-services (``-s``) and the worklist.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import TYPE_CHECKING, Any

from dcmcli.errors import UsageError
from dcmcli.records import dataclass

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

_TAG = re.compile(r"^(?:\(\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*\)|([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4}))$")
_STEP = re.compile(r"^(?P<name>[^\[\]]+?)(?:\[(?P<index>[^\]]*)\])?$")


@dataclass(frozen=True)
class Step:
    tag: int
    index: int | None  # item index, for a sequence step that is not the last


@dataclass(frozen=True)
class Key:
    """One parsed ``-k``: the path to an element and its value (None: a return key)."""

    path: tuple[Step, ...]
    value: str | None
    text: str

    @property
    def tag(self) -> int:
        return self.path[-1].tag

    def display(self) -> str:
        return path_name(self.path)


@functools.lru_cache(maxsize=1)
def _keywords() -> list[str]:
    from pydicom.datadict import keyword_dict

    return list(keyword_dict)


def _tag_of(name: str, text: str) -> int:
    from dcmcli.identifier import KEYS

    if name.strip() in KEYS:  # the usual Q/R keys: no pydicom import
        return KEYS[name.strip()][0]
    m = _TAG.match(name.strip())
    if m:  # (gggg,eeee) or gggg,eeee; a parenthesis without its pair is no tag
        group, elem = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return (int(group, 16) << 16) | int(elem, 16)
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name.strip()):
        return int(name.strip(), 16)
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(name.strip())
    if tag is None:
        close = difflib.get_close_matches(name.strip(), _keywords(), n=1)
        hint = f"did you mean {close[0]}?" if close else "use a DICOM keyword such as PatientName or a tag (gggg,eeee)"
        if "(" in name or "," in name:
            hint = "write a tag as (gggg,eeee) with four hex digits each"
            raise UsageError(f"malformed tag {name.strip()!r} in key {text!r}", hint)
        raise UsageError(f"unknown attribute {name.strip()!r} in key {text!r}", hint)
    return int(tag)


def parse_key(text: str) -> Key:
    """Parse one ``-k`` argument."""
    raw = text.strip()
    if not raw:
        raise UsageError("empty key", "write keys as Keyword=value or (gggg,eeee)=value")
    name, sep, value = raw.partition("=")
    steps: list[Step] = []
    parts = _split_path(name)
    for n, part in enumerate(parts):
        m = _STEP.match(part.strip())
        if not m:
            raise UsageError(f"malformed key {text!r}", "write a sequence path as Sequence[0].Keyword=value")
        tag = _tag_of(m.group("name"), text)
        idx_text = m.group("index")
        last = n == len(parts) - 1
        if idx_text is not None and not idx_text.strip().isdigit():
            raise UsageError(f"malformed item index [{idx_text}] in key {text!r}", "item indexes are numbers: [0], [1]")
        index = int(idx_text) if idx_text is not None else (None if last else 0)
        if not last and _vr(tag) != "SQ":
            raise UsageError(f"{path_name(tuple(steps + [Step(tag, None)]))} in key {text!r} is not a sequence",
                             "only sequences take a path: Sequence[0].Keyword")
        steps.append(Step(tag, index))
    return Key(tuple(steps), value if sep else None, raw)


def _split_path(name: str) -> list[str]:
    """Split ``A[0].B`` or ``(0040,0100)[0].(0008,0060)`` on the dots between steps."""
    parts, depth, cur = [], 0, ""
    for ch in name:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    if any(not p.strip() for p in parts):
        raise UsageError(f"malformed key {name!r}", "write a sequence path as Sequence[0].Keyword=value")
    return parts


def _vr(tag: int) -> str:
    from dcmcli.identifier import vr_of

    known = vr_of(tag)
    if known:
        return known
    from pydicom.datadict import dictionary_VR

    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "LO" if (tag >> 16) % 2 else "UN"
    return vr.split(" or ")[0] if vr else "UN"


def path_name(path: tuple[Step, ...]) -> str:
    from dcmcli.identifier import keyword_of

    out = []
    for n, s in enumerate(path):
        name = keyword_of(s.tag) or f"({s.tag >> 16:04X},{s.tag & 0xFFFF:04X})"
        out.append(name + (f"[{s.index}]" if s.index is not None and n < len(path) - 1 else ""))
    return ".".join(out)


def _typed(vr: str, value: str, key: Key) -> Any:
    if value == "":
        return None if vr != "SQ" else []
    parts = value.split("\\")
    try:
        if vr in ("US", "UL", "SS", "SL", "UV", "SV"):
            nums = [int(p) for p in parts]
            return nums[0] if len(nums) == 1 else nums
        if vr in ("FL", "FD"):
            floats = [float(p) for p in parts]
            return floats[0] if len(floats) == 1 else floats
        if vr in ("IS", "DS"):  # kept as text; pydicom's own error here was an internal error
            for p in parts:
                int(p) if vr == "IS" else float(p)
    except ValueError:
        raise UsageError(f"value {value!r} of {key.display()} is not a number ({vr})", "give a number") from None
    if vr == "AT":
        raise UsageError(f"{key.display()} (AT) cannot be given as a key value", "leave it empty")
    if vr == "SQ":
        raise UsageError(f"{key.display()} is a sequence: it takes no value",
                         "give its items' keys as Sequence[0].Keyword=value")
    return value


_RANGE_VRS = {"DA": r"\d{8}", "TM": r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?", "DT": r"\d{4,14}(\.\d{1,6})?([+-]\d{4})?"}


def check_value(key: Key) -> str | None:
    """Why a key's value cannot match as meant (PS3.4 C.2.2.2), or None:
    dates and times take single values or ranges, never wildcards."""
    vr = _vr(key.tag)
    if not key.value or vr not in _RANGE_VRS:
        return None
    one = _RANGE_VRS[vr]
    for part in key.value.split("\\"):
        if not re.fullmatch(rf"({one})?-?({one})?", part) or part == "-":
            example = {"DA": "20240101-20241231", "TM": "080000-120000", "DT": "20240101080000-20240101120000"}[vr]
            return (f"{key.display()}={key.value!r} is not a valid {vr} match: dates and times take a value or a "
                    f"range such as {example} (no wildcards)")
    return None


def apply_key(ds: Dataset, key: Key) -> None:
    """Set one key in ``ds`` (creating sequence items along its path)."""
    from pydicom.dataset import Dataset as DS
    from pydicom.sequence import Sequence

    from dcmcli.dataset import quiet_pydicom

    quiet_pydicom()
    cur = ds
    for step in key.path[:-1]:
        if step.tag not in cur or cur[step.tag].VR != "SQ":
            cur.add_new(step.tag, "SQ", Sequence())
        seq = cur[step.tag].value
        while len(seq) <= (step.index or 0):
            seq.append(DS())
        cur = seq[step.index or 0]
    tag = key.tag
    vr = _vr(tag)
    if vr == "SQ":
        if key.value:
            raise UsageError(f"{key.display()} is a sequence: it takes no value",
                             "give its items' keys as Sequence[0].Keyword=value")
        if tag not in cur:
            cur.add_new(tag, "SQ", Sequence())
        return
    value = _typed(vr, key.value or "", key)
    if tag in cur:
        del cur[tag]
    cur.add_new(tag, vr, value)


def needs_unicode(ds: Dataset) -> bool:
    """Whether any text value of ``ds`` (or its items) is outside ASCII."""
    for elem in ds:
        if elem.VR == "SQ":
            if any(needs_unicode(item) for item in elem.value):
                return True
        elif isinstance(elem.value, str):
            if not elem.value.isascii():
                return True
        elif elem.VR == "PN" and elem.value is not None and not str(elem.value).isascii():
            return True
    return False


def build_identifier(keys: list[Key], base: Dataset | None = None) -> Dataset:
    """A data set from ``base`` (a query file) with ``keys`` applied on top;
    Specific Character Set is set to UTF-8 when a value needs it."""
    from pydicom.dataset import Dataset as DS

    ds = base if base is not None else DS()
    for key in keys:
        apply_key(ds, key)
    if needs_unicode(ds) and "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def key_paths(ds: Dataset, prefix: tuple[Step, ...] = ()) -> list[tuple[Step, ...]]:
    """Every element path in ``ds`` (sequence items flattened), in order: the
    columns of a result table."""
    out: list[tuple[Step, ...]] = []
    for elem in ds:
        tag = int(elem.tag)
        if tag in (0x00080005, 0x00080052) or (tag >> 16) == 0x0002:
            continue
        if elem.VR == "SQ" and len(elem.value):
            for n, item in enumerate(elem.value[:1]):
                out += key_paths(item, prefix + (Step(tag, n),))
        else:
            out.append(prefix + (Step(tag, None),))
    return out
