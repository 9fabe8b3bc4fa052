"""DICOM secure transport (PS3.15 Annex B, BCP 195) for the requestor and
the acceptor alike, with Python's ``ssl``.

``TlsOptions`` is what the command line gives (DCMTK's ``+tls KEY CERT``,
``+cf``, ``+cd``, ``+py/+px/+pz``, ``-rc/-vc/-ic``, ...);
``client_context`` and ``server_context`` build the ``ssl.SSLContext`` of
each side; ``explain`` turns a failed handshake into one plain line and a
hint; ``session_info`` is what the negotiation report shows.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import field
from pathlib import Path
from typing import Any

from dcmcli.errors import DcmcliError, ExitCode, UsageError
from dcmcli.records import dataclass

#: The BCP 195 profiles (PS3.15 B.9-B.11): (name, DCMTK flag, minimum
#: version, maximum version, TLS 1.2 cipher suites (OpenSSL names)).
PROFILES: dict[str, tuple[str, ssl.TLSVersion, ssl.TLSVersion | None, str, str]] = {
    "bcp195-nd": ("+py", ssl.TLSVersion.TLSv1_2, None,
                  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
                  "BCP 195 non-downgrading (PS3.15 B.10): TLS 1.2 or 1.3, ECDHE with AES-GCM only (the default)"),
    "bcp195": ("+px", ssl.TLSVersion.TLSv1_2, None,
               "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
               "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
               "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
               "BCP 195 (PS3.15 B.9): TLS 1.2 or 1.3, ECDHE or DHE with AES-GCM"),
    "bcp195-ex": ("+pz", ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3, "",
                  "BCP 195 extended (PS3.15 B.11): TLS 1.3 only"),
}


@dataclass
class TlsOptions:
    """One side's TLS settings. ``verify``: "require" (the peer must present
    a certificate we trust), "if-presented", "ignore"."""

    key: Path | None = None
    cert: Path | None = None
    key_password: str | None = None
    der: bool = False
    trusted_files: list[Path] = field(default_factory=list)
    trusted_dirs: list[Path] = field(default_factory=list)
    system_ca: bool = False
    crls: list[Path] = field(default_factory=list)
    profile: str = "bcp195-nd"
    ciphers: list[str] = field(default_factory=list)
    verify: str | None = None  # None: the side's default (SCU require, SCP if-presented)

    def describe(self) -> str:
        return f"TLS ({self.profile}{', ' + ':'.join(self.ciphers) if self.ciphers else ''})"


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DcmcliError(f"cannot read the {what} {str(path)!r}: {exc.strerror or exc}", "check the path",
                          exit_code=ExitCode.INPUT_UNREADABLE) from None


def _is_pem(data: bytes) -> bool:
    return data.lstrip().startswith(b"-----BEGIN")


def _pem_cert(path: Path) -> str:
    """A certificate file as PEM text: DER converted, PEM as it is (also with
    -der: DCMTK's -der names the format of every file, and a PEM file among
    them need not fail)."""
    data = _read(path, "certificate")
    if not _is_pem(data):
        try:
            return ssl.DER_cert_to_PEM_cert(data)
        except Exception:  # noqa: BLE001
            raise DcmcliError(f"{str(path)!r} is neither a PEM nor a DER certificate", "give a certificate file",
                              exit_code=ExitCode.INVALID_INPUT) from None
    return data.decode("ascii", "replace")


def _base(options: TlsOptions, purpose: ssl.Purpose) -> ssl.SSLContext:
    try:
        name, low, high, ciphers, _ = PROFILES[options.profile]
    except KeyError:
        raise UsageError(f"unknown TLS profile {options.profile!r}", "see +ph/--list-profiles") from None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT if purpose == ssl.Purpose.SERVER_AUTH else ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = low
    if high is not None:
        ctx.maximum_version = high
    chosen = ":".join(options.ciphers) if options.ciphers else ciphers
    if chosen:
        try:
            ctx.set_ciphers(chosen)
        except ssl.SSLError:
            raise UsageError(f"no usable cipher suite in {chosen!r}", "see +cc/--list-ciphers") from None
    ctx.options |= ssl.OP_NO_COMPRESSION
    # trusted certificates
    for f in options.trusted_files:
        pem = _pem_cert(f) if options.der else None
        try:
            if pem is not None:
                ctx.load_verify_locations(cadata=pem)
            else:
                ctx.load_verify_locations(cafile=str(f))
        except (ssl.SSLError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) or not f.exists():
                raise DcmcliError(f"cannot read the trusted certificate {str(f)!r}: no such file", "check +cf",
                                  exit_code=ExitCode.INPUT_UNREADABLE) from None
            raise DcmcliError(f"{str(f)!r} holds no certificate ssl can read ({exc})",
                              "give PEM certificates with +cf (or -der for DER)",
                              exit_code=ExitCode.INVALID_INPUT) from None
    for d in options.trusted_dirs:
        if not d.is_dir():
            raise DcmcliError(f"the trusted certificate folder {str(d)!r} does not exist", "check +cd",
                              exit_code=ExitCode.INPUT_UNREADABLE)
        # DCMTK's +cd takes a folder of certificates; OpenSSL's capath wants
        # hashed names, so every file in it is loaded instead.
        for f in sorted(d.iterdir()):
            if f.is_file():
                try:
                    ctx.load_verify_locations(cadata=_pem_cert(f))
                except (ssl.SSLError, DcmcliError):
                    continue
    if options.system_ca:
        ctx.load_default_certs(purpose)
    for crl in options.crls:
        try:
            ctx.load_verify_locations(cafile=str(crl))
        except (ssl.SSLError, OSError) as exc:
            raise DcmcliError(f"cannot load the revocation list {str(crl)!r}: {exc}", "give a PEM CRL with +crl",
                              exit_code=ExitCode.INVALID_INPUT) from None
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    # our own certificate
    if options.cert is not None or options.key is not None:
        if options.cert is None or options.key is None:
            raise UsageError("a TLS key without a certificate (or the reverse)", "give both: +tls KEY CERT")
        _load_chain(ctx, options)
    return ctx


def _load_chain(ctx: ssl.SSLContext, options: TlsOptions) -> None:
    """Our key and certificate into ``ctx``: PEM files as they are; a DER key
    (-der, or any key file that is not PEM) decrypted with ``cryptography`` and handed to ``ssl`` through an
    in-memory file, encrypted again there with a one-time password."""
    assert options.key is not None and options.cert is not None
    key_data = _read(options.key, "private key")
    _read(options.cert, "certificate")
    if not _is_pem(key_data):
        import secrets

        one_time = secrets.token_urlsafe(32)
        chain = _pem_cert(options.cert) + _der_key_to_pem(key_data, options, one_time)
        with _private_file(chain) as path:
            _load_cert_chain(ctx, options, path, path, one_time, ours=False)
    else:
        _load_cert_chain(ctx, options, str(options.cert), str(options.key),
                         options.key_password if options.key_password is not None else (lambda: _ask_password(options)),
                         ours=True)


def _load_cert_chain(ctx: ssl.SSLContext, options: TlsOptions, cert: str, key: str, password: Any, *,
                     ours: bool) -> None:
    """``ssl``'s load_cert_chain, its failures in plain words; ``ours``: the
    password is the user's (so "PEM lib" after it means a wrong one)."""
    try:
        ctx.load_cert_chain(cert, key, password=password)
    except ssl.SSLError as exc:
        text = str(exc)
        if ours and ("bad decrypt" in text.lower() or "BAD_DECRYPT" in text
                     or "PEM lib" in text and options.key_password):
            raise _wrong_password(options) from None
        if "KEY_VALUES_MISMATCH" in text or "key values mismatch" in text:
            raise DcmcliError(f"the private key {str(options.key)!r} does not belong to the certificate "
                              f"{str(options.cert)!r}", "give the key the certificate was made for",
                              exit_code=ExitCode.USAGE) from None
        if not ours:  # the key was just made by cryptography: the certificate is what ssl cannot read
            raise DcmcliError(f"{str(options.cert)!r} is not a certificate ssl can read ({exc.reason or exc})",
                              "give a DER or PEM certificate", exit_code=ExitCode.INVALID_INPUT) from None
        raise DcmcliError(f"cannot load the TLS key and certificate ({exc.reason or exc})",
                          "give a PEM private key and certificate (-der for DER); an encrypted key needs +pw",
                          exit_code=ExitCode.INVALID_INPUT) from None


def _wrong_password(options: TlsOptions) -> DcmcliError:
    return DcmcliError(f"cannot decrypt the private key {str(options.key)!r}: wrong password",
                       "check +pw / --tls-key-password", exit_code=ExitCode.USAGE)


def _ask_password(options: TlsOptions) -> str:
    """The password of an encrypted key given none (+ps, the default): asked
    on the terminal once (kept for the other side's context), or a usage
    error where there is no terminal to ask on."""
    import sys

    if options.key_password is None:
        if not sys.stdin.isatty():
            raise DcmcliError(f"the private key {str(options.key)!r} is encrypted and no password was given "
                              "(there is no terminal to ask on)",
                              "give it with +pw PASSWORD or --tls-key-password-env VAR", exit_code=ExitCode.USAGE)
        import getpass

        options.key_password = getpass.getpass(f"password for the private key {options.key}: ")
    return options.key_password


@contextlib.contextmanager
def _private_file(text: str) -> Iterator[str]:
    """A path ``ssl`` can open that holds ``text``: an anonymous in-memory
    file (Linux memfd: nothing on disk, gone when closed), else a temporary
    file only we can read, removed at once."""
    data = text.encode("ascii")
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("dcmcli-tls", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb") as f:
                f.write(data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    import tempfile

    fd, name = tempfile.mkstemp(prefix="dcmcli-tls-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield name
    finally:
        os.unlink(name)


def _der_key_to_pem(data: bytes, options: TlsOptions, one_time: str) -> str:
    """A DER private key (PKCS#1, PKCS#8, or encrypted PKCS#8 with +pw) as
    PEM PKCS#8 encrypted with ``one_time``: the plain key is never written
    anywhere, not even to the in-memory file ``ssl`` reads."""
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise DcmcliError("a DER private key needs the 'cryptography' package to be read",
                          "pip install 'dcmcli[tls]' (or cryptography), or convert the key: "
                          "openssl pkey -inform DER -in KEY -out KEY.pem", exit_code=ExitCode.USAGE) from None

    def load(password: str | None) -> Any:
        return serialization.load_der_private_key(data, password.encode() if password is not None else None)

    try:
        try:
            key = load(options.key_password)
        except TypeError as exc:
            if options.key_password is not None and "not encrypted" in str(exc):
                key = load(None)  # a password for a plain key: ignored, as ssl does for PEM
            else:
                key = load(_ask_password(options))
    except ValueError as exc:
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise _wrong_password(options) from None
        raise DcmcliError(f"{str(options.key)!r} is not a DER private key ssl can use "
                          f"({str(exc).split('.')[0]})",
                          "give a DER (PKCS#1 or PKCS#8) key with -der, or a PEM key without it",
                          exit_code=ExitCode.INVALID_INPUT) from None
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(one_time.encode())).decode("ascii")


def client_context(options: TlsOptions) -> ssl.SSLContext:
    """The requestor's context: the server's certificate verified, with its host name, unless ``-ic``."""
    ctx = _base(options, ssl.Purpose.SERVER_AUTH)
    verify = options.verify or "require"
    if verify == "ignore":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def server_context(options: TlsOptions) -> ssl.SSLContext:
    """The acceptor's context: our key and certificate; a client certificate
    required (``-rc``, mutual TLS), verified if presented (``-vc``, the
    default) or ignored (``-ic``)."""
    if options.cert is None or options.key is None:
        raise UsageError("a TLS server needs its private key and certificate", "give +tls KEY CERT")
    ctx = _base(options, ssl.Purpose.CLIENT_AUTH)
    verify = options.verify or "if-presented"
    ctx.verify_mode = {"require": ssl.CERT_REQUIRED, "if-presented": ssl.CERT_OPTIONAL,
                       "ignore": ssl.CERT_NONE}[verify]
    return ctx


def session_info(sock: Any) -> dict[str, object] | None:
    """TLS version, cipher and the peer certificate's subject, issuer and
    expiry, for the negotiation report; None on a plain socket."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cipher = sock.cipher()
    cert = sock.getpeercert() or {}

    def name(field_: Any) -> str | None:
        if not field_:
            return None
        return ", ".join(f"{k}={v}" for rdn in field_ for k, v in rdn)

    return {"version": sock.version(), "cipher": cipher[0] if cipher else None,
            "peer_subject": name(cert.get("subject")), "peer_issuer": name(cert.get("issuer")),
            "peer_not_after": cert.get("notAfter")}


def _peer_certificate(host: str, port: int, timeout: float) -> dict[str, str] | None:
    """The certificate a server presents, fetched without verifying it (to
    name it in an error message)."""
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                der = s.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    if not der:
        return None
    try:  # decode the certificate with ssl's own test helper (no extra package)
        import tempfile

        fd, name = tempfile.mkstemp(suffix=".pem")
        with os.fdopen(fd, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        try:
            decoded = ssl._ssl._test_decode_cert(name)  # type: ignore[attr-defined]
        finally:
            os.unlink(name)
    except Exception:  # noqa: BLE001
        return None

    def flat(field_: Any) -> str:
        return ", ".join(f"{k}={v}" for rdn in field_ or () for k, v in rdn)

    return {"subject": flat(decoded.get("subject")), "issuer": flat(decoded.get("issuer")),
            "not_after": str(decoded.get("notAfter", ""))}


def explain_client(exc: BaseException, where: str, host: str, port: int, timeout: float) -> tuple[str, str]:
    """(message, hint) for a handshake the requestor could not complete."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        cert = _peer_certificate(host, port, timeout) or {}
        who = f" ({cert['subject']}, issued by {cert['issuer']})" if cert.get("subject") else ""
        code = exc.verify_code
        if code == 10:
            return (f"TLS with {where} failed: its certificate{who} expired on {cert.get('not_after', '?')}",
                    "the peer needs a valid certificate; -ic skips the check (not for real use)")
        if code == 62 or "hostname mismatch" in (exc.verify_message or "").lower() or "IP address mismatch" in (
                exc.verify_message or ""):
            return (f"TLS with {where} failed: its certificate{who} is not for {host!r}",
                    "connect by the name the certificate holds, or give the peer a certificate for this name")
        if code == 9:
            return (f"TLS with {where} failed: its certificate{who} is not valid yet",
                    "check both machines' clocks")
        if code == 23:
            return (f"TLS with {where} failed: its certificate{who} was revoked (+crl)", "the peer needs a new one")
        return (f"TLS with {where} failed: its certificate{who} is not trusted ({exc.verify_message})",
                "give the CA that issued it with +cf FILE (or +cd DIR, --tls-system-ca)")
    text = f"{getattr(exc, 'reason', '') or ''} {exc}"
    low = text.lower()
    if "wrong_version_number" in low or "wrong version number" in low or "record layer failure" in low \
            or "packet length too long" in low or "http request" in low:
        return (f"TLS with {where} failed: the peer does not speak TLS on this port",
                "leave out +tls for a plain DICOM port, or check the port")
    if "certificate required" in low or "certificate_required" in low:
        return (f"TLS with {where} failed: the peer requires a client certificate",
                "give ours with +tls KEY CERT")
    if "unknown ca" in low or "unknown_ca" in low or "bad certificate" in low or "certificate unknown" in low:
        return (f"TLS with {where} failed: the peer does not trust our certificate",
                "the peer needs our CA among its trusted certificates")
    if "protocol version" in low or "unsupported protocol" in low or "no protocols available" in low:
        return (f"TLS with {where} failed: no TLS version in common", "choose another profile (+px, +pz; +ph lists them)")
    if "handshake failure" in low or "no shared cipher" in low or "no cipher" in low:
        return (f"TLS with {where} failed: no cipher suite in common",
                "choose another profile or cipher (+px, +cs; +cc lists them)")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)) or "eof" in low or "unexpected eof" in low:
        return (f"TLS with {where} failed: the peer closed the connection during the handshake",
                "is this a TLS port? does the peer require a client certificate (+tls KEY CERT)?")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return (f"TLS with {where} failed: no handshake answer in time", "is this a TLS port? raise -ta if slow")
    return f"TLS with {where} failed: {exc}", "check the TLS options of both sides (-d shows details)"


def explain_server(exc: BaseException) -> str:
    """One log line's worth of why a client's handshake failed on our acceptor."""
    text = f"{getattr(exc, 'reason', '') or ''} {exc}"
    low = text.lower()
    if "wrong version number" in low or "wrong_version_number" in low or "http request" in low \
            or "unknown protocol" in low or "record layer failure" in low or "packet length too long" in low:
        return "it does not speak TLS (a plain DICOM association on this TLS port?)"
    if "unknown ca" in low or "bad certificate" in low or "certificate unknown" in low:
        return "it does not trust our certificate (give it our CA)"
    if "peer did not return a certificate" in low or "certificate required" in low:
        return "it sent no client certificate, and one is required (-rc)"
    if isinstance(exc, ssl.SSLCertVerificationError) or "certificate verify failed" in low:
        return f"its certificate is not trusted ({getattr(exc, 'verify_message', '') or exc})"
    if "no shared cipher" in low or "handshake failure" in low:
        return "no cipher suite in common"
    if ("version" in low and "protocol" in low) or "unsupported protocol" in low or "unsupported_protocol" in low:
        return "no TLS version in common"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no handshake within the ACSE timeout (-ta)"
    if "eof" in low or isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "it closed the connection during the handshake"
    if any(w in low for w in ("unexpected message", "length mismatch", "length too short", "decode error",
                              "bad length", "record overflow", "excessive message size", "bad packet",
                              "unknown alert", "tlsv1 alert")):
        return f"it sent a broken TLS handshake, not a ClientHello ({getattr(exc, 'reason', None) or exc})"
    return str(exc)


def list_ciphers(options: TlsOptions) -> list[str]:
    ctx = _base(TlsOptions(profile=options.profile, ciphers=options.ciphers), ssl.Purpose.SERVER_AUTH)
    return [c["name"] for c in ctx.get_ciphers()]


__all__ = ["PROFILES", "TlsOptions", "client_context", "server_context", "session_info", "explain_client",
           "explain_server", "list_ciphers"]
