"""FunctionMessage on the wire, read and rewritten without the protobuf library.

The runtime needs little from a request: the fields it hands the function
as context, and the payload. And it answers with the request, Payload
replaced. Doing that on the encoded bytes keeps every other field exactly
as the caller sent it (unknown ones too) and keeps memory down, which
matters for an instance limited to 50 MiB: importing protobuf costs about
4.5 MiB, and parsing a 4 MiB payload into a message and serialising it back
would hold it twice more. function_pb2 stays the schema for clients and
tests (tests/test_wire.py checks this module against it).

The encoding (https://protobuf.dev/programming-guides/encoding/): a message
is a sequence of fields, each a varint key (field number << 3 | wire type)
and a value: a varint (type 0), 8 bytes (1), a varint length and that many
bytes (2), or 4 bytes (5); 3 and 4 open and close a group.
"""


class DecodeError(ValueError):
    """The bytes are not a valid FunctionMessage."""


# Payload is field 4, length-delimited: its key byte is 4 << 3 | 2.
PAYLOAD_FIELD = 4
_PAYLOAD_KEY = b"\x22"

# FunctionMessage's fields other than Payload: number -> (name, kind). Baetyl
# adds Timestamp, a sint64.
_FIELDS = {
    1: ("ID", "uint64"),
    2: ("QOS", "uint32"),
    3: ("Topic", "string"),
    11: ("FunctionName", "string"),
    12: ("FunctionInvokeID", "string"),
}
_BAETYL_FIELDS = dict(_FIELDS)
_BAETYL_FIELDS[10] = ("Timestamp", "sint64")
FIELDS = {"openedge": _FIELDS, "baetyl": _BAETYL_FIELDS}

_MASK64 = (1 << 64) - 1
_ONE_BYTE = [bytes((b,)) for b in range(0x80)]


def _varint(data, i):
    """Decodes the varint at data[i]; returns (value, index after it)."""
    value = shift = 0
    n = len(data)
    while True:
        if i >= n:
            raise DecodeError("truncated message")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value & _MASK64, i  # bits past 64 are dropped, as protobuf does
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def encode_varint(n):
    """Encodes a non-negative integer as a varint."""
    if n < 0x80:
        return _ONE_BYTE[n]
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _skip(data, i, wire, number, depth=0):
    """Returns the index after a value of the given wire type at data[i]."""
    if wire == 0:
        return _varint(data, i)[1]
    if wire == 1:
        i += 8
    elif wire == 2:
        size, i = _varint(data, i)
        i += size
    elif wire == 5:
        i += 4
    elif wire == 3:
        if depth > 64:
            raise DecodeError("groups nested too deep")
        while True:
            key, i = _varint(data, i)
            if key & 7 == 4:
                if key >> 3 != number:
                    raise DecodeError("mismatched end of group")
                return i
            if key >> 3 == 0:
                raise DecodeError("field number 0")
            i = _skip(data, i, key & 7, key >> 3, depth + 1)
    else:
        raise DecodeError("invalid wire type %d" % wire)
    if i > len(data):
        raise DecodeError("truncated message")
    return i


def parse(data, package="openedge"):
    """Reads a FunctionMessage of package (openedge or baetyl).

    Returns (fields, payload, rest): the fields other than Payload by name
    (proto3 defaults for those absent), the payload as a memoryview of data,
    and data without its Payload fields (the response's start). Raises
    DecodeError for bytes that are not a valid FunctionMessage.

    Every call goes through here, so the common case is kept short: keys
    and lengths of one byte are read in place (_varint reads longer ones),
    and reading past the end is caught once, as a truncated message.
    """
    known = FIELDS[package]
    fields = dict(_DEFAULTS[package])
    payload = None
    cuts = []  # (start, end) of each Payload field
    i, n = 0, len(data)
    try:
        while i < n:
            start = i
            key = data[i]
            if key < 0x80:
                i += 1
            else:
                key, i = _varint(data, i)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise DecodeError("field number 0")
            if wire == 2:
                size = data[i]
                if size < 0x80:
                    i += 1
                else:
                    size, i = _varint(data, i)
                end = i + size
                if end > n:
                    raise DecodeError("truncated message")
                if number == PAYLOAD_FIELD:
                    payload = (i, end)  # the last one wins, as in protobuf
                    cuts.append((start, end))
                else:
                    field = known.get(number)
                    if field is not None and field[1] == "string":
                        try:
                            fields[field[0]] = str(data[i:end], "utf-8")
                        except UnicodeDecodeError:
                            raise DecodeError("field %s is not valid UTF-8" % field[0])
                i = end
                continue
            field = known.get(number)
            if field is not None and field[1] != "string" and wire == 0:
                v = data[i]
                if v < 0x80:
                    i += 1
                else:
                    v, i = _varint(data, i)
                kind = field[1]
                if kind == "uint32":
                    v &= 0xFFFFFFFF
                elif kind == "sint64":
                    v = (v >> 1) ^ -(v & 1)
                fields[field[0]] = v
            elif wire == 4:
                raise DecodeError("end of group without a start")
            else:
                i = _skip(data, i, wire, number)  # an unknown field: kept in rest as it is
            if i > n:
                raise DecodeError("truncated message")
    except IndexError:
        raise DecodeError("truncated message")
    if not cuts:
        return fields, memoryview(b""), data
    pieces, last = [], 0
    for a, b in cuts:
        pieces.append(data[last:a])
        last = b
    pieces.append(data[last:])
    return fields, memoryview(data)[payload[0] : payload[1]], b"".join(pieces)


# The proto3 defaults of each package's fields, copied for every message.
_DEFAULTS = {
    package: {name: ("" if kind == "string" else 0) for name, kind in known.values()} for package, known in FIELDS.items()
}


def payload_field_size(n):
    """Bytes the Payload field takes for an n-byte payload (0 when empty)."""
    return 0 if n == 0 else len(_PAYLOAD_KEY) + len(encode_varint(n)) + n


def with_payload(rest, payload):
    """The response: rest (a message without Payload) followed by the Payload
    field. Parsers accept fields in any order, and the payload is copied once."""
    if not payload:
        return bytes(rest)
    return b"".join((rest, _PAYLOAD_KEY, encode_varint(len(payload)), payload))
