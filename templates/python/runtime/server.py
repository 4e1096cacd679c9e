"""The gRPC server: serves the configured functions on Function.Call.

It serves /openedge.Function/Call and /baetyl.Function/Call on one port
(the same message, Baetyl's with a Timestamp), so the runtime works with
both OpenEdge and Baetyl. The handler works on raw bytes and parses the
request itself, so that a request that is not a FunctionMessage gets a
clear INVALID_ARGUMENT instead of a logged stack trace.
"""

import argparse
import ctypes
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from concurrent import futures

import grpc
from google.protobuf.message import DecodeError

from . import config as config_mod
from . import function_pb2
from .functions import Context, LoadError, decode_event, dump_json, encode_result, load

log = logging.getLogger("runtime")

# Longest exception message put into a status; a status travels in HTTP/2
# trailers, which peers limit (grpc-go: 16 KiB for all headers).
_MAX_DETAILS = 4096


class Runtime(object):
    """Calls the configured functions for Function.Call requests."""

    def __init__(self, functions, max_message):
        self.functions = functions  # name -> callable(event, context)
        self.max_message = max_message

    def call(self, package, message_class, data, context):
        """Serves one Call: raw request bytes in, raw response bytes out."""
        if len(data) >= _LARGE:
            # Give back what earlier large calls left in malloc's free
            # lists now, and again once this call has been sent.
            _release_memory()
            context.add_callback(_release_memory)
        try:
            req, payload = split_payload(message_class, data)
        except DecodeError as e:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "request is not a valid %s.FunctionMessage: %s" % (package, e),
            )
        fn = self.functions.get(req.FunctionName)
        if fn is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                "function %r is not configured (configured: %s)"
                % (req.FunctionName, ", ".join(sorted(self.functions)) or "none"),
            )
        ended = threading.Event()
        if not context.add_callback(ended.set):
            ended.set()  # the call has already ended
        values = {
            "messageQOS": req.QOS,
            "messageTopic": req.Topic,
            "functionName": req.FunctionName,
            "functionInvokeID": req.FunctionInvokeID,
        }
        if package == "baetyl":
            values["messageTimestamp"] = req.Timestamp
        ctx = Context(values, ended, context)
        event = decode_event(payload)
        del payload  # the function has it (or its JSON) now: do not hold two copies
        start = time.monotonic()
        failure = None
        try:
            # Each step lets go of what it no longer needs, so that a payload
            # of megabytes is not held more than twice at a time.
            result = fn(event, ctx)
            del event
            if result is None or isinstance(result, (bytes, bytearray, memoryview)):
                payload = encode_result(result)
            else:
                text = dump_json(result)
                del result
                payload = text.encode("utf-8")
                del text
        except (Exception, SystemExit) as e:
            failure = _describe(req.FunctionName, e)
        if failure is not None:
            log.warning("%s (invoke id %s)", failure, req.FunctionInvokeID)
            context.abort(grpc.StatusCode.UNKNOWN, failure[:_MAX_DETAILS])
        head = req.SerializeToString()
        size = len(head) + _payload_field_size(len(payload))
        if size > self.max_message:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "function %r: response of %d bytes is over server.message.length.max (%d)"
                % (req.FunctionName, size, self.max_message),
            )
        log.debug("called %s in %.1f ms", req.FunctionName, (time.monotonic() - start) * 1000)
        return with_payload(head, payload)


# A request of this size or more counts as large (see _release_memory).
_LARGE = 1 << 20


def _find_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError):
        return None  # another libc: nothing to do


_malloc_trim = _find_malloc_trim()


def _release_memory():
    """Returns free heap memory to the system (glibc's malloc_trim).

    A large call leaves megabytes of small freed buffers (gRPC's reads of
    the request) in malloc's free lists; without this, a series of large
    calls ratchets the process's resident size up towards the 50 MiB an
    instance may use.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


# Payload is field 4, length-delimited: its key byte is (4 << 3) | 2.
_PAYLOAD_KEY = b"\x22"


def _varint(data, i):
    """Decodes the varint at data[i:]; returns (value, index after it)."""
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise DecodeError("truncated or overlong varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _encode_varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _payload_field_size(n):
    return 0 if n == 0 else 1 + len(_encode_varint(n)) + n


def split_payload(message_class, data):
    """Parses a FunctionMessage, returning (message without Payload, payload);
    the payload is a memoryview of data, or bytes.

    Why not just message_class.FromString(data).Payload: the payload may be
    close to 4 MiB and the runtime must stay within 50 MiB, so it should not
    be held in three copies (the request bytes, protobuf's, Python's). The
    top-level fields are walked here to slice the payload out of data once;
    everything else is parsed, and checked, by protobuf. Raises DecodeError
    for bytes that are not a valid message.
    """
    spans = []  # (start, end) of each Payload field
    payload = (0, 0)
    i, n = 0, len(data)
    while i < n:
        start = i
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            size, i = _varint(data, i)
            if key >> 3 == 4:
                payload = (i, i + size)  # the last occurrence wins, as in protobuf
                spans.append((start, i + size))
            i += size
        elif wire == 5:
            i += 4
        else:
            # Groups (wire types 3 and 4) or garbage: protobuf decides.
            msg = message_class.FromString(data)
            payload, msg.Payload = msg.Payload, b""
            return msg, payload
        if i > n:
            raise DecodeError("truncated message")
    if not spans:
        return message_class.FromString(data), b""
    rest, last = [], 0
    for a, b in spans:
        rest.append(data[last:a])
        last = b
    rest.append(data[last:])
    return message_class.FromString(b"".join(rest)), memoryview(data)[payload[0] : payload[1]]


def with_payload(head, payload):
    """Serialises a message as head (a serialised message without Payload)
    followed by the Payload field: protobuf parsers accept fields in any
    order, and the payload is copied once instead of twice."""
    if not payload:
        return head
    return b"".join((head, _PAYLOAD_KEY, _encode_varint(len(payload)), payload))


def _describe(name, exc):
    """One line for a failed function: its exception and where it was raised."""
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        where = " (at %s:%d)" % (os.path.basename(tb[-1].filename), tb[-1].lineno)
    log.debug("function %s failed:\n%s", name, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return "function %s failed: %s: %s%s" % (name, type(exc).__name__, exc, where)


class _Handler(grpc.GenericRpcHandler):
    """Routes Call of both services to the runtime; any other method is UNIMPLEMENTED."""

    def __init__(self, runtime):
        self._methods = {}
        for package, message_class in function_pb2.MESSAGES.items():

            def behavior(data, context, package=package, message_class=message_class):
                return runtime.call(package, message_class, data, context)

            self._methods["/%s.Function/Call" % package] = grpc.unary_unary_rpc_method_handler(behavior)

    def service(self, handler_call_details):
        return self._methods.get(handler_call_details.method)


class _JSONFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(cfg, level_override=""):
    """Sends the runtime's and gRPC's logs to logger.path (default stderr)."""
    level = (level_override or cfg.logger_level).upper()
    level = {"WARN": "WARNING"}.get(level, level)
    if cfg.logger_path:
        d = os.path.dirname(cfg.logger_path)
        if d:
            os.makedirs(d, exist_ok=True)
        handler = logging.FileHandler(cfg.logger_path)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if cfg.logger_format.lower() == "json":
        handler.setFormatter(_JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _listen_error(addr):
    """Why gRPC could not listen on addr, found by trying it with a plain socket."""
    host, _, port = addr.rpartition(":")
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, int(port), 0, socket.SOCK_STREAM)
        for family, kind, proto, _, sockaddr in infos:
            with socket.socket(family, kind, proto) as s:
                s.bind(sockaddr)
    except (OSError, ValueError) as e:
        return str(e.strerror if isinstance(e, OSError) and e.strerror else e)
    return "gRPC refused it"


def _read(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise RuntimeError("read %s %s: %s" % (what, path, e.strerror or e))


def build_server(cfg, functions, addr):
    """Creates and binds (but does not start) the gRPC server; returns it."""
    runtime = Runtime(functions, cfg.max_message)
    options = [
        ("grpc.max_receive_message_length", cfg.max_message),
        ("grpc.max_send_message_length", cfg.max_message),
        # Fail when the port is taken instead of sharing it silently.
        ("grpc.so_reuseport", 0),
    ]
    pool = futures.ThreadPoolExecutor(max_workers=cfg.workers_max, thread_name_prefix="call")
    server = grpc.server(
        pool,
        handlers=[_Handler(runtime)],
        options=options,
        maximum_concurrent_rpcs=cfg.concurrent_max,
    )
    try:
        if cfg.cert:
            creds = grpc.ssl_server_credentials(
                [(_read(cfg.key, "server.key"), _read(cfg.cert, "server.cert"))],
                root_certificates=_read(cfg.ca, "server.ca") if cfg.ca else None,
                require_client_auth=bool(cfg.ca),
            )
            port = server.add_secure_port(addr, creds)
        else:
            port = server.add_insecure_port(addr)
    except RuntimeError as e:
        if str(e).startswith("read "):
            raise
        port = 0  # newer grpcio raises where older ones return 0
    if not port:
        raise RuntimeError("listen on %s: %s" % (addr, _listen_error(addr)))
    return server, pool


def load_functions(cfg):
    """Imports every configured function; returns {name: callable}."""
    return {fn.name: load(fn) for fn in cfg.functions}


def main(argv=None):
    """Runs the runtime until SIGTERM or SIGINT; returns the exit status."""
    # Handle the stop signals from the first moment, so that a stop asked
    # for during start-up is a graceful one too.
    signals = []
    stop = threading.Event()

    def on_signal(signum, frame):
        signals.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    parser = argparse.ArgumentParser(prog="runtime", description="An OpenEdge/Baetyl function runtime for Python.")
    parser.add_argument("-c", "--config", default=config_mod.DEFAULT_PATH, help="configuration file (default %(default)s)")
    parser.add_argument("--address", default="", help="host:port to listen on; overrides the environment and server.address")
    parser.add_argument("--log-level", default="", choices=["", "debug", "info", "warn", "error"], help="overrides logger.level")
    args = parser.parse_args(argv)

    try:
        cfg = config_mod.load(args.config)
        setup_logging(cfg, args.log_level)
        functions = load_functions(cfg)
    except (config_mod.ConfigError, LoadError, OSError) as e:
        print("runtime: %s" % e, file=sys.stderr)
        return 2
    addr, source = (args.address, "--address") if args.address else config_mod.resolve_address(cfg)
    if not addr:
        print(
            "runtime: no address to listen on: set %s, or server.address in %s"
            % (", ".join("$" + n for n in config_mod.ADDRESS_ENV), args.config),
            file=sys.stderr,
        )
        return 2
    try:
        server, pool = build_server(cfg, functions, addr)
    except RuntimeError as e:
        log.error("%s", e)
        return 1
    server.start()
    log.info(
        "%s serving %d functions (%s) on %s (address from %s), grpcio %s, protobuf %s",
        config_mod.resolve_name(cfg) or "runtime",
        len(functions),
        ", ".join(sorted(functions)),
        addr,
        source,
        grpc.__version__,
        _protobuf_version(),
    )

    stop.wait()
    log.info("stopping on %s: no new calls; calls in flight have %gs", signal.Signals(signals[0]).name, cfg.timeout)
    done = server.stop(cfg.timeout)
    deadline = time.monotonic() + cfg.timeout + 5
    while not done.wait(0.1):
        if len(signals) > 1:
            log.info("second signal: stopping now")
            server.stop(0)
            signals[1:] = []
        if time.monotonic() > deadline:
            break
    pool.shutdown(wait=False)
    return _exit_when_calls_stuck()


def _exit_when_calls_stuck():
    """After the grace period, a function that ignores its call's end may
    still run in a worker thread, and Python would wait for it at exit: exit
    anyway, the way the function manager would kill the instance."""
    limit = time.monotonic() + 1.0
    stuck = []
    for t in threading.enumerate():
        if t is threading.current_thread() or t.daemon:
            continue
        t.join(max(0.0, limit - time.monotonic()))
        if t.is_alive():
            stuck.append(t.name)
    if stuck:
        log.warning("exiting with %d function calls still running past the grace period", len(stuck))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    log.info("stopped")
    return 0


def _protobuf_version():
    try:
        from google.protobuf import __version__ as v

        return v
    except ImportError:
        return "?"
