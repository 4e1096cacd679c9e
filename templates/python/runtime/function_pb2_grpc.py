"""gRPC client and server classes for the Function service.

Written by hand, like function_pb2, so that it works with every grpcio from
Debian bookworm's 1.51 to the current releases: it uses only
channel.unary_unary, grpc.unary_unary_rpc_method_handler and
grpc.method_handlers_generic_handler, which all of them have.

The runtime itself does not use FunctionServicer: it registers a handler on
raw bytes (runtime/server.py), so that it can answer a request that is not a
valid FunctionMessage with a clear status. These classes are for clients,
tests and anyone who wants protoc's usual shape.
"""

import grpc

from . import function_pb2


def method(package="openedge"):
    """Returns the full method name of Call in package (openedge or baetyl)."""
    return "/" + package + ".Function/Call"


class FunctionStub(object):
    """A client of the Function service.

    ``FunctionStub(channel).Call(request, timeout=...)`` sends one Call. Pass
    ``package="baetyl"`` to call /baetyl.Function/Call with
    function_pb2.BaetylFunctionMessage.
    """

    def __init__(self, channel, package="openedge"):
        message = function_pb2.MESSAGES[package]
        self.Call = channel.unary_unary(
            method(package),
            request_serializer=message.SerializeToString,
            response_deserializer=message.FromString,
        )


class FunctionServicer(object):
    """The server side of the Function service: override Call."""

    def Call(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Call is not implemented")


def add_FunctionServicer_to_server(servicer, server, package="openedge"):
    """Registers servicer's Call as package's Function service on server."""
    message = function_pb2.MESSAGES[package]
    handler = grpc.method_handlers_generic_handler(
        package + ".Function",
        {
            "Call": grpc.unary_unary_rpc_method_handler(
                servicer.Call,
                request_deserializer=message.FromString,
                response_serializer=message.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
