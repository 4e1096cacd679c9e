"""runtime.functions: events, results and loading handlers from codedirs."""

import os
import sys
import tempfile
import unittest

from helpers import ROOT  # noqa: F401
from runtime import config, functions


class EventTest(unittest.TestCase):
    def test_decode_event(self):
        # An empty payload is a new {} each time under Baetyl, as Baetyl's
        # runtime gives; None under OpenEdge, as OpenEdge 0.1.2's gives.
        first = functions.decode_event(b"")
        self.assertEqual((type(first), first), (dict, {}))
        first["x"] = 1
        self.assertEqual(functions.decode_event(memoryview(b""), "baetyl"), {})
        self.assertIsNone(functions.decode_event(b"", "openedge"))
        self.assertEqual(functions.decode_event(b' {"a": [1]}'), {"a": [1]})
        self.assertEqual(functions.decode_event(memoryview(b"12")), 12)
        self.assertEqual(functions.decode_event(b'"s"'), "s")
        for raw in (b"\xff\x00", b"hello", b"{not json", b"\x00{}", b"[\xff]"):
            out = functions.decode_event(raw)
            self.assertEqual((type(out), out), (bytes, raw))

    def test_encode_result(self):
        self.assertEqual(functions.encode_result(None), b"")
        self.assertEqual(functions.encode_result(b"\x00raw"), b"\x00raw")
        self.assertEqual(functions.encode_result(bytearray(b"ba")), b"ba")
        self.assertEqual(functions.encode_result({"k": "\u00e9"}), '{"k":"\u00e9"}'.encode())
        self.assertEqual(functions.encode_result("text"), b'"text"')
        for bad in ({1}, float("nan")):
            with self.assertRaises((TypeError, ValueError)):
                functions.encode_result(bad)


class LoadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.path = list(sys.path)
        self.addCleanup(setattr, sys, "path", self.path)

    def write(self, rel, text):
        p = os.path.join(self.tmp.name, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        return os.path.dirname(p)

    def test_same_module_name_in_two_codedirs(self):
        a = self.write("a/index.py", "import helper\ndef handler(e, c):\n    return 'a' + helper.X\n")
        self.write("a/helper.py", "X = '1'\n")
        b = self.write("b/index.py", "def handler(e, c):\n    return 'b'\n")
        fa = functions.load(config.Function("fa", "index.handler", a))
        fb = functions.load(config.Function("fb", "index.handler", b))
        self.assertEqual((fa(None, {}), fb(None, {})), ("a1", "b"))

    def test_package_module(self):
        d = self.write("p/pkg/__init__.py", "")
        self.write("p/pkg/mod.py", "def handler(e, c):\n    return 'pkg'\n")
        f = functions.load(config.Function("f", "pkg.mod.handler", os.path.dirname(d)))
        self.assertEqual(f(None, {}), "pkg")

    def test_errors(self):
        d = self.write("e/index.py", "x = 1\nraise_me = None\n")
        self.write("e/broken.py", "raise RuntimeError('boom at import')\n")
        cases = [
            (config.Function("f", "index.nope", d), "has no function 'nope'"),
            (config.Function("f", "index.x", d), "has no function 'x'"),
            (config.Function("f", "missing.handler", d), "import missing"),
            (config.Function("f", "broken.handler", d), "RuntimeError: boom at import"),
            (config.Function("f", "index.handler", os.path.join(d, "nodir")), "is not a directory"),
        ]
        for fn, want in cases:
            with self.assertRaises(functions.LoadError) as cm:
                functions.load(fn)
            self.assertIn(want, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
