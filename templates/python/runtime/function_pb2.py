"""Protocol buffer messages of proto/function.proto and proto/baetyl/function.proto.

This module plays the part of protoc's ``function_pb2.py`` but is written by
hand so that it works with every protobuf runtime from 3.20 (Debian
bookworm's python3-protobuf 3.21) to the current 5.x and 6.x releases:
protoc's output is tied to the protobuf version that generated it (newer
gencode refuses older runtimes, older gencode uses APIs newer runtimes
removed). Here the file descriptors are built from descriptor_pb2 and the
message classes obtained through the public descriptor_pool and
message_factory APIs, which all those versions share.

If you change a .proto file, change FIELDS below to match;
tests/test_proto.py checks that they agree.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_T = descriptor_pb2.FieldDescriptorProto

# (name, number, type) of FunctionMessage's fields, per package. Baetyl adds
# Timestamp.
FIELDS = {
    "openedge": [
        ("ID", 1, _T.TYPE_UINT64),
        ("QOS", 2, _T.TYPE_UINT32),
        ("Topic", 3, _T.TYPE_STRING),
        ("Payload", 4, _T.TYPE_BYTES),
        ("FunctionName", 11, _T.TYPE_STRING),
        ("FunctionInvokeID", 12, _T.TYPE_STRING),
    ],
    "baetyl": [
        ("ID", 1, _T.TYPE_UINT64),
        ("QOS", 2, _T.TYPE_UINT32),
        ("Topic", 3, _T.TYPE_STRING),
        ("Payload", 4, _T.TYPE_BYTES),
        ("Timestamp", 10, _T.TYPE_SINT64),
        ("FunctionName", 11, _T.TYPE_STRING),
        ("FunctionInvokeID", 12, _T.TYPE_STRING),
    ],
}

# The file names the descriptors are registered under, as protoc names them
# when run from proto/.
FILES = {"openedge": "function.proto", "baetyl": "baetyl/function.proto"}

# A pool of our own, so that these files cannot clash with another module
# that registers a file of the same name in the default pool.
_pool = descriptor_pool.DescriptorPool()


def _file_proto(package):
    f = descriptor_pb2.FileDescriptorProto(name=FILES[package], package=package, syntax="proto3")
    m = f.message_type.add(name="FunctionMessage")
    for name, number, typ in FIELDS[package]:
        m.field.add(name=name, number=number, type=typ, label=_T.LABEL_OPTIONAL, json_name=name)
    s = f.service.add(name="Function")
    s.method.add(
        name="Call",
        input_type="." + package + ".FunctionMessage",
        output_type="." + package + ".FunctionMessage",
    )
    return f


def _message_class(descriptor):
    get = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22
    if get is not None:
        return get(descriptor)
    return message_factory.MessageFactory(_pool).GetPrototype(descriptor)  # protobuf < 4.22


def _load(package):
    _pool.Add(_file_proto(package))
    fd = _pool.FindFileByName(FILES[package])
    return fd, _message_class(fd.message_types_by_name["FunctionMessage"])


# openedge.FunctionMessage: the request and the response of /openedge.Function/Call.
DESCRIPTOR, FunctionMessage = _load("openedge")
# baetyl.FunctionMessage: the request and the response of /baetyl.Function/Call.
BAETYL_DESCRIPTOR, BaetylFunctionMessage = _load("baetyl")

# MESSAGES maps each proto package to its FunctionMessage class.
MESSAGES = {"openedge": FunctionMessage, "baetyl": BaetylFunctionMessage}
