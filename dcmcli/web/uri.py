"""WADO-URI (PS3.18 Chapter 9): one object, as DICOM or rendered, by its UIDs.

``GET BASE?requestType=WADO&studyUID=..&seriesUID=..&objectUID=..`` with the
optional parameters of PS3.18 9.1.2 (contentType, transferSyntax, frameNumber,
rows, columns, windowCenter, windowWidth, anonymize); the body is streamed to
a file (a hidden temporary name, renamed when complete) or to stdout.
"""

from __future__ import annotations


from dcmcli.conformance import ApplicationEntity
from dcmcli.records import dataclass


@dataclass
class UriRequest:
    study: str
    series: str
    instance: str
    content_type: str = "application/dicom"
    transfer_syntax: str | None = None
    frame: int | None = None
    rows: int | None = None
    columns: int | None = None
    window_center: float | None = None
    window_width: float | None = None
    anonymize: bool = False
    charset: str | None = None

    def params(self) -> list[tuple[str, str]]:
        p = [("requestType", "WADO"), ("studyUID", self.study), ("seriesUID", self.series),
             ("objectUID", self.instance), ("contentType", self.content_type)]
        for name, value in (("transferSyntax", self.transfer_syntax), ("frameNumber", self.frame),
                            ("rows", self.rows), ("columns", self.columns), ("windowCenter", self.window_center),
                            ("windowWidth", self.window_width), ("charset", self.charset)):
            if value is not None:
                p.append((name, f"{value:g}" if isinstance(value, float) else str(value)))
        if self.anonymize:
            p.append(("anonymize", "yes"))
        return p

    def url(self, base: str) -> str:
        """The request URL, its query written as PS3.18 9.1's examples show it ('/' in contentType
        as it is: Orthanc 1.10 does not decode %2F there)."""
        from dcmcli.web.http import encode_query

        return f"{base}?{encode_query(self.params())}"


#: wado uri as a DICOMweb user agent (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity("WADO", "wado", web=(
    ("URI", "Retrieve DICOM Instance", "Instance"),
    ("URI", "Retrieve Rendered Instance", "Instance"),
))]
