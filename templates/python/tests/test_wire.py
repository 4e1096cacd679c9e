"""runtime.wire against protobuf (function_pb2): the runtime reads and
rewrites FunctionMessage itself, so it must agree with the real thing."""

import os
import random
import unittest

from helpers import function_pb2
from runtime import wire


def sample(package, rnd):
    m = function_pb2.MESSAGES[package](
        ID=rnd.choice([0, 1, 2**63, 2**64 - 1]),
        QOS=rnd.choice([0, 1, 2**32 - 1]),
        Topic=rnd.choice(["", "a/b", "t\u00e9st/\u6f22"]),
        Payload=rnd.choice([b"", b"\x00", os.urandom(rnd.randint(1, 3000))]),
        FunctionName=rnd.choice(["", "echo"]),
        FunctionInvokeID=rnd.choice(["", "id-1"]),
    )
    if package == "baetyl":
        m.Timestamp = rnd.choice([0, -1, 1, -(2**63), 2**63 - 1])
    return m


class WireTest(unittest.TestCase):
    def test_agrees_with_protobuf(self):
        rnd = random.Random(1)
        for package in ("openedge", "baetyl"):
            for _ in range(200):
                m = sample(package, rnd)
                data = m.SerializeToString()
                fields, payload, rest = wire.parse(data, package)
                self.assertEqual(bytes(payload), m.Payload)
                for name, _ in wire.FIELDS[package].values():
                    self.assertEqual(fields[name], getattr(m, name), name)
                # The response: the request with only Payload replaced.
                new = os.urandom(rnd.randint(0, 500))
                out = function_pb2.MESSAGES[package].FromString(wire.with_payload(rest, new))
                m.Payload = new
                self.assertEqual(out, m)

    def test_every_prefix_agrees_with_protobuf(self):
        # A cut message is either still a valid one, read as protobuf
        # reads it, or a DecodeError where protobuf fails too.
        rnd = random.Random(2)
        for package in ("openedge", "baetyl"):
            cls = function_pb2.MESSAGES[package]
            for _ in range(20):
                data = sample(package, rnd).SerializeToString()
                for cut in range(len(data) + 1):
                    prefix = data[:cut]
                    try:
                        want = cls.FromString(prefix)
                    except Exception:
                        want = None
                    try:
                        fields, payload, _ = wire.parse(prefix, package)
                    except wire.DecodeError:
                        self.assertIsNone(want, "wire refused a prefix protobuf reads: %r" % prefix)
                        continue
                    self.assertIsNotNone(want, "wire read a prefix protobuf refuses: %r" % prefix)
                    self.assertEqual(bytes(payload), want.Payload)
                    for name, _ in wire.FIELDS[package].values():
                        self.assertEqual(fields[name], getattr(want, name), name)

    def test_unknown_fields_are_kept(self):
        b = function_pb2.BaetylFunctionMessage(Timestamp=5, Payload=b"p", Topic="t").SerializeToString()
        fields, payload, rest = wire.parse(b, "openedge")  # Timestamp is unknown to openedge
        out = function_pb2.BaetylFunctionMessage.FromString(wire.with_payload(rest, b"new"))
        self.assertEqual((out.Timestamp, out.Topic, out.Payload), (5, "t", b"new"))

    def test_last_payload_wins(self):
        data = b"\x22\x01a" + b"\x1a\x01t" + b"\x22\x01b"
        fields, payload, rest = wire.parse(data)
        self.assertEqual((bytes(payload), rest, fields["Topic"]), (b"b", b"\x1a\x01t", "t"))
        self.assertEqual(function_pb2.FunctionMessage.FromString(data).Payload, b"b")

    def test_malformed(self):
        for bad in (
            b"\x22\x7f\x78\x79",  # payload longer than the message
            b"\x1a\x02\xff\xfe",  # Topic not UTF-8
            b"\x0f",  # wire type 7
            b"\x00\x01",  # field number 0
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # varint of 11 bytes
            b"\x08",  # truncated varint
            b"\x0c",  # end of group without start
        ):
            with self.assertRaises(wire.DecodeError, msg=bad):
                wire.parse(bad)

    def test_groups_are_skipped(self):
        data = b"\x2b\x08\x01\x2c" + b"\x22\x01p"  # group 5 { field 1 = 1 }, Payload "p"
        fields, payload, rest = wire.parse(data)
        self.assertEqual((bytes(payload), rest), (b"p", b"\x2b\x08\x01\x2c"))

    def test_varint(self):
        for n in (0, 1, 127, 128, 300, 2**32, 2**64 - 1):
            self.assertEqual(wire._varint(wire.encode_varint(n), 0), (n, len(wire.encode_varint(n))))


if __name__ == "__main__":
    unittest.main()
