"""Tests of the sdk's pure helpers, under a plain `python3`.

The package's `__init__` binds the host's imports (`wit_world`), which exist
only inside a component, so these tests load `runbook_sdk/_core.py` on its
own: it is the part that never calls the host, and the cases are the Rust
sdk's. Run with `python3 -m unittest discover sdk/python/tests` or
`python3 -m pytest sdk/python/tests`.
"""

import importlib.util
import sys
import unittest
from pathlib import Path

_CORE = Path(__file__).resolve().parents[1] / "runbook_sdk" / "_core.py"
_spec = importlib.util.spec_from_file_location("runbook_sdk_core", _CORE)
assert _spec is not None and _spec.loader is not None
core = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = core  # dataclasses look their module up here
_spec.loader.exec_module(core)


class SerialNumbers(unittest.TestCase):
    def test_virtual_serials_are_mfa_arns_and_hardware_tokens_are_not(self) -> None:
        self.assertTrue(core.is_virtual_serial("arn:aws:iam::123456789012:mfa/mfa-test"))
        self.assertTrue(core.is_virtual_serial("arn:aws-us-gov:iam::123456789012:mfa/a/b"))
        self.assertFalse(core.is_virtual_serial("GAHT12345678"))
        self.assertFalse(core.is_virtual_serial("arn:aws:iam::123456789012:mfa/"))
        self.assertFalse(core.is_virtual_serial("arn:aws:iam::123456789012:user/mfa-test"))
        self.assertFalse(core.is_virtual_serial("arn:aws:iam::12345:mfa/x"))
        self.assertFalse(core.is_virtual_serial("arn:aws:sts::123456789012:mfa/x"))

    def test_account_ids_are_ascii_digits_only(self) -> None:
        # Rust checks bytes with is_ascii_digit: "１２..." (full-width) is no account.
        self.assertFalse(core.is_virtual_serial("arn:aws:iam::１２３４５６７８９０１２:mfa/x"))
        self.assertFalse(core.is_virtual_serial("arn:aws:iam:us-east-1:123456789012:mfa/x"))

    def test_fido_security_keys_are_named_and_never_virtual(self) -> None:
        key = "arn:aws:iam::123456789012:u2f/user/alice/fidokey-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        self.assertTrue(core.is_fido_serial(key))
        self.assertFalse(core.is_virtual_serial(key))
        self.assertFalse(core.is_fido_serial("GAHT12345678"))
        self.assertFalse(core.is_fido_serial("arn:aws:iam::123456789012:mfa/alice"))


class Instants(unittest.TestCase):
    def test_instants_format_as_rfc3339_utc(self) -> None:
        def at(seconds: int) -> str:
            rfc3339: str = core.Instant(seconds, 0).to_rfc3339()
            return rfc3339

        self.assertEqual(at(0), "1970-01-01T00:00:00Z")
        self.assertEqual(at(951_782_400), "2000-02-29T00:00:00Z")
        self.assertEqual(at(1_795_649_130), "2026-11-25T23:25:30Z")
        self.assertEqual(at(4_102_444_799), "2099-12-31T23:59:59Z")

    def test_instants_order_by_seconds_then_nanoseconds(self) -> None:
        self.assertLess(core.Instant(1, 999_999_999), core.Instant(2, 0))
        self.assertLess(core.Instant(2, 0), core.Instant(2, 1))


class Sleep(unittest.TestCase):
    def test_waits_round_down_to_milliseconds_and_cap_at_u32(self) -> None:
        self.assertEqual(core.sleep_milliseconds(1), 1_000)
        self.assertEqual(core.sleep_milliseconds(0.0019), 1)
        self.assertEqual(core.sleep_milliseconds(0), 0)
        self.assertEqual(core.sleep_milliseconds(10**12), 2**32 - 1)
        self.assertEqual(core.sleep_milliseconds(float("inf")), 2**32 - 1)

    def test_negative_and_nan_waits_are_refused_as_time_sleep_does(self) -> None:
        with self.assertRaisesRegex(ValueError, "must be non-negative"):
            core.sleep_milliseconds(-1)
        with self.assertRaisesRegex(ValueError, "must be non-negative"):
            core.sleep_milliseconds(float("nan"))


class ParamsAndOutcomes(unittest.TestCase):
    def test_require_names_the_missing_parameter(self) -> None:
        p = core.Params([("user", "mfa-test")])
        self.assertEqual(p.require("user"), "mfa-test")
        self.assertIsNone(p.get("role"))
        with self.assertRaises(core.Failure) as caught:
            p.require("role")
        self.assertEqual(caught.exception.message, "parameter --role is required; pass it")
        self.assertEqual(str(caught.exception), "parameter --role is required; pass it")

    def test_outcome_lines_chain_in_order(self) -> None:
        o = core.Outcome("done").changed("a").changed("b").next_step("c")
        self.assertEqual(o, core.Outcome("done", ["a", "b"], ["c"]))
        self.assertEqual(core.Outcome().changes, [])


class IamErrors(unittest.TestCase):
    def test_errors_are_described_in_the_rust_sdks_words(self) -> None:
        cases = [
            (core.AccessDenied("m"), "access denied: m"),
            (core.NoSuchEntity("m"), "no such entity: m"),
            (core.Throttled("m"), "throttled: m"),
            (core.InvalidInput("m"), "invalid input: m"),
            (core.ServiceFailure("DeleteConflict", "m"), "DeleteConflict: m"),
        ]
        for error, words in cases:
            with self.subTest(error=type(error).__name__):
                self.assertIsInstance(error, core.IamError)
                self.assertEqual(error.message, "m")
                self.assertEqual(error.describe(), words)
                self.assertEqual(str(error), words)
        self.assertEqual(core.ServiceFailure("DeleteConflict", "m").code, "DeleteConflict")


if __name__ == "__main__":
    unittest.main()
