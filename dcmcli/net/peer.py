"""Peer addressing and AE title validation."""

from __future__ import annotations

import re

from dcmcli.errors import UsageError
from dcmcli.records import dataclass

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_ae_title(value: str, what: str = "AE title") -> str:
    """Return ``value`` stripped of padding, or raise a ``UsageError``.

    PS3.5 6.2 (AE VR): 1 to 16 characters, no backslash, no control
    characters; leading and trailing spaces are not significant, so a title
    of spaces only is empty.
    """
    title = value.strip(" ")
    if not value.isascii():
        raise UsageError(f"invalid {what} {value!r}: only ASCII characters are allowed",
                         "AE titles are plain ASCII (PS3.5 6.2): write it without accents or other letters")
    if not title:
        raise UsageError(f"invalid {what} {value!r}: it is empty", "give 1 to 16 characters")
    if len(title) > 16:
        raise UsageError(f"invalid {what} {value!r}: {len(title)} characters, at most 16 are allowed",
                         "shorten it")
    if "\\" in title:
        raise UsageError(f"invalid {what} {value!r}: a backslash is not allowed", "remove the backslash")
    if _CONTROL.search(title):
        raise UsageError(f"invalid {what} {value!r}: control characters are not allowed",
                         "use printable characters only")
    return title


def validate_port(value: str | int, what: str = "port") -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid {what} {value!r}: not a number", "give a TCP port from 1 to 65535") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"invalid {what} {port}: out of range", "give a TCP port from 1 to 65535")
    return port


@dataclass(frozen=True)
class Peer:
    host: str
    port: int
    ae_title: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        prefix = f"{self.ae_title}@" if self.ae_title else ""
        return f"{prefix}{host}:{self.port}"

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "ae_title": self.ae_title}


def _split_host_port(text: str) -> tuple[str, str] | None:
    """``host:port`` or ``[v6]:port`` -> (host, port); None if no port."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"invalid peer {text!r}: missing ']'", "write IPv6 peers as [addr]:port")
        rest = text[end + 1:]
        if not rest:
            return None
        if not rest.startswith(":"):
            raise UsageError(f"invalid peer {text!r}", "write IPv6 peers as [addr]:port")
        return text[1:end], rest[1:]
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return None


def parse_peer(peer: str, rest: list[str]) -> tuple[Peer, list[str]]:
    """Parse DCMTK's positional ``peer port`` or the one-argument ``[AET@]host:port``.

    Returns the peer and the positional arguments left after it.
    """
    ae_title: str | None = None
    text = peer
    if "@" in text:
        ae_part, text = text.rsplit("@", 1)
        ae_title = validate_ae_title(ae_part, "called AE title")
    split = _split_host_port(text)
    if split is not None:
        host, port = split
        remaining = list(rest)
    else:
        host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        if not rest:
            raise UsageError(f"missing port after peer {peer!r}", "give 'peer port' or 'host:port'")
        port, remaining = rest[0], list(rest[1:])
    if not host:
        raise UsageError(f"invalid peer {peer!r}: empty host name", "give a host name or address")
    port_no = validate_port(port)
    if port_no == 0:
        raise UsageError(f"invalid port 0 for peer {peer!r}", "give a TCP port from 1 to 65535")
    return Peer(host, port_no, ae_title), remaining
