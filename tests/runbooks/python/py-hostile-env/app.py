"""Attack: read the host's environment from Python (`os.environ`, and
`AWS_SECRET_ACCESS_KEY` and `HOME` by name), both when the module is imported
(which componentize-py does at build time, keeping the result in the
component's snapshot) and when the run starts. The host builds with an empty
environment and runs with none, so neither must see the operator's
variables; it reports what it saw in its summary, for the test to check."""

import os

from runbook_sdk import Outcome, Params

# Module level runs at build time: a credential read here would be baked
# into the component.
AT_BUILD = os.getenv("AWS_SECRET_ACCESS_KEY")


def run(params: Params) -> Outcome:
    """Count the environment's variables and read two by name."""
    seen = dict(os.environ)
    secret = os.getenv("AWS_SECRET_ACCESS_KEY")
    home = os.getenv("HOME")
    return Outcome(
        f"env: {len(seen)} variables; AWS_SECRET_ACCESS_KEY={secret}; HOME={home}; "
        f"at build: AWS_SECRET_ACCESS_KEY={AT_BUILD}"
    )
