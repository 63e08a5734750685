"""Attack: reach the network from Python: connect to 127.0.0.1:1 (by
`create_connection`, which resolves the address first, and by a bare socket,
which does not), resolve example.com, fetch http://127.0.0.1:1/. The host
gives a runbook no network, so each must fail. The run never crashes: it
fails with each error, as `what: type: message`, for the test to check.

The modules are imported here, at the top: a component has no filesystem, so
only modules imported when it was built can be imported at all. That holds
for codecs too: `socket` looks up the `idna` codec only when it resolves a
name, so without the import below every attempt would fail with
`LookupError: unknown encoding: idna` before it reached the sandbox."""

import encodings.idna  # noqa: F401 (see above)
import socket
import urllib.request
from collections.abc import Callable

from runbook_sdk import Failure, Outcome, Params


def _connect() -> str:
    with socket.create_connection(("127.0.0.1", 1), timeout=5) as s:
        return f"connected from {s.getsockname()}"


def _connect_by_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", 1))
        return f"connected from {s.getsockname()}"


def _resolve() -> str:
    return f"resolved {[a[4] for a in socket.getaddrinfo('example.com', 443)]}"


def _fetch() -> str:
    with urllib.request.urlopen("http://127.0.0.1:1/", timeout=5) as r:
        return f"fetched HTTP {r.status}"


ATTEMPTS: list[tuple[str, Callable[[], str]]] = [
    ("connect 127.0.0.1:1", _connect),
    ("socket.connect 127.0.0.1:1", _connect_by_address),
    ("getaddrinfo example.com", _resolve),
    ("urlopen http://127.0.0.1:1/", _fetch),
]


def run(params: Params) -> Outcome:
    """Try each attempt; fail with what happened to each."""
    said: list[str] = []
    for what, attempt in ATTEMPTS:
        try:
            said.append(f"{what}: succeeded: {attempt()}")
        except Exception as e:
            said.append(f"{what}: {type(e).__name__}: {e}")
    raise Failure("; ".join(said))
