"""The runtime as a process, over real gRPC: the fixtures, the error
statuses, Baetyl, TLS, cancellation and the graceful stop."""

import json
import os
import signal
import socket
import tempfile
import textwrap
import threading
import time
import unittest

import grpc

from helpers import MIB, ROOT, TESTDATA, Runtime, function_pb2, function_pb2_grpc, message


class ShippedConfigTest(unittest.TestCase):
    """The project's own etc/openedge/service.yml: fixtures and sayhi."""

    @classmethod
    def setUpClass(cls):
        cls.rt = Runtime(["-c", "etc/openedge/service.yml"])
        cls.stub = cls.rt.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.rt.close()

    def call(self, name, payload=b"", timeout=10, **fields):
        return self.stub.Call(message(name, payload, **fields), timeout=timeout)

    def assertStatus(self, code, fn, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception

    def test_echo_bytes_come_back_byte_for_byte(self):
        for p in (b"\x00", b"\xff\xfe\x00binary", os.urandom(MIB)):
            self.assertEqual(self.call("echo", p).Payload, p)

    def test_echo_json_comes_back_as_equal_json(self):
        v = {"a": [1, 2.5, None, True], "s": "h\u00e9llo"}
        out = self.call("echo", json.dumps(v).encode()).Payload
        self.assertEqual(json.loads(out), v)

    def test_echo_empty_per_era(self):
        # Functions get nothing for an empty payload of an OpenEdge call, as
        # under OpenEdge 0.1.2's runtime, and {} for a Baetyl call, as under
        # Baetyl's.
        self.assertEqual(self.call("echo").Payload, b"")
        stub = function_pb2_grpc.FunctionStub(self.rt.channels[0], package="baetyl")
        self.assertEqual(stub.Call(message("echo", b"", package="baetyl"), timeout=10).Payload, b"{}")

    def test_echo_just_under_4_mib(self):
        p = b"\xff" + os.urandom(4 * MIB - 64 * 1024 - 1)
        self.assertEqual(self.call("echo", p, timeout=30).Payload, p)

    def test_response_is_the_request_with_payload_replaced(self):
        req = message("sayhi", b'{"name": "ada"}', ID=2**64 - 1, QOS=1, Topic="t/x", FunctionInvokeID="inv-1")
        res = self.stub.Call(req, timeout=10)
        for f in ("ID", "QOS", "Topic", "FunctionName", "FunctionInvokeID"):
            self.assertEqual(getattr(res, f), getattr(req, f), f)
        self.assertEqual(json.loads(res.Payload), {"say": "hi, ada", "topic": "t/x", "invokeID": "inv-1"})

    def test_context_fixture_sees_the_call(self):
        res = self.call("context", b"{}", QOS=1, Topic="a/b", FunctionInvokeID="id-7")
        self.assertEqual(
            json.loads(res.Payload),
            {"messageQOS": 1, "messageTopic": "a/b", "functionName": "context", "functionInvokeID": "id-7"},
        )

    def test_none_gives_empty_payload(self):
        self.assertEqual(self.call("none", b'{"x": 1}').Payload, b"")

    def test_fail_gives_unknown_with_the_message_and_serving_goes_on(self):
        e = self.assertStatus(grpc.StatusCode.UNKNOWN, self.call, "fail")
        self.assertIn("conformance failure", e.details())
        self.assertEqual(self.call("echo", b"next").Payload, b"next")

    def test_sleep_waits(self):
        start = time.monotonic()
        self.assertEqual(json.loads(self.call("sleep", b'{"ms": 300}').Payload), {"ms": 300})
        self.assertGreaterEqual(time.monotonic() - start, 0.29)

    def test_sleep_with_bad_payload_fails(self):
        e = self.assertStatus(grpc.StatusCode.UNKNOWN, self.call, "sleep", b"soon")
        self.assertIn('{"ms": N}', e.details())

    def test_deadline(self):
        start = time.monotonic()
        self.assertStatus(grpc.StatusCode.DEADLINE_EXCEEDED, self.call, "sleep", b'{"ms": 5000}', timeout=0.2)
        self.assertLess(time.monotonic() - start, 1.5)
        self.assertEqual(self.call("echo", b"at once", timeout=2).Payload, b"at once")

    def test_concurrent_calls_run_in_parallel(self):
        results, errors = [], []

        def one():
            try:
                results.append(self.call("sleep", b'{"ms": 500}'))
            except grpc.RpcError as e:
                errors.append(e)

        threads = [threading.Thread(target=one) for _ in range(4)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual((len(results), errors), (4, []))
        self.assertLess(time.monotonic() - start, 1.5)

    def test_unknown_function_is_not_found(self):
        e = self.assertStatus(grpc.StatusCode.NOT_FOUND, self.call, "no-such-function")
        self.assertIn("no-such-function", e.details())

    def test_malformed_request_is_invalid_argument(self):
        raw = self.rt.channels[0].unary_unary("/openedge.Function/Call")
        for bad in (b"\x22\x7f\x78\x79", b"\x1a\x02\xff\xfe", b"\x0f"):
            e = self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, raw, bad, timeout=5)
            self.assertIn("not a valid openedge.FunctionMessage", e.details())
        self.assertEqual(self.call("echo", b"still here").Payload, b"still here")

    def test_other_method_is_unimplemented(self):
        other = self.rt.channels[0].unary_unary("/openedge.Function/Other")
        self.assertStatus(grpc.StatusCode.UNIMPLEMENTED, other, b"", timeout=5)

    def test_oversize_is_resource_exhausted(self):
        self.assertStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, self.call, "echo", b"\0" * (4 * MIB + 64), timeout=30)
        self.assertEqual(self.call("echo", b"ok").Payload, b"ok")

    def test_baetyl_call_keeps_timestamp(self):
        stub = function_pb2_grpc.FunctionStub(self.rt.channels[0], package="baetyl")
        req = message("echo", b"\x01\x02", package="baetyl", Timestamp=-1234567890123, ID=9)
        res = stub.Call(req, timeout=10)
        self.assertEqual((res.Timestamp, res.ID, res.Payload), (-1234567890123, 9, b"\x01\x02"))


PROBE = '''
import json, os

def wait(event, context):
    """Waits up to event["ms"]; writes what happened to $PROBE_OUT."""
    ended = context.wait(event["ms"] / 1000.0)
    # Written whole, then renamed: the test never reads half a file.
    with open(os.environ["PROBE_OUT"] + ".tmp", "w") as f:
        json.dump({"ended_early": ended, "cancelled": context.cancelled()}, f)
    os.rename(os.environ["PROBE_OUT"] + ".tmp", os.environ["PROBE_OUT"])
    return event

def index(event, context):
    return {"from": "probe", "event": event}

def timestamp(event, context):
    return context.get("messageTimestamp")

def result(event, context):
    return event["result"] if event else {1, 2}

def big(event, context):
    return b"x" * event["n"]
'''


class ConfiguredFunctionsTest(unittest.TestCase):
    """Functions from other codedirs, cancellation seen by a function, limits."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        os.makedirs(os.path.join(d, "probe"))
        os.makedirs(os.path.join(d, "other"))
        with open(os.path.join(d, "probe", "index.py"), "w") as f:
            f.write(PROBE)
        with open(os.path.join(d, "other", "index.py"), "w") as f:
            f.write("def index(event, context):\n    return {'from': 'other'}\n")
        cls.out = os.path.join(d, "probe.json")
        with open(os.path.join(d, "service.yml"), "w") as f:
            f.write(
                textwrap.dedent(
                    """\
                    server:
                      timeout: 3s
                      message: {length: {max: 64k}}
                    functions:
                      - {name: wait, handler: index.wait, codedir: probe}
                      - {name: probe, handler: index.index, codedir: probe}
                      - {name: other, handler: index.index, codedir: other}
                      - {name: timestamp, handler: index.timestamp, codedir: probe}
                      - {name: result, handler: index.result, codedir: probe}
                      - {name: big, handler: index.big, codedir: probe}
                      - {name: echo, handler: fixtures.echo, codedir: %s}
                    """
                    % os.path.join(ROOT, "functions", "conformance")
                )
            )
        cls.rt = Runtime(["-c", "service.yml"], cwd=d, env={"PROBE_OUT": cls.out})
        cls.stub = cls.rt.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.rt.close()
        cls.tmp.cleanup()

    def call(self, name, payload=b"", timeout=10, package="openedge"):
        stub = self.stub if package == "openedge" else function_pb2_grpc.FunctionStub(self.rt.channels[0], package)
        return stub.Call(message(name, payload, package=package), timeout=timeout)

    def test_same_module_name_in_two_codedirs(self):
        self.assertEqual(json.loads(self.call("probe", b"1").Payload), {"from": "probe", "event": 1})
        self.assertEqual(json.loads(self.call("other").Payload), {"from": "other"})

    def test_function_sees_the_deadline_pass(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("wait", b'{"ms": 5000}', timeout=0.3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        deadline = time.monotonic() + 3
        while not os.path.exists(self.out) and time.monotonic() < deadline:
            time.sleep(0.02)
        with open(self.out) as f:
            self.assertEqual(json.load(f), {"ended_early": True, "cancelled": True})
        os.remove(self.out)

    def test_baetyl_timestamp_in_context(self):
        stub = function_pb2_grpc.FunctionStub(self.rt.channels[0], package="baetyl")
        res = stub.Call(message("timestamp", package="baetyl", Timestamp=42), timeout=10)
        self.assertEqual(res.Payload, b"42")
        self.assertEqual(self.call("timestamp").Payload, b"0")  # OpenEdge calls have none

    def test_results(self):
        self.assertEqual(self.call("result", b'{"result": "text"}').Payload, b'"text"')
        self.assertEqual(self.call("result", b'{"result": [1, {"a": null}]}').Payload, b'[1,{"a":null}]')
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("result")  # a set: not JSON
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNKNOWN)
        self.assertIn("not JSON serializable", cm.exception.details())

    def test_configured_max_message_size(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("echo", b"x" * (65 * 1024))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("big", b'{"n": 70000}')
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("server.message.length.max", cm.exception.details())
        self.assertEqual(len(self.call("big", b'{"n": 60000}').Payload), 60000)


class StopTest(unittest.TestCase):
    def start(self):
        rt = Runtime(["-c", "etc/openedge/service.yml"])
        self.addCleanup(rt.close)
        return rt, rt.wait_ready()

    def test_sigterm_lets_the_call_in_flight_finish_and_exits_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            rt, stub = self.start()
            fut = stub.Call.future(message("sleep", b'{"ms": 1000}'), timeout=10)
            time.sleep(0.3)
            rt.signal(sig)
            self.assertEqual(fut.result(timeout=10).Payload, b'{"ms":1000}')
            self.assertEqual(rt.wait(10), 0, rt.log())
            self.assertIn("stopping on %s" % sig.name, rt.log())
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", rt.port), timeout=1).close()

    def test_idle_runtime_stops_at_once(self):
        rt, _ = self.start()
        start = time.monotonic()
        rt.signal()
        self.assertEqual(rt.wait(10), 0, rt.log())
        self.assertLess(time.monotonic() - start, 3)


class StartErrorsTest(unittest.TestCase):
    def run_runtime(self, text, env=None):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "service.yml"), "w") as f:
                f.write(text)
            rt = Runtime(["-c", "service.yml"], cwd=d, env=env)
            try:
                code = rt.wait(15)
                return code, rt.log()
            finally:
                rt.close()

    def test_unknown_key_exits_2_naming_file_and_line(self):
        code, log = self.run_runtime("server:\n  adress: 1.2.3.4:5\n")
        self.assertEqual(code, 2)
        self.assertIn("service.yml:2: unknown key 'adress' in server", log)
        self.assertNotIn("Traceback", log)

    def test_missing_module_exits_2(self):
        code, log = self.run_runtime("functions:\n  - {name: f, handler: nope.handler, codedir: .}\n")
        self.assertEqual(code, 2)
        self.assertIn("function 'f': import nope", log)
        self.assertNotIn("Traceback", log)

    def test_port_in_use_exits_1(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            addr = "127.0.0.1:%d" % s.getsockname()[1]
            code, log = self.run_runtime("", env={"OPENEDGE_SERVICE_ADDRESS": addr})
        self.assertEqual(code, 1)
        self.assertIn("listen on %s: Address already in use" % addr, log)


# A function written the way Baetyl's documentation and samples write them
# for Baetyl's Python runtime: a dict context read with [] and "in", an
# event that is a dict (also {} for an empty payload) or bytes, a plain
# return value. It must run here unchanged.
BAETYL_FUNCTION = r"""
import json


def handler(event, context):
    if isinstance(event, dict) and "fail" in event:
        raise ValueError(event["fail"])
    reply = {"kind": type(event).__name__, "context": json.loads(json.dumps(context))}
    if isinstance(event, bytes):
        reply["text"] = event.decode("utf-8", "replace")
    else:
        reply["event"] = event
    if "invokeid" in context and context["invokeid"] != context["functionInvokeID"]:
        reply["mismatch"] = True
    return reply


def keep(event, context):
    event["seen"] = event.get("seen", 0) + 1
    return event


def nothing(event, context):
    return None


def raw(event, context):
    return b"\x00\xffraw"


def empty_text(event, context):
    return ""
"""

BAETYL_CONFIG = """\
functions:
  - name: py-handler
    handler: index.handler
    codedir: var/db/baetyl/function-code
  - name: py-keep
    handler: index.keep
    codedir: var/db/baetyl/function-code
  - name: py-nothing
    handler: index.nothing
    codedir: var/db/baetyl/function-code
  - name: py-raw
    handler: index.raw
    codedir: var/db/baetyl/function-code
  - name: py-empty-text
    handler: index.empty_text
    codedir: var/db/baetyl/function-code
logger:
  path: var/log/baetyl/service.log
  level: debug
  format: text
  age:
    max: 15
  size:
    max: 50
  backup:
    max: 15
"""


def master_env(service, instance, address):
    """The environment a Baetyl 1.0 master gives an instance (native mode)."""
    return {
        "BAETYL_SERVICE_INSTANCE_ADDRESS": address,
        "OPENEDGE_SERVICE_INSTANCE_ADDRESS": address,
        "OPENEDGE_SERVICE_ADDRESS": address,
        "BAETYL_SERVICE_INSTANCE_NAME": instance,
        "OPENEDGE_SERVICE_INSTANCE_NAME": instance,
        "BAETYL_SERVICE_NAME": service,
        "OPENEDGE_SERVICE_NAME": service,
        "BAETYL_MASTER_API_ADDRESS": "unix://var/run/baetyl.sock",
        "BAETYL_MASTER_API_VERSION": "v1",
        "BAETYL_SERVICE_MODE": "native",
        "BAETYL_HOST_OS": "linux",
        "OPENEDGE_RUNNING_MODE": "native",
    }


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class BaetylMasterTest(unittest.TestCase):
    """The runtime started as a Baetyl master starts it: in
    var/run/baetyl/services/SERVICE, no -c, argv[0] the instance name, the
    master's variables; the configuration and the code are links to their
    volumes; the configuration has Baetyl's logger keys and a log directory
    that does not exist yet. etc/openedge/service.yml serves another
    function, so that reading the wrong file shows. A function written for
    Baetyl's Python runtime runs unchanged."""

    INSTANCE = "function-py.py-handler.1"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = cls.tmp.name
        volume = os.path.join(root, "var/db/baetyl/function-py-conf")
        code = os.path.join(root, "var/db/baetyl/function-py-code")
        write(os.path.join(volume, "service.yml"), BAETYL_CONFIG)
        write(os.path.join(code, "index.py"), BAETYL_FUNCTION)
        cls.wd = os.path.join(root, "var/run/baetyl/services/function-py")
        write(os.path.join(cls.wd, "etc/openedge/service.yml"), "functions:\n  - {name: from-openedge, handler: index.handler, codedir: var/db/baetyl/function-code}\n")
        os.symlink(volume, os.path.join(cls.wd, "etc/baetyl"))
        os.makedirs(os.path.join(cls.wd, "var/db/baetyl"))
        os.symlink(code, os.path.join(cls.wd, "var/db/baetyl/function-code"))
        cls.log_file = os.path.join(cls.wd, "var/log/baetyl/service.log")
        cls.rt = Runtime(
            address_env=None,
            env=lambda address: master_env("function-py", cls.INSTANCE, address),
            cwd=cls.wd,
            argv0=cls.INSTANCE,
            serving_log=cls.log_file,
        )
        cls.stub = cls.rt.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.rt.close()
        cls.tmp.cleanup()

    def call(self, name, payload=b"", package="baetyl", **fields):
        stub = function_pb2_grpc.FunctionStub(self.rt.channels[0], package=package)
        return stub.Call(message(name, payload, package=package, **fields), timeout=10)

    def test_reads_etc_baetyl_without_c(self):
        self.assertEqual(json.loads(self.call("py-handler", b"{}").Payload)["kind"], "dict")
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("from-openedge")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_log_goes_to_the_created_directory(self):
        log = self.rt.file_log()
        self.assertIn(" serving ", log)
        self.assertIn(self.INSTANCE, log)
        self.assertNotIn("Traceback", self.rt.log())

    def test_event_is_json_bytes_or_an_empty_dict(self):
        out = json.loads(self.call("py-handler", b'{"a": [1, 2]}').Payload)
        self.assertEqual((out["kind"], out["event"]), ("dict", {"a": [1, 2]}))
        out = json.loads(self.call("py-handler", b"\xffnot json").Payload)
        self.assertEqual((out["kind"], out["text"]), ("bytes", "\ufffdnot json"))
        out = json.loads(self.call("py-handler", b"").Payload)
        self.assertEqual((out["kind"], out["event"]), ("dict", {}))
        # Each call gets its own {}: what a function does to it does not last.
        for _ in range(2):
            self.assertEqual(json.loads(self.call("py-keep").Payload), {"seen": 1})

    def test_context_is_exactly_baetyls(self):
        out = json.loads(self.call("py-handler", b"1", QOS=1, Topic="t/a", Timestamp=1563452817, FunctionInvokeID="inv-9").Payload)
        self.assertEqual(
            out["context"],
            {
                "messageQOS": 1,
                "messageTopic": "t/a",
                "messageTimestamp": 1563452817,
                "functionName": "py-handler",
                "functionInvokeID": "inv-9",
                "invokeid": "inv-9",
            },
        )
        self.assertNotIn("mismatch", out)
        # An OpenEdge call has no Timestamp: 0.
        out = json.loads(self.call("py-handler", b"1", package="openedge", FunctionInvokeID="i").Payload)
        self.assertEqual((out["context"]["messageTimestamp"], out["context"]["invokeid"]), (0, "i"))

    def test_results(self):
        self.assertEqual(self.call("py-nothing", b'{"x": 1}').Payload, b"")
        self.assertEqual(self.call("py-raw").Payload, b"\x00\xffraw")
        # Baetyl's Python runtime sends any other value as JSON, "" too.
        self.assertEqual(self.call("py-empty-text").Payload, b'""')

    def test_exception_fails_the_call(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call("py-handler", b'{"fail": "bad input"}')
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNKNOWN)
        self.assertIn("ValueError: bad input", cm.exception.details())

    def test_sigterm_exits_0(self):
        instance = "function-py.py-handler.2"
        rt = Runtime(address_env=None, env=lambda a: master_env("function-py", instance, a), cwd=self.wd, argv0=instance)
        self.addCleanup(rt.close)
        # It logs to the same file as the first instance: wait for its call.
        stub = function_pb2_grpc.FunctionStub(rt.channel(), package="baetyl")
        stub.Call(message("py-nothing", package="baetyl"), timeout=15, wait_for_ready=True)
        rt.signal()
        self.assertEqual(rt.wait(10), 0, rt.log())


class DefaultConfigTest(unittest.TestCase):
    """Without -c, in a directory holding both default files (each serving
    its own function): any one of the Baetyl master's variables selects
    etc/baetyl/service.yml, none selects etc/openedge/service.yml."""

    CASES = (
        ("no Baetyl variable", "OPENEDGE_SERVICE_ADDRESS", {"OPENEDGE_SERVICE_NAME": "x"}, "from-openedge"),
        ("BAETYL_SERVICE_INSTANCE_ADDRESS", "BAETYL_SERVICE_INSTANCE_ADDRESS", {}, "from-baetyl"),
        ("BAETYL_SERVICE_INSTANCE_NAME", "OPENEDGE_SERVICE_ADDRESS", {"BAETYL_SERVICE_INSTANCE_NAME": "x.y.1"}, "from-baetyl"),
        ("BAETYL_SERVICE_NAME", "OPENEDGE_SERVICE_ADDRESS", {"BAETYL_SERVICE_NAME": "x"}, "from-baetyl"),
        ("an empty BAETYL_SERVICE_NAME", "OPENEDGE_SERVICE_ADDRESS", {"BAETYL_SERVICE_NAME": ""}, "from-openedge"),
    )

    def test_each_variable(self):
        codedir = os.path.join(ROOT, "functions", "conformance")
        for name, address_env, env, want in self.CASES:
            with self.subTest(name), tempfile.TemporaryDirectory() as d:
                for which in ("openedge", "baetyl"):
                    write(
                        os.path.join(d, "etc", which, "service.yml"),
                        "functions:\n  - {name: from-%s, handler: fixtures.echo, codedir: %s}\n" % (which, codedir),
                    )
                rt = Runtime(cwd=d, address_env=address_env, env=env)
                try:
                    stub = rt.wait_ready()
                    self.assertEqual(stub.Call(message(want, b"x"), timeout=10).Payload, b"x")
                finally:
                    rt.close()


class StartErrorsWithALogFileTest(unittest.TestCase):
    """Errors at start go to stderr even when logger.path sends the log to a
    file (and to the file too once it is open); configuration errors exit
    2, a port that cannot be listened on 1."""

    LOGGER = "logger:\n  path: var/log/rt/service.log\n"

    def start(self, config, env=None, args=("-c", "etc/openedge/service.yml"), address_env="OPENEDGE_SERVICE_ADDRESS", files=None):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        write(os.path.join(d.name, "etc/openedge/service.yml"), config)
        write(os.path.join(d.name, "afile"), "a file, not a directory")
        rt = Runtime(list(args), cwd=d.name, env=env, address_env=address_env)
        self.addCleanup(rt.close)
        code = rt.wait(15)
        try:
            with open(os.path.join(d.name, "var/log/rt/service.log")) as f:
                file_log = f.read()
        except FileNotFoundError:
            file_log = None
        return code, rt.log(), file_log

    def echo(self):
        return "functions:\n  - {name: f, handler: fixtures.echo, codedir: %s}\n" % os.path.join(ROOT, "functions", "conformance")

    def test_missing_module(self):
        code, err, file_log = self.start("functions:\n  - {name: f, handler: nope.handler, codedir: .}\n" + self.LOGGER)
        self.assertEqual(code, 2)
        self.assertIn("function 'f': import nope", err)
        self.assertIn("function 'f': import nope", file_log)

    def test_no_address(self):
        code, err, file_log = self.start(self.echo() + self.LOGGER, address_env=None)
        self.assertEqual(code, 2)
        self.assertIn("no address to listen on", err)
        self.assertIn("no address to listen on", file_log)

    def test_port_taken(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            addr = "127.0.0.1:%d" % s.getsockname()[1]
            code, err, file_log = self.start(self.echo() + self.LOGGER, env={"OPENEDGE_SERVICE_ADDRESS": addr})
        self.assertEqual(code, 1)
        self.assertIn("listen on %s" % addr, err)
        self.assertIn("listen on %s" % addr, file_log)

    def test_unknown_logger_key(self):
        code, err, file_log = self.start(self.echo() + self.LOGGER + "  rotate: daily\n")
        self.assertEqual(code, 2)
        self.assertIn("etc/openedge/service.yml:5: unknown key 'rotate' in logger", err)
        self.assertIsNone(file_log)

    def test_log_file_that_cannot_be_opened_is_not_fatal(self):
        # Baetyl's example configurations name var/log/baetyl/service.log,
        # which a container's user may be unable to create: the runtime says
        # so on stderr, logs there and serves.
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        write(os.path.join(d.name, "afile"), "a file, not a directory")
        write(os.path.join(d.name, "etc/openedge/service.yml"), self.echo() + "logger:\n  path: afile/service.log\n")
        rt = Runtime(["-c", "etc/openedge/service.yml"], cwd=d.name)
        self.addCleanup(rt.close)
        stub = rt.wait_ready()
        self.assertEqual(stub.Call(message("f", b'{"a":1}'), timeout=10).Payload, b'{"a":1}')
        rt.signal()
        self.assertEqual(rt.wait(10), 0, rt.log())
        err = rt.log()
        self.assertIn("logger.path afile/service.log", err)
        self.assertIn("logging to stderr instead", err)
        self.assertIn(" serving ", err)
        self.assertNotIn("Traceback", err)

    def test_missing_default_says_why(self):
        code, err, _ = self.start(self.echo(), env={"BAETYL_SERVICE_NAME": "svc"}, args=())
        self.assertEqual(code, 2)
        for want in ("etc/baetyl/service.yml", "BAETYL_SERVICE_NAME is set", "-c"):
            self.assertIn(want, err)

    def test_empty_c(self):
        code, err, _ = self.start(self.echo(), args=("-c", ""))
        self.assertEqual(code, 2)
        self.assertIn("-c needs a file", err)


class TLSTest(unittest.TestCase):
    def tls_runtime(self, mutual):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        conf = "server:\n  key: %s\n  cert: %s\n" % (os.path.join(TESTDATA, "server.key"), os.path.join(TESTDATA, "server.pem"))
        if mutual:
            conf += "  ca: %s\n" % os.path.join(TESTDATA, "ca.pem")
        conf += "functions:\n  - {name: echo, handler: fixtures.echo, codedir: %s}\n" % os.path.join(ROOT, "functions", "conformance")
        with open(os.path.join(d.name, "service.yml"), "w") as f:
            f.write(conf)
        rt = Runtime(["-c", "service.yml"], cwd=d.name)
        self.addCleanup(rt.close)
        return rt

    def creds(self, client_cert):
        def read(n):
            with open(os.path.join(TESTDATA, n), "rb") as f:
                return f.read()

        if client_cert:
            return grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
        return grpc.ssl_channel_credentials(read("ca.pem"))

    def test_tls(self):
        rt = self.tls_runtime(mutual=False)
        stub = rt.wait_ready(credentials=self.creds(False))
        self.assertEqual(stub.Call(message("echo", b"secret"), timeout=10).Payload, b"secret")
        plain = function_pb2_grpc.FunctionStub(rt.channel())
        with self.assertRaises(grpc.RpcError):
            plain.Call(message("echo", b"x"), timeout=3)

    def test_mutual_tls_needs_a_client_certificate(self):
        rt = self.tls_runtime(mutual=True)
        stub = rt.wait_ready(credentials=self.creds(True))
        self.assertEqual(stub.Call(message("echo", b"m"), timeout=10).Payload, b"m")
        anon = function_pb2_grpc.FunctionStub(rt.channel(self.creds(False)))
        with self.assertRaises(grpc.RpcError) as cm:
            anon.Call(message("echo", b"x"), timeout=3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main()
