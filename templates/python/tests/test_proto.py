"""function_pb2 and wire.py against the .proto files they stand for."""

import os
import re
import unittest

from helpers import ROOT, function_pb2
from runtime import wire

_TYPES = {"uint64": 4, "uint32": 13, "string": 9, "bytes": 12, "sint64": 18}  # FieldDescriptorProto.Type


def proto_fields(path):
    with open(path) as f:
        text = f.read()
    package = re.search(r"^package\s+(\w+);", text, re.M).group(1)
    body = re.search(r"message\s+FunctionMessage\s*\{(.*?)\}", text, re.S).group(1)
    fields = [(name, int(num), typ) for typ, name, num in re.findall(r"(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", body)]
    service = re.search(r"service\s+(\w+)\s*\{\s*rpc\s+(\w+)\s*\(\s*(\w+)\s*\)\s*returns\s*\(\s*(\w+)\s*\)", text)
    return package, fields, service.groups()


class ProtoTest(unittest.TestCase):
    def test_pb2_and_wire_match_the_proto_files(self):
        for rel in ("proto/function.proto", "proto/baetyl/function.proto"):
            package, fields, service = proto_fields(os.path.join(ROOT, rel))
            self.assertEqual(service, ("Function", "Call", "FunctionMessage", "FunctionMessage"), rel)
            self.assertEqual(function_pb2.FILES[package], rel[len("proto/"):])
            want = sorted((n, num, _TYPES[t]) for n, num, t in fields)
            self.assertEqual(sorted(function_pb2.FIELDS[package]), want, rel)
            d = function_pb2.MESSAGES[package].DESCRIPTOR
            self.assertEqual(sorted((f.name, f.number, f.type) for f in d.fields), want, rel)
            on_wire = {num: (n, t) for n, num, t in fields if n != "Payload"}
            self.assertEqual(wire.FIELDS[package], on_wire, rel)
            self.assertIn(("Payload", wire.PAYLOAD_FIELD, "bytes"), fields)


if __name__ == "__main__":
    unittest.main()
