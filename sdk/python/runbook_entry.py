"""The component's entry module: the host builds every Python runbook with it.

Not for runbook authors. It exports the WIT world's `run`: it hands the
operator's parameters to the runbook's `app.run(params: Params) -> Outcome` and
turns what comes back into the world's result. A `Failure` or an
`iam.IamError` raised by the runbook is the run's error (the error's
`describe()` for the latter, as the Rust sdk's `From<IamError> for Failure`).
Anything else is a bug in the runbook: the exception propagates, its traceback
goes to stderr (which the host records in the journal) and the component
traps, as a Rust runbook's panic does.
"""

import sys
import traceback

import componentize_py_types
import wit_world

# The sdk first: it makes `time.sleep` the host's wait before app.py (or
# whatever app.py imports) can take a reference to WASI's.
from runbook_sdk import Failure, Outcome, Params
from runbook_sdk.iam import IamError

# isort: split
import app

if not callable(getattr(app, "run", None)):
    raise ImportError(
        "app.py defines no callable `run`: a Python runbook's app.py must define "
        "`def run(params: Params) -> Outcome`"
    )


class WitWorld(wit_world.WitWorld):
    """The world's export: one run of the runbook."""

    def run(self, params: list[tuple[str, str]]) -> wit_world.Outcome:
        """Run `app.run` with `params`; its `Failure` or `IamError` is the
        run's error, any other exception a trap."""
        try:
            outcome = app.run(Params(params))
            if not isinstance(outcome, Outcome):
                raise TypeError(
                    f"app.run returned {type(outcome).__name__}, not an Outcome: "
                    "return an Outcome, or raise Failure to fail the run"
                )
        except Failure as failure:
            raise componentize_py_types.Err(failure.message) from None
        except IamError as error:
            raise componentize_py_types.Err(error.describe()) from None
        except Exception:
            # A bug: componentize-py writes the traceback to stderr and traps.
            raise
        except BaseException:
            # `sys.exit()` and the like: componentize-py exits without a word
            # (a trap too), so write the traceback first.
            traceback.print_exc(file=sys.stderr)
            raise
        return wit_world.Outcome(
            summary=outcome.summary,
            changes=list(outcome.changes),
            next_steps=list(outcome.next_steps),
        )
