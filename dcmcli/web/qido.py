"""QIDO-RS (PS3.18 10.6): studies, series or instances as DICOM JSON records.

Keys are findscu's ``-k`` keys (dcmcli/keys.py): a key with a value is a
match parameter (``PatientID=123``, a sequence path as dotted attributes),
a key without one a return key (``includefield``). Paging: ``limit`` and
``offset`` as given, or every page until an empty one (``all_pages``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import field
from typing import Any

from dcmcli.errors import UsageError
from dcmcli.conformance import ApplicationEntity
from dcmcli.keys import Key, Step, check_value, parse_key
from dcmcli.records import dataclass
from dcmcli.web.http import WebClient, WebError

LEVELS = ("studies", "series", "instances")

#: Columns of the table when no key is given (and what is asked for then).
DEFAULT_KEYS = {
    "studies": ["PatientName", "PatientID", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
                "StudyDescription", "StudyInstanceUID", "NumberOfStudyRelatedInstances"],
    "series": ["StudyInstanceUID", "Modality", "SeriesNumber", "SeriesDescription", "SeriesInstanceUID",
               "NumberOfSeriesRelatedInstances"],
    "instances": ["SeriesInstanceUID", "SOPClassUID", "InstanceNumber", "SOPInstanceUID"],
}
UNIQUE = {"studies": 0x0020000D, "series": 0x0020000E, "instances": 0x00080018}
# Attributes a server computes, not stored in objects: asked for with includefield.
_COMPUTED = {"NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries", "NumberOfSeriesRelatedInstances",
             "ModalitiesInStudy", "SOPClassesInStudy"}


def level_path(level: str, study: str | None = None, series: str | None = None) -> str:
    """The QIDO-RS resource: /studies, /studies/{uid}/series, /series,
    /studies/{uid}/series/{uid}/instances, /studies/{uid}/instances, /instances."""
    if level not in LEVELS:
        raise UsageError(f"unknown level {level!r}", "give studies, series or instances")
    if series and not study:
        raise UsageError("--series needs --study", "give the study's UID too")
    if level == "studies":
        if study or series:
            raise UsageError("studies are not found within a study or series",
                             "query series or instances with --study/--series, or match StudyInstanceUID=...")
        return "studies"
    if level == "series":
        if series:
            raise UsageError("series are not found within a series", "query instances with --series")
        return f"studies/{study}/series" if study else "series"
    if series:
        return f"studies/{study}/series/{series}/instances"
    return f"studies/{study}/instances" if study else "instances"


def attribute_id(path: tuple[Step, ...]) -> str:
    """A key path as a QIDO attribute ID: keywords (tags for private or unknown
    elements), dotted through sequences (PS3.18 8.3.4.1)."""
    from pydicom.datadict import keyword_for_tag

    return ".".join(keyword_for_tag(s.tag) or f"{s.tag:08X}" for s in path)


@dataclass
class QidoQuery:
    level: str
    path: str
    params: list[tuple[str, str]]
    columns: list[tuple[Step, ...]]
    notes: list[str] = field(default_factory=list)


def build_qido(level: str, keys: list[str], *, study: str | None = None, series: str | None = None,
               includefield: list[str] | None = None, fuzzy: bool = False,
               default_keys: bool = True) -> QidoQuery:
    parsed: list[Key] = [parse_key(k) for k in keys]
    notes = [n for n in (check_value(k) for k in parsed) if n]
    if not parsed and default_keys:
        parsed = [parse_key(k) for k in DEFAULT_KEYS[level]]
    params: list[tuple[str, str]] = []
    include: list[str] = []
    columns: list[tuple[Step, ...]] = []
    for key in parsed:
        attr = attribute_id(key.path)
        if key.value:
            params.append((attr, key.value))
        elif attr not in include:
            include.append(attr)
        if key.path not in columns:
            columns.append(key.path)
    unique = (Step(UNIQUE[level], None),)
    if unique not in columns:
        columns.append(unique)
    for name in includefield or []:
        for part in name.split(","):
            part = part.strip()
            if part and part != "all":
                attr = attribute_id(parse_key(part).path)
                if attr not in include:
                    include.append(attr)
                if parse_key(part).path not in columns:
                    columns.append(parse_key(part).path)
            elif part == "all" and "all" not in include:
                include.append("all")
    if "all" in include:
        include = ["all"]
    params += [("includefield", a) for a in include]
    if fuzzy:
        params.append(("fuzzymatching", "true"))
    return QidoQuery(level, level_path(level, study, series), params, columns, notes)


@dataclass
class Page:
    records: list[dict[str, Any]]
    offset: int
    warning: str | None


def search(client: WebClient, query: QidoQuery, *, limit: int | None = None, offset: int = 0,
           all_pages: bool = False, page_size: int = 100) -> Iterator[Page]:
    """The pages of a query's answer. With ``all_pages``, pages of ``limit``
    (default ``page_size``) records are asked for until one comes back empty."""
    size = limit if limit is not None else (page_size if all_pages else None)
    at = offset
    previous: list[dict[str, Any]] | None = None
    while True:
        params = list(query.params)
        if size is not None:
            params.append(("limit", str(size)))
        if at:
            params.append(("offset", str(at)))
        records, warning = _get(client, query.path, params, query.level)
        if previous is not None and records and records == previous:
            # a server that ignores offset answers the same page for ever
            raise WebError(f"QIDO-RS search for {query.level}: the server answered offset={at} with the same "
                           f"results as the page before: it ignores offset", "query without --all-pages (and "
                           "narrow the keys), or use --limit/--offset by hand")
        yield Page(records, at, warning)
        if not all_pages or not records:
            return
        previous = records
        at += len(records)


def _get(client: WebClient, path: str, params: list[tuple[str, str]], level: str
         ) -> tuple[list[dict[str, Any]], str | None]:
    what = f"QIDO-RS search for {level}"
    resp, body = client.request("GET", path, what, params=params, headers={"Accept": "application/dicom+json"},
                                ok=(200, 204))
    warning = resp.headers.get("warning")
    if resp.status_code == 204 or not body.strip():
        return [], warning
    return parse_records(body, what, str(resp.request.url), resp.headers.get("content-type", "")), warning


def parse_records(body: bytes, what: str, url: str, content_type: str) -> list[dict[str, Any]]:
    """A QIDO answer (a JSON array of DICOM JSON objects), or a WebError saying why it is not one."""
    hint = "BASE-URL must be the DICOMweb root (e.g. http://host:8042/dicom-web), not a web page or another API"
    try:
        data = json.loads(body)
    except ValueError:
        raise WebError(f"{what}: the answer is not JSON ({content_type or 'no content type'}), so not a "
                       f"DICOMweb service ({url})", hint, url=url) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) and _looks_dicom_json(r) for r in data):
        raise WebError(f"{what}: the answer is JSON but not DICOM JSON, so not a DICOMweb service ({url})",
                       hint, url=url)
    return data


def _looks_dicom_json(record: dict[str, Any]) -> bool:
    return all(len(k) == 8 and isinstance(v, dict) and "vr" in v for k, v in record.items())


def count_instances(client: WebClient, study: str, series: str | None = None) -> int | None:
    """How many instances the server says a study (or series) holds; None when it does not say."""
    if series:
        path, params = f"studies/{study}/series", [("SeriesInstanceUID", series)]
        tag, kw = "00201209", "NumberOfSeriesRelatedInstances"
    else:
        path, params = "studies", [("StudyInstanceUID", study)]
        tag, kw = "00201208", "NumberOfStudyRelatedInstances"
    records, _ = _get(client, path, params + [("includefield", kw)], "series" if series else "studies")
    for r in records:
        values = (r.get(tag) or {}).get("Value") or []
        if values:
            try:
                return int(values[0])
            except (TypeError, ValueError):
                return None
    return None if records else 0


def series_of(client: WebClient, study: str) -> list[tuple[str, int | None]]:
    """The series of a study with their instance counts."""
    records, _ = _get(client, f"studies/{study}/series", [("includefield", "NumberOfSeriesRelatedInstances")],
                      "series")
    out = []
    for r in records:
        uid = ((r.get("0020000E") or {}).get("Value") or [None])[0]
        n = ((r.get("00201209") or {}).get("Value") or [None])[0]
        if uid and all(u != uid for u, _ in out):
            out.append((str(uid), int(n) if n is not None else None))
    return out


OnRecord = Callable[[dict[str, Any]], None]


#: wado query as a DICOMweb user agent (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity("WADO", "wado", (
    "A DICOMweb user agent: searches (`wado query`, QIDO-RS), retrieves (`wado retrieve`, WADO-RS, into storescp's "
    "layouts; `wado uri`, WADO-URI) and stores (`wado store`, STOW-RS) against an origin server named by its base "
    "URL."), web=(
    ("Studies", "Search (QIDO-RS)", "All Studies; Study's Series; Study's Instances; All Series; Series' Instances; "
                                    "All Instances"),
))]
