"""The HTTP session every DICOMweb operation goes through.

One ``httpx.Client`` per command run (connection pooling, keep-alive,
streaming bodies both ways, proxies from the usual environment variables);
basic or bearer authentication, extra headers, a CA file or no verification.
HTTP statuses and transport failures become ``WebError``s with a plain
message, a hint and a row of the shared exit-code table:

* cannot connect (refused, unknown host, TLS handshake, connect timeout): 60;
* the connection dropped or no answer within ``--timeout``: 62;
* 401 and 403: 69 (not-authorised);
* any other 4xx or 5xx: 66 (operation-failed).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from dcmcli.errors import DcmcliError, ExitCode, NetworkError, UsageError
from dcmcli.records import dataclass

if TYPE_CHECKING:
    import httpx


@dataclass
class HttpOptions:
    """The HTTP options every ``wado`` action shares (cli/options.py builds them)."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    cacert: str | None = None
    insecure: bool = False
    timeout: float = 30.0
    #: An ssl.SSLContext built from DICOM TLS's options (+cf, +tls KEY CERT, -ic, +py/+px/+pz)
    ssl_context: Any = None


class WebError(DcmcliError):
    """An HTTP exchange that failed: the status (None for transport failures),
    the request, and the exit code of its class."""

    exit_code = ExitCode.OPERATION_FAILED

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None, method: str = "",
                 url: str = "", exit_code: ExitCode | None = None) -> None:
        super().__init__(message, hint, exit_code=exit_code)
        self.status = status
        self.method = method
        self.url = url

    def as_dict(self) -> dict[str, object]:
        return {"http_status": self.status, "method": self.method, "url": self.url, "message": self.message,
                "hint": self.hint, "exit_code": int(self.exit_code)}


#: What each status means for the user, and what to try.
_HINTS: dict[int, tuple[str, str]] = {
    400: ("the server refused the request as malformed", "check the UIDs and values given; -d shows the request"),
    404: ("not found", "check the UIDs (wado query lists them) and that BASE-URL is the DICOMweb root, "
                       "e.g. http://host:8042/dicom-web"),
    405: ("the server does not allow this method here", "check that BASE-URL is the DICOMweb root"),
    406: ("the server cannot send the media type or transfer syntax asked for",
          "try --transfer-syntax '*' (as stored) or another --media-type / --content-type"),
    409: ("the server refused to store the objects (conflict)", "see the Failure Reason of each file"),
    413: ("the request is too large for the server", "send smaller batches (--batch, --batch-size)"),
    415: ("the server does not accept this media type", "it may not support STOW-RS of application/dicom"),
    503: ("the server is busy or unavailable", "try again later"),
}


def describe_status(status: int, reason: str) -> str:
    return f"HTTP {status} {reason}".rstrip()


def http_failure(resp: httpx.Response, what: str, credentials: str | None) -> WebError:
    """A WebError for a failed response (the body is read: servers explain there).
    ``credentials``: what this request carried, "token" (bearer), "password" (basic) or None;
    ``"elsewhere"``: the client has some, kept from this request's server (another than BASE-URL's)."""
    status = resp.status_code
    url = str(resp.request.url)
    method = resp.request.method
    detail = ""
    with contextlib.suppress(Exception):
        text = resp.read()[:2000].decode("utf-8", "replace")
        detail = _short_detail(text)
    where = f"{method} {redact(url)}"
    head = f"{what}: {describe_status(status, resp.reason_phrase)}"
    if status in (401, 403):
        meaning, hint = _refusal(status, credentials, resp.headers.get("www-authenticate", ""))
        return WebError(f"{head}: {meaning} ({where})", hint, status=status, method=method, url=url,
                        exit_code=ExitCode.NOT_AUTHORISED)
    meaning, hint = _HINTS.get(status, ("the server could not do it" if status >= 500 else "refused",
                                        "see the server's log" if status >= 500 else "run with -d for the exchange"))
    if detail:
        meaning = detail if status == 404 else f"{meaning}: {detail}"
    return WebError(f"{head}: {meaning} ({where})", hint, status=status, method=method, url=url)


def _refusal(status: int, credentials: str | None, challenge: str) -> tuple[str, str]:
    """What a 401 or 403 means and what to try, from what was sent and the server's
    WWW-Authenticate challenge (RFC 9110 11.6.1; a bearer one's error and description, RFC 6750 3)."""
    scheme = challenge.split(None, 1)[0].lower() if challenge.strip() else ""
    params = _challenge_params(challenge)
    said = "; ".join(v for v in (params.get("error", ""), params.get("error_description", "")) if v)
    said = f" ({said})" if said else ""
    asks = {"bearer": "a bearer token", "basic": "a user and password (basic)"}.get(scheme)
    if credentials == "elsewhere":
        return ("the server wants credentials: the ones given go to BASE-URL's server only",
                "give a URI on BASE-URL's server, or that server as BASE-URL")
    if status == 403:
        if credentials == "token":
            return (f"the token given is not allowed to do this{said}",
                    "the token may lack the scope or rights this needs; ask for one that has them")
        if credentials == "password":
            return ("the credentials given are not allowed to do this", "check the user's rights on the server")
        return ("the server refuses this without credentials", "give --token TOKEN (or --token-env VAR) "
                "or -u USER[:PASSWORD]")
    if credentials == "token":
        hint = "check the token given by --token or --token-env: it may be wrong, expired or for another server"
        if scheme == "basic":
            hint = "the server asks for a user and password (basic), not a token: give -u USER[:PASSWORD]"
        return f"the server refused the bearer token{said}", hint
    if credentials == "password":
        hint = "check the user and password (-u USER:PASSWORD, $DCMCLI_PASSWORD or --password-env)"
        if scheme == "bearer":
            hint = "the server asks for a bearer token, not a password: give --token TOKEN or --token-env VAR"
        return f"the server refused the credentials{said}", hint
    if scheme == "bearer":
        return f"the server wants {asks}{said}", "give --token TOKEN or --token-env VAR"
    if scheme == "basic":
        return f"the server wants {asks}", "give -u USER[:PASSWORD]"
    return "the server wants credentials", "give -u USER[:PASSWORD] or --token TOKEN (--token-env VAR)"


def _challenge_params(challenge: str) -> dict[str, str]:
    """The auth-params of a WWW-Authenticate challenge (name="value" or name=token), as one line each."""
    import re

    found = {}
    for name, quoted, bare in re.findall(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', challenge):
        value = (quoted.replace('\\"', '"') if quoted else bare)
        found.setdefault(name.lower(), " ".join(value.split())[:200])
    return found


def _short_detail(text: str) -> str:
    """The useful part of an error body (Orthanc's JSON 'Message'/'Details', or a first text line)."""
    import json

    text = text.strip()
    if not text:
        return ""
    try:
        obj = json.loads(text)
    except ValueError:
        if text.lstrip().startswith("<"):
            return ""  # an HTML page says nothing a line can
        return " ".join(text.split())[:200]
    if isinstance(obj, dict):
        parts = [str(obj[k]) for k in ("Message", "Details", "message", "detail") if obj.get(k)]
        return "; ".join(dict.fromkeys(parts))[:300]
    return ""


def _origin(url: str) -> str:
    """scheme://host:port of a URL (the port always written), what credentials are bound to."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _bearer(token: str) -> Callable[[Any], Any]:
    """httpx auth (a function of the request) sending ``Authorization: Bearer TOKEN`` (RFC 6750 2.1)."""
    value = f"Bearer {token}"

    def auth(request: Any) -> Any:
        request.headers["Authorization"] = value
        return request

    return auth


def check_token(token: str, source: str) -> str:
    """A bearer token as sent: without the blanks around it (a token file's newline); one that is
    empty, or has a space, a control or a non-ASCII character, is a usage error that does not show it
    (httpx would refuse it later, some of its messages with the header's value in them)."""
    token = token.strip()
    if not token:
        raise UsageError(f"{source}: the token is empty", "give the token itself")
    bad = next((i for i, c in enumerate(token) if not 32 < ord(c) < 127), None)
    if bad is not None:
        raise UsageError(f"{source}: the token has a space, control or non-ASCII character (character {bad + 1} of "
                         f"{len(token)}; the token is not shown)",
                         "a bearer token is one word of printable ASCII (RFC 6750: letters, digits, -._~+/ and =)")
    return token


def redact(url: str) -> str:
    """A URL without credentials in it (user:password@host)."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return parts._replace(netloc=host).geturl()


class WebClient:
    """The httpx client of one command run; ``base`` is the service root
    (DICOMweb: ``http://host:8042/dicom-web``; WADO-URI: ``http://host:8042/wado``)."""

    def __init__(self, base: str, options: HttpOptions, *, log: Any = None) -> None:
        httpx = import_httpx()

        base = base.strip()
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"not an HTTP URL: {base!r}", "give the service root, e.g. http://host:8042/dicom-web")
        self.base = base.rstrip("/")
        self.options = options
        self.log = log
        user, password = options.user, options.password
        if user is None and parts.username:  # http://user:pass@host/...
            from urllib.parse import unquote

            user, password = unquote(parts.username), unquote(parts.password or "")
            self.base = redact(self.base)
        #: What authenticates: "token" (bearer), "password" (basic) or None; sent to BASE-URL's origin only
        self.credentials: str | None = "token" if options.token else ("password" if user is not None else None)
        self.origin = _origin(self.base)
        self.user = user
        self.auth: Any = None
        if options.token:
            self.auth = _bearer(options.token)
        elif user is not None:
            self.auth = httpx.BasicAuth(user, password or "")
        headers = {"User-Agent": f"dcmcli/{_version()}"}
        #: -H headers: sent to BASE-URL's server only, as the credentials (they often carry an API key)
        self.extra_headers = {name: value for name, value in options.headers}
        headers.update(self.extra_headers)
        verify: Any = True
        if options.ssl_context is not None:
            verify = options.ssl_context
        elif options.insecure:
            verify = False
        elif options.cacert:
            import ssl

            try:
                verify = ssl.create_default_context(cafile=options.cacert)
            except (OSError, ssl.SSLError) as exc:
                from dcmcli.errors import InputError

                raise InputError(f"cannot read the CA file {options.cacert!r}: {exc}",
                                 "give --cacert a PEM file") from None
        mounts = None
        if parts.scheme == "http" and verify is True and not _https_proxy():
            # BASE-URL has no TLS: the CA bundle (25 ms) is loaded only when a
            # request goes to https (a redirect, an absolute bulk data URI),
            # and then checked as for an https BASE-URL.
            mounts = {"https://": _OnFirstUse(lambda: httpx.HTTPTransport(verify=True, trust_env=True))}
            verify = False  # the plain-http transport's: it never makes a TLS connection
        timeout = httpx.Timeout(options.timeout or None)
        # redirects: httpx drops Authorization when one leads to another origin
        self.client = httpx.Client(headers=headers, verify=verify, timeout=timeout, follow_redirects=True,
                                   trust_env=True, mounts=mounts, event_hooks={"request": [self._only_to_base]})

    def _only_to_base(self, request: httpx.Request) -> None:
        """The -H headers off a request to another server than BASE-URL's (an absolute
        URI, a redirect: httpx drops only Authorization on those)."""
        if self.extra_headers and _origin(str(request.url)) != self.origin:
            for name in self.extra_headers:
                request.headers.pop(name, None)

    def sends_credentials(self, url: str) -> str | None:
        """What a request to ``url`` carries: the credentials on BASE-URL's origin (scheme, host and
        port), none elsewhere ("elsewhere": some were given, kept from that server)."""
        if self.credentials is None:
            return None
        return self.credentials if _origin(url) == self.origin else "elsewhere"

    def failure(self, resp: httpx.Response, what: str) -> WebError:
        return http_failure(resp, what, self.sends_credentials(str(resp.request.url)))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> WebClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, ref: str) -> str:
        """A URI the server gave (a BulkDataURI: PS3.18 allows it relative) as a URL. An absolute one
        (http or https) as it is; ``studies/...`` (also ``./``, ``../``) relative to BASE-URL, the
        DICOMweb root; ``/dicom-web/studies/...``, a path beginning with BASE-URL's own, on its server;
        any other ``/studies/...`` relative to BASE-URL too (on that server's root it would be another
        API than DICOMweb's); ``//host/...`` with BASE-URL's scheme."""
        from urllib.parse import urljoin

        ref = ref.strip()
        parts = urlsplit(ref)
        if parts.scheme:
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise UsageError(f"not an HTTP URI: {ref!r}",
                                 "give an http(s) URI, or one relative to BASE-URL (studies/...)")
            return ref
        if ref.startswith("//"):
            return f"{urlsplit(self.base).scheme}:{ref}"
        root = urlsplit(self.base).path.rstrip("/")
        if ref.startswith("/"):
            if not root or ref == root or ref.startswith(root + "/"):
                return urljoin(self.base, ref)
            ref = ref.lstrip("/")
        return urljoin(self.base + "/", ref)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base + ("" if not path or path.startswith("/") else "/") + path

    @contextlib.contextmanager
    def stream(self, method: str, path: str, what: str, *, params: Mapping[str, Any] | list[tuple[str, str]] | None = None,
               headers: Mapping[str, str] | None = None, content: Any = None,
               ok: tuple[int, ...] = (200,)) -> Iterator[httpx.Response]:
        """Send a request and yield its response, its body not yet read.
        A status outside ``ok`` raises a WebError (``ok`` empty: the caller judges every status)."""
        import httpx

        url = self.url(path)
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        sent = self.sends_credentials(url)
        if self.log:
            self.log(f"{method} {redact(url)}")
            if sent == "token":
                self.log("  Authorization: Bearer [redacted]")
            elif sent == "password":
                self.log(f"  Authorization: Basic [redacted] (user {self.user})")
            elif sent == "elsewhere":
                self.log(f"  no credentials: {_origin(url)} is not BASE-URL's server ({self.origin})")
        try:
            with self.client.stream(method, url, headers=headers, content=content,
                                    auth=self.auth if sent in ("token", "password") else None) as resp:
                if self.log:
                    self.log(f"-> {resp.status_code} {resp.reason_phrase} {resp.headers.get('content-type', '')}")
                    if resp.status_code in (401, 403) and resp.headers.get("www-authenticate"):
                        self.log(f"  WWW-Authenticate: {resp.headers['www-authenticate']}")
                if ok and resp.status_code not in ok:
                    raise self.failure(resp, what)
                yield resp
        except httpx.HTTPError as exc:
            raise transport_failure(exc, what, method, url, self.options.timeout) from None

    def request(self, method: str, path: str, what: str, **kwargs: Any) -> tuple[httpx.Response, bytes]:
        """A request whose whole (small) body is read: QIDO answers, STOW responses."""
        with self.stream(method, path, what, **kwargs) as resp:
            try:
                body = resp.read()
            except Exception as exc:
                import httpx

                if isinstance(exc, httpx.HTTPError):
                    raise transport_failure(exc, what, method, self.url(path), self.options.timeout) from None
                raise
            return resp, body


def _https_proxy() -> bool:
    """Whether the environment names a proxy for https (httpx mounts it at
    "https://", where a mount of ours would take its place)."""
    import urllib.request

    proxies = urllib.request.getproxies()
    return bool(proxies.get("https") or proxies.get("all"))


class _OnFirstUse:
    """An httpx transport made when the first request needs it (an
    ``httpx.BaseTransport``: ``handle_request`` and ``close``)."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._transport: Any = None
        self._lock = threading.Lock()

    def handle_request(self, request: Any) -> Any:
        with self._lock:
            if self._transport is None:
                self._transport = self._make()
        return self._transport.handle_request(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def __enter__(self) -> _OnFirstUse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def import_httpx() -> Any:
    """httpx, without what its synchronous client never uses: httpcore imports
    trio and anyio when they are installed (for async clients), and httpx its
    command-line tool (click, rich, pygments): 0.1 s of a 0.4 s start."""
    import sys

    if "httpx" in sys.modules:
        return sys.modules["httpx"]
    blocked = [name for name in ("trio", "anyio", "httpx._main") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "import name" raises ImportError
    try:
        import httpx

        _larger_reads()  # imports httpcore (httpx 0.28 imports it late)
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return httpx


def _larger_reads() -> None:
    """httpcore reads a response 64 KB per recv(); a WADO-RS answer of
    hundreds of MB then costs thousands of h11 events and parser calls.
    1 MB reads (what arrives, up to that) cut that cost, measured with
    bench/bench_wado.py; memory stays bounded by the read size."""
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # pragma: no cover - another httpcore layout: keep its default
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", 0) < READ_SIZE:
        HTTP11Connection.READ_NUM_BYTES = READ_SIZE  # type: ignore[attr-defined]


READ_SIZE = 1024 * 1024


def transport_failure(exc: Exception, what: str, method: str, url: str, timeout: float) -> DcmcliError:
    """A transport exception (httpx) as a WebError with the exit code of its kind."""
    import httpx

    if isinstance(exc, DcmcliError):
        return exc
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return WebError(f"{what}: cannot connect to {where}: no answer within {timeout:g} s",
                        "check the host and port, or raise --timeout", method=method, url=url,
                        exit_code=ExitCode.CANNOT_CONNECT)
    if isinstance(exc, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            return WebError(f"{what}: cannot connect to {where}: its TLS certificate is not trusted ({text})",
                            "give the CA with --cacert FILE, or --insecure to skip the check",
                            method=method, url=url, exit_code=ExitCode.CANNOT_CONNECT)
        reason = text.split("] ", 1)[-1] if "]" in text else text
        return WebError(f"{what}: cannot connect to {where}: {reason}",
                        "check the URL and that the server is running", method=method, url=url,
                        exit_code=ExitCode.CANNOT_CONNECT)
    if isinstance(exc, httpx.TimeoutException):
        return WebError(f"{what}: no answer from {where} within {timeout:g} s",
                        "raise --timeout, or check the server", method=method, url=url,
                        exit_code=ExitCode.ASSOCIATION_ABORTED)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return WebError(f"{what}: the connection to {where} was lost: {text}",
                        "try again; the server may have stopped or cut the answer", method=method, url=url,
                        exit_code=ExitCode.ASSOCIATION_ABORTED)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return UsageError(f"{what}: invalid URL {url!r}: {text}", "give an http:// or https:// URL")
    if isinstance(exc, httpx.TooManyRedirects):
        return WebError(f"{what}: too many redirects from {where}", "check BASE-URL", method=method, url=url)
    return NetworkError(f"{what}: HTTP failure with {where}: {text}", "run with -d for details",
                        exit_code=ExitCode.ASSOCIATION_ABORTED)


#: Characters left as they are in query values: DICOM's wildcards, ranges, PN and UID-list
#: separators, and the '/' of media types. Orthanc 1.10 does not percent-decode query values
#: (`PatientID=A%2A` matches nothing, `PatientID=A*` does), and PS3.18's examples write them so.
_QUERY_SAFE = "*?^-.,_:/\\@!$'()~|;="


T = TypeVar("T")


def run_each(fn: Callable[[T], object], items: Sequence[T], jobs: int, name: str) -> None:
    """``fn`` for every item: in this thread, or on ``jobs`` threads (``-j``)."""
    if jobs <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=name) as pool:
        list(pool.map(fn, items))


def encode_query(params: Mapping[str, Any] | list[tuple[str, str]]) -> str:
    """A query string with only what must be escaped escaped (space, &, #, %, +, non-ASCII)."""
    from urllib.parse import quote

    items = params.items() if isinstance(params, Mapping) else params
    return "&".join(f"{quote(str(k), safe=_QUERY_SAFE)}={quote(str(v), safe=_QUERY_SAFE)}" for k, v in items)


def _version() -> str:
    from dcmcli import __version__

    return __version__
