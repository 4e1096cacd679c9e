"""The gRPC server: serves the configured functions on Function.Call.

It serves /openedge.Function/Call and /baetyl.Function/Call on one port
(the same message, Baetyl's with a Timestamp), so the runtime works with
both OpenEdge and Baetyl. Requests are read and responses written by
wire.py rather than protobuf (see there why); a request that is not a
FunctionMessage gets a clear INVALID_ARGUMENT instead of a logged stack
trace.
"""

import argparse
import ctypes
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from concurrent import futures

import grpc

from . import config as config_mod
from . import wire
from .functions import Context, LoadError, decode_event, dump_json, encode_result, load

log = logging.getLogger("runtime")

# Longest exception message put into a status; a status travels in HTTP/2
# trailers, which peers limit (grpc-go: 16 KiB for all headers).
_MAX_DETAILS = 4096


class Request(object):
    """A request as gRPC's request deserializer parses it.

    Parsing here, as the request arrives, rather than in the handler lets
    gRPC drop the request's bytes before the function runs: a large payload
    is then held once (as the function's event) instead of twice. A request
    that is not a FunctionMessage is kept as an error for the handler to
    answer with INVALID_ARGUMENT (a deserializer that raises makes gRPC log
    a stack trace and answer INTERNAL).
    """

    __slots__ = ("size", "fields", "payload", "rest", "error")

    def __init__(self, package, data):
        self.size = len(data)
        self.fields = self.payload = self.rest = self.error = None
        try:
            self.fields, view, self.rest = wire.parse(data, package)
        except wire.DecodeError as e:
            self.error = str(e)
            return
        self.payload = bytes(view)
        view.release()


class Runtime(object):
    """Calls the configured functions for Function.Call requests."""

    def __init__(self, functions, max_message):
        self.functions = functions  # name -> callable(event, context)
        self.max_message = max_message
        # Whether each call's time is logged, decided once: the logger's
        # level is set before the server is built.
        self.debug = log.isEnabledFor(logging.DEBUG)

    def call(self, package, request, context):
        """Serves one Call: a parsed Request in, raw response bytes out."""
        if request.size >= _LARGE:
            # Give back what earlier large calls left in malloc's free
            # lists now, and again once this call has been sent.
            _release_memory()
            context.add_callback(_release_memory)
        if request.error is not None:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "request is not a valid %s.FunctionMessage: %s" % (package, request.error),
            )
        req, payload, rest = request.fields, request.payload, request.rest
        request.payload = None  # held once, by this frame and then the function
        fn = self.functions.get(req["FunctionName"])
        if fn is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                "function %r is not configured (configured: %s)"
                % (req["FunctionName"], ", ".join(sorted(self.functions)) or "none"),
            )
        values = {
            "messageQOS": req["QOS"],
            "messageTopic": req["Topic"],
            "messageTimestamp": req.get("Timestamp", 0),  # OpenEdge's message has none
            "functionName": req["FunctionName"],
            "functionInvokeID": req["FunctionInvokeID"],
            "invokeid": req["FunctionInvokeID"],
        }
        ctx = Context(values, None, context)
        event = decode_event(payload, package)
        del payload  # the function has it (or its JSON) now: do not hold two copies
        start = time.monotonic() if self.debug else 0
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
            failure = _describe(req["FunctionName"], e)
        if failure is not None:
            log.warning("%s (invoke id %s)", failure, req["FunctionInvokeID"])
            context.abort(grpc.StatusCode.UNKNOWN, failure[:_MAX_DETAILS])
        size = len(rest) + wire.payload_field_size(len(payload))
        if size > self.max_message:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "function %r: response of %d bytes is over server.message.length.max (%d)"
                % (req["FunctionName"], size, self.max_message),
            )
        if size >= _LARGE and request.size < _LARGE:
            context.add_callback(_release_memory)
        if self.debug:
            log.debug("called %s in %.1f ms", req["FunctionName"], (time.monotonic() - start) * 1000)
        return wire.with_payload(rest, payload)


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
        for package in wire.FIELDS:

            def behavior(request, context, package=package):
                return runtime.call(package, request, context)

            def parse(data, package=package):
                return Request(package, data)

            self._methods["/%s.Function/Call" % package] = grpc.unary_unary_rpc_method_handler(
                behavior, request_deserializer=parse
            )

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
    """Sends the runtime's and gRPC's logs to logger.path (default stderr),
    creating its directory. When the file cannot be opened (Baetyl's examples
    name var/log/baetyl/service.log, which a container's user may not be able
    to create), the log goes to stderr; the reason is returned, else ""."""
    level = (level_override or cfg.logger_level).upper()
    level = {"WARN": "WARNING"}.get(level, level)
    handler, unusable = None, ""
    if cfg.logger_path:
        try:
            d = os.path.dirname(cfg.logger_path)
            if d:
                os.makedirs(d, exist_ok=True)
            handler = logging.FileHandler(cfg.logger_path)
        except OSError as e:
            unusable = "logger.path %s: %s" % (cfg.logger_path, e.strerror or e)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
    if cfg.logger_format.lower() == "json":
        handler.setFormatter(_JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return unusable


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


class CallPool(futures.ThreadPoolExecutor):
    """The thread pool gRPC runs calls in, counting the calls it holds
    (queued or running), so that a stop can wait for exactly those: gRPC's
    own shutdown also waits for idle clients to close their connections."""

    def __init__(self, *args, **kwargs):
        futures.ThreadPoolExecutor.__init__(self, *args, **kwargs)
        self._busy = 0
        self._idle = threading.Condition()

    def submit(self, fn, *args, **kwargs):
        with self._idle:
            self._busy += 1
        try:
            return futures.ThreadPoolExecutor.submit(self, self._run, fn, *args, **kwargs)
        except BaseException:
            self._done()
            raise

    def _run(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            self._done()

    def _done(self):
        with self._idle:
            self._busy -= 1
            if self._busy == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout):
        """Waits until no call is queued or running; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)


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
    pool = CallPool(max_workers=cfg.workers_max, thread_name_prefix="call")
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
    parser.add_argument(
        "-c",
        "--config",
        default=None,
        help="configuration file (default %s under a Baetyl master, else %s)" % (config_mod.BAETYL_PATH, config_mod.OPENEDGE_PATH),
    )
    parser.add_argument("--address", default="", help="host:port to listen on; overrides the environment and server.address")
    parser.add_argument("--log-level", default="", choices=["", "debug", "info", "warn", "error"], help="overrides logger.level")
    args = parser.parse_args(argv)

    why = ""
    if args.config is None:
        args.config, why = config_mod.default_path()
    elif not args.config:
        parser.error("-c needs a file")
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as e:
        if why:
            e = "%s\nruntime: %s is the default because %s; give another file with -c" % (e, args.config, why)
        return _fail(2, e)
    unusable = setup_logging(cfg, args.log_level)
    if unusable:
        # Not fatal: a runtime that stops here never serves (a master
        # restarts it in a loop); the log goes to stderr instead.
        log.error("%s; logging to stderr instead", unusable)
    try:
        functions = load_functions(cfg)
    except LoadError as e:
        return _fail(2, e)
    addr, source = (args.address, "--address") if args.address else config_mod.resolve_address(cfg)
    if not addr:
        return _fail(
            2,
            "no address to listen on: set %s, or server.address in %s"
            % (", ".join("$" + n for n in config_mod.ADDRESS_ENV), args.config),
        )
    try:
        server, pool = build_server(cfg, functions, addr)
    except RuntimeError as e:
        return _fail(1, e)
    server.start()
    log.info(
        "%s serving %d functions (%s) on %s (address from %s), grpcio %s",
        config_mod.resolve_name(cfg) or "runtime",
        len(functions),
        ", ".join(sorted(functions)),
        addr,
        source,
        grpc.__version__,
    )

    _wait_for(stop)
    log.info("stopping on %s: no new calls; calls in flight have %gs", signal.Signals(signals[0]).name, cfg.timeout)
    done = server.stop(cfg.timeout)  # refuses new calls; cancels what still runs after the grace period
    deadline = time.monotonic() + cfg.timeout
    while not pool.wait_idle(0.1) and time.monotonic() < deadline:
        if len(signals) > 1:
            log.info("second signal: stopping now")
            server.stop(0)
            break
    # The calls have ended and their responses are written; give gRPC a
    # moment to say goodbye on the connections.
    done.wait(0.5)
    pool.shutdown(wait=False)
    return _finish(pool, done)


def _fail(code, error):
    """Reports an error at start and returns the exit status code: always on
    standard error, so that whoever started the runtime sees it, and in the
    log too when the log goes to a file."""
    print("runtime: %s" % error, file=sys.stderr)
    if any(isinstance(h, logging.FileHandler) for h in logging.getLogger().handlers):
        log.error("%s", error)
    return code


def _wait_for(stop):
    """Blocks until a signal handler sets stop.

    The kernel may deliver a signal to any thread (gRPC has several), and
    Python runs handlers only in the main thread when it next runs Python
    code: a main thread blocked in Event.wait() could sleep through SIGTERM.
    The signal wakeup fd wakes it whichever thread got the signal.
    """
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    previous = signal.set_wakeup_fd(w.fileno())
    try:
        while not stop.is_set():
            select.select([r], [], [], 5.0)
            try:
                r.recv(64)
            except BlockingIOError:
                pass
    finally:
        signal.set_wakeup_fd(previous)
        r.close()
        w.close()


def _finish(pool, done):
    """Returns 0 for a normal exit, or exits at once when something would
    hold the interpreter back: a function still running past the grace
    period (Python waits for its thread at exit), or gRPC still waiting for
    an idle client to close its connection (its grace thread would wait the
    whole grace period). The function manager would kill the instance then;
    this ends it the same way, with status 0."""
    if pool.wait_idle(1.0) and done.is_set():
        log.info("stopped")
        return 0
    if not pool.wait_idle(0):
        log.warning("exiting with function calls still running past the grace period")
    else:
        log.info("stopped (idle connections closed)")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
