"""The hostile-peer suite of tests/test_acceptor_hostile.py again, every
connection over TLS: the same storescp (the shared acceptor) with +tls, the
raw clients and the normal peers wrapped in TLS with a test CA's
certificates. What the hostile cases send and what the server must answer
and log does not change with the transport."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hostile_peer
from dcmcli.net.tls import TlsOptions, client_context
import test_acceptor_hostile as plain
from test_acceptor_hostile import server, two_servers  # noqa: F401 - the fixtures
from tls_certs import Pki

#: Tests that do not apply over TLS, and why.
NOT_OVER_TLS = {
    # in-process StoreServer or a fault injected below the socket layer: no TLS listener involved
    "test_a_thread_that_cannot_start_drops_its_connection_not_the_server",
    "test_fsync_reaches_every_stored_file_and_its_folder",
}


@pytest.fixture(scope="module", autouse=True)
def over_tls(pki: Pki) -> Iterator[None]:
    tls = TlsOptions(key=pki.client_key, cert=pki.client_cert, trusted_files=[pki.ca])
    hostile_peer.TLS = {"server_args": ["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca)],
                        "client": client_context(tls), "tls": tls}
    yield
    hostile_peer.TLS = None


# the same tests, collected again in this module (whose fixture puts them over TLS)
globals().update({name: obj for name, obj in vars(plain).items() if name.startswith("test_")})


@pytest.fixture(autouse=True)
def _skip_not_over_tls(request: pytest.FixtureRequest) -> None:
    if request.node.originalname in NOT_OVER_TLS:
        pytest.skip("not a transport case (in-process server or fault below the socket layer)")

