"""Attack: reach the host's filesystem from Python: read `/etc/passwd`, list
`/`, write `/tmp/x`. The host gives a runbook no filesystem (no preopened
directory), so each must fail. The run never crashes: it reports what befell
each attempt in its failure, for the test to check."""

import os
from collections.abc import Callable

from runbook_sdk import Failure, Outcome, Params


def _read_passwd() -> str:
    with open("/etc/passwd") as f:
        return f"read {f.readline().strip()!r}"


def _list_root() -> str:
    return f"listed {sorted(os.listdir('/'))}"


def _write_tmp() -> str:
    with open("/tmp/x", "w") as f:
        f.write("written by py-hostile-files\n")
    return "wrote /tmp/x"


ATTEMPTS: list[tuple[str, Callable[[], str]]] = [
    ("open /etc/passwd", _read_passwd),
    ("listdir /", _list_root),
    ("write /tmp/x", _write_tmp),
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
